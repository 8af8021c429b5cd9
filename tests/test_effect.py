"""DynCPEnhancer: pedalboard's call, layouts, any rate, exact streaming, validation, properties."""
import numpy as np
import pytest

from freelunch.effect import DynCPEnhancer


@pytest.fixture
def fx(random_preset):
    return DynCPEnhancer.from_preset(random_preset)


def test_signature_and_mono_shape(fx, speechlike):
    y = fx(speechlike, 16000)
    assert y.shape == speechlike.shape and y.dtype == np.float32
    assert fx.is_effect and fx.latency == 511
    assert len(fx.properties.times) == len(speechlike) // 256 + 1
    assert np.all(np.diff(fx.properties.times) == pytest.approx(0.016))


@pytest.mark.parametrize("shape", [(2, 32000), (32000, 2), (6, 32000)])
def test_layouts_are_kept(fx, speechlike, shape):
    x = np.stack([speechlike * (0.5 + 0.1 * c) for c in range(min(shape))])
    x = x if shape[0] < shape[1] else x.T
    y = fx(x, 16000)
    assert y.shape == x.shape
    channel_axis = 0 if shape[0] < shape[1] else 1
    mono = DynCPEnhancer.from_preset(fx.preset)(np.take(x, 1, axis=channel_axis), 16000)
    np.testing.assert_allclose(np.take(y, 1, axis=channel_axis), mono, atol=1e-5)


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_streaming_equals_one_call(fx, speechlike, rate):
    from pedalboard import Resample  # only to make a test signal at this rate

    x = Resample(rate)(speechlike[None], 16000)[0] if rate != 16000 else speechlike
    x = x.astype(np.float32)
    whole = fx(x, rate)
    fx.reset()
    splits = np.sort(np.random.default_rng(rate).choice(len(x), 9, replace=False))
    pieces = [fx.process(p, rate, reset=False) for p in np.split(x, splits)]
    streamed = np.concatenate(pieces)
    lat = fx.latency
    assert streamed.shape == x.shape
    np.testing.assert_allclose(streamed[lat:], whole[: len(x) - lat], atol=1e-4)
    np.testing.assert_array_equal(streamed[: lat // 2], 0)


def test_resampled_output_is_aligned_with_input(random_preset):
    """A gain floor of 0 dB makes the effect an identity: at any rate the output equals the input."""
    fx = DynCPEnhancer.from_preset(random_preset, attenuation_limit_db=1e-6)
    t = np.arange(44100) / 44100
    x = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = fx(x, 44100)
    np.testing.assert_allclose(y[2000:-2000], x[2000:-2000], atol=2e-3)


def test_attenuation_limit_bounds_noise_reduction(random_preset, speechlike):
    free = DynCPEnhancer.from_preset(random_preset)(speechlike, 16000)
    limited = DynCPEnhancer.from_preset(random_preset, attenuation_limit_db=3.0)(speechlike, 16000)
    assert np.sqrt(np.mean(limited**2)) >= np.sqrt(np.mean(free**2)) * 0.999
    assert np.sqrt(np.mean(limited**2)) >= np.sqrt(np.mean(speechlike**2)) * 10 ** (-3 / 20) * 0.9


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"attenuation_limit_db": -3}, ValueError),
        ({"attenuation_limit_db": "6"}, TypeError),
        ({"vad_threshold": 1.5}, ValueError),
        ({"vad_threshold": "0.5"}, TypeError),
        ({"min_speech_ms": -16}, ValueError),
        ({"min_silence_ms": True}, TypeError),
    ],
)
def test_bad_parameters_are_named(random_preset, kwargs, error):
    with pytest.raises(error, match=list(kwargs)[0]):
        DynCPEnhancer.from_preset(random_preset, **kwargs)


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown preset"):
        DynCPEnhancer.from_preset("no-such-preset")


def test_changing_rate_mid_stream_is_refused(fx, speechlike):
    fx.process(speechlike[:1000], 16000, reset=False)
    with pytest.raises(ValueError, match="reset"):
        fx.process(speechlike[:1000], 44100, reset=False)


