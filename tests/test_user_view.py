"""What a user sees: noise labels only as sure as the preset allows, speech labels with their
SNR, labels that end with the audio in every format, a Sonic Visualiser file that keeps its
first region, and the summary after each file."""
import csv
import json
import re

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from freelunch import DynCPEnhancer
from freelunch.cli import main
from freelunch.export import export, label_path
from freelunch.export.common import label_segments
from freelunch.export.sonic_visualiser import FIRST_ROW_S
from freelunch.probes.linear import LinearProbes
from freelunch.track import PropertyTrack


def sure_and_unsure_track(threshold: float) -> PropertyTrack:
    """2 s: rain at probability 0.9 for the first second, then music at 0.4; speech in 0.4-1.2 s at
    20 dB SNR over noise at -40 dBFS."""
    t = PropertyTrack(["music", "rain"], noise_threshold=threshold)
    frame = np.arange(125)
    times = frame * 0.016
    first = times < 1.0
    t.extend(times=times, vad=(times >= 0.4) & (times < 1.2), noise_category=np.where(first, 1, 0),
             noise_prob=np.where(first, 0.9, 0.4), snr_db=np.full(125, 20.0), noise_level_db=np.full(125, -40.0))
    t.duration_s = 2.0
    return t


def test_a_class_below_the_threshold_reads_unknown():
    labels = label_segments(sure_and_unsure_track(0.6))
    assert ("noise: rain" in [lab for *_, lab in labels]) and ("noise: music" not in [lab for *_, lab in labels])
    unknown = [(s, e) for s, e, lab in labels if lab == "noise: unknown"]
    assert unknown == [(1.0, 1.992)]
    assert [lab for *_, lab in label_segments(sure_and_unsure_track(0.3))].count("noise: music") == 1
    summary = sure_and_unsure_track(0.6).summary()
    assert summary["noise"] == "rain" and summary["noise_confidence"] == pytest.approx(0.9)


def test_speech_labels_carry_their_snr_rounded_to_a_db():
    track = sure_and_unsure_track(0.6)
    speech = [lab for *_, lab in label_segments(track) if lab.startswith("speech")]
    assert speech == ["speech (SNR 20 dB)"]
    assert track.summary()["median_speech_snr_db"] == 20.0


def test_the_threshold_round_trips_through_the_preset(random_preset, tmp_path):
    import shutil

    folder = tmp_path / "p"
    shutil.copytree(random_preset, folder)
    probes = LinearProbes.load(folder)
    probes.noise_threshold = 0.73
    probes.save(folder)
    assert LinearProbes.load(folder).noise_threshold == 0.73
    from freelunch import presets

    presets.write_checksums(folder)
    assert DynCPEnhancer.from_preset(folder).properties.noise_threshold == 0.73
    assert DynCPEnhancer.from_preset(folder, noise_threshold=0.2).properties.noise_threshold == 0.2
    with pytest.raises(ValueError, match="noise_threshold must be a probability"):
        DynCPEnhancer.from_preset(folder, noise_threshold=1.5)


def test_labels_never_end_after_the_audio_in_any_format(tmp_path):
    """8.000 s of audio: the last frame's hop reached 8.008 s before the ends were clamped."""
    rng = np.random.default_rng(0)
    t = np.arange(8 * 16000) / 16000
    x = (0.2 * np.sin(2 * np.pi * 150 * t) * (np.sin(2 * np.pi * 2 * t) > 0) + 0.02 * rng.standard_normal(len(t)))
    wav = tmp_path / "take.wav"
    sf.write(wav, x.astype(np.float32), 16000)
    fx = DynCPEnhancer.from_preset("balanced", noise_threshold=0.0)
    fx(x.astype(np.float32), 16000)
    track = fx.properties
    assert track.duration_s == 8.0 and max(e for _, e, _ in label_segments(track)) == 8.0
    ends = {}
    for fmt in ("audacity", "reaper", "sonic-visualiser", "srt", "jams"):
        path = label_path(wav, fmt)
        export(track, path, fmt)
        text = path.read_text()
        if fmt == "audacity":
            ends[fmt] = max(float(line.split("\t")[1]) for line in text.splitlines())
        elif fmt == "sonic-visualiser":
            ends[fmt] = max(float(r[0]) + float(r[2]) for r in csv.reader(text.splitlines()))
        elif fmt == "reaper":
            rows = list(csv.DictReader(text.splitlines()))
            ends[fmt] = max(sum(float(p) * 60 ** i for i, p in enumerate(reversed(r["End"].split(":")))) for r in rows)
        elif fmt == "srt":
            stamps = re.findall(r"--> (\d+):(\d+):(\d+),(\d+)", text)
            ends[fmt] = max(int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for h, m, s, ms in stamps)
        else:
            doc = json.loads(text)
            segments = [a for a in doc["annotations"] if a["namespace"] in ("segment_open", "tag_open")]
            ends[fmt] = max(o["time"] + o["duration"] for a in segments for o in a["data"])
            assert doc["file_metadata"]["duration"] == 8.0
    assert all(e <= 8.0 for e in ends.values()) and max(ends.values()) == 8.0, ends


