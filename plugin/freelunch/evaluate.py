"""``freelunch evaluate``: score a preset on the fixed mixtures of a split."""
from __future__ import annotations

import numpy as np
import torch

from . import data, metrics, presets
from .model.cost import frame_macs


def enhance_offline(net, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched (dense-with-masks) inference: enhanced audio and masks (T, blocks, hidden) bool."""
    with torch.no_grad():
        y, _, trace = net(torch.from_numpy(noisy)[None])
    return y[0].numpy(), trace.masks[0].numpy().transpose(2, 0, 1).astype(bool)


def evaluate_preset(preset: str, split: str = "test", limit: int | None = None, data_root=None) -> dict:
    """PESQ-WB, STOI and SI-SDR of the noisy input and the enhanced output, usage and MACs."""
    net, config, _ = presets.load(preset)
    rows = data.pack_layout(data_root or data.default_data_root())
    noisy_scores, enhanced_scores, usage = [], [], []
    for _, mixture in data.fixed_mixtures(rows, split, limit=limit):
        enhanced, masks = enhance_offline(net, mixture["noisy"])
        noisy_scores.append(metrics.quality(mixture["noisy"], mixture["clean"]))
        enhanced_scores.append(metrics.quality(enhanced, mixture["clean"]))
        usage.append(masks.mean(axis=(0, 2)))
    block_usage = np.mean(usage, axis=0)
    mean = lambda scores: {k: float(np.nanmean([s[k] for s in scores])) for k in scores[0]}  # noqa: E731
    dense, gated = frame_macs(config)["total"], frame_macs(config, block_usage if config["gated"] else None)["total"]
    return {
        "preset": str(preset),
        "split": split,
        "mixtures": len(noisy_scores),
        "noisy": mean(noisy_scores),
        "enhanced": mean(enhanced_scores),
        "usage": float(block_usage.mean()),
        "usage_per_block": block_usage.round(4).tolist(),
        "macs_dense": dense,
        "macs_gated": gated,
        "mac_saving": 1 - gated / dense,
    }


def markdown(report: dict) -> str:
    n, e = report["noisy"], report["enhanced"]
    return "\n".join([
        f"preset {report['preset']} on {report['mixtures']} {report['split']} mixtures",
        "| | PESQ-WB | STOI | SI-SDR (dB) |",
        "|---|---|---|---|",
        f"| noisy | {n['pesq']:.3f} | {n['stoi']:.3f} | {n['si_sdr']:.2f} |",
        f"| enhanced | {e['pesq']:.3f} | {e['stoi']:.3f} | {e['si_sdr']:.2f} |",
        f"usage {report['usage']:.3f}, MACs/frame {report['macs_gated']:,.0f} of {report['macs_dense']:,.0f}"
        f" ({100 * report['mac_saving']:.1f} % saved)",
    ]) + "\n"
