"""Probe targets and the weighted-sum probes."""
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import make_net
from freelunch.model import StreamingEngine
from freelunch.probes import targets as T
from freelunch.probes.features import stack_previous
from freelunch.probes.decisions import SILENCE_DB, VadDecision, clean_runs
from hypothesis import given
from hypothesis import strategies as st
from freelunch.probes.level import LEVEL_FEATURES, LevelFeatures, level_features
from freelunch.evaluate import scored_columns
from freelunch.probes.linear import LinearProbes, Probe, ScoreTable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))


def harmonic(f0, seconds, rate=16000, amp=0.3):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))).astype(np.float32)


def test_vad_voiced_and_f0_on_a_voice_with_pauses():
    rng = np.random.default_rng(0)
    silence = (1e-4 * rng.standard_normal(8000)).astype(np.float32)
    x = np.concatenate([silence, harmonic(150, 1.0), silence, harmonic(220, 1.0), silence])
    tg = T.clean_targets(x)
    t = np.arange(len(tg["vad"])) * 0.016
    speech = ((t > 0.55) & (t < 1.45)) | ((t > 2.05) & (t < 2.95))
    pause = (t < 0.45) | ((t > 1.6) & (t < 1.95)) | (t > 3.1)
    assert tg["vad"][speech].all() and not tg["vad"][pause].any()
    assert tg["voiced"][speech].mean() > 0.9 and not tg["voiced"][pause].any()
    assert np.nanmedian(tg["f0_hz"][(t > 0.6) & (t < 1.4)]) == pytest.approx(150, rel=0.02)
    assert np.nanmedian(tg["f0_hz"][(t > 2.1) & (t < 2.9)]) == pytest.approx(220, rel=0.02)


def test_snr_and_noise_level_per_frame():
    rng = np.random.default_rng(1)
    noise = (0.01 * rng.standard_normal(16000)).astype(np.float32)
    speech = noise * 10  # exactly +20 dB everywhere
    assert np.allclose(T.snr_db(speech, noise)[2:-2], 20.0, atol=1e-4)
    assert np.allclose(T.snr_db(speech * 1000, noise)[2:-2], 40.0)  # clipped
    sine = np.sin(2 * np.pi * 1000 * np.arange(32000) / 16000)
    assert T.noise_level_db(sine)[5:-5] == pytest.approx(np.full(len(T.noise_level_db(sine)) - 10, -3.01), abs=0.05)


def test_targets_align_with_the_network_frames():
    from freelunch.model.stft import n_frames

    for n in (1, 255, 256, 16000, 16001):
        assert len(T.frame_energy(np.ones(n))) == n_frames(n)


def test_weighted_sums_equal_sklearn_predictions():
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.preprocessing import StandardScaler

    from fit_probes import to_probe

    rng = np.random.default_rng(2)
    masks = rng.random((3000, 2304)) < 0.25
    y_reg = masks[:, :50].sum(1) + rng.standard_normal(3000)
    y_cls = (masks[:, 10] ^ masks[:, 20]).astype(int) + 2 * masks[:, 30]
    index = np.arange(0, 2304, 7)
    x = masks[:, index].astype(np.float64)
    scaler = StandardScaler().fit(x)
    ridge = Ridge(alpha=3.0).fit(scaler.transform(x), y_reg)
    probe = to_probe("snr_db", ridge, scaler, index, 1)
    np.testing.assert_allclose(probe.scores(masks)[:, 0], ridge.predict(scaler.transform(x)), atol=1e-3)
    logistic = LogisticRegression(C=0.1, max_iter=500).fit(scaler.transform(x), y_cls)
    probe = to_probe("noise_category", logistic, scaler, index, 5)
    scores = probe.scores(masks)
    np.testing.assert_allclose(scores[:, :4], logistic.decision_function(scaler.transform(x)), atol=1e-3)
    assert (scores.argmax(1) == logistic.predict(scaler.transform(x))).all()


