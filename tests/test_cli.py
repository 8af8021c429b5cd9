"""The command line: enhance files and folders, labels, clear one-line errors, inputs untouched."""
import hashlib
import os
import stat

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from pedalboard.io import AudioFile

from conftest import assert_same_track
from freelunch import DynCPEnhancer
from freelunch.cli import main
from freelunch.files import stream_file


@pytest.fixture
def take(tmp_path, speechlike):
    path = tmp_path / "in" / "take.wav"
    path.parent.mkdir()
    stereo = np.stack([speechlike, speechlike * 0.7], axis=1)
    sf.write(path, np.resize(stereo, (44100 * 3, 2)), 44100, subtype="PCM_24")
    return path


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_enhance_keeps_format_rate_channels_and_writes_labels(take, tmp_path, random_preset):
    before = digest(take)
    out = tmp_path / "out.wav"
    result = run("enhance", take, "-o", out, "--preset", random_preset, "--labels", "audacity", "--labels", "wav-cue")
    assert result.exit_code == 0, result.output
    info = sf.info(out)
    assert (info.samplerate, info.channels, info.frames, info.subtype) == (44100, 2, 44100 * 3, "PCM_24")
    assert (tmp_path / "out.labels.txt").exists()
    assert digest(take) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    # Written through private temporary files, the outputs still get a plain file's permissions.
    umask = os.umask(0)
    os.umask(umask)
    for path in (out, tmp_path / "out.labels.txt"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


def test_enhance_folder_with_jobs(take, tmp_path, random_preset):
    sf.write(take.parent / "second.flac", np.zeros(16000, np.float32), 16000)
    result = run("enhance", take.parent, "-o", tmp_path / "outdir", "--preset", random_preset, "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "outdir").iterdir()) == ["second.flac", "take.wav"]


def test_labels_only(take, tmp_path, random_preset):
    result = run("labels", take, "--format", "srt", "--format", "jams", "--preset", random_preset)
    assert result.exit_code == 0, result.output
    assert (take.parent / "take.srt").exists() and (take.parent / "take.jams").exists()


def test_labels_for_a_folder_mirror_its_layout(take, tmp_path, random_preset):
    """A folder of takes, two threads: one label file per take and format, under the take's
    path relative to the folder; labels that would replace a take are refused before any work."""
    import jams

    nested = take.parent / "day2"
    nested.mkdir()
    sf.write(nested / "second.flac", np.zeros(20000, np.float32), 16000)
    out = tmp_path / "labels"
    result = run("labels", take.parent, "--format", "jams", "--format", "audacity", "-o", out,
                 "--preset", random_preset, "--jobs", "2")
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["day2/second.jams", "day2/second.labels.txt", "take.jams", "take.labels.txt"]
    second = jams.load(str(out / "day2" / "second.jams"), validate=False)
    assert 20000 / 16000 <= second.file_metadata.duration <= 20000 / 16000 + 0.032  # to the last 16 ms frame
    alone = run("labels", take, "--format", "audacity", "-o", tmp_path / "alone.txt", "--preset", random_preset)
    assert alone.exit_code == 0, alone.output
    assert (tmp_path / "alone.txt").read_text() == (out / "take.labels.txt").read_text() != ""

    before = take.read_bytes()
    refused = run("labels", take.parent, "--format", "wav-cue", "--preset", random_preset)
    assert refused.exit_code == 1 and "would overwrite an input" in refused.output
    assert take.read_bytes() == before


def test_vad_options_reach_the_labels(take, tmp_path, random_preset):
    """The same file labelled with the preset's decision and with every frame decided alone:
    the clean-up only ever removes short runs and fills short gaps, so the labels differ. Runs
    must last longer than the 3-s take: no speech at all."""
    import csv

    def speech_frames(*options):
        folder = tmp_path / str(len(options))
        folder.mkdir()
        result = run("labels", take, "--format", "csv", "-o", folder, "--preset", random_preset, *options)
        assert result.exit_code == 0, result.output
        with open(folder / "take.frames.csv") as f:
            return [row["vad"] == "1" for row in csv.DictReader(f)]

    preset, alone = speech_frames(), speech_frames("--min-speech-ms", "0", "--min-silence-ms", "0")
    assert len(preset) == len(alone) > 100 and preset != alone
    assert any(preset) and not any(speech_frames("--min-speech-ms", "4000"))
    bad = run("labels", take, "--format", "srt", "--preset", random_preset, "--vad-threshold", "2")
    assert bad.exit_code == 1 and "vad_threshold must be strictly between 0 and 1" in bad.output


def test_a_streamed_file_gets_the_whole_track(take, random_preset):
    """Chunked file streaming ends with end_stream(): the frames held for the VAD's look-ahead
    are decided, and the track is the one-shot call's, to the input's last frame."""
    fx = DynCPEnhancer.from_preset(random_preset)
    assert fx.properties_lookahead == 10 + 15  # clean-up 8, lag 2, batch of 16 frames
    stream_file(take, fx, None)
    with AudioFile(str(take)) as f:  # the decoder stream_file reads with (soundfile rounds 24-bit differently)
        audio, rate = f.read(f.frames), f.samplerate
    whole = DynCPEnhancer.from_preset(random_preset)
    whole(audio, rate)
    assert len(whole.properties.times) > 100
    assert_same_track(fx.properties.to_dict(), whole.properties.to_dict())


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: d / "missing.wav", "not found"),
        (lambda d: d, "no audio files"),
        (lambda d: (d / "notes.txt").write_text("hi") and d / "notes.txt", "unsupported file type"),
        (lambda d: (d / "fake.wav").write_bytes(b"RIFF0000WAVEjunk") and d / "fake.wav", "cannot read audio"),
    ],
)
def test_bad_inputs_give_one_line(tmp_path, random_preset, make, message):
    (tmp_path / "empty").mkdir()
    src = make(tmp_path / "empty")
    result = CliRunner().invoke(main, ["enhance", str(src), "-o", str(tmp_path / "o.wav"), "--preset", str(random_preset)])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


def test_output_equal_to_input_or_existing_is_refused(take, random_preset):
    before = digest(take)
    result = CliRunner().invoke(main, ["enhance", str(take), "-o", str(take), "--preset", str(random_preset)])
    assert result.exit_code == 1 and "is the input" in result.output
    other = take.with_name("other.wav")
    other.write_bytes(b"keep me")
    result = CliRunner().invoke(main, ["enhance", str(take), "-o", str(other), "--preset", str(random_preset)])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert other.read_bytes() == b"keep me" and digest(take) == before


def test_unknown_label_format_and_preset(take, tmp_path):
    result = CliRunner().invoke(main, ["enhance", str(take), "-o", str(tmp_path / "o.wav"), "--labels", "cubase"])
    assert result.exit_code == 1 and "unknown label format" in result.output
    result = CliRunner().invoke(main, ["enhance", str(take), "-o", str(tmp_path / "o.wav"), "--preset", "nope"])
    assert result.exit_code == 1 and "unknown preset" in result.output