@pytest.mark.parametrize("rate", [8000, 16000, 44100, 48000])
def test_sonic_visualiser_keeps_a_region_that_starts_at_zero(tmp_path, rate):
    """Sonic Visualiser's CSV reader drops rows whose time is frame 0: read the file as it does."""
    t = PropertyTrack(["rain"])
    t.extend(times=np.arange(100) * 0.016, vad=np.arange(100) < 50, noise_category=np.zeros(100, int))
    export(t, tmp_path / "a.sv.csv", "sonic-visualiser")
    rows = list(csv.reader((tmp_path / "a.sv.csv").read_text().splitlines()))
    frames = [int(round(float(r[0]) * rate)) for r in rows]
    assert len(rows) == 2 and all(f != 0 for f in frames)  # speech and the noise region both start at 0
    assert float(rows[0][0]) == FIRST_ROW_S and float(rows[0][0]) + float(rows[0][2]) == pytest.approx(0.792, abs=1e-6)


def test_json_prints_each_files_summary_and_quiet_prints_paths_only(tmp_path):
    x = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    for name in ("a.wav", "b.wav"):
        sf.write(tmp_path / name, x, 16000)
    result = CliRunner().invoke(main, ["labels", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), "--format", "audacity",
                                       "-o", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["input"].endswith(n) for r, n in zip(lines, ("a.wav", "b.wav"))] == [True, True]
    for r in lines:
        assert set(r) >= {"duration_s", "speech_share", "median_speech_snr_db", "noise", "noise_confidence", "mean_usage"}
        assert r["duration_s"] == 1.0 and 0.0 <= r["speech_share"] <= 1.0 and 0.0 < r["mean_usage"] <= 1.0
    quiet = CliRunner().invoke(main, ["enhance", str(tmp_path / "a.wav"), "-o", str(tmp_path / "e.wav"), "--quiet"])
    assert quiet.exit_code == 0 and quiet.stdout.strip() == str(tmp_path / "e.wav")
    loud = CliRunner().invoke(main, ["enhance", str(tmp_path / "a.wav"), "-o", str(tmp_path / "f.wav")])
    assert re.search(r"a\.wav: 1\.0 s, speech \d+ %", loud.stdout), loud.stdout


def test_plot_draws_a_users_file_as_a_png(tmp_path):
    x = (0.1 * np.random.default_rng(1).standard_normal((2, 44100 * 2))).astype(np.float32)  # stereo, 44.1 kHz
    sf.write(tmp_path / "take.flac", x.T, 44100)
    result = CliRunner().invoke(main, ["plot", str(tmp_path / "take.flac")])
    assert result.exit_code == 0, result.output
    png = tmp_path / "take.freelunch.png"
    assert result.stdout.strip() == str(png)
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (1210, 1100)


def test_the_threshold_is_the_lowest_that_makes_shown_classes_precise_enough():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes"))
    from choose_noise_threshold import curve

    truth = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    said = np.array([0, 0, 0, 1, 1, 1, 1, 0, 0, 1])  # 7 of 10 right; the 3 wrong ones at 0.3, 0.2, 0.4
    prob = np.array([0.9, 0.8, 0.7, 0.3, 0.95, 0.6, 0.85, 0.2, 0.4, 0.75])
    points = curve([0.0, 0.5, 0.65], truth, said, prob)
    assert [p["precision"] for p in points] == [0.7, 1.0, 1.0]
    assert [p["coverage"] for p in points] == [1.0, 0.7, 0.6]
    chosen = next(p for p in points if p["precision"] >= 0.9)
    assert chosen["threshold"] == 0.5
