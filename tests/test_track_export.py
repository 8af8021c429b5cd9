"""PropertyTrack segments and every exporter, each read back by an independent reader."""
import csv
import json

import numpy as np
import pytest
import soundfile as sf

from freelunch.export import FORMATS, export, label_path
from freelunch.track import PropertyTrack


@pytest.fixture
def track():
    """3.2 s of frames: speech 0.48-1.6 s and 2.0-2.4 s; rain, then music from 1.6 s; F0 on speech.

    Times are frame centres, so frame k stands for k * 16 ms to (k + 1) * 16 ms."""
    t = PropertyTrack(["rain", "music"])
    frame = np.arange(200)
    times = frame * 0.016 + 0.008
    vad = ((frame >= 30) & (frame < 100)) | ((frame >= 125) & (frame < 150))
    category = np.where(frame < 100, 0, 1)
    f0 = np.where(vad, 120 + 10 * np.sin(times), np.nan)
    t.extend(times=times[:100], vad=vad[:100], voiced=vad[:100], noise_category=category[:100], f0_hz=f0[:100])
    t.extend(times=times[100:], vad=vad[100:], voiced=vad[100:], noise_category=category[100:], f0_hz=f0[100:])
    return t


def test_a_long_stream_of_small_appends_keeps_every_frame():
    """Thousands of 2-frame appends, read now and then mid-stream, as a streaming effect does."""
    t = PropertyTrack()
    frames = np.arange(3 * PropertyTrack.COMPACT_EVERY * 2 + 6)
    for i in range(0, len(frames), 2):
        t.extend(times=frames[i : i + 2] * 0.016, f0_hz=frames[i : i + 2].astype(float), vad=frames[i : i + 2] % 3 == 0)
        if i in (100, 700):
            assert len(t.f0_hz) == i + 2
    assert len(t) == len(frames)
    np.testing.assert_array_equal(t.f0_hz, frames)
    np.testing.assert_array_equal(t.vad, frames % 3 == 0)
    np.testing.assert_allclose(t.times, frames * 0.016)
    assert np.isnan(t.snr_db).all() and (t.noise_category == -1).all()


def test_segments_and_hangover(track):
    assert track.segments("vad") == [(0.48, 1.6, "speech"), (2.0, 2.4, "speech")]
    assert track.segments("vad", hangover=0.5) == [(0.48, 2.4, "speech")]
    assert track.segments("vad", min_duration=0.5) == [(0.48, 1.6, "speech")]
    assert track.segments("noise_category") == [(0.0, 1.6, "rain"), (1.6, 3.2, "music")]
    with pytest.raises(ValueError, match="segments"):
        track.segments("snr_db")
    assert len(track) == 200 and track.to_dict()["noise_category_name"][150] == "music"


def test_audacity(track, tmp_path):
    export(track, tmp_path / "a.txt", "audacity")
    rows = [line.split("\t") for line in (tmp_path / "a.txt").read_text().splitlines()]
    assert ["0.480000", "1.600000", "speech"] in rows
    assert ["1.600000", "3.200000", "noise: music"] in rows


def test_reaper_and_audition_and_sonic_visualiser(track, tmp_path):
    export(track, tmp_path / "r.csv", "reaper")
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    speech = [r for r in rows if r["Name"] == "speech"]
    assert speech[0]["#"].startswith("R") and speech[0]["Start"] == "0:00.480" and speech[0]["End"] == "0:01.600"
    export(track, tmp_path / "au.csv", "audition")
    rows = list(csv.DictReader(open(tmp_path / "au.csv"), delimiter="\t"))
    assert rows[1]["Name"] == "speech" and rows[1]["Duration"] == "0:01.120" and rows[1]["Type"] == "Cue"
    export(track, tmp_path / "sv.csv", "sonic-visualiser")
    rows = list(csv.reader(open(tmp_path / "sv.csv")))
    assert ["0.480000", "1", "1.120000", "speech"] in rows


