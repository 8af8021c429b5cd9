"""Scores of frame-property predictions against the frame targets."""
from __future__ import annotations

import numpy as np

from .linear import CLASSIFIERS
from .targets import SNR_CLIP_DB

SEGMENT_FRAMES = 62  # ~1 s of 16 ms frames: the segment SNR's window


def classification(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    binary = set(np.unique(y_true)) <= {0, 1} and set(np.unique(y_pred)) <= {0, 1}
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, average="binary" if binary else "macro")),
        "frames": int(len(y_true)),
    }


def regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import mean_absolute_error, r2_score

    if not len(y_true):  # nothing to score (a tiny run where no frame qualifies)
        return {"r2": float("nan"), "mae": float("nan"), "frames": 0}
    return {"r2": float(r2_score(y_true, y_pred)), "mae": float(mean_absolute_error(y_true, y_pred)),
            "frames": int(len(y_true))}


def score_task(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Classifiers on every frame (the noise class where there is a target, >= 0); regressions
    where both target and prediction are defined."""
    if task == "noise_category":
        keep = y_true >= 0
        if not keep.any():
            return {"accuracy": float("nan"), "balanced_accuracy": float("nan"), "f1": float("nan"), "frames": 0}
        y_true, y_pred = y_true[keep], y_pred[keep]
    if task in CLASSIFIERS:
        return classification(y_true.astype(int), y_pred.astype(int))
    keep = ~np.isnan(y_true) & ~np.isnan(y_pred)
    return regression(y_true[keep], y_pred[keep])


def pitch(f0_true: np.ndarray, f0_pred: np.ndarray) -> dict[str, float]:
    """The pitch-tracking field's metrics; NaN is unvoiced in both arrays.

    RPA: the share of reference-voiced frames the system calls voiced within 50 cents.
    GPE: of the frames both call voiced, the share more than 20 % off.
    VDE: the share of all frames whose voicing decision differs from the reference.
    """
    ref, est = ~np.isnan(f0_true), ~np.isnan(f0_pred) & ~(f0_pred <= 0)  # a pitch at or below 0 Hz is no pitch
    both = ref & est
    cents = np.full(len(f0_true), np.inf)
    cents[both] = 1200 * np.abs(np.log2(f0_pred[both] / f0_true[both]))
    ratio_off = np.abs(f0_pred[both] / f0_true[both] - 1) > 0.2
    return {"rpa": float((cents[ref] <= 50).mean()) if ref.any() else float("nan"),
            "gpe": float(ratio_off.mean()) if both.any() else float("nan"),
            "vde": float((ref != est).mean()) if len(ref) else float("nan"),
            "voiced_frames": int(ref.sum())}


def per_mixture_classes(y_true: list[np.ndarray], y_pred: list[np.ndarray], n_classes: int) -> dict[str, float]:
    """Each mixture's majority class over its frames with a target, against its own class."""
    truth, said = [], []
    for t, p in zip(y_true, y_pred):
        keep = t >= 0
        if keep.any():
            truth.append(int(t[keep][0]))
            votes = p[keep][p[keep] >= 0]
            said.append(int(np.bincount(votes, minlength=n_classes).argmax()) if len(votes) else -1)
    if not truth:
        return {"accuracy": float("nan"), "balanced_accuracy": float("nan"), "f1": float("nan"), "mixtures": 0}
    return {**classification(np.array(truth), np.array(said)), "mixtures": len(truth)}


def confusion(y_true: np.ndarray, y_pred: np.ndarray, names: list[str]) -> dict[str, dict[str, int]]:
    """Frames of each true class (rows) by the class said (columns); frames without a target left out."""
    keep = y_true >= 0
    table = {t: {p: 0 for p in [*names, "none"]} for t in names}
    for t, p in zip(y_true[keep], y_pred[keep]):
        table[names[t]][names[p] if p >= 0 else "none"] += 1
    return table


def pooled_snr_db(snr_db: np.ndarray, level_db: np.ndarray) -> float:
    """The SNR of a stretch of frames from each frame's SNR and input level: speech and noise
    energies summed over the frames (energy-weighted), as a label over that stretch reads it."""
    keep = ~np.isnan(snr_db)
    if not keep.any():
        return float("nan")
    energy, ratio = 10 ** (level_db[keep] / 10), 10 ** (snr_db[keep] / 10)
    speech, noise = (energy * ratio / (1 + ratio)).sum(), (energy / (1 + ratio)).sum()
    return float(np.clip(10 * np.log10((speech + 1e-20) / (noise + 1e-20)), *SNR_CLIP_DB))


def energy_snr_db(speech_energy: np.ndarray, noise_energy: np.ndarray) -> float:
    """10·log10(Σ speech energy / Σ noise energy), clipped as the frame targets are."""
    return float(np.clip(10 * np.log10((speech_energy.sum() + 1e-20) / (noise_energy.sum() + 1e-20)), *SNR_CLIP_DB))


def segment_snr(speech_energy: np.ndarray, noise_energy: np.ndarray, pred: np.ndarray, level_db: np.ndarray,
                speech: np.ndarray, frames: int = SEGMENT_FRAMES) -> tuple[np.ndarray, np.ndarray]:
    """(true, predicted) SNR of each whole window of ``frames`` (1 s) that holds speech: the truth
    from the window's speech and noise energies, the prediction pooled from its frames."""
    truth, said = [], []
    for start in range(0, len(pred) - frames + 1, frames):
        w = slice(start, start + frames)
        if speech[w].any():
            truth.append(energy_snr_db(speech_energy[w], noise_energy[w]))
            said.append(pooled_snr_db(pred[w], level_db[w]))
    return np.array(truth), np.array(said)
