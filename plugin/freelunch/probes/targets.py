"""Frame targets: the ground truth each probe learns, from the mixing pipeline's clean speech and noise.

Every function returns one value per STFT frame of the mixture: frame ``t`` spans samples
``[256t - 256, 256t + 256)`` (zero before the start) and is centred at ``t * 16 ms``.
Targets that need only the clean speech (vad, voiced, f0) do not depend on its gain, so
they are computed once per utterance and cached (pyworld harvest runs at RTF ≈ 0.24).
"""
from __future__ import annotations

import numpy as np

from ..data import active_rms
from ..model.framing import HOP, N_FFT, SAMPLE_RATE, n_frames

VAD_THRESHOLD_DB = -25.0  # a frame is speech when its energy is within 25 dB of the active level,
VAD_FLOOR_MARGIN_DB = 8.0  # ...and 8 dB above the recording's own floor (its 5th-percentile frame),
VAD_HANGOVER_FRAMES = 3  # ...and stays speech for 48 ms after, bridging plosives and short gaps
SNR_CLIP_DB = (-20.0, 40.0)
LEVEL_FLOOR_DB = -100.0  # noise level floor; a frame with speech and noise both below it has no SNR
F0_FLOOR_HZ, F0_CEIL_HZ = 60.0, 500.0
AUDIBLE_DB = -60.0  # a noise frame this loud or louder has a noise-class target


def frame_energy(x: np.ndarray) -> np.ndarray:
    """Mean square over each frame's 512 samples, (T,)."""
    n = len(x)
    t = n_frames(n)
    padded = np.pad(x.astype(np.float64), (N_FFT - HOP, t * HOP - n))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:t]
    return (frames**2).mean(axis=1)


def vad(clean: np.ndarray) -> np.ndarray:
    """Speech present in the clean signal, with a hangover.

    The floor rule matters for LibriSpeech test-other, whose pauses sit only ~25 dB under
    the active level: the level rule alone would call 98 % of its frames speech.
    """
    energy = frame_energy(clean)
    level = active_rms(clean) ** 2 * 10 ** (VAD_THRESHOLD_DB / 10)
    floor = np.percentile(energy, 5) * 10 ** (VAD_FLOOR_MARGIN_DB / 10)
    active = energy >= max(level, floor)
    held = active.copy()
    for lag in range(1, VAD_HANGOVER_FRAMES + 1):
        held[lag:] |= active[:-lag]
    return held


def pitch(clean: np.ndarray) -> np.ndarray:
    """pyworld harvest F0 of the clean speech at the frame centres, 0 where unvoiced, (T,)."""
    import pyworld

    f0, _ = pyworld.harvest(clean.astype(np.float64), SAMPLE_RATE, f0_floor=F0_FLOOR_HZ, f0_ceil=F0_CEIL_HZ,
                            frame_period=1000 * HOP / SAMPLE_RATE)
    t = n_frames(len(clean))
    return np.pad(f0, (0, max(0, t - len(f0))))[:t]


def voiced(f0: np.ndarray, speech: np.ndarray) -> np.ndarray:
    """Voiced: harvest finds an F0 in a speech frame (harvest alone also 'hears' pitch in the floor)."""
    return (f0 > 0) & speech


def f0_hz(f0: np.ndarray, is_voiced: np.ndarray) -> np.ndarray:
    """F0 in Hz, NaN on unvoiced frames (scored on voiced frames only)."""
    return np.where(is_voiced, f0, np.nan)


def noise_category(category: str, names: list[str], noise: np.ndarray) -> np.ndarray:
    """Index of the mixed-in noise's class in ``names`` where that noise is audible (frame level
    at or above ``AUDIBLE_DB``); -1 elsewhere, and for a class the probes do not know."""
    index = names.index(category) if category in names else -1
    return np.where(frame_level_db(noise) >= AUDIBLE_DB, index, -1).astype(np.int64)


def snr_db(clean: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Local frame SNR, 10·log10(E_speech / E_noise), clipped to [-20, 40] dB; NaN in digital silence."""
    speech_energy, noise_energy = frame_energy(clean), frame_energy(noise)
    ratio = (speech_energy + 1e-12) / (noise_energy + 1e-12)
    silent = np.maximum(speech_energy, noise_energy) < 10 ** (LEVEL_FLOOR_DB / 10)
    return np.where(silent, np.nan, np.clip(10 * np.log10(ratio), *SNR_CLIP_DB))


def frame_level_db(x: np.ndarray) -> np.ndarray:
    """Frame energy in dBFS (a full-scale sine is -3 dBFS), (T,): the level the streaming
    engine reports for its input frames."""
    return 10 * np.log10(frame_energy(x) + 1e-20)


def noise_level_db(noise: np.ndarray) -> np.ndarray:
    """The noise's frame level, floored at -100 dBFS."""
    return np.maximum(frame_level_db(noise), LEVEL_FLOOR_DB)


def clean_targets(clean: np.ndarray, f0: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The gain-independent targets of one utterance; pass a cached ``pitch(clean)`` as ``f0``."""
    f0 = pitch(clean) if f0 is None else f0
    speech = vad(clean)
    is_voiced = voiced(f0, speech)
    return {"vad": speech, "voiced": is_voiced, "f0_hz": f0_hz(f0, is_voiced)}


def no_speech(frames: int) -> dict[str, np.ndarray]:
    """The clean-speech targets of a clip without speech (pure noise or silence)."""
    return {"vad": np.zeros(frames, bool), "voiced": np.zeros(frames, bool), "f0_hz": np.full(frames, np.nan)}


def mixture_targets(mixture: dict, names: list[str], clean_cached: dict | None = None) -> dict[str, np.ndarray]:
    """All six targets of one mixture (``freelunch.data.mix`` output plus its category)."""
    clean, noise = mixture["clean"], mixture["noise"]
    out = dict(clean_cached) if clean_cached is not None else clean_targets(clean)
    frames = len(out["vad"])
    out["noise_category"] = noise_category(mixture["category"], names, noise)[:frames]
    out["snr_db"] = snr_db(clean, noise)
    out["noise_level_db"] = noise_level_db(noise)
    return out
