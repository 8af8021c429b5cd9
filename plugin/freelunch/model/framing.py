"""Causal framing of 16 kHz audio, shared by training, offline inference and streaming (numpy
only: the streaming engine runs without torch).

Frame ``t`` covers input samples ``[t*hop - (n_fft-hop), t*hop + hop)``: the signal is
left-padded by ``n_fft - hop`` so that the first samples are covered by two frames and the
reconstruction is exact everywhere. Frame ``t`` is centred on sample ``t*hop``, so its time
is ``t*hop/sr``. Synthesis is weighted overlap-add with the window normalised by the summed
squared window (what ``torch.istft`` does), which gives perfect reconstruction for Hann.
"""
from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
N_FFT = 512
HOP = 256  # half a frame: overlap-add in istft_frames relies on it
N_BINS = N_FFT // 2 + 1


def analysis_window() -> np.ndarray:
    """Periodic Hann window, float32 (512,)."""
    return np.hanning(N_FFT + 1)[:-1].astype(np.float32)


def synthesis_window() -> np.ndarray:
    """Hann divided by the overlapped squared window: analysis*synthesis sums to one."""
    w = analysis_window().astype(np.float64)
    overlap = w**2 + np.roll(w, HOP) ** 2
    return (w / overlap).astype(np.float32)


def n_frames(n_samples: int) -> int:
    """Frames needed so that every input sample is covered by two frames."""
    return -(-n_samples // HOP) + 1