def test_properties_grow_while_streaming(fx, speechlike):
    fx.reset()
    fx.process(speechlike[:8000], 16000, reset=False)
    n1 = len(fx.properties)
    fx.process(speechlike[8000:], 16000, reset=False)
    assert len(fx.properties) > n1 > 0
    props = fx.properties
    assert set(np.unique(props.noise_category)) <= {0, 1, 2}
    assert props.vad.dtype == bool and np.isfinite(props.snr_db).all()
    assert ((props.usage > 0) & (props.usage < 1)).all()


def test_end_stream_returns_the_rest_in_the_callers_layout(fx, speechlike):
    whole = fx(speechlike, 16000)
    whole_vad = fx.properties.vad.copy()
    streamed = [fx.process(speechlike[:7000], 16000, reset=False), fx.process(speechlike[7000:], 16000, reset=False)]
    assert len(whole_vad) - fx.properties_lookahead - 2 <= len(fx.properties) < len(whole_vad)
    tail = fx.end_stream()
    assert tail.shape == (fx.latency,)
    np.testing.assert_allclose(np.concatenate(streamed + [tail])[fx.latency :], whole, atol=1e-4)
    np.testing.assert_array_equal(fx.properties.vad, whole_vad)
    with pytest.raises(ValueError, match="no stream to end"):
        fx.end_stream()


def test_speechbrain_pretrained_interface_loads_offline(random_preset, speechlike):
    import torch

    from freelunch.pretrained import FreelunchEnhancer
    from freelunch.presets import load

    enhancer = FreelunchEnhancer.from_hparams(source=random_preset)
    noisy = torch.from_numpy(speechlike)[None]
    with torch.no_grad():
        expected, _, _ = load(random_preset)[0](noisy)
    torch.testing.assert_close(enhancer.enhance_batch(noisy), expected)


def test_the_effect_and_the_cli_run_without_torch(random_preset, tmp_path):
    """The streaming engine runs on numpy and numba: enhancing never imports torch (about 480
    MiB of a process's memory)."""
    import subprocess
    import sys

    script = (
        "import sys, numpy as np, soundfile as sf\n"
        "from freelunch import DynCPEnhancer\n"
        "from freelunch.cli import main\n"
        f"fx = DynCPEnhancer.from_preset({str(random_preset)!r})\n"
        "x = np.random.default_rng(0).standard_normal((2, 20000)).astype(np.float32) * 0.1\n"
        "assert np.isfinite(fx(x, 44100)).all() and len(fx.properties.times)\n"
        f"sf.write({str(tmp_path / 'in.wav')!r}, x.T, 44100)\n"
        f"main(['enhance', {str(tmp_path / 'in.wav')!r}, '-o', {str(tmp_path / 'out.wav')!r}, '--preset', {str(random_preset)!r},"
        " '--labels', 'srt', '--labels', 'jams'], standalone_mode=False)\n"
        "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert (tmp_path / "out.wav").exists() and (tmp_path / "out.srt").exists()


def test_a_tampered_speechbrain_hyperparams_file_never_runs(random_preset, tmp_path):
    """hyperpyyaml runs what a YAML file names: a preset whose hyperparams.yaml was edited is
    refused before it is parsed, even with its checksum rewritten to match."""
    import shutil

    from freelunch.presets import PresetError, write_checksums
    from freelunch.pretrained import FreelunchEnhancer

    copy, marker = tmp_path / "copy", tmp_path / "ran"
    shutil.copytree(random_preset, copy)
    yaml = copy / "hyperparams.yaml"
    yaml.write_text(f'payload: !apply:pathlib.Path.touch [!new:pathlib.Path ["{marker}"]]\n' + yaml.read_text())
    with pytest.raises(PresetError, match="checksum"):
        FreelunchEnhancer.from_hparams(source=copy)
    write_checksums(copy)
    with pytest.raises(PresetError, match="not the one freelunch writes"):
        FreelunchEnhancer.from_hparams(source=copy)
    assert not marker.exists()


def test_tampered_preset_is_refused(random_preset, tmp_path):
    import shutil

    from freelunch.presets import PresetError, load

    copy = tmp_path / "copy"
    shutil.copytree(random_preset, copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(PresetError, match="checksum"):
        load(copy)
    (copy / "checksums.json").unlink()
    with pytest.raises(PresetError, match="checksums.json"):
        load(copy)
