"""Augmentation of the dynamic mixing: recordings unlike the training set's.

Each stage runs on a training crop with its own probability (0: off, the default), all from
the crop's random generator, so a run is reproducible. The speech stages change the target
too: the enhancer should remove noise, not undo a microphone, a room or a band limit.

- **EQ**: a random spectral tilt (± ``tilt_db_per_octave`` around 1 kHz) and three random
  bell bands of ± ``bell_db``, as microphones and rooms colour speech;
- **band limit**: speech with no content above 4 or 8 kHz, as telephone and wide-band codecs
  leave it;
- **reverb**: speech in a simulated shoebox room (``pyroomacoustics``, RT60 0.2-0.8 s); the
  target keeps the direct path and the first 50 ms of reflections;
- **clipping**: the mixture clipped 1-6 dB below its peak (the target stays clean).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RATE = 16000
EARLY_S = 0.05  # reflections within this of the direct path stay in the target


def _apply_gain_curve(x: np.ndarray, gain_db: np.ndarray) -> np.ndarray:
    """Filter ``x`` by a zero-phase gain curve given on its rfft bins."""
    return np.fft.irfft(np.fft.rfft(x) * 10 ** (gain_db / 20), n=len(x)).astype(np.float32)


def eq(x: np.ndarray, rng: np.random.Generator, tilt_db_per_octave: float = 3.0, bell_db: float = 6.0) -> np.ndarray:
    """A random tilt around 1 kHz plus three bells (centres 150 Hz-6 kHz, one octave wide)."""
    f = np.maximum(np.fft.rfftfreq(len(x), 1 / RATE), 20.0)
    octaves = np.log2(f / 1000.0)
    gain = rng.uniform(-tilt_db_per_octave, tilt_db_per_octave) * np.clip(octaves, -3, 3)
    for centre in np.exp(rng.uniform(np.log(150), np.log(6000), 3)):
        gain += rng.uniform(-bell_db, bell_db) * np.exp(-0.5 * (np.log2(f / centre) / 0.5) ** 2)
    return _apply_gain_curve(x, gain)


def band_limit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Nothing above 4 or 8 kHz (a steep raised-cosine edge, 500 Hz wide)."""
    cutoff = float(rng.choice([4000.0, 8000.0 - 500.0]))
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    edge = np.clip((f - cutoff) / 500.0, 0, 1)
    return _apply_gain_curve(x, 20 * np.log10(np.maximum(0.5 * (1 + np.cos(np.pi * edge)), 1e-6)))


def room_impulse(rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """A shoebox room's impulse response from a random talker to a random microphone, and the
    sample of its direct path."""
    import pyroomacoustics as pra

    size = rng.uniform([3.0, 3.0, 2.4], [10.0, 8.0, 4.0])
    rt60 = rng.uniform(0.2, 0.8)
    absorption, max_order = pra.inverse_sabine(rt60, size)
    room = pra.ShoeBox(size, fs=RATE, materials=pra.Material(absorption), max_order=min(max_order, 20))
    talker, mic = (rng.uniform(0.5, 1.0) * size * rng.uniform(0.2, 0.8, 3) + 0.3 for _ in range(2))
    room.add_source(np.minimum(talker, size - 0.3))
    room.add_microphone(np.minimum(mic, size - 0.3))
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], np.float64)
    return rir, int(np.argmax(np.abs(rir)))


def reverb(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(reverberant speech, its target: the direct path and early reflections), aligned with ``x``."""
    rir, direct = room_impulse(rng)
    early = rir.copy()
    early[direct + int(EARLY_S * RATE):] = 0.0
    out = []
    for h in (rir, early):
        y = np.convolve(x.astype(np.float64), h)[direct : direct + len(x)]
        out.append(y.astype(np.float32))
    scale = 1.0 / (np.abs(rir[direct]) + 1e-9)  # the direct path at unit gain
    return out[0] * scale, out[1] * scale


def clip(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Hard clipping 1-6 dB below the peak."""
    peak = float(np.abs(x).max()) if len(x) else 0.0
    limit = peak * 10 ** (-rng.uniform(1.0, 6.0) / 20)
    return np.clip(x, -limit, limit).astype(np.float32)


@dataclass(frozen=True)
class Augment:
    """Probabilities of each stage (``hparams/train.yaml``); all 0 leaves a crop as it is."""

    eq_prob: float = 0.0
    band_limit_prob: float = 0.0
    reverb_prob: float = 0.0
    clip_prob: float = 0.0

    @property
    def active(self) -> bool:
        return any(p > 0 for p in (self.eq_prob, self.band_limit_prob, self.reverb_prob, self.clip_prob))

    def speech(self, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(the speech to mix, the target the enhancer should give back)."""
        if rng.uniform() < self.eq_prob:
            x = eq(x, rng)
        if rng.uniform() < self.band_limit_prob:
            x = band_limit(x, rng)
        target = x
        if rng.uniform() < self.reverb_prob:
            x, target = reverb(x, rng)
        return x, target

    def mixture(self, noisy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return clip(noisy, rng) if rng.uniform() < self.clip_prob else noisy
