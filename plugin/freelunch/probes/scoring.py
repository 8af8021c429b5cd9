"""Scores of frame-property predictions against the frame targets."""
from __future__ import annotations

import numpy as np

from .linear import CLASSIFIERS


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

    return {"r2": float(r2_score(y_true, y_pred)), "mae": float(mean_absolute_error(y_true, y_pred)),
            "frames": int(len(y_true))}


def score_task(task: str, y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    if task in CLASSIFIERS:
        return classification(y_true.astype(int), y_pred.astype(int))
    keep = ~np.isnan(y_true) & ~np.isnan(y_pred)
    return regression(y_true[keep], y_pred[keep])
