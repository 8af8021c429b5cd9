"""Run-time probes: with binary gate masks a linear prediction is ``bias + Σ coef[active]``.

Standardisation is folded into the coefficients when the probes are fitted, so at run time
each task costs one add per active selected channel per output, and no scikit-learn. A probe
may also weigh the stream's input-level features (``probes/level.py``): two multiply-adds
per output.
An F0 probe may be a classifier over pitch classes: its ``values`` hold each class's F0, and
the frame reads the value of the class that scores highest.
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
from safetensors.numpy import load_file, save_file

from .decisions import ProbeStream, VadDecision, column_slices
from .level import LEVEL_FEATURES

TASKS = ("vad", "voiced", "f0_hz", "noise_category", "snr_db", "noise_level_db")
CLASSIFIERS = ("vad", "voiced", "noise_category")


@numba.njit(cache=True, nogil=True)
def weighted_sums(masks, used, index, coef, bias, feature_start, col_start):  # pragma: no cover - compiled
    """Every probe's sums in one pass. masks (F, D) bool; ``used`` (U,) the features some probe
    selects; probe t selects rows index[feature_start[t]:feature_start[t + 1]] of ``used`` and
    writes outputs col_start[t]:col_start[t + 1]; coef (C, W) holds each selected feature's row
    of its probe's coefficients (zeros past its probe's outputs); bias (K,) -> (F, K)."""
    # Frames innermost, in a transposed copy of the used masks: each add then runs over all
    # frames at once, without a branch (coef * mask is exact, as is adding the 0.0 of an
    # inactive feature). Each output still adds its features in index order: the bits do not
    # depend on how many frames come at once.
    n_frames, n_out = masks.shape[0], bias.shape[0]
    on = np.empty((used.shape[0], n_frames), np.float32)
    for f in range(n_frames):
        for u in range(used.shape[0]):
            on[u, f] = masks[f, used[u]]
    sums = np.empty((n_out, n_frames), np.float32)
    for k in range(n_out):
        sums[k, :] = bias[k]
    for t in range(feature_start.shape[0] - 1):
        k0 = col_start[t]
        for j in range(feature_start[t], feature_start[t + 1]):
            u = index[j]
            for k in range(col_start[t + 1] - k0):
                c = coef[j, k]
                for f in range(n_frames):
                    sums[k0 + k, f] += c * on[u, f]
    return sums.T.copy()


class ScoreTable:
    """Several probes' coefficients laid out for ``weighted_sums``: one call scores them all,
    into one (F, K) array whose columns ``cols[task]`` are each probe's outputs."""

    def __init__(self, probes: dict[str, "Probe"]):
        widths = [len(p.bias) for p in probes.values()]
        self.cols = column_slices(dict(zip(probes, widths)))
        self._col_start = np.array([0, *(c.stop for c in self.cols.values())], np.int64)
        self._feature_start = np.cumsum([0, *(len(p.index) for p in probes.values())]).astype(np.int64)
        used, index = np.unique(np.concatenate([p.index for p in probes.values()] or [np.zeros(0)])
                                .astype(np.int64), return_inverse=True)
        self._used, self._index = used.astype(np.int64), index.astype(np.int64)
        self._coef = np.zeros((len(self._index), max(widths, default=0)), np.float32)
        for p, start in zip(probes.values(), self._feature_start):
            self._coef[start : start + len(p.index), : len(p.bias)] = p.coef
        self._bias = np.concatenate([p.bias for p in probes.values()] or [np.zeros(0)]).astype(np.float32)

    def __call__(self, masks: np.ndarray) -> np.ndarray:
        """masks (F, D) bool -> (F, K) scores."""
        return weighted_sums(np.ascontiguousarray(masks), self._used, self._index, self._coef, self._bias,
                             self._feature_start, self._col_start)


@dataclass
class Probe:
    index: np.ndarray  # (C,) int64: selected mask features (block * hidden + channel)
    coef: np.ndarray  # (C, K) float32, standardisation folded in
    bias: np.ndarray  # (K,) float32
    level_coef: np.ndarray | None = None  # (len(LEVEL_FEATURES), K) float32, or None: masks only
    values: np.ndarray | None = None  # (K,) float32: a quantity read as K classes, each class's value

    def __post_init__(self):
        if self.level_coef is not None and self.level_coef.shape != (len(LEVEL_FEATURES), len(self.bias)):
            raise ValueError(f"a probe's level_coef must have shape ({len(LEVEL_FEATURES)}, {len(self.bias)}), "
                             f"one row per input-level feature; got {self.level_coef.shape}")
        if self.values is not None and self.values.shape != self.bias.shape:
            raise ValueError(f"a probe read as classes needs one value per output: {len(self.bias)} outputs, "
                             f"values of shape {self.values.shape}")

    @property
    def level_adds(self) -> int:
        """Multiply-adds per frame of the level terms: one per feature and output."""
        return 0 if self.level_coef is None else self.level_coef.size

    def scores(self, masks: np.ndarray) -> np.ndarray:
        """masks (F, D) bool -> (F, K): the masks' part of the prediction; the stream adds the level terms."""
        return ScoreTable({"": self})(masks)


