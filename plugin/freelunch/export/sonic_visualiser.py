"""Sonic Visualiser region layer as CSV: ``time,value,duration,label`` in seconds.

Layout: Sonic Visualiser's "Import Annotation Layer" CSV (File > Import Annotation Layer),
choosing columns Time, Value, Duration, Label. ``value`` is 1 for speech, else the
category index, so regions of one kind share a height.
"""
import csv
import io

from .common import label_segments, write_text_atomic

EXTENSION = ".csv"


def write(track, path, **options):
    names = {"speech": 1, "voiced": 1}
    names.update({f"noise: {n}": i + 2 for i, n in enumerate(track.category_names)})
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    for s, e, lab in label_segments(track, **options):
        w.writerow([f"{s:.6f}", names.get(lab, 0), f"{e - s:.6f}", lab])
    write_text_atomic(path, buf.getvalue())
