"""Adobe Audition marker list, as the Markers panel exports and imports it.

Layout: tab-separated ``Name, Start, Duration, Time Format, Type, Description``; times in
the ``decimal`` format (``m:ss.mmm``); each segment is a ``Cue`` range marker.
"""
from .common import label_segments, minutes_seconds, write_text_atomic

EXTENSION = ".csv"
HEADER = ["Name", "Start", "Duration", "Time Format", "Type", "Description"]


def write(track, path, **options):
    rows = ["\t".join(HEADER)]
    for s, e, lab in label_segments(track, **options):
        rows.append("\t".join([lab, minutes_seconds(s), minutes_seconds(e - s), "decimal", "Cue", "freelunch"]))
    write_text_atomic(path, "\n".join(rows) + "\n")
