"""A disk cache of each utterance's harvest F0, the one costly clean-speech target."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import load
from .targets import clean_targets, pitch


def cached_clean_targets(cache_dir: Path, item_id: str, path: str) -> dict[str, np.ndarray]:
    """vad, voiced and f0_hz of one utterance; harvest runs once, then comes from ``cache_dir``."""
    clean = load(path)
    file = Path(cache_dir) / f"{item_id}.npz"
    if file.exists():
        with np.load(file) as z:
            f0 = np.nan_to_num(z["f0_hz"]) if "f0_hz" in z.files else z["f0"]
    else:
        f0 = pitch(clean)
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp.npz")
        np.savez(tmp, f0=f0)
        tmp.replace(file)
    return clean_targets(clean, f0)
