"""Audacity label track: ``start<TAB>end<TAB>label`` per line, seconds.

Layout: Audacity manual, "Importing and Exporting Labels" (File > Import > Labels).
"""
from .common import label_segments, write_text_atomic

EXTENSION = ".txt"


def write(track, path, **options):
    lines = [f"{s:.6f}\t{e:.6f}\t{lab}\n" for s, e, lab in label_segments(track, **options)]
    write_text_atomic(path, "".join(lines))
