"""Joint training: linear heads on the gate masks, trained beside the SE loss.

The plain probes are fitted after training, on whatever the gates happen to encode. Here
the same kind of linear readout sits on the (straight-through) masks during training, so
the probe losses push the gates to carry the properties too. The heads are thrown away
afterwards: ``fit_probes`` refits the shipped probes on the binary masks as always.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..model.stft import HOP, SAMPLE_RATE, n_frames
from .targets import frame_energy, noise_category, snr_db

JOINT_TASKS = ("vad", "voiced", "f0_hz", "snr_db", "noise_category")
F0_REFERENCE_HZ = 150.0  # log2(f0 / 150 Hz) puts 60-500 Hz in about [-1.3, 1.7]
SNR_SCALE_DB = 20.0  # SNR targets in units of 20 dB, so no task dominates the sum
SCALARS = len(JOINT_TASKS) - 1  # one output each; the noise class's logits follow them


def crop_targets(clean_targets: dict[str, np.ndarray], start: int, length: int) -> dict[str, np.ndarray]:
    """The frame targets of the ``length``-sample crop at ``start`` (a multiple of HOP) of an utterance."""
    first, frames = start // HOP, n_frames(length)
    out = {}
    for key, fill in (("vad", False), ("voiced", False), ("f0_hz", np.nan)):
        values = clean_targets[key][first : first + frames]
        out[key] = np.concatenate([values, np.full(frames - len(values), fill, values.dtype)])
    return out


def silence_span(speech: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """``speech`` with a random ``seconds``-long span zeroed: the mixture there is noise alone,
    which the probes must learn to call no speech (and the enhancer to remove)."""
    length = min(len(speech), int(seconds * SAMPLE_RATE))
    start = int(rng.integers(0, len(speech) - length + 1))
    out = speech.copy()
    out[start : start + length] = 0
    return out if out.any() else speech  # the mix needs some speech to set its level


def frame_targets(clean_targets: dict[str, np.ndarray], mixture: dict, names: list[str]) -> torch.Tensor:
    """(T, 5) float: vad, voiced, log2(f0 / 150 Hz) (NaN unvoiced), SNR / 20 dB (NaN in silence),
    and the index in ``names`` of the noise's class where it is audible (NaN elsewhere), of a
    ``freelunch.data.make_mixture`` output.

    Frames where the clean speech is exactly zero (a silenced span) are no speech, whatever the
    utterance's targets say.
    """
    clean, noise = mixture["clean"], mixture["noise"]
    present = frame_energy(clean) > 0
    voiced = clean_targets["voiced"] & present
    log_f0 = np.where(voiced, np.log2(clean_targets["f0_hz"] / F0_REFERENCE_HZ), np.nan)
    category = noise_category(mixture["category"], names, noise).astype(np.float32)
    columns = [clean_targets["vad"] & present, voiced, log_f0, snr_db(clean, noise) / SNR_SCALE_DB,
               np.where(category >= 0, category, np.nan)[: len(log_f0)]]
    return torch.from_numpy(np.stack([np.asarray(c, np.float32) for c in columns], axis=1))


class JointHeads(nn.Module):
    """One linear readout per task over all gate masks of a frame (blocks × hidden): one output
    for each of the first four tasks, one logit per noise class."""

    def __init__(self, features: int, n_classes: int):
        super().__init__()
        self.linear = nn.Conv1d(features, SCALARS + n_classes, 1)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        # masks: (B, blocks, hidden, T) -> (B, T, 4 + classes)
        return self.linear(masks.flatten(1, 2)).transpose(1, 2)


def joint_loss(outputs: torch.Tensor, targets: torch.Tensor, weights: dict[str, float]) -> torch.Tensor:
    """Weighted mean over tasks (``weights`` per name of ``JOINT_TASKS``; 0 or absent: off): BCE
    for vad and voiced, MSE on voiced frames for log F0, Huber for SNR, cross-entropy on audible
    noise for the class.

    outputs: (B, T, 4 + classes); targets: (B, T', 5), T' <= T (the STFT's last frame).
    """
    frames = min(outputs.shape[1], targets.shape[1])
    out, tgt = outputs[:, :frames], targets[:, :frames]
    losses, total = [], 0.0
    for k, task in enumerate(JOINT_TASKS):
        weight = float(weights.get(task, 0.0))
        defined = ~torch.isnan(tgt[..., k])
        if weight <= 0 or not defined.any():
            continue
        if task in ("vad", "voiced"):
            loss = F.binary_cross_entropy_with_logits(out[..., k][defined], tgt[..., k][defined])
        elif task == "noise_category":
            loss = F.cross_entropy(out[..., SCALARS:][defined], tgt[..., k][defined].long())
        else:
            loss = (F.mse_loss if task == "f0_hz" else F.smooth_l1_loss)(out[..., k][defined], tgt[..., k][defined])
        losses.append(weight * loss)
        total += weight
    return torch.stack(losses).sum() / total if losses else outputs.sum() * 0.0
