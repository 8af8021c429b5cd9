"""Causal STFT front and back end shared by training, offline inference and streaming.

Frame ``t`` covers input samples ``[t*hop - (n_fft-hop), t*hop + hop)``: the signal is
left-padded by ``n_fft - hop`` so that the first samples are covered by two frames and the
reconstruction is exact everywhere. Frame ``t`` is centred on sample ``t*hop``, so its time
is ``t*hop/sr``. Synthesis is weighted overlap-add with the window normalised by the summed
squared window (what ``torch.istft`` does), which gives perfect reconstruction for Hann.
"""
from __future__ import annotations

import numpy as np
import torch

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


def stft_frames(wav: torch.Tensor) -> torch.Tensor:
    """(B, N) float -> (B, T, 257) complex, one row per frame (causal framing as above)."""
    n = wav.shape[-1]
    t = n_frames(n)
    padded = torch.nn.functional.pad(wav, (N_FFT - HOP, t * HOP - n))
    frames = padded.unfold(-1, N_FFT, HOP)  # (B, T, 512)
    window = torch.from_numpy(analysis_window()).to(wav.device)
    return torch.fft.rfft(frames * window, dim=-1)


def istft_frames(spec: torch.Tensor, n_samples: int) -> torch.Tensor:
    """(B, T, 257) complex -> (B, n_samples), inverse of :func:`stft_frames`.

    With a hop of half a frame, overlap-add is one shifted add of frame halves.
    """
    frames = torch.fft.irfft(spec, n=N_FFT, dim=-1)  # (B, T, 512)
    frames = frames * torch.from_numpy(synthesis_window()).to(frames.device)
    b, t, _ = frames.shape
    out = torch.zeros(b, t + 1, HOP, dtype=frames.dtype, device=frames.device)
    out[:, :t] += frames[..., :HOP]
    out[:, 1:] += frames[..., HOP:]
    return out.reshape(b, -1)[:, N_FFT - HOP : N_FFT - HOP + n_samples]


def stft(wav: torch.Tensor) -> torch.Tensor:
    """(B, N) float -> (B, 257, T) complex, the channels-first layout of the network."""
    return stft_frames(wav).transpose(1, 2)


def istft(spec: torch.Tensor, n_samples: int) -> torch.Tensor:
    """(B, 257, T) complex -> (B, n_samples), inverse of :func:`stft`."""
    return istft_frames(spec.transpose(1, 2), n_samples)


def compress(spec: torch.Tensor, power: float = 0.3) -> torch.Tensor:
    """Power-compressed magnitude, the network's input feature."""
    return (spec.abs() + 1e-12) ** power
