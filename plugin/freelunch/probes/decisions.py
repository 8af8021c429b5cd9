"""From the probes' scores to the track's columns, one stream at a time.

Probes that read the input level get their level terms first (``level.py``). Scores are
smoothed causally, then aligned: each task's answer trails the signal by a few
frames (the network is causal, and the smoothing averages past frames), so frame t takes
the score of frame t + lag. Then they are decided, and the VAD's speech segments cleaned
up the usual way: gaps between speech shorter than ``bridge_frames`` are filled, then
speech runs shorter than ``min_speech_frames`` are dropped.
A frame's answer then depends on the frames after it, so the stream holds each frame back
``lookahead`` frames: the largest lag plus the clean-up's look-ahead (the audio is not
delayed; only its properties are). Voicing and F0 follow the final VAD.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from .level import LevelFeatures

if TYPE_CHECKING:
    from .linear import LinearProbes

# A frame whose input RMS is below this (dBFS) holds no speech, whatever the masks say: it is
# below the noise floor of real recordings (16-bit quantisation noise is about -101 dBFS;
# LibriSpeech's median floor is -57 dBFS). It catches digital silence, whose first frames in
# a stream the masks cannot tell from speech: there the network starts from zero history.
SILENCE_DB = -90.0


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class VadDecision:
    """How frame scores become speech: a probability threshold, then the run clean-up (1: off).

    >>> VadDecision(0.4, bridge_frames=8, min_speech_frames=20).lookahead
    26
    """

    threshold: float = 0.5
    bridge_frames: int = 1
    min_speech_frames: int = 1

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"VAD threshold must be strictly between 0 and 1, got {self.threshold}")
        for name in ("bridge_frames", "min_speech_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a whole number of frames >= 1, got {value!r}")

    @property
    def lookahead(self) -> int:
        """Frames the clean-up waits for: enough to see a gap close and a run reach its minimum."""
        return self.bridge_frames - 1 + self.min_speech_frames - 1

    def as_dict(self) -> dict:
        return asdict(self)


def clean_runs(speech: np.ndarray, bridge_frames: int, min_speech_frames: int) -> np.ndarray:
    """Fill gaps shorter than ``bridge_frames`` between two speech runs, then drop speech runs
    shorter than ``min_speech_frames``. A gap that touches either end is never filled.

    >>> clean_runs(np.array([1, 0, 1, 0, 0, 0, 1, 0], bool), 2, 3).astype(int).tolist()
    [1, 1, 1, 0, 0, 0, 0, 0]
    """
    return _clean_runs(np.ascontiguousarray(speech, np.bool_), bridge_frames, min_speech_frames)


@numba.njit(cache=True, nogil=True)
def _clean_runs(speech, bridge_frames, min_speech_frames):  # pragma: no cover - compiled
    # Compiled: a stream runs this on every push, and numpy's per-call cost dominated it.
    out = speech.copy()
    n = len(out)
    for value, shortest in ((False, bridge_frames), (True, min_speech_frames)):  # gaps, then speech runs
        i = 0
        while i < n:
            if out[i] != value:
                i += 1
                continue
            j = i
            while j < n and out[j] == value:
                j += 1
            if j - i < shortest and (value or (i > 0 and j < n)):  # a gap must lie between two runs
                out[i:j] = not value
            i = j
    return out


def joined(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per key, the frames of ``a`` then those of ``b`` (a key in one alone is kept)."""
    return {k: np.concatenate([a[k], b[k]]) if k in a and k in b else a[k] if k in a else b[k] for k in {**a, **b}}