def test_no_speech_clips_take_crops_of_every_noise_file_at_random_levels():
    """Each noise file alone, ``crops`` different crops at levels inside the range, plus silence."""
    from freelunch import data
    from fit_probes import no_speech_clips

    bank = data.NoiseBank(data.split_rows(data.pack_layout(data.default_data_root()), "valid")[1][:3])
    hp = {"no_speech_seconds": 1.0, "no_speech_level_db": [-50.0, -20.0], "silence_clips": 2}
    clips = no_speech_clips(hp, bank, np.random.default_rng(0), crops=3)
    assert len(clips) == 2 + 3 * 3
    assert all(not c["noisy"].any() and c["category"] == "" for c in clips[:2])
    levels = [20 * np.log10(data.rms(c["noisy"])) for c in clips[2:]]
    assert all(-50.01 < lv < -19.99 for lv in levels) and len({round(lv, 3) for lv in levels}) == 9
    for k in range(3):
        crops = [clips[2 + 3 * k + j]["noisy"] for j in range(3)]
        assert {c["category"] for c in clips[2 + 3 * k: 5 + 3 * k]} == {data.noise_class(bank.rows[k])}
        assert not np.allclose(crops[0] / data.rms(crops[0]), crops[1] / data.rms(crops[1]))


def test_extra_noise_crops_train_the_vad_probe_alone(tmp_path):
    """With vad_no_speech_crops 3, the training frames hold two more crops of every noise file,
    all no-speech for the VAD probe and left out of every other probe; valid holds none."""
    from freelunch import data
    from fit_probes import TASKS, category_names, collect, train_rows

    rows = data.pack_layout(data.default_data_root())
    hp = {"max_utterances": 1, "frames_per_mixture": 10, "startup_frames": 4, "no_speech_seconds": 1.0,
          "no_speech_level_db": [-50.0, -20.0], "silence_clips": 1, "vad_no_speech_crops": 3,
          "target_cache": str(tmp_path)}
    names, net = category_names(rows), make_net()
    n_noise = len(data.split_rows(rows, "train")[1])
    _, y = collect(hp, net, rows, "train", 1, 101, names, ["masks"], np.random.default_rng(0))
    _, y1 = collect({**hp, "vad_no_speech_crops": 1}, net, rows, "train", 1, 101, names, ["masks"], np.random.default_rng(0))
    extra = y["vad_only"]
    assert extra.sum() == 2 * n_noise * 14 and not y1["vad_only"].any()
    assert len(extra) - extra.sum() == len(y1["vad"])
    assert np.all(y["vad"][extra] == 0)
    for task in TASKS:
        rows_in = train_rows(task, y)
        assert rows_in[extra].all() == (task == "vad") and rows_in[extra].any() == (task == "vad")
        np.testing.assert_array_equal(y[task][rows_in & ~extra], y1[task][train_rows(task, y1)])
    # the valid frames that follow are those a fit without the extra crops takes
    rng, rng1 = np.random.default_rng(0), np.random.default_rng(0)
    for h, r in ((hp, rng), ({**hp, "vad_no_speech_crops": 1}, rng1)):
        collect(h, net, rows, "train", 1, 101, names, ["masks"], r)
    xv, yv = collect(hp, net, rows, "valid", 1, 202, names, ["masks"], rng)
    xv1, _ = collect(hp, net, rows, "valid", 1, 202, names, ["masks"], rng1)
    assert not yv["vad_only"].any()
    np.testing.assert_array_equal(xv["masks"], xv1["masks"])


