"""Causal Conv-FSENet with DynCP gates (one network, asteroid style)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import stft as S
from .engine import NetworkWeights
from .gates import DynCPGate
from .smoothing import ema, fresh_state


def smooth_over_frames(gain: torch.Tensor, alpha: float) -> torch.Tensor:
    """(B, K, T) -> (B, K, T), each signal averaged over its frames from a fresh stream.
    Inference only: the average runs outside autograd."""
    frames = gain.detach().transpose(1, 2).contiguous().numpy()  # (B, T, K)
    for signal in frames:
        ema(signal, np.float32(alpha), fresh_state(signal.shape[1]))
    return torch.from_numpy(frames).transpose(1, 2)


@dataclass
class GateTrace:
    """What the gates decided, for every block and frame.

    masks:  (B, n_blocks, hidden, T) float 0/1: channel c of block b was computed at frame t.
    logits: (B, n_blocks, hidden, T) the gate logits before the step (mask = logits > 0).
    usage:  (B, n_blocks, T) fraction of hidden channels computed.
    A dense network reports all-ones masks, +inf logits and usage 1.
    """

    masks: torch.Tensor
    logits: torch.Tensor

    @property
    def usage(self) -> torch.Tensor:
        return self.masks.mean(dim=2)


class TCNBlock(nn.Module):
    """1x1 up -> PReLU -> BN -> causal depthwise -> PReLU -> BN -> (gate) -> 1x1 down -> residual.

    BatchNorm is used because at inference it is a per-channel affine map: skipping one
    hidden channel never changes another, so the skipping engine is exact. The mask is
    applied after each norm; a masked channel is exactly zero, including in the depthwise
    history seen by later frames.
    """

    def __init__(self, channels: int, hidden: int, kernel: int, dilation: int):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.up = nn.Conv1d(channels, hidden, 1)
        self.act1 = nn.PReLU(hidden)
        self.norm1 = nn.BatchNorm1d(hidden)
        self.depthwise = nn.Conv1d(hidden, hidden, kernel, dilation=dilation, groups=hidden)
        self.act2 = nn.PReLU(hidden)
        self.norm2 = nn.BatchNorm1d(hidden)
        self.down = nn.Conv1d(hidden, channels, 1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        # x: (B, 128, T); mask: (B, 256, T) or None for dense
        h = self.norm1(self.act1(self.up(x)))  # (B, 256, T)
        if mask is not None:
            h = h * mask
        h = self.norm2(self.act2(self.depthwise(nn.functional.pad(h, (self.pad, 0)))))
        if mask is not None:
            h = h * mask
        return x + self.down(h)  # (B, 128, T)


class ConvFSENet(nn.Module):
    """Magnitude-mask speech enhancer on a causal 512/256 STFT at 16 kHz.

    ``gated=False`` builds the dense network (no gates at all). With gates,
    ``force_dense=True`` skips them and keeps every channel (the dense warm-up), and
    ``masks`` replaces the gates' decisions (used to check the skipping engine).
    ``gain_exponent`` calibrates the trained mask at inference (eval mode only): the mask is
    raised to this power, below 1 to suppress less, then averaged over frames with coefficient
    ``gain_smoothing`` (causal; 0 is off). ``recipes/calibrate_gain.py`` picks both on valid.
    """

    def __init__(
        self,
        channels: int = 128,
        hidden: int = 256,
        kernel: int = 3,
        dilations: tuple[int, ...] = (1, 2, 4),
        stacks: int = 3,
        gated: bool = True,
        gate_hidden: int = 64,
        gate_window: int = 4,
        gate_temperature: float = 1.0,
        compression: float = 0.3,
        gain_exponent: float = 1.0,
        gain_smoothing: float = 0.0,
    ):
        super().__init__()
        if not 0.0 < gain_exponent <= 4.0:
            raise ValueError(f"gain_exponent must be in (0, 4], got {gain_exponent}")
        if not 0.0 <= gain_smoothing < 1.0:
            raise ValueError(f"gain_smoothing must be in [0, 1), got {gain_smoothing}")
        self.config = dict(
            channels=channels, hidden=hidden, kernel=kernel, dilations=tuple(dilations), stacks=stacks,
            gated=gated, gate_hidden=gate_hidden, gate_window=gate_window,
            gate_temperature=gate_temperature, compression=compression, gain_exponent=gain_exponent,
            gain_smoothing=gain_smoothing,
        )
        self.compression = compression
        self.gain_exponent = gain_exponent
        self.gain_smoothing = gain_smoothing
        self.frontend = nn.Conv1d(S.N_BINS, channels, 1)
        self.blocks = nn.ModuleList(
            TCNBlock(channels, hidden, kernel, d) for _ in range(stacks) for d in dilations
        )
        self.gates = (
            nn.ModuleList(
                DynCPGate(channels, gate_hidden, hidden, gate_window, gate_temperature) for _ in self.blocks
            )
            if gated
            else None
        )
        self.backend = nn.Conv1d(channels, S.N_BINS, 1)

    @property
    def gated(self) -> bool:
        return self.gates is not None

    def weights(self) -> NetworkWeights:
        """The config and the state dict as numpy arrays: what the engines read. The mask's
        calibration is read from the attributes that ``forward`` reads (a recipe sets them)."""
        config = dict(self.config, compression=self.compression, gain_exponent=self.gain_exponent,
                      gain_smoothing=self.gain_smoothing)
        return NetworkWeights(config, {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()})

    def forward_spec(
        self, spec: torch.Tensor, masks: torch.Tensor | None = None, force_dense: bool = False
    ) -> tuple[torch.Tensor, GateTrace]:
        """(B, 257, T) complex noisy spectrum -> (B, 257, T) real mask in [0, 1], GateTrace."""
        x = torch.relu(self.frontend(S.compress(spec, self.compression)))  # (B, 128, T)
        all_masks, all_logits = [], []
        for b, block in enumerate(self.blocks):
            if self.gates is None or force_dense:
                mask, logits = None, None
            elif masks is not None:
                mask, logits = masks[:, b], self.gates[b](x)[1]
            else:
                mask, logits = self.gates[b](x)
            x = block(x, mask)
            all_masks.append(torch.ones(x.shape[0], block.up.out_channels, x.shape[2]) if mask is None else mask)
            all_logits.append(torch.full_like(all_masks[-1], float("inf")) if logits is None else logits)
        gain = torch.sigmoid(self.backend(x))  # (B, 257, T)
        if not self.training and self.gain_exponent != 1.0:
            gain = gain**self.gain_exponent
        if not self.training and self.gain_smoothing > 0:
            gain = smooth_over_frames(gain, self.gain_smoothing)
        return gain, GateTrace(torch.stack(all_masks, 1), torch.stack(all_logits, 1))

    def forward(
        self, wav: torch.Tensor, masks: torch.Tensor | None = None, force_dense: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, GateTrace]:
        """(B, N) noisy audio -> enhanced (B, N), enhanced spectrum (B, 257, T), GateTrace."""
        spec = S.stft(wav)
        gain, trace = self.forward_spec(spec, masks, force_dense)
        enhanced_spec = spec * gain
        return S.istft(enhanced_spec, wav.shape[-1]), enhanced_spec, trace
