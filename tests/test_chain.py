"""Chain: native plugins grouped into Pedalboards, Python effects between, streaming, properties."""
import numpy as np
import pedalboard
import pytest

from freelunch import Chain, DynCPEnhancer


def test_native_runs_are_grouped_and_output_matches_sequential(random_preset, speechlike):
    hp, comp, gain = pedalboard.HighpassFilter(80), pedalboard.Compressor(-20), pedalboard.Gain(-3)
    fx = DynCPEnhancer.from_preset(random_preset)
    chain = Chain([hp, fx, comp, gain])
    kinds = [type(s).__name__ for s in chain._segments]
    assert kinds == ["Pedalboard", "DynCPEnhancer", "Pedalboard"]
    y = chain(speechlike, 16000)
    manual = pedalboard.Pedalboard([hp])(speechlike, 16000)
    manual = DynCPEnhancer.from_preset(random_preset)(manual, 16000)
    manual = pedalboard.Pedalboard([comp, gain])(manual, 16000)
    np.testing.assert_allclose(y, manual.reshape(y.shape), atol=1e-5)
    assert list(chain.properties) == [1] and len(chain.properties[1].times) > 0
    assert chain.latency == fx.latency == 511


def test_chain_streams(random_preset, speechlike):
    chain = Chain([pedalboard.Gain(2.0), DynCPEnhancer.from_preset(random_preset)])
    stereo = np.stack([speechlike, speechlike * 0.5])
    whole = np.concatenate([chain.process(stereo[:, :5000], 16000, reset=False),
                            chain.process(stereo[:, 5000:], 16000, reset=False)], axis=1)
    chain.reset()
    again = np.concatenate([chain.process(stereo[:, i : i + 700], 16000, reset=False) for i in range(0, 32000, 700)], axis=1)
    assert whole.shape == stereo.shape
    np.testing.assert_allclose(whole, again, atol=1e-4)


def test_chain_rejects_non_effects():
    with pytest.raises(TypeError, match="neither"):
        Chain([pedalboard.Gain(1.0), "reverb"])


def test_chain_end_stream_completes_the_one_shot_output(random_preset, speechlike):
    """A stream ended by end_stream() is the one-shot output delayed by the chain's latency:
    the enhancer's held-back samples also pass the native stages after it."""
    def chain():
        return Chain([pedalboard.HighpassFilter(80), DynCPEnhancer.from_preset(random_preset), pedalboard.Gain(-6)])

    stereo = np.stack([speechlike, speechlike * 0.5]).T  # channels-last
    one_shot = chain()
    expected = one_shot(stereo, 16000)
    streaming = chain()
    pieces = [streaming(stereo[i : i + 3000], 16000, reset=False) for i in range(0, len(stereo), 3000)]
    tail = streaming.end_stream()
    assert tail.shape == (streaming.latency, 2)
    whole = np.concatenate(pieces + [tail])
    np.testing.assert_allclose(whole[streaming.latency :], expected, atol=1e-4)
    np.testing.assert_array_equal(streaming.properties[1].times, one_shot.properties[1].times)
    with pytest.raises(ValueError, match="no stream to end"):
        streaming.end_stream()
