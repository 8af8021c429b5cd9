"""A disk cache of the clean-speech targets, one .npz per utterance."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import load
from .targets import clean_targets


def cached_clean_targets(cache_dir: Path, item_id: str, path: str) -> dict[str, np.ndarray]:
    file = Path(cache_dir) / f"{item_id}.npz"
    if file.exists():
        with np.load(file) as z:
            return {k: z[k] for k in z.files}
    targets = clean_targets(load(path))
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, **targets)
    tmp.replace(file)
    return targets
