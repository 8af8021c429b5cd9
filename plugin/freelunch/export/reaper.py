"""REAPER regions as the CSV of the Region/Marker Manager (right-click > Import/Export).

Layout: ``#,Name,Start,End,Length`` with ids ``R1, R2, ...`` for regions, times in the
Minutes:Seconds ruler format (``m:ss.mmm``), as REAPER writes them when the ruler shows time.
"""
import csv
import io

from .common import label_segments, minutes_seconds, write_text_atomic

EXTENSION = ".csv"


def write(track, path, **options):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["#", "Name", "Start", "End", "Length"])
    for i, (s, e, lab) in enumerate(label_segments(track, **options), 1):
        w.writerow([f"R{i}", lab, minutes_seconds(s), minutes_seconds(e), minutes_seconds(e - s)])
    write_text_atomic(path, buf.getvalue())
