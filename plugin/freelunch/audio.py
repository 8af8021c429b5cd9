"""Audio array conventions shared by the effect and the chain (pedalboard's rules)."""
from __future__ import annotations

import math

import numpy as np


def as_channels_first(x, channels: int | None = None) -> tuple[np.ndarray, str]:
    """Validate an audio array and return it as float32 (channels, samples) plus its layout.

    Layouts follow pedalboard: 1-D is mono; 2-D has the smaller axis as channels, unless
    ``channels`` (the count of a stream already running) names one axis, which settles
    short blocks such as a stereo block of one sample; an empty 2-D array has its non-empty
    axis as channels, as pedalboard keeps a (2, 0) block. Integer arrays are scaled from their
    full range to [-1, 1], unsigned ones about their midpoint (8-bit WAV's silence is 128).
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"audio must be a numpy array, not {type(x).__name__}")
    if x.ndim not in (1, 2):
        raise ValueError(f"audio must be 1-D (mono) or 2-D (channels x samples), got {x.ndim}-D shape {x.shape}")
    if x.dtype == np.float32:  # the usual stream: no conversion to look for
        pass
    elif np.issubdtype(x.dtype, np.signedinteger):
        x = x.astype(np.float32) / np.float32(-np.iinfo(x.dtype).min)
    elif np.issubdtype(x.dtype, np.unsignedinteger):
        middle = (np.iinfo(x.dtype).max + 1) // 2
        x = ((x.astype(np.float64) - middle) / middle).astype(np.float32)
    elif np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32, copy=False)
    else:
        raise TypeError(f"audio must be a float or integer array, got dtype {x.dtype}")
    if x.ndim == 1:
        layout, x = "mono", x[None]
    elif x.size == 0 and max(x.shape) > 0:
        layout = "channels_first" if x.shape[0] else "channels_last"
        x = x if layout == "channels_first" else x.T
    elif channels in x.shape and x.shape[0] != x.shape[1]:
        layout = "channels_first" if x.shape[0] == channels else "channels_last"
        x = x if layout == "channels_first" else x.T
    elif x.shape[0] <= x.shape[1]:
        layout = "channels_first"
    else:
        layout, x = "channels_last", x.T
    if x.size and not np.isfinite(x).all():
        raise ValueError("audio contains NaN or infinite samples")
    return np.ascontiguousarray(x), layout


def restore_layout(y: np.ndarray, layout: str) -> np.ndarray:
    """(channels, samples) back to the caller's layout, float32."""
    y = y.astype(np.float32, copy=False)
    return y[0] if layout == "mono" else y if layout == "channels_first" else np.ascontiguousarray(y.T)


def check_sample_rate(sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating)):
        raise TypeError(f"sample_rate must be a number, not {type(sample_rate).__name__}")
    if not math.isfinite(sample_rate) or sample_rate <= 0 or sample_rate != int(sample_rate):
        raise ValueError(f"sample_rate must be a positive whole number of Hz, got {sample_rate}")
    if not 1000 <= sample_rate <= 384000:
        raise ValueError(f"sample_rate {int(sample_rate)} Hz is outside the supported 1000-384000 Hz")
    return int(sample_rate)


def check_buffer_size(buffer_size) -> int:
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, (int, np.integer)):
        raise TypeError(f"buffer_size must be an int, not {type(buffer_size).__name__}")
    if buffer_size < 1:
        raise ValueError(f"buffer_size must be at least 1, got {buffer_size}")
    return int(buffer_size)
