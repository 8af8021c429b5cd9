"""What every exporter shares: which segments to write, time formats, atomic writes."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np

from ..track import PropertyTrack

DEFAULT_PROPERTIES = ("vad", "noise_category")


def label_segments(track: PropertyTrack, properties=DEFAULT_PROPERTIES, min_duration: float = 0.1,
                   hangover: float = 0.1) -> list[tuple[float, float, str]]:
    """Segments of the chosen properties, in time order, ending at the audio's end. Noise
    labels read ``noise: <class>`` (``noise: unknown`` below the preset's confidence), speech
    labels ``speech (SNR 12 dB)`` where the preset estimates SNR."""
    segments = []
    for name in properties:
        if name == "noise_category" and not track.category_names:
            continue
        for s, e, lab in track.segments(name, min_duration, hangover):
            if name == "noise_category":
                lab = f"noise: {lab}"
            elif name == "vad":
                snr = track.snr_over(s, e)
                lab = lab if np.isnan(snr) else f"{lab} (SNR {snr:.0f} dB)"
            segments.append((s, e, lab))
    return sorted(segments)


def minutes_seconds(t: float) -> str:
    """``m:ss.mmm``, the Minutes:Seconds format of REAPER's ruler and Audition's 'decimal' markers."""
    ms = int(round(t * 1000))
    return f"{ms // 60000}:{(ms // 1000) % 60:02d}.{ms % 1000:03d}"


def _plain_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


PLAIN_FILE_MODE = _plain_file_mode()  # read once: os.umask is process-wide


def atomic_output(dst: Path, write: Callable[[Path], None]) -> None:
    """Run ``write(tmp)`` on a temporary file beside ``dst``, then rename it into place.

    Readers never see half a file, and a failed write leaves nothing behind. The file gets
    the permissions a plain ``open`` would give it (``mkstemp`` makes it private).
    """
    dst = Path(dst)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.stem}.", suffix=dst.suffix, dir=dst.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, PLAIN_FILE_MODE)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_atomic(path: Path, data: bytes) -> None:
    atomic_output(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode("utf-8"))
