"""Bad input ends in a finite output or a clear error; streaming is exact; nothing is lost."""
import os
import threading

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_same_track
from freelunch.cli import main
from freelunch.effect import DynCPEnhancer

@pytest.fixture(scope="module")
def fx(random_preset):
    return DynCPEnhancer.from_preset(random_preset)


def noise(n, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize(
    "x, rate, error, message",
    [
        (np.array([0.0, np.nan, 0.0], np.float32), 16000, ValueError, "NaN"),
        (np.array([0.0, np.inf], np.float32), 16000, ValueError, "infinite"),
        (np.zeros((2, 2, 100), np.float32), 16000, ValueError, "3-D"),
        ([0.0, 0.1], 16000, TypeError, "numpy array"),
        (np.array(["a", "b"]), 16000, TypeError, "dtype"),
        (np.zeros(100, np.float32), 0, ValueError, "positive"),
        (np.zeros(100, np.float32), -16000, ValueError, "positive"),
        (np.zeros(100, np.float32), 44100.5, ValueError, "whole number"),
        (np.zeros(100, np.float32), "44100", TypeError, "number"),
        (np.zeros(100, np.float32), float("nan"), ValueError, "positive"),
        (np.zeros(100, np.float32), 500, ValueError, "outside"),
    ],
)
def test_bad_arrays_and_rates_are_named(fx, x, rate, error, message):
    with pytest.raises(error, match=message):
        fx(x, rate)


@pytest.mark.parametrize("buffer_size, error", [(0, ValueError), (-5, ValueError), (2.5, TypeError), (True, TypeError)])
def test_bad_buffer_sizes(fx, buffer_size, error):
    with pytest.raises(error, match="buffer_size"):
        fx(noise(1000), 16000, buffer_size=buffer_size)


@pytest.mark.parametrize(
    "x",
    [
        np.zeros(0, np.float32),
        np.full(1, 0.5, np.float32),
        (noise(16000) * 32767).astype(np.int16),
        (noise(16000) * 2**31 * 0.9).astype(np.int32),
        noise(16000).astype(np.float64),
        noise(16000) * 100,
        noise(16000) + 0.5,
        np.zeros(16000, np.float32),
        noise(48000, seed=3),
        np.zeros((2, 0), np.float32),
        np.zeros((0, 2), np.float32),
        np.round(noise(16000) * 127 + 128).astype(np.uint8),
    ],
    ids=["empty", "one-sample", "int16", "int32", "float64", "beyond-full-scale", "dc-offset", "silence", "pure-noise",
         "empty-stereo-channels-first", "empty-stereo-channels-last", "uint8"],
)
def test_odd_arrays_give_finite_output_of_the_same_shape(fx, x):
    y = fx(x, 16000)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()


def test_unsigned_samples_are_centred(fx):
    """8-bit WAV samples are unsigned, with silence at 128: they read as the signed signal."""
    x = np.round(noise(16000) * 127)
    np.testing.assert_array_equal(fx((x + 128).astype(np.uint8), 16000), fx(x / 128, 16000))
    np.testing.assert_allclose(fx((x * 256 + 32768).astype(np.uint16), 16000), fx(x / 128, 16000), atol=1e-6)


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000, 192000])
def test_every_common_rate(fx, rate):
    x = noise(rate // 2)
    y = fx(x, rate)
    assert y.shape == x.shape and np.isfinite(y).all()


@pytest.mark.parametrize("buffer_size", [1, 10**9])
def test_tiny_and_huge_buffers_agree(fx, buffer_size):
    x = noise(3000)
    np.testing.assert_allclose(fx(x, 16000, buffer_size=buffer_size), fx(x, 16000), atol=1e-5)


@given(
    rate=st.sampled_from([8000, 16000, 22050, 44100, 48000]),
    channels=st.integers(1, 3),
    length=st.integers(4, 12000),
    cuts=st.lists(st.floats(0, 1), max_size=6),
    channels_last=st.booleans(),
)
def test_streaming_equals_one_call_for_any_split(fx, rate, channels, length, cuts, channels_last):
    x = noise(length * channels, seed=length).reshape(channels, length)
    whole = fx.process(x, rate)
    whole_track = fx.properties.to_dict()
    fx.reset()
    points = sorted({int(c * length) for c in cuts} - set(range(channels + 1)))  # a first block of <= C samples is ambiguous
    pieces = [fx.process(p, rate, reset=False) for p in np.split(x, points, axis=1) if p.shape[1]]
    streamed = np.concatenate(pieces, axis=1)
    lat = fx.latency
    assert streamed.shape == x.shape
    # Streaming is bit-exact: the same audio, delayed by the latency, and the streamed track
    # holds the frames seen so far, the one-shot track's first frames.
    np.testing.assert_array_equal(streamed[:, lat:], whole[:, : max(length - lat, 0)])
    np.testing.assert_array_equal(streamed[:, : min(lat, length) // 2], 0)
    assert_same_track(fx.properties.to_dict(), whole_track, frames=len(fx.properties.times))
    # Ending the stream gives the rest of the signal, and the whole track.
    ended = np.concatenate([streamed, fx.end_stream()], axis=1)
    np.testing.assert_array_equal(ended[:, lat:], whole)
    ended_track = fx.properties.to_dict()
    assert ended_track.keys() == whole_track.keys()
    assert_same_track(ended_track, whole_track)
    if channels_last and channels > 1 and length > channels:
        np.testing.assert_array_equal(fx.process(x.T, rate), whole.T)


def test_separate_instances_in_threads(random_preset):
    signals = [noise(20000, seed=s) for s in range(4)]
    expected = [DynCPEnhancer.from_preset(random_preset)(x, 16000) for x in signals]
    results = [None] * 4

    def work(i):
        results[i] = DynCPEnhancer.from_preset(random_preset)(signals[i], 16000)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)


# --- files ---------------------------------------------------------------------------


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "take.wav"
    sf.write(path, noise(32000), 16000)
    return path


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_truncated_wav_is_enhanced_or_refused_cleanly(wav, tmp_path, random_preset):
    cut = tmp_path / "cut.wav"
    cut.write_bytes(wav.read_bytes()[:30000])
    result = cli("enhance", cut, "-o", tmp_path / "o.wav", "--preset", random_preset)
    assert result.exit_code in (0, 1) and "Traceback" not in result.output
    if result.exit_code == 0:
        assert np.isfinite(sf.read(tmp_path / "o.wav")[0]).all()


def test_read_only_output_folder(wav, tmp_path, random_preset, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    if os.access(locked, os.W_OK):  # root ignores permissions: make the folder refuse files instead
        import tempfile

        def refuse(*args, **kwargs):
            raise PermissionError(13, "Permission denied", str(locked))

        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        result = cli("enhance", wav, "-o", locked / "o.wav", "--preset", random_preset)
        assert result.exit_code == 1 and "Permission denied" in result.output
        assert not list(locked.iterdir())
    finally:
        locked.chmod(0o700)


def test_failed_write_leaves_nothing_and_keeps_the_input(wav, tmp_path, random_preset, monkeypatch):
    from freelunch import files

    before = wav.read_bytes()
    calls = {"n": 0}
    real = files.stream_file

    def disk_full(src, fx, sink, progress=None):
        def failing_sink(y):
            calls["n"] += 1
            if calls["n"] == 1:
                sink(y)
                raise OSError(28, "No space left on device")

        return real(src, fx, failing_sink, progress)

    monkeypatch.setattr(files, "stream_file", disk_full)
    result = cli("enhance", wav, "-o", tmp_path / "out.wav", "--preset", random_preset)
    assert result.exit_code == 1 and "No space left" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take.wav"]
    assert wav.read_bytes() == before


def test_an_output_folder_that_is_a_file_is_named(wav, tmp_path, random_preset):
    blocker = tmp_path / "notes"
    blocker.write_text("keep")
    for args in (("enhance", wav, "-o", blocker / "o.wav"), ("enhance", wav, wav, "-o", blocker / "sub"),
                 ("labels", wav, "--format", "srt", "-o", blocker / "labels")):
        result = cli(*args, "--preset", random_preset)
        assert result.exit_code == 1 and f"{blocker} is a file" in result.output, result.output
    assert blocker.read_text() == "keep"


def test_a_bad_file_in_a_batch_is_named_and_the_rest_are_enhanced(tmp_path, random_preset):
    batch = tmp_path / "batch"
    batch.mkdir()
    sf.write(batch / "a_good.wav", noise(16000), 16000)
    sf.write(batch / "b_nan.wav", np.full(16000, np.nan, np.float32), 16000, subtype="FLOAT")
    (batch / "c_corrupt.wav").write_bytes(b"RIFF0000WAVEjunk")
    sf.write(batch / "d_good.flac", noise(16000, seed=1), 16000)
    result = cli("enhance", batch, "-o", tmp_path / "out", "--preset", random_preset, "--labels", "srt")
    assert result.exit_code == 1 and "2 of 4 files failed" in result.output
    assert "b_nan.wav: audio contains NaN" in result.output and "cannot read audio from" in result.output
    assert "Traceback" not in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a_good.srt", "a_good.wav", "d_good.flac", "d_good.srt"]


def test_long_files_stream_in_constant_memory(tmp_path, random_preset):
    from freelunch.bench import peak_rss_mib

    rss = {}
    for minutes in (0.25, 4):
        src = tmp_path / f"{minutes}.wav"
        frames = int(minutes * 60 * 44100)
        with sf.SoundFile(src, "w", 44100, 2) as f:
            for i in range(0, frames, 441000):
                f.write(noise(2 * min(441000, frames - i), seed=i).reshape(-1, 2))
        # `freelunch enhance` in a fresh process, which reports its own peak (VmHWM).
        rss[minutes], _ = peak_rss_mib(str(src), "-o", str(tmp_path / f"out{minutes}.wav"), "--preset", str(random_preset))
        assert sf.info(tmp_path / f"out{minutes}.wav").frames == frames
    # 4 minutes of stereo 44.1 kHz float32 is 81 MiB; a streaming run must not grow by that.
    assert rss[4] - rss[0.25] < 30, rss
    assert rss[0.25] < 600, rss  # the process itself, without torch: about 250 MiB