def test_f0_read_as_pitch_classes(tmp_path):
    """F0 as pitch classes: the fit picks the regularisation by RPA, the probe reads the F0 of
    its best class, and a saved probe reads the same. Here four mask bits spell one of 16 pitch
    classes (6 to the octave from 50 Hz), so nearly every frame lands within 50 cents, where a
    ridge regression on Hz, chosen by R², puts fewer there."""
    from fit_probes import fit, pitch_class_values, to_probe, valid_score

    hp = {"f0_classes_per_octave": 6, "f0_class_range_hz": [50.0, 800.0], "logistic_C": [0.01, 1.0],
          "ridge_alpha": [1.0, 100.0], "max_iter": 500}
    values = pitch_class_values(hp)
    assert len(values) == 24 and values[0] == pytest.approx(50 * 2 ** (0.5 / 6))
    rng = np.random.default_rng(4)
    masks = rng.random((4000, 1, 64)) < 0.3
    code = masks[:, 0, :4] @ np.array([1, 2, 4, 8])
    f0 = (values[code + 4] * 2 ** (rng.uniform(-0.2, 0.2, len(code)) / 6)).astype(np.float32)
    x = masks[:, 0].astype(np.float64)
    score, model, scaler, _ = fit("f0_hz", hp, x[:3000], f0[:3000], x[3000:], f0[3000:])
    probe = to_probe("f0_hz", model, scaler, np.arange(64), 0, values)
    probes = LinearProbes({"f0_hz": probe}, [])
    read = probes.predict(masks[3000:])["f0_hz"]
    rpa = np.mean(1200 * np.abs(np.log2(read / f0[3000:])) <= 50)
    assert score == pytest.approx(rpa) and rpa > 0.95
    ridge = fit("f0_hz", {**hp, "f0_classes_per_octave": 0}, x[:3000], f0[:3000], x[3000:], f0[3000:])
    ridge_read = ridge[1].predict(ridge[2].transform(x[3000:]))
    assert np.mean(1200 * np.abs(np.log2(np.maximum(ridge_read, 1) / f0[3000:])) <= 50) < rpa - 0.2
    assert valid_score("f0_hz", {**hp, "f0_classes_per_octave": 0}, ridge[1], ridge[2].transform(x[3000:]), f0[3000:]) == ridge[0]
    probes.save(tmp_path)
    np.testing.assert_array_equal(LinearProbes.load(tmp_path).predict(masks[3000:])["f0_hz"], read)
    with pytest.raises(ValueError, match="one value per output"):
        Probe(probe.index, probe.coef, probe.bias, None, values[:3])


def test_level_terms_equal_sklearn_predictions_on_masks_and_levels():
    """A probe reading the input level predicts what scikit-learn predicts from the selected
    masks and the level features side by side, when the stream computes those features."""
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    from fit_probes import to_probe

    rng = np.random.default_rng(5)
    masks = rng.random((600, 1, 40)) < 0.3
    level_db = np.cumsum(rng.normal(0, 2, 600)).astype(np.float32) - 40
    index = np.array([1, 7, 30])
    x = np.hstack([masks[:, 0, index], level_features(level_db)])
    y = x @ np.array([3.0, -1.0, 2.0, 0.5, 0.8]) + rng.standard_normal(600)
    scaler = StandardScaler().fit(x)
    ridge = Ridge(alpha=1.0).fit(scaler.transform(x), y)
    probe = to_probe("noise_level_db", ridge, scaler, index, 1)
    assert probe.level_coef.shape == (len(LEVEL_FEATURES), 1)
    probes = LinearProbes({"noise_level_db": probe}, [])
    predicted = probes.predict(masks, level_db)["noise_level_db"]
    np.testing.assert_allclose(predicted, ridge.predict(scaler.transform(x)), atol=1e-3)
    with pytest.raises(ValueError, match="level_db"):
        probes.predict(masks)
    with pytest.raises(ValueError, match="level_coef must have shape"):
        Probe(index, probe.coef, probe.bias, np.ones((3, 1), np.float32))


def test_level_floor_follows_the_noise_under_speech():
    """The floor reads the noise between syllables, not the speech over it; streams exactly;
    digital silence sits at the targets' floor, not at -200 dB."""
    bursts = np.tile(np.r_[np.full(60, -12.0), np.full(25, -45.0)], 6).astype(np.float32)  # speech, 400-ms pauses
    features = level_features(bursts)
    assert (features[:, 0] == bursts).all()
    assert features[85:, 1].max() < -40 and features[85:, 1].min() > -46
    assert features[5, 1] > -20  # no pause yet: no floor below the speech to read
    silent = level_features(np.full(50, -200.0, np.float32))
    assert (silent == T.LEVEL_FLOOR_DB).all()
    stream = LevelFeatures()
    pieces = np.concatenate([stream.push(bursts[a:b]) for a, b in [(0, 1), (1, 130), (130, 131), (131, 510)]])
    np.testing.assert_array_equal(pieces, features)


