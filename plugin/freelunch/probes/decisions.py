"""From the probes' scores to the track's columns, one stream at a time.

Probes that read the input level get their level terms first (``level.py``). Scores are
smoothed causally, then aligned: each task's answer trails the signal by a few
frames (the network is causal, and the smoothing averages past frames), so frame t takes
the score of frame t + lag. Then they are decided. The VAD gets three more steps. A frame
is speech only if the input level moves: speech rises and falls with its syllables, while
the steady noises that the masks can mistake for speech (a running tap) hardly do; so the
level's median absolute deviation over the last ``modulation_frames`` frames (up to frame
t + lag) must reach ``min_modulation_db``. The first ``startup_frames`` of a stream are never
speech: the network starts from zero history, and its gates open as if for speech for
about 14 frames before they settle. Then the VAD's
speech segments are cleaned up the usual way: gaps between speech shorter than
``bridge_frames`` are filled, then speech runs shorter than ``min_speech_frames`` are dropped. Last,
a run counts only if the enhancer keeps it: of the input's energy over the run's first
``gain_frames`` frames, the share that the enhancer keeps must reach ``min_gain_db``. The enhancer
removes loud noise that the masks mistake for speech (a crackling fire, a tap), and keeps the
loud frames of speech, its syllables, even at -5 dB SNR: so the share is taken of the energy,
where the syllables weigh most, not averaged over frames. What it keeps must also move like
syllables: the standard deviation of the enhanced level (dB) over those frames must reach
``min_kept_spread_db``, which drops a steady tone the enhancer passes as a voice (a whale's
song). A frame's answer then depends on the
frames after it, so the stream holds each frame back ``lookahead`` frames: the largest lag plus
the clean-up's and the gain check's look-ahead (the audio is not delayed; only its properties
are). Voicing and F0 follow the final VAD.
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
    """How frame scores become speech: a probability threshold, the level-modulation veto
    (``min_modulation_db`` 0: off), the start-up hold (0: off), the run clean-up (1: off), then
    the runs' gain check (``min_gain_db`` None: off) with its spread check (``min_kept_spread_db``
    0: off).

    >>> VadDecision(0.4, bridge_frames=8, min_speech_frames=20).lookahead
    26
    >>> VadDecision(0.4, bridge_frames=8, min_speech_frames=20, gain_frames=30, min_gain_db=-17.0).lookahead
    55
    """

    threshold: float = 0.5
    bridge_frames: int = 1
    min_speech_frames: int = 1
    startup_frames: int = 0
    modulation_frames: int = 1
    min_modulation_db: float = 0.0
    gain_frames: int = 1
    min_gain_db: float | None = None
    min_kept_spread_db: float = 0.0

    def __post_init__(self):
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"VAD threshold must be strictly between 0 and 1, got {self.threshold}")
        m = self.min_modulation_db
        if isinstance(m, bool) or not isinstance(m, (int, float, np.floating)) or not 0.0 <= m < 100.0:
            raise ValueError(f"min_modulation_db must be a number of dB in [0, 100), got {self.min_modulation_db!r}")
        g = self.min_gain_db
        if g is not None and (isinstance(g, bool) or not isinstance(g, (int, float, np.floating)) or not -100.0 <= g <= 0.0):
            raise ValueError(f"min_gain_db must be None (off) or a number of dB in [-100, 0], got {self.min_gain_db!r}")
        k = self.min_kept_spread_db
        if isinstance(k, bool) or not isinstance(k, (int, float, np.floating)) or not 0.0 <= k < 100.0:
            raise ValueError(f"min_kept_spread_db must be a number of dB in [0, 100), got {self.min_kept_spread_db!r}")
        if k > 0 and g is None:
            raise ValueError("min_kept_spread_db checks the runs that the gain check reads: set min_gain_db too")
        for name, least in (("bridge_frames", 1), ("min_speech_frames", 1), ("startup_frames", 0),
                            ("modulation_frames", 1), ("gain_frames", 1)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
                raise ValueError(f"{name} must be a whole number of frames >= {least}, got {value!r}")

    @property
    def clean_up_lookahead(self) -> int:
        """Frames the clean-up waits for: enough to see a gap close and a run reach its minimum."""
        return self.bridge_frames - 1 + self.min_speech_frames - 1

    @property
    def lookahead(self) -> int:
        """Frames a decision waits for: the clean-up's, then a run's first ``gain_frames``."""
        return self.clean_up_lookahead + (self.gain_frames - 1 if self.min_gain_db is not None else 0)

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


# Levels are floored here before their spread is taken: digital silence is -inf dBFS.
MODULATION_FLOOR_DB = -100.0


@numba.njit(cache=True, nogil=True)
def _level_spread(levels, first, window):  # pragma: no cover - compiled
    # Per frame from ``first`` on, the median absolute deviation of the levels in the window
    # ending there (fewer at a stream's start). A median, so that one step in level (a noise
    # that starts, a fade-in) does not read as modulation for a whole window, as it did with
    # the standard deviation. A plain loop, so a frame's value does not depend on how the
    # stream was cut into pushes.
    out = np.empty(len(levels) - first)
    for i in range(first, len(levels)):
        span = levels[max(0, i - window + 1) : i + 1]
        out[i - first] = np.median(np.abs(span - np.median(span)))
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
        self._gain = np.zeros(0, np.float32)  # the enhancer's gain on the pending frames (dB)
        self._modulation = np.zeros(0)  # level spread of the pending frames (dB)
        self._recent_levels = np.zeros(0)  # the last levels, the next frames' modulation window
        self._extra: dict[str, np.ndarray] = {}
        self._held: dict[str, np.ndarray] = {}
        # Raw VAD of frames already emitted, as context: far enough back that the clean-up of
        # the held frames reads the same as on the whole signal.
        self._context = np.zeros(0, bool)
        # Cleaned frames waiting for their run's gain check: from the first frame of a run whose
        # first gain_frames have not all arrived. A run judged already that goes on into the
        # next push keeps its verdict.
        self._run_pending: dict[str, np.ndarray] = {}
        self._run_verdict: bool | None = None
        self._frames = 0  # frames aligned so far, for the start-up hold

    @property
    def _checks_gain(self) -> bool:
        return self.decision.min_gain_db is not None

    @property
    def lookahead(self) -> int:
        """Frames a pushed frame waits before it is decided."""
        return self._max_lag + self.decision.lookahead

    def push(self, masks: list[np.ndarray], level_db: np.ndarray | None = None, gain_db: np.ndarray | None = None,
             **extra: np.ndarray) -> dict[str, np.ndarray]:
        per_channel = [self.probes.scores(m) for m in masks]
        scores = per_channel[0]
        if len(per_channel) > 1:
            scores = {k: np.mean([s[k] for s in per_channel], axis=0) for k in scores}
        return self.push_scores(scores, level_db, gain_db, **extra)

    def push_scores(self, scores: dict[str, np.ndarray], level_db: np.ndarray | None = None,
                    gain_db: np.ndarray | None = None, **extra: np.ndarray) -> dict[str, np.ndarray]:
        """As ``push``, from the probes' raw scores (the masks' part: this adds the level terms)."""
        n = len(next(iter(scores.values())))
        if self._checks_gain and "vad" in scores:
            if gain_db is None or level_db is None:
                raise ValueError("this VAD decision checks the enhancer's gain on speech runs: pass level_db and gain_db with the scores")
            self._gain = np.concatenate([self._gain, np.asarray(gain_db[:n], np.float32)])
        if self.probes.reads_levels:
            if level_db is None:
                raise ValueError("these probes read the input level: pass level_db with the scores")
            scores = self.probes.with_levels(scores, self._level_features.push(level_db[:n]))
        if self.smooth:
            scores = self.probes.smooth(scores, self._smoothing)
        level = np.full(n, np.inf, np.float32) if level_db is None else np.asarray(level_db[:n], np.float32)
        self._scores, self._extra = joined(self._scores, scores), joined(self._extra, extra)
        self._level = np.concatenate([self._level, level])
        vetoing = level_db is not None and self.decision.min_modulation_db > 0  # no levels or no minimum: no veto
        modulation = self._spread(level) if vetoing else np.full(n, np.inf)
        self._modulation = np.concatenate([self._modulation, modulation])
        return self._advance(final=False)

    def _spread(self, level: np.ndarray) -> np.ndarray:
        """The new frames' level modulation (dB)."""
        window = self.decision.modulation_frames
        levels = np.concatenate([self._recent_levels, np.maximum(level, MODULATION_FLOOR_DB)])
        self._recent_levels = levels[max(0, len(levels) - (window - 1)):]  # a negative start would count from the end
        return _level_spread(levels, len(levels) - len(level), window)

    def flush(self) -> dict[str, np.ndarray]:
        return self._advance(final=True)

    def whole(self, scores: dict[str, np.ndarray], level_db: np.ndarray | None = None,
              gain_db: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The columns of a whole signal's raw scores: pushed, then flushed."""
        return joined(self.push_scores(scores, level_db, gain_db), self.flush())

    def _advance(self, final: bool) -> dict[str, np.ndarray]:
        """Align the frames whose lagged scores have arrived, then decide what the look-ahead allows."""
        total = len(self._level)
        ready = total if final else max(0, total - self._max_lag)
        if self._scores and ready:
            frames = np.arange(ready)
            aligned = {k: v[np.minimum(frames + self.lags.get(k, 0), total - 1)] for k, v in self._scores.items()}
            modulation = self._modulation[np.minimum(frames + self.lags.get("vad", 0), total - 1)]
            new = {**self._columns(aligned, self._level[:ready], modulation), **{k: v[:ready] for k, v in self._extra.items()}}
            if "vad" in new:
                new["vad"][: max(0, self.decision.startup_frames - self._frames)] = False
                if self._checks_gain:  # each frame's input energy, and the part of it the enhancer keeps
                    new["_energy"] = 10 ** (self._level[:ready].astype(np.float64) / 10)
                    new["_kept"] = new["_energy"] * 10 ** (self._gain[:ready].astype(np.float64) / 10)
                    self._gain = self._gain[ready:]
            self._frames += ready
            self._scores = {k: v[ready:] for k, v in self._scores.items()}
            self._extra = {k: v[ready:] for k, v in self._extra.items()}
            self._level, self._modulation = self._level[ready:], self._modulation[ready:]
            self._held = joined(self._held, new)
        return self._emit(final)

    def _columns(self, scores: dict[str, np.ndarray], level_db: np.ndarray, modulation: np.ndarray) -> dict[str, np.ndarray]:
        """Frame columns before the VAD clean-up; ``level_db`` vetoes speech and the noise
        category below SILENCE_DB, ``modulation`` vetoes speech below the decision's minimum."""
        out = {}
        if "vad" in scores:
            out["vad_prob"] = sigmoid(scores["vad"][:, 0])
            out["vad"] = ((out["vad_prob"] >= self.decision.threshold) & (level_db >= SILENCE_DB)
                          & (modulation >= self.decision.min_modulation_db))
        if "voiced" in scores:
            out["voiced_prob"] = sigmoid(scores["voiced"][:, 0])
            out["voiced"] = out["voiced_prob"] >= 0.5
        if "f0_hz" in scores:
            out["f0_hz"] = scores["f0_hz"][:, 0]
        if "noise_category" in scores:  # digital silence holds no noise to name: -1, no category
            logits = scores["noise_category"]
            out["noise_category"] = np.where(level_db >= SILENCE_DB, logits.argmax(axis=1), -1)
            # the winning class's softmax probability: how sure the probe is
            top = logits.max(axis=1, keepdims=True)
            out["noise_prob"] = (1.0 / np.exp(logits - top).sum(axis=1)).astype(np.float32)
        for name in ("snr_db", "noise_level_db"):
            if name in scores:
                out[name] = scores[name][:, 0]
        return out

    def _emit(self, final: bool) -> dict[str, np.ndarray]:
        out = self._clean_up(final)
        if self._checks_gain and ("vad" in out or self._run_pending):
            out = self._check_runs(out, final)
        if not out:
            return {}
        for private in ("_energy", "_kept"):  # the gain check's inputs, not columns of the track
            out.pop(private, None)
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
        ready = held if final else max(0, held - self.decision.clean_up_lookahead)
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

    def _check_runs(self, out: dict[str, np.ndarray], final: bool) -> dict[str, np.ndarray]:
        """Cleaned frames, their speech runs kept or dropped by the gain check, up to the first
        run whose verdict still waits for frames (held for the next push)."""
        columns = joined(self._run_pending, out) if self._run_pending else out
        carried = -1 if self._run_verdict is None else int(self._run_verdict)
        d = self.decision
        kept, ready, carry = _judge_runs(np.ascontiguousarray(columns["vad"], np.bool_), columns["_energy"], columns["_kept"],
                                         d.gain_frames, d.min_gain_db, d.min_kept_spread_db, carried, final)
        self._run_verdict = None if carry < 0 else bool(carry)
        n = len(kept)
        self._run_pending = {k: v[ready:] for k, v in columns.items()} if ready < n else {}
        return {**({k: v[:ready] for k, v in columns.items()} if ready < n else columns), "vad": kept[:ready]}


KEPT_FLOOR = 10 ** (MODULATION_FLOOR_DB / 10)  # the enhanced energy of digital silence, floored


@numba.njit(cache=True, nogil=True)
def _judge_runs(speech, energy, kept_energy, first, min_gain_db, min_spread_db, carried, final):  # pragma: no cover - compiled
    # Per speech run: kept if, over its first ``first`` frames (or all of them, once it has
    # ended or the stream has), the enhanced energy over the input energy reaches the floor,
    # and the enhanced level (dB, floored as the veto floors levels) spreads enough.
    # ``carried`` (-1: none, else 0 or 1) is the verdict of a run judged in an earlier push
    # that goes on at frame 0. Returns the verdicts, how many frames are decided (up to the
    # first run still waiting for frames), and the verdict to carry into the next push.
    # Compiled: a stream runs this on every push.
    kept = speech.copy()
    n = len(speech)
    i = 0
    while i < n:
        if not speech[i]:
            i += 1
            continue
        end = i
        while end < n and speech[end]:
            end += 1
        if i == 0 and carried >= 0:
            verdict = carried == 1
        elif end - i >= first or end < n or final:
            stop = min(end, i + first)
            total = energy[i:stop].sum()  # none: digital silence, which holds no speech
            verdict = total > 0 and 10.0 * np.log10(kept_energy[i:stop].sum() / total) >= min_gain_db
            if verdict and min_spread_db > 0:
                kept_db = 10.0 * np.log10(np.maximum(kept_energy[i:stop], KEPT_FLOOR))
                verdict = kept_db.std() >= min_spread_db
        else:
            return kept, i, -1
        kept[i:end] = verdict
        i = end
    carry = -1
    if n and speech[n - 1] and not final:  # the last run may go on in the next push
        carry = 1 if kept[n - 1] else 0
    return kept, n, carry
