"""Offline inference for whole signals: every frame at once, as matrix products.

Per-frame kernels cannot beat a batched matrix product, so offline the hidden channels are
computed densely and the gate masks applied, which gives the same output as skipping them.
Frames are rows (``(T, C)`` layout) so that each 1x1 convolution is one BLAS call with the
bias fused in; ``nn.Conv1d`` with kernel 1 would take a slow generic path. The weights are
the streaming engine's export (eval-mode norms as per-channel affine maps).
"""
from __future__ import annotations

import numpy as np
import torch

from . import stft as S
from .engine import export_weights
from .network import ConvFSENet


class BatchedEngine:
    """Whole-signal enhancer: ``engine(x)`` -> (enhanced (N,), masks (T, blocks, hidden) bool).

    Equals the network's eval-mode forward and the streaming engine to float tolerance.

    >>> enhanced, masks = BatchedEngine(ConvFSENet().eval())(np.zeros(16000, np.float32))
    >>> enhanced.shape, masks.shape
    ((16000,), (64, 9, 256))
    """

    def __init__(self, net: ConvFSENet, chunk: int = 256):
        net = net.eval()
        self.chunk = chunk
        (self.front_w, self.front_b, self.up_w, self.up_b, self.prelu1, self.n1_scale, self.n1_shift,
         self.dw_w, self.dw_b, self.prelu2, self.n2_scale, self.n2_shift, self.down_wt, self.down_b,
         self.g1_w, self.g1_b, self.g2_w, self.g2_b, dilations, self.back_w, self.back_b, self.gated,
         ) = (torch.from_numpy(p) if isinstance(p, np.ndarray) else p for p in export_weights(net))
        self.dilations = dilations.tolist()
        self.window = net.config["gate_window"]
        self.compression = net.compression

    def _gate(self, b: int, x: torch.Tensor) -> torch.Tensor:
        """(T, C) block input -> (T, hidden) float 0/1 mask, from the causal moving average."""
        total = x.clone()  # running sum of the last `window` frames, zeros before the start
        for lag in range(1, self.window):
            total[lag:] += x[:-lag]
        hidden = torch.relu(torch.addmm(self.g1_b[b], total / self.window, self.g1_w[b].T))
        return (torch.addmm(self.g2_b[b], hidden, self.g2_w[b].T) > 0).float()

    def _block(self, b: int, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        h = torch.nn.functional.prelu(torch.addmm(self.up_b[b], x, self.up_w[b].T), self.prelu1[b])  # (T, hidden)
        h = torch.addcmul(self.n1_shift[b], h, self.n1_scale[b])
        if mask is not None:
            h.mul_(mask)
        # causal depthwise: tap k looks (taps - 1 - k) * dilation frames back
        taps, dilation = self.dw_w.shape[-1], self.dilations[b]
        d = torch.addcmul(self.dw_b[b], h, self.dw_w[b, :, taps - 1])
        for k in range(taps - 1):
            lag = (taps - 1 - k) * dilation
            if lag < len(h):
                d[lag:].addcmul_(h[:-lag], self.dw_w[b, :, k])
        d = torch.addcmul(self.n2_shift[b], torch.nn.functional.prelu(d, self.prelu2[b]), self.n2_scale[b])
        if mask is not None:
            d.mul_(mask)
        return torch.addmm(self.down_b[b], d, self.down_wt[b]).add_(x)  # residual, (T, C)

    def _layer(self, b: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Gate and block ``b`` over all frames, ``chunk`` frames at a time so that the
        intermediates stay in cache. Each chunk is computed from enough earlier frames
        (gate window + depthwise reach) that its own frames are exact."""
        reach = self.window - 1 + (self.dw_w.shape[-1] - 1) * self.dilations[b]
        out = torch.empty_like(x)
        masks = torch.empty(len(x), self.up_w.shape[1], dtype=torch.bool) if self.gated else None
        for start in range(0, len(x), self.chunk):
            end, first = start + self.chunk, max(0, start - reach)
            mask = self._gate(b, x[first:end]) if self.gated else None
            out[start:end] = self._block(b, x[first:end], mask)[start - first :]
            if mask is not None:
                masks[start:end] = mask[start - first :].bool()
        return out, masks

    def __call__(self, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            spec = S.stft(torch.from_numpy(np.asarray(noisy, np.float32))[None])  # (1, 257, T)
            feats = S.compress(spec, self.compression)[0].T.contiguous()  # (T, 257)
            x = torch.relu(torch.addmm(self.front_b, feats, self.front_w.T))  # (T, C)
            masks = torch.ones(len(x), len(self.dilations), self.up_w.shape[1], dtype=torch.bool)
            for b in range(len(self.dilations)):
                x, mask = self._layer(b, x)
                if mask is not None:
                    masks[:, b] = mask
            gain = torch.sigmoid(torch.addmm(self.back_b, x, self.back_w.T))  # (T, 257)
            enhanced = S.istft(spec * gain.T[None], len(noisy))[0]
        return enhanced.numpy(), masks.numpy()