def test_one_table_sums_only_active_channels_of_every_probe():
    masks = np.zeros((2, 10), bool)
    masks[1, [2, 5, 7]] = True
    vad = Probe(np.array([2, 3, 5]), np.array([[1.0], [10.0], [100.0]], np.float32), np.array([0.5], np.float32))
    noise = Probe(np.array([5, 7]), np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.array([0.0, -1.0], np.float32))
    table = ScoreTable({"vad": vad, "noise_category": noise})
    assert table.cols == {"vad": slice(0, 1), "noise_category": slice(1, 3)}
    assert table(masks).tolist() == [[0.5, 0.0, -1.0], [101.5, 4.0, 5.0]]
    np.testing.assert_array_equal(table(masks)[:, 1:], noise.scores(masks))


def test_adds_count_active_selected_channels_times_outputs():
    probes = LinearProbes({"vad": Probe(np.array([2, 3, 5]), np.ones((3, 1), np.float32), np.zeros(1, np.float32)),
                           "noise_category": Probe(np.array([5, 7]), np.ones((2, 4), np.float32), np.zeros(4, np.float32))},
                          ["a", "b", "c", "d"])
    masks = np.zeros((2, 1, 10), bool)
    masks[1, 0, [2, 5, 6]] = True  # channel 6 is selected by no probe
    adds = probes.adds(masks)
    assert adds["vad"].tolist() == [0, 2] and adds["noise_category"].tolist() == [0, 4]


def test_probe_files_round_trip(tmp_path):
    probes = {"vad": Probe(np.array([1, 4]), np.ones((2, 1), np.float32), np.full(1, -0.5, np.float32)),
              "snr_db": Probe(np.array([2]), np.ones((1, 1), np.float32), np.zeros(1, np.float32),
                              np.array([[1.0], [-1.0]], np.float32))}
    LinearProbes(probes, ["rain"]).save(tmp_path)
    back = LinearProbes.load(tmp_path)
    assert back.category_names == ["rain"] and back.probes["vad"].level_coef is None
    masks = np.zeros((3, 1, 8), bool)
    masks[1, 0, 4] = True
    level_db = np.full(3, -20.0, np.float32)
    columns = back.predict(masks, level_db)
    assert columns["vad"].tolist() == [False, True, False]
    np.testing.assert_allclose(columns["snr_db"], 0.0, atol=1e-5)  # level - floor of a steady level


def test_frames_below_the_silence_floor_are_never_speech():
    """Masks that read as speech do not make a digitally silent frame speech; nor its F0."""
    probes = LinearProbes({task: Probe(np.array([0]), np.full((1, 1), 5.0, np.float32), np.zeros(1, np.float32))
                           for task in ("vad", "voiced", "f0_hz")}, [])
    masks = np.ones((3, 1, 4), bool)
    columns = probes.predict(masks, level_db=np.array([-30.0, SILENCE_DB - 0.1, -200.0], np.float32))
    assert columns["vad"].tolist() == [True, False, False]
    assert columns["voiced"].tolist() == [True, False, False]
    assert columns["f0_hz"][0] == 5.0 and np.isnan(columns["f0_hz"][1:]).all()


def test_engine_reports_each_frames_input_level():
    engine = StreamingEngine(make_net())
    t = np.arange(16000) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # RMS 0.0707: -23.0 dBFS
    _, masks, _, level_db = engine.process_frames(np.concatenate([np.zeros(8000, np.float32), tone]))
    assert len(level_db) == len(masks)
    assert (level_db[:30] < -150).all()  # digital silence
    np.testing.assert_allclose(level_db[40:-1], 20 * np.log10(0.1 / np.sqrt(2)), atol=0.1)