class LinearProbes:
    """The six probes of a preset (``probes.safetensors`` + ``probes.json``).

    ``smoothing`` maps a task to the coefficient of a causal exponential average of its
    scores over frames (0 or absent: none). ``lags`` maps a task to the frames by which its
    smoothed scores trail the signal: a causal network, and an average over past frames,
    answer late, so frame t takes the score of frame t + lag. ``decision`` turns VAD scores
    into speech. All are chosen on the valid split by fit_probes. ``noise_threshold`` is the
    probability a noise class needs before a label names it (recipes/choose_noise_threshold.py).
    """

    FILE = "probes.safetensors"
    META = "probes.json"

    def __init__(self, probes: dict[str, Probe], category_names: list[str], smoothing: dict[str, float] | None = None,
                 decision: VadDecision | None = None, lags: dict[str, int] | None = None, noise_threshold: float = 0.0):
        self.probes = probes
        self.category_names = category_names
        self.noise_threshold = float(noise_threshold)
        self.smoothing = dict(smoothing or {})
        self.decision = decision or VadDecision()
        self.lags = {task: int(lag) for task, lag in (lags or {}).items()}
        if any(lag < 0 for lag in self.lags.values()):
            raise ValueError(f"probe lags must be whole numbers of frames >= 0, got {self.lags}")

    @property
    def reads_levels(self) -> bool:
        return any(p.level_coef is not None for p in self.probes.values())

    @property
    def max_lag(self) -> int:
        return max(self.lags.values(), default=0)

    @functools.cached_property
    def table(self) -> ScoreTable:
        return ScoreTable(self.probes)

    def scores(self, masks: np.ndarray) -> dict[str, np.ndarray]:
        """masks (F, blocks, hidden) bool -> raw scores per task (logits for classifiers)."""
        packed = self.table(masks.reshape(len(masks), -1))
        return {task: packed[:, cols] for task, cols in self.table.cols.items()}

    def adds(self, masks: np.ndarray) -> dict[str, np.ndarray]:
        """masks (F, blocks, hidden) -> adds per frame of each task's weighted sums: one per
        active selected channel and output (a noise-category channel adds to 13 sums), plus
        one multiply-add per input-level feature and output."""
        flat = masks.reshape(len(masks), -1)
        return {name: flat[:, p.index].sum(axis=1) * p.coef.shape[1] + p.level_adds for name, p in self.probes.items()}

    def stream(self, decision: VadDecision | None = None, smooth: bool = True) -> ProbeStream:
        """A new stream's decisions, with the preset's VAD decision unless one is given."""
        return ProbeStream(self, decision or self.decision, smooth)

    def predict(self, masks: np.ndarray, level_db: np.ndarray | None = None, decision: VadDecision | None = None,
                smooth: bool = True) -> dict[str, np.ndarray]:
        """The columns of one whole signal's masks (F, blocks, hidden), as the effect makes them;
        ``level_db`` as the engine reports it, where the probes read it."""
        return self.stream(decision, smooth).whole(self.scores(masks), level_db)

    def save(self, folder: Path) -> None:
        """Write the probes into ``folder``, each file atomically: a preset being read or run never
        sees half a file."""
        from ..export.common import atomic_output, write_text_atomic  # here: the exporters load mido and jams

        tensors = {}
        for name, p in self.probes.items():
            tensors[f"{name}.index"] = p.index.astype(np.int64)
            tensors[f"{name}.coef"] = p.coef.astype(np.float32)
            tensors[f"{name}.bias"] = p.bias.astype(np.float32)
            for key in ("level_coef", "values"):
                if getattr(p, key) is not None:
                    tensors[f"{name}.{key}"] = getattr(p, key).astype(np.float32)
        atomic_output(Path(folder) / self.FILE, lambda tmp: save_file(tensors, str(tmp)))
        meta = {"tasks": list(self.probes), "category_names": self.category_names, "smoothing": self.smoothing,
                "lag_frames": self.lags, "vad_decision": self.decision.as_dict(), "noise_threshold": self.noise_threshold}
        write_text_atomic(Path(folder) / self.META, json.dumps(meta, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> "LinearProbes":
        folder = Path(folder)
        meta = json.loads((folder / cls.META).read_text())
        tensors = load_file(str(folder / cls.FILE))
        probes = {
            name: Probe(
                np.ascontiguousarray(tensors[f"{name}.index"]),
                np.ascontiguousarray(tensors[f"{name}.coef"]),
                np.ascontiguousarray(tensors[f"{name}.bias"]),
                tensors.get(f"{name}.level_coef"),
                tensors.get(f"{name}.values"),
            )
            for name in meta["tasks"]
        }
        return cls(probes, meta["category_names"], meta.get("smoothing"), VadDecision(**meta.get("vad_decision", {})),
                   meta.get("lag_frames"), meta.get("noise_threshold", 0.0))