class ProbeStream:
    """One stream's probe state: score smoothing, the frames waiting for their lagged scores,
    and the frames held for the VAD's look-ahead.

    ``push`` takes the masks of new frames (one array per channel; their scores are averaged)
    and returns the frames now decided, with any ``extra`` columns (``times``, ``usage``)
    passed through alongside. ``flush`` decides the frames still held, at the end of a stream
    (there the last frames take the last score for the ones after it). Pushing a signal in
    pieces gives exactly the columns of pushing it whole. ``smooth=False`` gives each
    probe's frame by frame answer: no smoothing and no lags.
    """

    def __init__(self, probes: "LinearProbes", decision: VadDecision, smooth: bool = True):
        self.probes, self.decision, self.smooth = probes, decision, smooth
        self.lags = probes.lags if smooth else {}
        self._max_lag = probes.max_lag if smooth else 0
        self._smoothing: dict = {}
        self._level_features = LevelFeatures()
        # Frames pushed but not yet aligned: smoothed scores, input level, extra columns.
        self._scores: dict[str, np.ndarray] = {}
        self._level = np.zeros(0, np.float32)
        self._extra: dict[str, np.ndarray] = {}
        self._held: dict[str, np.ndarray] = {}
        # Raw VAD of frames already emitted, as context: far enough back that the clean-up of
        # the held frames reads the same as on the whole signal.
        self._context = np.zeros(0, bool)

    @property
    def lookahead(self) -> int:
        """Frames a pushed frame waits before it is decided."""
        return self._max_lag + self.decision.lookahead

    def push(self, masks: list[np.ndarray], level_db: np.ndarray | None = None, **extra: np.ndarray) -> dict[str, np.ndarray]:
        per_channel = [self.probes.scores(m) for m in masks]
        scores = per_channel[0]
        if len(per_channel) > 1:
            scores = {k: np.mean([s[k] for s in per_channel], axis=0) for k in scores}
        return self.push_scores(scores, level_db, **extra)

    def push_scores(self, scores: dict[str, np.ndarray], level_db: np.ndarray | None = None,
                    **extra: np.ndarray) -> dict[str, np.ndarray]:
        """As ``push``, from the probes' raw scores (the masks' part: this adds the level terms)."""
        n = len(next(iter(scores.values())))
        if self.probes.reads_levels:
            if level_db is None:
                raise ValueError("these probes read the input level: pass level_db with the scores")
            scores = self.probes.with_levels(scores, self._level_features.push(level_db[:n]))
        if self.smooth:
            scores = self.probes.smooth(scores, self._smoothing)
        level = np.full(n, np.inf, np.float32) if level_db is None else np.asarray(level_db[:n], np.float32)
        self._scores, self._extra = joined(self._scores, scores), joined(self._extra, extra)
        self._level = np.concatenate([self._level, level])
        return self._advance(final=False)

    def flush(self) -> dict[str, np.ndarray]:
        return self._advance(final=True)

    def whole(self, scores: dict[str, np.ndarray], level_db: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The columns of a whole signal's raw scores: pushed, then flushed."""
        return joined(self.push_scores(scores, level_db), self.flush())

    def _advance(self, final: bool) -> dict[str, np.ndarray]:
        """Align the frames whose lagged scores have arrived, then decide what the look-ahead allows."""
        total = len(self._level)
        ready = total if final else max(0, total - self._max_lag)
        if self._scores and ready:
            frames = np.arange(ready)
            aligned = {k: v[np.minimum(frames + self.lags.get(k, 0), total - 1)] for k, v in self._scores.items()}
            new = {**self._columns(aligned, self._level[:ready]), **{k: v[:ready] for k, v in self._extra.items()}}
            self._scores = {k: v[ready:] for k, v in self._scores.items()}
            self._extra = {k: v[ready:] for k, v in self._extra.items()}
            self._level = self._level[ready:]
            self._held = joined(self._held, new)
        return self._emit(final)

    def _columns(self, scores: dict[str, np.ndarray], level_db: np.ndarray) -> dict[str, np.ndarray]:
        """Frame columns before the VAD clean-up; ``level_db`` vetoes speech and the noise
        category below SILENCE_DB."""
        out = {}
        if "vad" in scores:
            out["vad_prob"] = sigmoid(scores["vad"][:, 0])
            out["vad"] = (out["vad_prob"] >= self.decision.threshold) & (level_db >= SILENCE_DB)
        if "voiced" in scores:
            out["voiced_prob"] = sigmoid(scores["voiced"][:, 0])
            out["voiced"] = out["voiced_prob"] >= 0.5
        if "noise_category" in scores:  # digital silence holds no noise to name: -1, no category
            logits = scores["noise_category"]
            out["noise_category"] = np.where(level_db >= SILENCE_DB, logits.argmax(axis=1), -1)
            # the winning class's softmax probability: how sure the probe is
            top = logits.max(axis=1, keepdims=True)
            out["noise_prob"] = (1.0 / np.exp(logits - top).sum(axis=1)).astype(np.float32)
        for name in ("f0_hz", "snr_db", "noise_level_db"):  # the regressions (F0 may read as classes)
            if name in scores:
                out[name] = self.probes.probes[name].read(scores[name])
        return out

    def _emit(self, final: bool) -> dict[str, np.ndarray]:
        out = self._clean_up(final)
        if not out:
            return {}
        speech = out.get("vad", True)
        if "voiced" in out:
            out["voiced"] = out["voiced"] & speech
        if "f0_hz" in out:
            out["f0_hz"] = np.where(out.get("voiced", speech), out["f0_hz"], np.nan)
        return out

    def _clean_up(self, final: bool) -> dict[str, np.ndarray]:
        """The held frames whose clean-up the look-ahead now allows."""
        if not self._held:
            return {}
        held = len(next(iter(self._held.values())))
        ready = held if final else max(0, held - self.decision.lookahead)
        out = {k: v[:ready] for k, v in self._held.items()}
        self._held = {k: v[ready:] for k, v in self._held.items()}
        if "vad" in out:
            raw = np.concatenate([self._context, out["vad"], self._held["vad"]])
            d = self.decision
            speech = clean_runs(raw, d.bridge_frames, d.min_speech_frames)[len(self._context):][:ready]
            keep = d.bridge_frames + d.min_speech_frames
            self._context = np.concatenate([self._context, out["vad"]])[-keep:]
            out["vad"] = speech
        return out
