"""The whole per-frame track as CSV (one row per 16 ms frame) or JSON (columns)."""
import csv
import io
import json
import math

from ..track import COLUMNS
from .common import write_text_atomic


def write_csv(track, path, **_):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(COLUMNS) + ["noise_category_name"])
    columns = [track.column(c) for c in COLUMNS]
    for i, name in enumerate(track.noise_category_name):
        w.writerow([_cell(col[i]) for col in columns] + [name])
    write_text_atomic(path, buf.getvalue())


def _cell(v):
    if isinstance(v, (bool,)) or getattr(v, "dtype", None) == bool:
        return int(v)
    v = float(v)
    return "" if math.isnan(v) else f"{v:.6g}"


def write_json(track, path, **_):
    d = track.to_dict()
    clean = {k: [None if isinstance(x, float) and math.isnan(x) else x for x in v] if isinstance(v, list) else v
             for k, v in d.items()}
    write_text_atomic(path, json.dumps(clean) + "\n")
