"""Feature types a probe can read, per frame, as in the paper's comparison.

- ``masks``: the binary gate masks, blocks × hidden (2304) — what the product uses;
- ``logits``: the gate logits before the step;
- ``activations``: the masked hidden activations after each block's second norm (2304, the
  same size as the masks so that the comparison is fair);
- ``spectrum``: the log-magnitude input spectrum (257), a baseline that needs no network;
- ``masks_stacked``: the masks of this frame and the two before it (free at inference).
"""
from __future__ import annotations

import numpy as np
import torch

from ..model import ConvFSENet
from ..model import stft as S

FEATURE_TYPES = ("masks", "logits", "activations", "spectrum", "masks_stacked")
STACK = 3


def stack_previous(masks: np.ndarray, depth: int = STACK) -> np.ndarray:
    """(T, D) -> (T, depth*D): each frame with the ``depth - 1`` frames before it (zeros before the start)."""
    padded = np.concatenate([np.zeros((depth - 1, masks.shape[1]), masks.dtype), masks])
    return np.concatenate([padded[depth - 1 - k : len(padded) - k] for k in range(depth)], axis=1)


def extract(net: ConvFSENet, noisy: np.ndarray, types=FEATURE_TYPES) -> dict[str, np.ndarray]:
    """Run the network once on a 16 kHz signal; return each feature type as (T, D)."""
    captured = []
    hooks = [b.norm2.register_forward_hook(lambda m, i, o: captured.append(o)) for b in net.blocks]
    try:
        with torch.no_grad():
            spec = S.stft(torch.from_numpy(noisy)[None])
            _, trace = net.forward_spec(spec)
    finally:
        for h in hooks:
            h.remove()
    masks = trace.masks[0].permute(2, 0, 1).reshape(spec.shape[-1], -1)  # (T, blocks*hidden)
    out = {}
    if "masks" in types or "masks_stacked" in types:
        out["masks"] = masks.numpy().astype(bool)
    if "logits" in types:
        out["logits"] = trace.logits[0].permute(2, 0, 1).reshape(spec.shape[-1], -1).numpy()
    if "activations" in types:
        acts = torch.stack([c[0] for c in captured], 0).permute(2, 0, 1).reshape(spec.shape[-1], -1)
        out["activations"] = (acts * masks).numpy()
    if "spectrum" in types:
        out["spectrum"] = torch.log(spec[0].abs().T + 1e-6).numpy()
    if "masks_stacked" in types:
        out["masks_stacked"] = stack_previous(out["masks"])
    return {k: v for k, v in out.items() if k in types}
