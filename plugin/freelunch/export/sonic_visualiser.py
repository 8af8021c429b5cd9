"""Sonic Visualiser region layer as CSV: ``time,value,duration,label`` in seconds.

Layout: Sonic Visualiser's "Import Annotation Layer" CSV (File > Import Annotation Layer),
choosing columns Time, Value, Duration, Label. ``value`` is 1 for speech, else the
category index, so regions of one kind share a height.

Sonic Visualiser's CSV reader drops every row whose time converts to frame 0 (its
``convertTimeValue`` returns the frame as a success flag, so frame 0 reads as a failure).
A region that starts at 0 s is written to start at ``FIRST_ROW_S`` instead, with its end
kept: frame 8 and more at any rate from 8 kHz up, a shift no one hears.
"""
import csv
import io

from .common import label_segments, write_text_atomic

EXTENSION = ".csv"
FIRST_ROW_S = 0.001


def write(track, path, **options):
    names = {f"noise: {n}": i + 2 for i, n in enumerate(track.category_names)}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for s, e, lab in label_segments(track, **options):
        s = max(s, FIRST_ROW_S)
        value = 1 if lab.startswith(("speech", "voiced")) else names.get(lab, 0)
        w.writerow([f"{s:.6f}", value, f"{e - s:.6f}", lab])
    write_text_atomic(path, buf.getvalue())
