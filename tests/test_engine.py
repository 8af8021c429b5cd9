"""The network and the skipping engine: shapes, causality, streaming, exactness, gradients, cost."""
import copy

import numpy as np
import pytest
import torch

from conftest import make_net
from freelunch.model import BatchedEngine, ConvFSENet, StreamingEngine
from freelunch.model import stft as S
from freelunch.model.cost import frame_macs
from freelunch.model.losses import liveness_loss, pesq_loss, se_loss, si_sdr_loss, sparsity_loss


def offline(net, x: np.ndarray, masks=None) -> np.ndarray:
    with torch.no_grad():
        y, _, _ = net(torch.from_numpy(x)[None], masks=masks)
    return y[0].numpy()


def stream(engine: StreamingEngine, x: np.ndarray, buffer_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Enhance x in buffers plus a flush; return the output aligned with x and all masks."""
    engine.reset()
    padded = np.concatenate([x, np.zeros(engine.latency, np.float32)])
    outs, masks = [], []
    for i in range(0, len(padded), buffer_size):
        emitted, m, _, _ = engine.process_frames(padded[i : i + buffer_size])
        outs.append(emitted)
        masks.append(m)
    return np.concatenate(outs)[: len(x)], np.concatenate(masks)


@pytest.mark.parametrize("n", [1, 100, 255, 256, 257, 16000, 16001])
def test_output_length_and_frames(n):
    net = make_net()
    x = np.random.default_rng(n).standard_normal(n).astype(np.float32) * 0.1
    with torch.no_grad():
        y, spec, trace = net(torch.from_numpy(x)[None])
    assert y.shape == (1, n)
    assert spec.shape == (1, S.N_BINS, S.n_frames(n))
    assert trace.masks.shape == (1, 9, 256, S.n_frames(n))
    assert trace.usage.shape == (1, 9, S.n_frames(n))


def test_stft_reconstructs_exactly():
    x = torch.randn(2, 12345)
    assert torch.allclose(S.istft(S.stft(x), 12345), x, atol=1e-5)


def test_causal_future_samples_never_change_the_past(speechlike):
    net = make_net()
    k = 20000
    changed = speechlike.copy()
    changed[k:] = np.random.default_rng(0).standard_normal(len(changed) - k)
    a, b = offline(net, speechlike), offline(net, changed)
    # An output sample needs its input up to the end of the frame that completes it.
    horizon = k - (S.N_FFT - 1)
    np.testing.assert_array_equal(a[:horizon], b[:horizon])
    assert np.abs(a[k:] - b[k:]).max() > 1e-3


@pytest.mark.parametrize("buffer_size", [1, 37, 256, 512, 1000, 8192])
def test_streaming_equals_offline(speechlike, buffer_size):
    net = make_net()
    engine = StreamingEngine(net)
    y_stream, masks = stream(engine, speechlike, buffer_size)
    y_once, masks_once = stream(engine, speechlike, len(speechlike) + engine.latency)
    np.testing.assert_array_equal(masks, masks_once)
    np.testing.assert_allclose(y_stream, y_once, atol=1e-6)
    # And the torch network, given the engine's gate decisions, agrees to float tolerance.
    forced = torch.from_numpy(masks[: S.n_frames(len(speechlike))].transpose(1, 2, 0)[None].astype(np.float32))
    np.testing.assert_allclose(y_stream, offline(net, speechlike, forced), atol=1e-4)


def test_engine_gates_agree_with_torch_gates(speechlike):
    net = make_net()
    with torch.no_grad():
        _, _, trace = net(torch.from_numpy(speechlike)[None])
    _, masks = stream(StreamingEngine(net), speechlike, 4096)
    torch_masks = trace.masks[0].numpy().transpose(2, 0, 1).astype(bool)
    agreement = (masks[: torch_masks.shape[0]] == torch_masks).mean()
    assert agreement > 0.999


def test_pruned_channels_are_never_computed(speechlike):
    """Poison the weights of channels whose gate is shut: a skipping engine never reads them."""
    net = make_net()
    shut = [0, 5, 77, 200]
    for gate in net.gates:
        gate.net[2].bias.data[shut] = -1e6
    reference, masks = stream(StreamingEngine(net), speechlike, 512)
    assert not masks[:, :, shut].any() and masks.mean() > 0.2
    engine = StreamingEngine(net)
    up_w, down_wt, dw_w = engine.params[2], engine.params[12], engine.params[7]
    up_w[:, shut] = np.nan
    down_wt[:, shut] = np.nan
    dw_w[:, shut] = np.nan
    poisoned, _ = stream(engine, speechlike, 512)
    assert np.isfinite(poisoned).all()
    np.testing.assert_array_equal(poisoned, reference)


def test_dense_network_streams_like_offline(speechlike):
    net = make_net(gated=False)
    y, masks = stream(StreamingEngine(net), speechlike, 700)
    assert masks.all()
    np.testing.assert_allclose(y, offline(net, speechlike), atol=1e-4)


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("chunk", [1, 7, 256, 100000])
def test_batched_engine_equals_the_network(speechlike, gated, chunk):
    """Whatever the chunking, the batched engine gives the network's masks and output."""
    net = make_net(gated=gated)
    x = speechlike[:24000]
    with torch.no_grad():
        _, _, trace = net(torch.from_numpy(x)[None])
    enhanced, masks = BatchedEngine(net, chunk=chunk)(x)
    torch_masks = trace.masks[0].numpy().transpose(2, 0, 1).astype(bool)
    assert masks.shape == torch_masks.shape and masks.dtype == bool
    assert (masks == torch_masks).mean() > 0.999
    assert masks.all() if not gated else 0.2 < masks.mean() < 0.8
    forced = torch.from_numpy(masks.transpose(1, 2, 0)[None].astype(np.float32))
    np.testing.assert_allclose(enhanced, offline(net, x, forced if gated else None), atol=1e-4)


def test_gradients_reach_gates_through_the_surrogate(speechlike):
    net = make_net().train()
    noisy = torch.from_numpy(speechlike)[None]
    _, spec, trace = net(noisy)
    loss = se_loss(spec, noisy * 0.5) + sparsity_loss(trace.masks, 0.25)
    loss.backward()
    for gate in net.gates:
        for p in gate.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0


def test_sparsity_loss_pulls_each_block_to_the_budget():
    masks = torch.zeros(1, 2, 4, 10)
    masks[:, 0] = 1.0  # block 0 fully used, block 1 empty
    assert sparsity_loss(masks, 0.25).item() == pytest.approx((0.75**2 + 0.25**2) / 2)
    masks[:, :, :1] = 1.0
    masks[:, 0, 1:] = 0.0  # both blocks at exactly 1 of 4 channels
    assert sparsity_loss(masks, 0.25).item() == 0.0


def test_network_scope_lets_blocks_share_the_budget():
    masks = torch.zeros(1, 2, 4, 10)
    masks[:, 0, :2] = 1.0  # block 0 at 1/2, block 1 empty: the network at 1/4
    assert sparsity_loss(masks, 0.25, "network").item() == 0.0
    assert sparsity_loss(masks, 0.25, "block").item() == pytest.approx((0.25**2 + 0.25**2) / 2)
    assert sparsity_loss(masks, 0.5, "network").item() == pytest.approx(0.25**2)
    with pytest.raises(ValueError, match="usage scope"):
        sparsity_loss(masks, 0.25, "layer")


def test_liveness_loss_lifts_only_channels_that_are_rarely_on():
    logits = torch.full((2, 3, 4, 50), -2.0)  # (B, blocks, hidden, T): every channel off
    logits[:, :, :2, :10] = 1.0  # channels 0 and 1 of each block on for 20 % of the frames
    logits.requires_grad_(True)
    loss = liveness_loss(logits, 0.05)
    assert loss.item() == pytest.approx(1.0)  # half the channels sit 2 below the step
    loss.backward()
    assert logits.grad[:, :, :2].abs().sum() == 0  # on often enough: left alone
    assert (logits.grad[:, :, 2:] < 0).any(dim=(0, 3)).all()  # every dead channel is pushed up
    logits.data[:, :, 2:, :2] = 0.5  # 2 frames of each of the 2 items: 4 of 100, under 5 %
    assert liveness_loss(logits, 0.05).item() > 0
    logits.data[0, :, 2:, 2] = 0.5  # and 1 more frame of the first item: 5 of 100, enough
    assert liveness_loss(logits, 0.05).item() == 0.0
    with pytest.raises(ValueError, match="min_usage"):
        liveness_loss(logits, 0.0)


def test_si_sdr_loss_is_the_scale_invariant_sdr():
    """The loss is minus the evaluation's SI-SDR (zero-mean signals, where its mean removal is moot)."""
    from freelunch import metrics

    rng = np.random.default_rng(0)
    clean, noise = rng.standard_normal((2, 2, 8000))
    clean -= clean.mean(-1, keepdims=True)
    estimate = 3 * clean + 0.3 * (noise - noise.mean(-1, keepdims=True))
    expected = -np.mean([metrics.si_sdr(e, c) for e, c in zip(estimate, clean)])
    loss = si_sdr_loss(torch.from_numpy(estimate), torch.from_numpy(clean))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert si_sdr_loss(torch.from_numpy(0.1 * estimate), torch.from_numpy(clean)).item() == pytest.approx(expected, rel=1e-6)


def test_pesq_loss_ranks_degradations_as_pesq_does():
    """On a real utterance, the differentiable PESQ term orders three noise levels as the
    reference PESQ-WB does, reads an exact copy as no disturbance, and passes a finite
    gradient back."""
    from freelunch import data, metrics

    mixture = next(m for _, m in data.fixed_mixtures(data.pack_layout(data.default_data_root()), "valid", limit=1))
    speech = mixture["clean"][:48000]
    clean = torch.from_numpy(speech)[None]
    noise = torch.from_numpy(mixture["noise"][:48000])[None]
    noise = noise * clean.pow(2).mean().sqrt() / noise.pow(2).mean().sqrt()
    degraded = [(clean + 10 ** (-snr / 20) * noise).requires_grad_() for snr in (20, 10, 0)]
    losses = [pesq_loss(d, clean) for d in degraded]
    reference = [metrics.pesq_wb(d.detach()[0].numpy(), speech) for d in degraded]
    assert losses[0] < losses[1] < losses[2]
    assert reference[0] > reference[1] > reference[2]
    assert pesq_loss(clean.clone(), clean).item() < 1e-6
    losses[1].backward()
    assert torch.isfinite(degraded[1].grad).all() and degraded[1].grad.abs().sum() > 0


def test_dense_macs_match_a_count_by_hand():
    config = make_net().config
    by_hand = 257 * 128 + 9 * (128 * 256 + 256 * 3 + 256 * 128) + 128 * 257
    assert frame_macs(config)["total"] == by_hand == 662528
    gated = frame_macs(config, np.full(9, 0.25))
    assert gated["gates"] == 9 * (128 * 64 + 64 * 256)
    assert gated["total"] == 257 * 128 * 2 + 9 * 64 * (128 + 3 + 128) + gated["gates"]


def test_a_narrower_gate_streams_exactly_and_costs_less(speechlike):
    """The engines and the cost model read the gate's width from the weights: a 16-wide gate
    streams the network's masks and output, and costs 9 x (128 x 16 + 16 x 256) MACs."""
    net = make_net(gate_hidden=16)
    x = speechlike[:16000]
    with torch.no_grad():
        _, _, trace = net(torch.from_numpy(x)[None])
    y, masks = stream(StreamingEngine(net), x, 512)
    torch_masks = trace.masks[0].numpy().transpose(2, 0, 1).astype(bool)
    assert (masks[: len(torch_masks)] == torch_masks).mean() > 0.999 and 0.2 < masks.mean() < 0.8
    forced = torch.from_numpy(masks[: len(torch_masks)].transpose(1, 2, 0)[None].astype(np.float32))
    np.testing.assert_allclose(y, offline(net, x, forced), atol=1e-4)
    assert frame_macs(net.config, np.full(9, 0.25))["gates"] == 9 * (128 * 16 + 16 * 256) == 55296


def test_fixed_size_blocks_are_delayed_by_the_latency(speechlike):
    engine = StreamingEngine(make_net())
    aligned, _ = stream(engine, speechlike, 4096)
    engine.reset()
    blocks = np.concatenate([engine.process(speechlike[i : i + 300]) for i in range(0, len(speechlike), 300)])
    assert blocks.shape == speechlike.shape
    np.testing.assert_array_equal(blocks[: engine.latency], 0)
    np.testing.assert_allclose(blocks[engine.latency :], aligned[: -engine.latency], atol=1e-6)


def test_gain_floor_limits_attenuation(speechlike):
    net = make_net()
    net.backend.bias.data[:] = -30.0  # the network wants to remove everything
    silent, _ = stream(StreamingEngine(net), speechlike, 4096)
    floored, _ = stream(StreamingEngine(net, gain_floor=0.1), speechlike, 4096)
    assert np.abs(silent).max() < 1e-6
    ratio = np.sqrt(np.mean(floored[4000:-4000] ** 2) / np.mean(speechlike[4000:-4000] ** 2))
    assert ratio == pytest.approx(0.1, rel=0.05)


def test_mask_calibration_is_the_same_in_every_engine(speechlike):
    """The calibrated mask (gain ** exponent, then a causal average over frames; eval mode only)
    is the same in the network, the streaming engine and the batched engine; an exponent below 1
    suppresses less, and the average steadies the mask from frame to frame."""
    x = speechlike[:24000]
    net = make_net(gated=False)
    plain = offline(net, x)
    spec = S.stft(torch.from_numpy(x)[None])
    training = copy.deepcopy(net).train()  # a copy: train mode updates the BatchNorm statistics
    with torch.no_grad():
        raw_gain = net.forward_spec(spec)[0]
        net.gain_exponent, net.gain_smoothing = 0.7, 0.3
        gain = net.forward_spec(spec)[0]
        expected = raw_gain**0.7
        for t in range(1, expected.shape[-1]):
            expected[..., t] = 0.3 * expected[..., t - 1] + 0.7 * expected[..., t]
        np.testing.assert_allclose(gain, expected, rtol=1e-5, atol=1e-7)
        jitter = lambda g: (g[..., 1:] - g[..., :-1]).abs().mean()  # noqa: E731
        assert jitter(gain) < 0.8 * jitter(raw_gain**0.7)
        trained_gain = training.forward_spec(spec)[0]
        training.gain_exponent, training.gain_smoothing = 0.7, 0.3
        assert torch.equal(copy.deepcopy(training).forward_spec(spec)[0], trained_gain)  # training never sees it
    calibrated = offline(net, x)
    y_stream, _ = stream(StreamingEngine(net), x, 1000)
    np.testing.assert_allclose(y_stream, calibrated, atol=1e-4)
    np.testing.assert_allclose(BatchedEngine(net)(x)[0], calibrated, atol=1e-4)
    assert np.mean(calibrated**2) > np.mean(plain**2) * 1.01
    with pytest.raises(ValueError, match="gain_exponent"):
        ConvFSENet(gain_exponent=0.0)
    with pytest.raises(ValueError, match="gain_smoothing"):
        ConvFSENet(gain_smoothing=1.0)


@pytest.mark.parametrize("gated", [True, False])
def test_the_engines_state_layout_is_the_networks(gated):
    """The engines read a preset's weights without torch, by name and shape: the same as the network's."""
    from freelunch.model.engine import state_shapes

    net = ConvFSENet(gated=gated, stacks=1, dilations=(1, 2))
    assert state_shapes(net.config) == {k: tuple(v.shape) for k, v in net.state_dict().items()}


def test_weights_that_do_not_fit_are_refused_by_name():
    from freelunch.model import NetworkWeights

    weights = make_net().weights()
    state = dict(weights.state)
    state["blocks.0.up.weight"] = state["blocks.0.up.weight"][:-1]
    del state["backend.bias"]
    with pytest.raises(ValueError, match=r"missing \['backend.bias'\].*wrong shapes \['blocks.0.up.weight'\]"):
        NetworkWeights(weights.config, state)