def test_stacked_masks_hold_previous_frames():
    m = np.eye(4, dtype=bool)
    s = stack_previous(m, depth=2)
    assert s.shape == (4, 8)
    assert s[1, 4 + 0] and s[1, 1] and not s[0, 4:].any()


def test_causal_smoothing_streams_exactly():
    rng = np.random.default_rng(5)
    scores = rng.standard_normal((100, 1)).astype(np.float32)
    probe = {"snr_db": Probe(np.array([0]), np.ones((1, 1), np.float32), np.zeros(1, np.float32))}
    probes = LinearProbes(probe, [], {"snr_db": 0.9})
    whole = probes.stream().whole({"snr_db": scores})["snr_db"]
    stream = probes.stream()
    pieces = [stream.push_scores({"snr_db": part}) for part in (scores[:37], scores[37:])] + [stream.flush()]
    np.testing.assert_array_equal(np.concatenate([p["snr_db"] for p in pieces if p]), whole)
    assert whole[0] == scores[0, 0]
    assert whole[1] == pytest.approx(0.9 * scores[0, 0] + 0.1 * scores[1, 0])
    assert np.std(whole[10:]) < np.std(scores[10:]) / 2


def test_crop_targets_match_targets_computed_on_the_crop():
    """A frame-aligned crop's sliced utterance targets equal the targets of the cropped audio."""
    from freelunch.model.stft import HOP
    from freelunch.probes.joint import crop_targets

    rng = np.random.default_rng(3)
    silence = (1e-4 * rng.standard_normal(8000)).astype(np.float32)
    x = np.concatenate([silence, harmonic(150, 1.0), silence, harmonic(220, 1.0), silence])
    whole = T.clean_targets(x)
    start, length = 40 * HOP, 32000
    crop = crop_targets(whole, start, length)
    direct = T.clean_targets(x[start : start + length])
    inner = slice(4, -4)  # frame edges see zero padding in the crop but audio in the utterance
    assert np.array_equal(crop["voiced"][inner], direct["voiced"][inner])
    both = ~np.isnan(crop["f0_hz"]) & ~np.isnan(direct["f0_hz"])
    assert both[inner].mean() > 0.5
    assert np.allclose(crop["f0_hz"][both], direct["f0_hz"][both], rtol=0.03)
    tail = crop_targets(whole, len(x) - 8000 - (len(x) - 8000) % HOP, length)  # runs past the end
    assert len(tail["vad"]) == len(crop["vad"]) and np.isnan(tail["f0_hz"][-10:]).all() and not tail["vad"][-10:].any()


def test_joint_loss_reaches_the_gates_and_trains():
    """The joint loss flows through the binary masks (straight-through) into the gates, and falls.
    The noise class is a target only where the noise is audible; a task of weight 0 adds nothing."""
    import torch

    from freelunch.model.network import ConvFSENet
    from freelunch.model import stft as S
    from freelunch.probes.joint import JointHeads, frame_targets, joint_loss

    torch.manual_seed(0)
    net = ConvFSENet(channels=16, hidden=16, stacks=1, gated=True)
    heads = JointHeads(len(net.blocks) * 16, 3)
    x = np.concatenate([np.zeros(8000, np.float32), harmonic(150, 0.5), np.zeros(8000, np.float32)])
    noise = np.full_like(x, 1e-2)
    noise[:4000] = 0  # inaudible: no class there
    clean = T.clean_targets(x)
    targets = frame_targets(clean, {"clean": x, "noise": noise, "category": "music"}, ["babble", "music", "tonal"])[None]
    assert torch.isnan(targets[..., 2]).any() and not torch.isnan(targets[..., :2]).any()
    assert torch.isnan(targets[0, :10, 4]).all() and (targets[0, 20:, 4] == 1).all()
    weights = {"vad": 1.0, "voiced": 1.0, "f0_hz": 1.0, "snr_db": 1.0, "noise_category": 1.0}
    outputs = heads(net.forward_spec(S.stft(torch.from_numpy(x)[None]))[1].masks)
    assert outputs.shape[-1] == 4 + 3
    alone = joint_loss(outputs, targets, {"noise_category": 1.0})
    assert alone.item() > 0 and joint_loss(outputs, targets, {**weights, "noise_category": 0.0}).item() != pytest.approx(
        joint_loss(outputs, targets, weights).item())
    opt = torch.optim.Adam([*net.parameters(), *heads.parameters()], lr=1e-2)
    losses = []
    for _ in range(60):
        _, trace = net.forward_spec(S.stft(torch.from_numpy(x)[None]))
        loss = joint_loss(heads(trace.masks), targets, weights)
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.gates.parameters())
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0]


