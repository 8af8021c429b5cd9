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
        # Frames pushed but not yet decided: smoothed scores, input level and extra columns.
        self._scores = self._level = None
        self._extra: dict[str, np.ndarray] = {}
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
        return self._emit(final=True)

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
        self._scores = np.zeros((0, width), np.float32)
        self._level = np.zeros(0, np.float32)
        # Where _decide finds each task (-1: not scored): its columns' start and stop, in DECIDED's order.
        f0 = self.probes.probes.get("f0_hz")
        self._f0_values = np.zeros(0, np.float32) if f0 is None or f0.values is None or "f0_hz" not in cols \
            else f0.values.astype(np.float32)
        self._layout = np.array([v for task in DECIDED for v in ((cols[task].start, cols[task].stop)
                                                                  if task in cols else (-1, -1))], np.int64)

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
        self._scores = np.concatenate([self._scores, scores])
        self._level = np.concatenate([self._level, level])
        self._extra = joined(self._extra, extra)
        return self._emit(final=False)

    def _emit(self, final: bool) -> dict[str, np.ndarray]:
        """Decide the frames that the lags and the clean-up's look-ahead now allow.

        The stream holds the frames not yet decided. A frame is aligned once its lagged scores
        have arrived (at the end, the last frames take the last score), and decided once the
        ``decision.lookahead`` aligned frames after it are known."""
        if self.cols is None:
            return {}
        held = len(self._level)
        aligned = held if final else max(0, held - self._max_lag)
        ready = aligned if final else max(0, aligned - self.decision.lookahead)
        if not ready:
            return {}
        vad_prob, speech, voiced_prob, voiced, category, noise_prob, f0, snr, noise_level = _decide(
            self._scores, self._level, self._lag, aligned, ready, self._layout, self._f0_values,
            np.float32(self.decision.threshold))
        out = {name: column for name, column in zip(
            ("vad_prob", "voiced_prob", "voiced", "noise_category", "noise_prob", "f0_hz", "snr_db", "noise_level_db"),
            (vad_prob, voiced_prob, voiced, category, noise_prob, f0, snr, noise_level)) if len(column)}
        out.update({k: v[:ready] for k, v in self._extra.items()})
        if "vad" in self.cols:
            d = self.decision
            raw = np.concatenate([self._context, speech])
            out["vad"] = clean_runs(raw, d.bridge_frames, d.min_speech_frames)[len(self._context):][:ready]
            self._context = raw[: len(raw) - (aligned - ready)][-(d.bridge_frames + d.min_speech_frames):]
        self._scores, self._level = self._scores[ready:], self._level[ready:]
        self._extra = {k: v[ready:] for k, v in self._extra.items()}
        speech = out.get("vad", True)
        if "voiced" in out:
            out["voiced"] = out["voiced"] & speech
        if "f0_hz" in out:
            out["f0_hz"] = np.where(out.get("voiced", speech), out["f0_hz"], np.float32(np.nan))
        return out


# The tasks that _decide reads, in the order of ProbeStream._layout.
DECIDED = ("vad", "voiced", "noise_category", "f0_hz", "snr_db", "noise_level_db")


@numba.njit(cache=True, nogil=True)
def _decide(scores, level_db, lag, aligned, ready, layout, f0_values, threshold):  # pragma: no cover - compiled
    """Each task's column of held frames 0..ready, and the raw speech of frames 0..aligned.

    Frame t reads column k's score of frame min(t + lag[k], last held). ``layout`` gives each
    task of DECIDED its columns' start and stop (-1: not scored, and its columns come back
    empty). Below SILENCE_DB a frame holds neither speech nor a noise to name."""
    one = np.float32(1.0)
    last = scores.shape[0] - 1

    def at(t, k):
        return scores[min(t + lag[k], last), k]

    def best_of(t, start, stop):  # the first highest of columns start..stop: (its offset, its score)
        best, top = 0, at(t, start)
        for k in range(start + 1, stop):
            if at(t, k) > top:
                best, top = k - start, at(t, k)
        return best, top

    vad, voiced, noise, f0, snr, noise_level = layout[0], layout[2], layout[4], layout[6], layout[8], layout[10]
    has_vad, has_voiced, has_noise = vad >= 0, voiced >= 0, noise >= 0
    vad_prob = np.empty(ready if has_vad else 0, np.float32)
    speech = np.zeros(aligned if has_vad else 0, np.bool_)
    voiced_prob = np.empty(ready if has_voiced else 0, np.float32)
    is_voiced = np.empty(ready if has_voiced else 0, np.bool_)
    category = np.empty(ready if has_noise else 0, np.int64)
    noise_prob = np.empty(ready if has_noise else 0, np.float32)
    f0_hz = np.empty(ready if f0 >= 0 else 0, np.float32)
    snr_db = np.empty(ready if snr >= 0 else 0, np.float32)
    noise_db = np.empty(ready if noise_level >= 0 else 0, np.float32)
    for t in range(aligned):
        if has_vad:
            p = one / (one + np.exp(-at(t, vad)))
            speech[t] = p >= threshold and level_db[t] >= SILENCE_DB
            if t < ready:
                vad_prob[t] = p
        if t >= ready:
            continue
        if has_voiced:
            voiced_prob[t] = one / (one + np.exp(-at(t, voiced)))
            is_voiced[t] = voiced_prob[t] >= 0.5
        if has_noise:  # the winning class, and its softmax probability: how sure the probe is
            best, top = best_of(t, noise, layout[5])
            total = np.float32(0.0)
            for k in range(noise, layout[5]):
                total += np.exp(at(t, k) - top)
            category[t] = best if level_db[t] >= SILENCE_DB else -1
            noise_prob[t] = one / total
        if f0 >= 0:  # a regression, or the value of the best pitch class
            if f0_values.shape[0] == 0:
                f0_hz[t] = at(t, f0)
            else:
                f0_hz[t] = f0_values[best_of(t, f0, layout[7])[0]]
        if snr >= 0:
            snr_db[t] = at(t, snr)
        if noise_level >= 0:
            noise_db[t] = at(t, noise_level)
    return vad_prob, speech, voiced_prob, is_voiced, category, noise_prob, f0_hz, snr_db, noise_db
