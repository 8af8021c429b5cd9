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

from ..model.smoothing import fresh_state
from .level import LEVEL_FEATURES, LevelFeatures

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


def column_slices(widths: dict[str, int]) -> dict[str, slice]:
    """Each task's columns in one score array, in order: ``{"vad": 1, "noise": 5}`` -> 0:1, 1:6."""
    edges = np.cumsum([0, *widths.values()])
    return {task: slice(int(a), int(b)) for task, a, b in zip(widths, edges[:-1], edges[1:])}


def joined(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per key, the frames of ``a`` then those of ``b`` (a key in one alone is kept)."""
    return {k: np.concatenate([a[k], b[k]]) if k in a and k in b else a[k] if k in a else b[k] for k in {**a, **b}}


@numba.njit(cache=True, nogil=True)
def _level_and_smooth(scores, features, level_coef, reads, alpha, state):  # pragma: no cover - compiled
    """In place, frame by frame, so that any split of a stream gives the same bits: add the
    input-level terms of the columns that ``reads`` (level_coef (L, K)), then average causally
    the columns whose ``alpha`` > 0 (``state`` (K,) holds their last output; NaN: none yet)."""
    for f in range(scores.shape[0]):
        for k in range(scores.shape[1]):
            if reads[k]:
                term = np.float32(0.0)
                for i in range(features.shape[1]):
                    term += features[f, i] * level_coef[i, k]
                scores[f, k] += term
            if alpha[k] > 0:
                if not np.isnan(state[k]):
                    scores[f, k] = alpha[k] * state[k] + (1.0 - alpha[k]) * scores[f, k]
                state[k] = scores[f, k]


class ProbeStream:
    """One stream's probe state: score smoothing, the frames waiting for their lagged scores,
    and the frames held for the VAD's look-ahead.

    ``push`` takes the masks of new frames (one array per channel; their scores are averaged)
    and returns the frames now decided, with any ``extra`` columns (``times``, ``usage``)
    passed through alongside. ``flush`` decides the frames still held, at the end of a stream
    (there the last frames take the last score for the ones after it). Pushing a signal in
    pieces gives exactly the columns of pushing it whole. ``smooth=False`` gives each
    probe's frame by frame answer: no smoothing and no lags.

    The tasks' scores travel as one (frames, outputs) array, ``cols`` naming each task's
    columns: a 512-sample buffer is two frames, so per-task arrays would cost more in
    bookkeeping than the probes cost in adds.
    """

    def __init__(self, probes: "LinearProbes", decision: VadDecision, smooth: bool = True):
        self.probes, self.decision = probes, decision
        self._lags = probes.lags if smooth else {}
        self._alphas = probes.smoothing if smooth else {}
        self._max_lag = probes.max_lag if smooth else 0
        self._level_features = LevelFeatures()
        self.cols: dict[str, slice] | None = None  # set by the first push
        # Frames pushed but not yet aligned (smoothed scores, input level, extra columns), then
        # frames aligned but held for the clean-up's look-ahead.
        self._pending = self._pending_level = self._held = self._held_level = None
        self._pending_extra: dict[str, np.ndarray] = {}
        self._held_extra: dict[str, np.ndarray] = {}
        # Raw VAD of frames already emitted, as context: far enough back that the clean-up of
        # the held frames reads the same as on the whole signal.
        self._context = np.zeros(0, bool)

    @property
    def lookahead(self) -> int:
        """Frames a pushed frame waits before it is decided."""
        return self._max_lag + self.decision.lookahead

    def push(self, masks: list[np.ndarray], level_db: np.ndarray | None = None, **extra: np.ndarray) -> dict[str, np.ndarray]:
        table = self.probes.table
        scores = table(masks[0].reshape(len(masks[0]), -1))
        if len(masks) > 1:
            scores = np.mean([scores] + [table(m.reshape(len(m), -1)) for m in masks[1:]], axis=0)
        return self._push(scores, table.cols, level_db, extra)

    def push_scores(self, scores: dict[str, np.ndarray], level_db: np.ndarray | None = None,
                    **extra: np.ndarray) -> dict[str, np.ndarray]:
        """As ``push``, from the probes' raw scores per task (the masks' part: this adds the level terms)."""
        cols = column_slices({task: np.shape(s)[1] for task, s in scores.items()})
        n = len(next(iter(scores.values())))
        packed = np.zeros((n, max(c.stop for c in cols.values())), np.float32)
        for task, s in scores.items():
            packed[:, cols[task]] = s
        return self._push(packed, cols, level_db, extra)

    def flush(self) -> dict[str, np.ndarray]:
        return self._advance(final=True)

    def whole(self, scores: dict[str, np.ndarray], level_db: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The columns of a whole signal's raw scores: pushed, then flushed."""
        return joined(self.push_scores(scores, level_db), self.flush())

    def _start(self, cols: dict[str, slice]) -> None:
        """Lay out each output column's level terms, smoothing and lag, for the tasks pushed first."""
        self.cols = cols
        width = max((c.stop for c in cols.values()), default=0)
        self._level_coef = np.zeros((len(LEVEL_FEATURES), width), np.float32)
        self._reads = np.zeros(width, np.bool_)
        self._alpha = np.zeros(width, np.float32)
        self._lag = np.zeros(width, np.int64)
        for task, c in cols.items():
            probe = self.probes.probes.get(task)  # raw scores may come without their probe
            level_coef = None if probe is None else probe.level_coef
            if level_coef is not None:
                self._level_coef[:, c], self._reads[c] = level_coef, True
            self._alpha[c] = self._alphas.get(task, 0.0)
            self._lag[c] = self._lags.get(task, 0)
        self._state = fresh_state(width)
        self._pending = self._held = np.zeros((0, width), np.float32)
        self._pending_level = self._held_level = np.zeros(0, np.float32)

    def _push(self, scores: np.ndarray, cols: dict[str, slice], level_db: np.ndarray | None,
              extra: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self.cols is None:
            self._start(cols)
        elif cols != self.cols:
            raise ValueError(f"a stream scores the same tasks at every push: {list(self.cols)}, then {list(cols)}")
        n = len(scores)
        if self._reads.any():
            if level_db is None:
                raise ValueError("these probes read the input level: pass level_db with the scores")
            features = self._level_features.push(level_db[:n])
        else:
            features = np.zeros((n, len(LEVEL_FEATURES)), np.float32)
        _level_and_smooth(scores, features, self._level_coef, self._reads, self._alpha, self._state)
        level = np.full(n, np.inf, np.float32) if level_db is None else np.asarray(level_db[:n], np.float32)
        self._pending = np.concatenate([self._pending, scores])
        self._pending_level = np.concatenate([self._pending_level, level])
        self._pending_extra = joined(self._pending_extra, extra)
        return self._advance(final=False)

    def _advance(self, final: bool) -> dict[str, np.ndarray]:
        """Align the frames whose lagged scores have arrived, then decide what the look-ahead allows."""
        if self.cols is None:
            return {}
        total = len(self._pending_level)
        ready = total if final else max(0, total - self._max_lag)
        if ready:
            later = np.minimum(np.arange(ready)[:, None] + self._lag, total - 1)
            self._held = np.concatenate([self._held, self._pending[later, np.arange(len(self._lag))]])
            self._held_level = np.concatenate([self._held_level, self._pending_level[:ready]])
            self._held_extra = joined(self._held_extra, {k: v[:ready] for k, v in self._pending_extra.items()})
            self._pending, self._pending_level = self._pending[ready:], self._pending_level[ready:]
            self._pending_extra = {k: v[ready:] for k, v in self._pending_extra.items()}
        return self._emit(final)

    def _speech(self, scores: np.ndarray, level_db: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The VAD probability and raw speech of aligned frames; below SILENCE_DB there is no speech."""
        prob = sigmoid(scores[:, self.cols["vad"].start])
        return prob, (prob >= self.decision.threshold) & (level_db >= SILENCE_DB)

    def _columns(self, scores: np.ndarray, level_db: np.ndarray) -> dict[str, np.ndarray]:
        """Frame columns of aligned frames, before the VAD clean-up; ``level_db`` vetoes speech and
        the noise category below SILENCE_DB."""
        out, cols = {}, self.cols
        if "vad" in cols:
            out["vad_prob"], out["vad"] = self._speech(scores, level_db)
        if "voiced" in cols:
            out["voiced_prob"] = sigmoid(scores[:, cols["voiced"].start])
            out["voiced"] = out["voiced_prob"] >= 0.5
        if "noise_category" in cols:  # digital silence holds no noise to name: -1, no category
            logits = scores[:, cols["noise_category"]]
            out["noise_category"] = np.where(level_db >= SILENCE_DB, logits.argmax(axis=1), -1)
            # the winning class's softmax probability: how sure the probe is
            top = logits.max(axis=1, keepdims=True)
            out["noise_prob"] = (1.0 / np.exp(logits - top).sum(axis=1)).astype(np.float32)
        for name in ("f0_hz", "snr_db", "noise_level_db"):  # the regressions (F0 may read as classes)
            if name in cols:
                out[name] = self.probes.probes[name].read(scores[:, cols[name]])
        return out

    def _emit(self, final: bool) -> dict[str, np.ndarray]:
        """The held frames whose clean-up the look-ahead now allows, decided."""
        held = len(self._held_level)
        ready = held if final else max(0, held - self.decision.lookahead)
        if not ready:
            return {}
        out = self._columns(self._held[:ready], self._held_level[:ready])
        out.update({k: v[:ready] for k, v in self._held_extra.items()})
        if "vad" in out:
            rest = self._speech(self._held[ready:], self._held_level[ready:])[1]
            raw = np.concatenate([self._context, out["vad"], rest])
            d = self.decision
            speech = clean_runs(raw, d.bridge_frames, d.min_speech_frames)[len(self._context):][:ready]
            self._context = np.concatenate([self._context, out["vad"]])[-(d.bridge_frames + d.min_speech_frames):]
            out["vad"] = speech
        self._held, self._held_level = self._held[ready:], self._held_level[ready:]
        self._held_extra = {k: v[ready:] for k, v in self._held_extra.items()}
        speech = out.get("vad", True)
        if "voiced" in out:
            out["voiced"] = out["voiced"] & speech
        if "f0_hz" in out:
            out["f0_hz"] = np.where(out.get("voiced", speech), out["f0_hz"], np.nan)
        return out
