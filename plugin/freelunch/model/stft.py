"""The causal STFT in torch, for training and offline inference; its framing (``framing.py``)
is the streaming engine's.
"""
from __future__ import annotations

import torch

from .framing import HOP, N_BINS, N_FFT, SAMPLE_RATE, analysis_window, n_frames, synthesis_window

__all__ = ["HOP", "N_BINS", "N_FFT", "SAMPLE_RATE", "analysis_window", "compress", "istft", "istft_frames",
           "n_frames", "stft", "stft_frames", "synthesis_window"]


def stft_frames(wav: torch.Tensor) -> torch.Tensor:
    """(B, N) float -> (B, T, 257) complex, one row per frame (the causal framing of framing.py)."""
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
