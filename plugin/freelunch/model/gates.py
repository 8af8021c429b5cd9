"""DynCP gate: decides per frame which hidden channels of a TCN block are computed."""
from __future__ import annotations

import torch
from torch import nn


class HeavisideSTE(torch.autograd.Function):
    """Forward: step(logits > 0). Backward: derivative of sigmoid(logits / temperature).

    The step makes the mask binary (so pruned channels can really be skipped), while the
    sigmoid surrogate lets the SE and sparsity losses reach the gate parameters.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, temperature: float) -> torch.Tensor:
        ctx.save_for_backward(logits)
        ctx.temperature = temperature
        return (logits > 0).to(logits.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (logits,) = ctx.saved_tensors
        s = torch.sigmoid(logits / ctx.temperature)
        return grad * s * (1 - s) / ctx.temperature, None


class DynCPGate(nn.Module):
    """Causal moving average of the block input -> 1x1 conv -> ReLU -> 1x1 conv -> logits.

    The average over the last ``window`` frames (zeros before the start) makes the decision
    depend on a short context rather than one noisy frame, and is cheap to stream.
    """

    def __init__(self, in_channels: int, hidden: int, out_channels: int, window: int, temperature: float):
        super().__init__()
        self.window = window
        self.temperature = temperature
        self.net = nn.Sequential(
            nn.Conv1d(in_channels, hidden, 1), nn.ReLU(), nn.Conv1d(hidden, out_channels, 1)
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (B, C_in, T) -> mask, logits: (B, C_hidden, T)
        padded = nn.functional.pad(x, (self.window - 1, 0))
        average = padded.unfold(-1, self.window, 1).mean(-1)
        logits = self.net(average)
        return HeavisideSTE.apply(logits, self.temperature), logits