def test_a_silenced_span_is_labelled_no_speech():
    from freelunch.probes.joint import frame_targets, silence_span

    rng = np.random.default_rng(0)
    x = np.concatenate([1e-4 * rng.standard_normal(8000), harmonic(150, 4.0) + 0.01]).astype(np.float32)
    utterance = T.clean_targets(x)
    gapped = silence_span(x, 1.5, rng)
    zero = np.flatnonzero(gapped == 0)
    assert len(zero) == 24000 and zero[-1] - zero[0] == 23999
    targets = frame_targets(utterance, {"clean": gapped, "noise": np.full_like(x, 1e-3), "category": "tonal"}, ["tonal"]).numpy()
    frames = np.arange(len(targets))
    inside = (frames >= zero[0] // 256 + 2) & (frames <= zero[-1] // 256 - 1)  # wholly in the span
    assert inside.sum() > 80 and not targets[inside, :2].any() and np.isnan(targets[inside, 2]).all()
    far = ~inside & ((frames < zero[0] // 256 - 1) | (frames > zero[-1] // 256 + 2))
    assert np.array_equal(targets[far, 0].astype(bool), utterance["vad"][far]) and utterance["vad"][far].sum() > 50
    assert np.array_equal(silence_span(x[:100], 3.0, rng), x[:100])  # never all silence


def test_vad_clean_up_fills_short_gaps_then_drops_short_runs():
    speech = np.array([0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0], bool)
    out = clean_runs(speech, bridge_frames=3, min_speech_frames=3)
    # the 2-frame gap is filled (a run of 7), the 4-frame gap is not; 12-15 becomes one run of
    # 4 frames (its 1-frame gap filled), and the gap touching the end stays
    assert out.astype(int).tolist() == [0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert not clean_runs(np.array([1, 0, 1], bool), 1, 4).any()
    assert clean_runs(speech, 1, 1).tolist() == speech.tolist()


@given(flags=st.lists(st.booleans(), max_size=60), bridge=st.integers(1, 8), min_speech=st.integers(1, 8))
def test_vad_clean_up_matches_a_plain_reading(flags, bridge, min_speech):
    """The compiled clean-up against the rule read literally, run by run."""
    def by_runs(values):
        return [(v, len(list(g))) for v, g in itertools.groupby(values)]

    runs = by_runs(flags)
    filled = [(v or (0 < i < len(runs) - 1 and n < bridge), n) for i, (v, n) in enumerate(runs)]
    merged = by_runs([v for v, n in filled for _ in range(n)])
    expected = [v and n >= min_speech for v, n in merged for _ in range(n)]
    assert clean_runs(np.array(flags, bool), bridge, min_speech).tolist() == expected


def test_evaluate_scores_f0_on_every_frame():
    """``scored_columns`` keeps F0 where the VAD finds no speech: F0 is scored wherever the
    reference is voiced. The effect's own columns drop it there."""
    n = 40
    probe = {"vad": Probe(np.array([0]), np.full((1, 1), 6.0, np.float32), np.full(1, -3.0, np.float32)),
             "voiced": Probe(np.array([0]), np.full((1, 1), 6.0, np.float32), np.full(1, -3.0, np.float32)),
             "f0_hz": Probe(np.array([0]), np.ones((1, 1), np.float32), np.full(1, 100.0, np.float32))}
    probes = LinearProbes(probe, [])
    level = np.full(n, -20.0, np.float32)
    raw = probes.scores(np.zeros((n, 1, 2), bool))  # no channel active: never speech
    assert np.isnan(probes.stream().whole(raw, level)["f0_hz"]).all()
    assert (scored_columns(probes, raw, level)["f0_hz"] == 100.0).all()


def test_a_lag_takes_the_score_of_a_later_frame():
    """Frame t answers with frame t + lag's score; the last frames take the last score."""
    scores = np.array([-3, -3, 3, 3, 3, -3, -3, -3, 3, 3], float)
    masks = np.zeros((len(scores), 1, 2), bool)
    masks[:, 0, 0] = scores > 0
    probe = {"vad": Probe(np.array([0]), np.full((1, 1), 6.0, np.float32), np.full(1, -3.0, np.float32))}
    plain = LinearProbes(probe, []).predict(masks)["vad"]
    lagged = LinearProbes(probe, [], lags={"vad": 2}).predict(masks)["vad"]
    assert plain.astype(int).tolist() == [0, 0, 1, 1, 1, 0, 0, 0, 1, 1]
    assert lagged.astype(int).tolist() == [1, 1, 1, 0, 0, 0, 1, 1, 1, 1]
    assert LinearProbes(probe, [], lags={"vad": 2}).stream().lookahead == 2
    with pytest.raises(ValueError, match="lags"):
        LinearProbes(probe, [], lags={"vad": -1})


@given(
    scores=st.lists(st.floats(-4, 4), min_size=1, max_size=160),
    cuts=st.lists(st.integers(0, 160), max_size=6),
    bridge=st.integers(1, 10),
    min_speech=st.integers(1, 24),
    alpha=st.sampled_from([0.0, 0.8]),
    lags=st.dictionaries(st.sampled_from(["vad", "voiced", "f0_hz", "snr_db"]), st.integers(0, 6)),
    # levels around digital silence's floor, and steady ones
    levels=st.lists(st.floats(-130, 0) | st.just(-np.inf), min_size=160, max_size=160)
    | st.lists(st.floats(-22, -18), min_size=160, max_size=160),
)
def test_decisions_stream_exactly_in_any_pieces(scores, cuts, bridge, min_speech, alpha, lags, levels):
    """Pushed in pieces, frames come out late by exactly the look-ahead, and equal the whole signal's."""
    mask = np.array(scores) > 0  # one feature whose weight is the frame's score
    masks = np.zeros((len(scores), 1, 2), bool)
    masks[:, 0, 0] = mask
    probe = {t: Probe(np.array([0]), np.full((1, 1), 3.0, np.float32), np.full(1, -1.5, np.float32))
             for t in ("vad", "voiced", "f0_hz")}
    probe["snr_db"] = Probe(np.array([0]), np.ones((1, 1), np.float32), np.zeros(1, np.float32),
                            np.array([[1.0], [-1.0]], np.float32))  # reads the level and its floor
    decision = VadDecision(0.5, bridge, min_speech)
    probes = LinearProbes(probe, [], {"vad": alpha}, decision, lags)
    level_db = np.array(levels[: len(scores)], np.float32)
    whole = probes.predict(masks, level_db)
    stream = probes.stream()
    pieces, seen = [], 0
    cuts = sorted(min(c, len(scores)) for c in cuts)
    for a, b in zip([0, *cuts], [*cuts, len(scores)]):
        if b > a:
            seen += b - a
            pieces.append(stream.push([masks[a:b]], level_db[a:b], times=np.arange(a, b)))
            assert sum(len(p.get("times", [])) for p in pieces) == max(0, seen - stream.lookahead)
    pieces.append(stream.flush())
    for key in ("vad", "voiced", "f0_hz", "snr_db"):
        joined = np.concatenate([p[key] for p in pieces if key in p])
        np.testing.assert_array_equal(joined, whole[key])
    assert np.concatenate([p["times"] for p in pieces if "times" in p]).tolist() == list(range(len(scores)))
    assert not whole["voiced"][~whole["vad"]].any() and np.isnan(whole["f0_hz"][~whole["voiced"]]).all()
