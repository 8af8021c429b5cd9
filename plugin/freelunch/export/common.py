"""What every exporter shares: which segments to write, time formats, atomic writes."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..track import PropertyTrack

DEFAULT_PROPERTIES = ("vad", "noise_category")


def label_segments(track: PropertyTrack, properties=DEFAULT_PROPERTIES, min_duration: float = 0.1,
                   hangover: float = 0.1) -> list[tuple[float, float, str]]:
    """Segments of the chosen properties, in time order. Noise labels read ``noise: <category>``."""
    segments = []
    for name in properties:
        if name == "noise_category" and not track.category_names:
            continue
        prefix = "noise: " if name == "noise_category" else ""
        segments += [(s, e, prefix + lab) for s, e, lab in track.segments(name, min_duration, hangover)]
    return sorted(segments)


def minutes_seconds(t: float) -> str:
    """``m:ss.mmm``, the Minutes:Seconds format of REAPER's ruler and Audition's 'decimal' markers."""
    ms = int(round(t * 1000))
    return f"{ms // 60000}:{(ms // 1000) % 60:02d}.{ms % 1000:03d}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside ``path``, then rename: readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))
