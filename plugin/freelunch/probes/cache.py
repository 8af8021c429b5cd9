"""A disk cache of each utterance's harvest F0, the one costly clean-speech target."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..data import load
from .targets import clean_targets, pitch


def cached_clean_targets(cache_dir: Path | None, item_id: str, path: str | None = None,
                         audio: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """vad, voiced and f0_hz of one utterance (a file's ``path``, or ``audio`` built in memory);
    harvest runs once, then comes from ``cache_dir`` (None: no cache). Built audio is cached
    under a digest of its samples, so a changed recipe never reads a stale F0."""
    clean = load(path) if audio is None else audio
    if cache_dir is None:
        return clean_targets(clean)
    name = item_id if audio is None else f"{item_id}-{hashlib.sha1(np.ascontiguousarray(audio).tobytes()).hexdigest()[:12]}"
    file = Path(cache_dir) / f"{name}.npz"
    if file.exists():
        with np.load(file) as z:
            f0 = np.nan_to_num(z["f0_hz"]) if "f0_hz" in z.files else z["f0"]
    else:
        f0 = pitch(clean)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp.npz")  # per process: two jobs may fill one cache
        np.savez(tmp, f0=f0)
        tmp.replace(file)
    return clean_targets(clean, f0)
