"""Input-level features: what binary masks hardly carry, the absolute level and its floor.

The noise-level and SNR probes may read two numbers per frame beside the masks:

- ``level_db``: the frame's input RMS (dBFS), as the engine measures it;
- ``floor_db``: the minimum, over the last ``FLOOR_FRAMES`` frames, of that level's power
  averaged over frames (``FLOOR_SMOOTHING``): the classic minimum-statistics noise estimate,
  since speech pauses let the noise show through within a couple of seconds.

Both are causal and cost a few operations per frame. Levels are floored at the targets'
``LEVEL_FLOOR_DB``, so digital silence does not pull a linear fit to -200 dB.

>>> level_features(np.array([-30.0, -30.0, -10.0], np.float32)).round(1).tolist()
[[-30.0, -30.0], [-30.0, -30.0], [-10.0, -30.0]]
"""
from __future__ import annotations

import numba
import numpy as np

from .targets import LEVEL_FLOOR_DB

LEVEL_FEATURES = ("level_db", "floor_db")
FLOOR_FRAMES = 128  # 2 s: longer than most words and pauses, short enough to follow a changing noise
FLOOR_SMOOTHING = 0.7  # averages the power over a few frames before the minimum, which would otherwise chase dips


@numba.njit(cache=True, nogil=True)
def _track(level_db, state, recent, out):  # pragma: no cover - compiled
    """One frame at a time, so that any split of a stream gives the same bits. ``state``:
    the averaged power (NaN: none yet) and the write position in ``recent``, the ring of the
    last FLOOR_FRAMES smoothed levels (+inf where none yet)."""
    for f in range(level_db.shape[0]):
        level = max(level_db[f], LEVEL_FLOOR_DB)
        power = 10.0 ** (level / 10.0)
        state[0] = power if np.isnan(state[0]) else FLOOR_SMOOTHING * state[0] + (1.0 - FLOOR_SMOOTHING) * power
        position = int(state[1])
        recent[position] = 10.0 * np.log10(state[0])
        state[1] = (position + 1) % recent.shape[0]
        out[f, 0] = level
        out[f, 1] = recent.min()


class LevelFeatures:
    """The features of a stream's frames, pushed in any pieces: ``push(level_db) -> (n, 2)``."""

    def __init__(self):
        self._state = np.array([np.nan, 0.0])
        self._recent = np.full(FLOOR_FRAMES, np.inf)

    def push(self, level_db: np.ndarray) -> np.ndarray:
        out = np.empty((len(level_db), len(LEVEL_FEATURES)), np.float32)
        # at the engine's float32 precision, whoever measured the levels, then tracked in float64
        _track(np.asarray(level_db, np.float32).astype(np.float64), self._state, self._recent, out)
        return out


def level_features(level_db: np.ndarray) -> np.ndarray:
    """A whole signal's features from its frame levels, (T,) -> (T, 2)."""
    return LevelFeatures().push(level_db)
