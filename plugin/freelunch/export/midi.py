"""Standard MIDI File with marker meta events (FF 06) at each segment's start and end.

Layout: MIDI 1.0 SMF specification, meta event "Marker". Tempo is 120 BPM at 480 ticks
per beat, so 960 ticks are one second; the end marker of a segment reads ``end <label>``.
"""
import io

import mido

from .common import label_segments, write_atomic

EXTENSION = ".mid"
TICKS_PER_BEAT = 480
TEMPO = 500000  # microseconds per beat: 120 BPM


def write(track, path, **options):
    events = []
    for s, e, lab in label_segments(track, **options):
        events += [(s, lab), (e, f"end {lab}")]
    midi = mido.MidiFile(ticks_per_beat=TICKS_PER_BEAT)
    out = mido.MidiTrack()
    midi.tracks.append(out)
    out.append(mido.MetaMessage("track_name", name="freelunch", time=0))
    out.append(mido.MetaMessage("set_tempo", tempo=TEMPO, time=0))
    now = 0
    for t, text in sorted(events, key=lambda ev: ev[0]):
        tick = int(round(mido.second2tick(t, TICKS_PER_BEAT, TEMPO)))
        out.append(mido.MetaMessage("marker", text=text, time=tick - now))
        now = tick
    out.append(mido.MetaMessage("end_of_track", time=0))
    buf = io.BytesIO()
    midi.save(file=buf)
    write_atomic(path, buf.getvalue())