def test_srt_and_vtt(track, tmp_path):
    import srt
    import webvtt

    export(track, tmp_path / "x.srt", "srt")
    subs = list(srt.parse((tmp_path / "x.srt").read_text()))
    speech = [s for s in subs if s.content == "speech"]
    assert speech[1].start.total_seconds() == pytest.approx(2.0) and speech[1].end.total_seconds() == pytest.approx(2.4)
    export(track, tmp_path / "x.vtt", "vtt")
    captions = webvtt.read(str(tmp_path / "x.vtt"))
    assert [c.text for c in captions].count("speech") == 2
    assert captions[1].start == "00:00:00.480"


def test_wav_cue_regions(track, tmp_path):
    from wavinfo import WavInfoReader

    audio = np.zeros(int(3.1 * 44100), np.float32)  # the track's last frames reach past its end
    sf.write(tmp_path / "e.wav", audio, 44100, subtype="PCM_16")
    export(track, tmp_path / "e.wav", "wav-cue", audio_path=tmp_path / "e.wav")
    info = WavInfoReader(str(tmp_path / "e.wav"))
    cues = list(info.cues.each_cue())
    labels = {info.cues.label_and_note(cue_id)[0] for cue_id, _ in cues}
    assert {"speech", "noise: rain", "noise: music"} <= labels
    starts = sorted(offset for _, offset in cues)
    assert int(round(0.48 * 44100)) in starts
    ranges = {info.cues.range(cue_id) for cue_id, _ in cues}
    assert int(round(1.12 * 44100)) in ranges
    assert len(audio) - int(round(1.6 * 44100)) in ranges  # music stops at the last sample
    back, rate = sf.read(tmp_path / "e.wav")
    assert rate == 44100 and len(back) == len(audio)


def test_midi_markers(track, tmp_path):
    import mido

    export(track, tmp_path / "m.mid", "midi")
    midi = mido.MidiFile(tmp_path / "m.mid")
    t, markers = 0.0, []
    for msg in midi:
        t += msg.time
        if msg.type == "marker":
            markers.append((round(t, 3), msg.text))
    assert (0.48, "speech") in markers and (1.6, "end speech") in markers


def test_jams(track, tmp_path):
    import jams

    export(track, tmp_path / "x.jams", "jams")
    jam = jams.load(str(tmp_path / "x.jams"))
    speech = jam.search(namespace="segment_open")[0].data
    assert [round(o.time, 3) for o in speech] == [0.48, 2.0]
    pitch = jam.search(namespace="pitch_contour")[0].data
    assert len(pitch) == int(track.vad.sum())
    assert jam.search(namespace="tag_open")[0].data[1].value == "music"


def test_frame_csv_and_json(track, tmp_path):
    export(track, tmp_path / "f.csv", "csv")
    rows = list(csv.DictReader(open(tmp_path / "f.csv")))
    assert len(rows) == 200 and rows[40]["vad"] == "1" and rows[150]["noise_category_name"] == "music"
    export(track, tmp_path / "f.json", "json")
    d = json.loads((tmp_path / "f.json").read_text())
    assert len(d["times"]) == 200 and d["f0_hz"][0] is None and d["vad"][40] is True


def test_format_from_extension_and_errors(track, tmp_path):
    export(track, tmp_path / "labels.txt")
    assert (tmp_path / "labels.txt").read_text().startswith("0.000000")
    with pytest.raises(ValueError, match="unknown label format"):
        export(track, tmp_path / "x.txt", "cubase")
    with pytest.raises(ValueError, match="cannot tell"):
        export(track, tmp_path / "x.xyz")
    with pytest.raises(FileNotFoundError, match="folder"):
        export(track, tmp_path / "missing" / "x.txt")
    assert label_path(tmp_path / "take.wav", "srt").name == "take.srt"
    assert set(FORMATS) >= {"audacity", "reaper", "audition", "sonic-visualiser", "srt", "vtt", "wav-cue", "midi", "jams"}
