"""Causal exponential averages over frames, shared by the mask calibration and the probes."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def ema(frames, alpha, state):  # pragma: no cover - compiled
    """frames (F, K) float32, averaged over frames in place: y_f = alpha * y_(f-1) + (1 - alpha) * x_f.
    ``state`` (K,) holds the last output and carries it to the next call; NaN means none yet,
    so a stream's first frame passes unchanged."""
    for f in range(frames.shape[0]):
        if not np.isnan(state[0]):
            for k in range(frames.shape[1]):
                frames[f, k] = alpha * state[k] + (1.0 - alpha) * frames[f, k]
        for k in range(frames.shape[1]):
            state[k] = frames[f, k]


def fresh_state(width: int) -> np.ndarray:
    """The state of a stream that has not started: the first frame passes unchanged."""
    return np.full(width, np.nan, np.float32)
