"""Multiply-accumulate counts per 16 ms frame, dense and as the skipping engine executes them."""
from __future__ import annotations

import numpy as np

from . import framing as S


def block_macs(channels: int, hidden: int, kernel: int, active: float | np.ndarray) -> float | np.ndarray:
    """MACs of one TCN block when ``active`` hidden channels are computed: 1x1 up, depthwise, 1x1 down."""
    return active * (channels + kernel + channels)


def gate_macs(channels: int, hidden: int, gate_hidden: int) -> int:
    """MACs of one DynCP gate (its moving average is adds only and not counted)."""
    return channels * gate_hidden + gate_hidden * hidden


def frame_macs(config: dict, usage: np.ndarray | None = None) -> dict:
    """Per-frame MACs by part.

    ``usage``: per-block fraction of hidden channels computed, shape (n_blocks,); None means
    dense. Returns {"frontend", "blocks" (list), "gates", "backend", "total"}.
    """
    c, h, k = config["channels"], config["hidden"], config["kernel"]
    n_blocks = config["stacks"] * len(config["dilations"])
    active = np.full(n_blocks, float(h)) if usage is None else np.asarray(usage, float) * h
    blocks = [float(block_macs(c, h, k, a)) for a in active]
    gates = n_blocks * gate_macs(c, h, config["gate_hidden"]) if (config["gated"] and usage is not None) else 0
    frontend = S.N_BINS * c
    backend = c * S.N_BINS
    return {
        "frontend": frontend,
        "blocks": blocks,
        "gates": gates,
        "backend": backend,
        "total": frontend + sum(blocks) + gates + backend,
    }
