"""Streaming inference engine that does not compute pruned channels.

One numba-compiled call processes every complete hop of a buffer in order, carrying the
gate moving averages and the depthwise histories between calls. For each frame and block
it evaluates the gate, then loops over the *active* hidden channels only: their rows of the
1x1 up-projection, their depthwise taps, and their rows of the (transposed, so contiguous)
1x1 down-projection. Pruned channels cost nothing but the gate. The STFT, FFTs and
overlap-add are batched in numpy around that call, so Python overhead is paid per buffer,
not per hop.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numba
import numpy as np

from . import framing as S
from .smoothing import ema, fresh_state

if TYPE_CHECKING:
    from .network import ConvFSENet


@numba.njit(cache=True, fastmath=True, nogil=True)
def _run_frames(feats, frame0, p, ma_hist, dw_hist, masks_out, gains_out):  # pragma: no cover - compiled
    (front_w, front_b, up_w, up_b, act1, n1_scale, n1_shift, dw_w, dw_b, act2, n2_scale, n2_shift,
     down_wt, down_b, g1_w, g1_b, g2_w, g2_b, dilations, back_w, back_b, gated) = p
    n_frames = feats.shape[0]
    n_blocks, hidden, channels = up_w.shape
    kernel = dw_w.shape[2]
    window = ma_hist.shape[1]
    hist_len = dw_hist.shape[2]
    gate_hidden = g1_w.shape[1]
    x = np.empty(channels, np.float32)
    avg = np.empty(channels, np.float32)
    hg = np.empty(gate_hidden, np.float32)
    out = np.empty(channels, np.float32)
    for f in range(n_frames):
        t = frame0 + f
        for o in range(channels):
            acc = front_b[o]
            for i in range(feats.shape[1]):
                acc += front_w[o, i] * feats[f, i]
            x[o] = acc if acc > 0 else 0.0
        for b in range(n_blocks):
            if gated:
                slot = t % window
                for i in range(channels):
                    ma_hist[b, slot, i] = x[i]
                for i in range(channels):
                    acc = 0.0
                    for w in range(window):
                        acc += ma_hist[b, w, i]
                    avg[i] = acc / window
                for j in range(gate_hidden):
                    acc = g1_b[b, j]
                    for i in range(channels):
                        acc += g1_w[b, j, i] * avg[i]
                    hg[j] = acc if acc > 0 else 0.0
                for c in range(hidden):
                    acc = g2_b[b, c]
                    for j in range(gate_hidden):
                        acc += g2_w[b, c, j] * hg[j]
                    masks_out[f, b, c] = acc > 0
            else:
                for c in range(hidden):
                    masks_out[f, b, c] = True
            d = dilations[b]
            cur = t % hist_len
            for o in range(channels):
                out[o] = x[o] + down_b[b, o]
            for c in range(hidden):
                if not masks_out[f, b, c]:
                    dw_hist[b, c, cur] = 0.0
                    continue
                acc = up_b[b, c]
                for i in range(channels):
                    acc += up_w[b, c, i] * x[i]
                if acc < 0:
                    acc *= act1[b, c]
                v = acc * n1_scale[b, c] + n1_shift[b, c]
                dw_hist[b, c, cur] = v
                acc = dw_b[b, c]
                for k in range(kernel):
                    lag = (kernel - 1 - k) * d
                    acc += dw_w[b, c, k] * dw_hist[b, c, (t - lag) % hist_len]
                if acc < 0:
                    acc *= act2[b, c]
                v = acc * n2_scale[b, c] + n2_shift[b, c]
                for o in range(channels):
                    out[o] += down_wt[b, c, o] * v
            for o in range(channels):
                x[o] = out[o]
        for o in range(back_b.shape[0]):
            acc = back_b[o]
            for i in range(channels):
                acc += back_w[o, i] * x[i]
            gains_out[f, o] = 1.0 / (1.0 + np.exp(-acc))


BN_EPS = 1e-5  # torch's BatchNorm1d default, which the network keeps


@dataclass(frozen=True)
class NetworkWeights:
    """A network as the engines read it: its config and its state dict as numpy arrays.

    A preset loads into this without torch (``presets.load_weights``); ``ConvFSENet.weights()``
    gives it for a network in memory. The state's names and shapes must be the network's.
    """

    config: dict
    state: dict

    def __post_init__(self):
        expected, got = state_shapes(self.config), {k: tuple(np.shape(v)) for k, v in self.state.items()}
        if got != expected:
            wrong = sorted(k for k in expected.keys() & got.keys() if expected[k] != got[k])
            raise ValueError(f"weights do not fit the network: missing {sorted(expected.keys() - got.keys())[:5]}, "
                             f"unexpected {sorted(got.keys() - expected.keys())[:5]}, wrong shapes {wrong[:5]}")

    @property
    def gated(self) -> bool:
        return bool(self.config["gated"])

    @property
    def compression(self) -> float:
        return float(self.config["compression"])

    @property
    def gain_exponent(self) -> float:
        return float(self.config.get("gain_exponent", 1.0))

    @property
    def gain_smoothing(self) -> float:
        return float(self.config.get("gain_smoothing", 0.0))


def state_shapes(config: dict) -> dict[str, tuple]:
    """The state dict's names and shapes of a ``ConvFSENet`` with this config (a test holds
    it to the torch network's)."""
    c, h, k, g = config["channels"], config["hidden"], config["kernel"], config["gate_hidden"]
    shapes = {"frontend.weight": (c, S.N_BINS, 1), "frontend.bias": (c,),
              "backend.weight": (S.N_BINS, c, 1), "backend.bias": (S.N_BINS,)}
    for i in range(config["stacks"] * len(config["dilations"])):
        b = f"blocks.{i}."
        shapes |= {b + "up.weight": (h, c, 1), b + "up.bias": (h,), b + "depthwise.weight": (h, 1, k),
                   b + "depthwise.bias": (h,), b + "down.weight": (c, h, 1), b + "down.bias": (c,),
                   b + "act1.weight": (h,), b + "act2.weight": (h,)}
        for norm in ("norm1", "norm2"):
            shapes |= {f"{b}{norm}.{n}": (h,) for n in ("weight", "bias", "running_mean", "running_var")}
            shapes[f"{b}{norm}.num_batches_tracked"] = ()
        if config["gated"]:
            shapes |= {f"gates.{i}.net.0.weight": (g, c, 1), f"gates.{i}.net.0.bias": (g,),
                       f"gates.{i}.net.2.weight": (h, g, 1), f"gates.{i}.net.2.bias": (h,)}
    return shapes


def export_weights(weights: NetworkWeights) -> tuple:
    """Lay out a network's weights for the kernel: stacked per block, float32, contiguous.
    Eval-mode norms become per-channel affine maps."""
    cfg, w = weights.config, weights.state
    f32 = lambda a: np.ascontiguousarray(np.asarray(a, dtype=np.float32))  # noqa: E731
    n_blocks = cfg["stacks"] * len(cfg["dilations"])
    stack = lambda name, fn=lambda a: a: f32(np.stack([fn(w[f"blocks.{i}.{name}"]) for i in range(n_blocks)]))  # noqa: E731

    def norm(which: str) -> tuple[np.ndarray, np.ndarray]:
        scale = stack(f"{which}.weight") / np.sqrt(stack(f"{which}.running_var") + BN_EPS)
        return f32(scale), f32(stack(f"{which}.bias") - stack(f"{which}.running_mean") * scale)

    hidden, channels = cfg["hidden"], cfg["channels"]
    if weights.gated:
        gate = lambda name, fn=lambda a: a: f32(np.stack([fn(w[f"gates.{i}.{name}"]) for i in range(n_blocks)]))  # noqa: E731
        g1_w, g1_b = gate("net.0.weight", lambda a: a[:, :, 0]), gate("net.0.bias")
        g2_w, g2_b = gate("net.2.weight", lambda a: a[:, :, 0]), gate("net.2.bias")
    else:
        g1_w = np.zeros((n_blocks, 1, channels), np.float32)
        g1_b = np.zeros((n_blocks, 1), np.float32)
        g2_w = np.zeros((n_blocks, hidden, 1), np.float32)
        g2_b = np.zeros((n_blocks, hidden), np.float32)
    (n1_scale, n1_shift), (n2_scale, n2_shift) = norm("norm1"), norm("norm2")
    return (
        f32(w["frontend.weight"][:, :, 0]), f32(w["frontend.bias"]),
        stack("up.weight", lambda a: a[:, :, 0]), stack("up.bias"),
        stack("act1.weight"),
        n1_scale, n1_shift,
        stack("depthwise.weight", lambda a: a[:, 0, :]), stack("depthwise.bias"),
        stack("act2.weight"),
        n2_scale, n2_shift,
        stack("down.weight", lambda a: a[:, :, 0].T), stack("down.bias"),
        g1_w, g1_b, g2_w, g2_b,
        np.array([d for _ in range(cfg["stacks"]) for d in cfg["dilations"]], np.int64),
        f32(w["backend.weight"][:, :, 0]), f32(w["backend.bias"]),
        weights.gated,
    )


class DelayLine:
    """A FIFO primed with ``delay`` zeros: push any number of samples, pop exactly as many as asked.

    It turns a stream that is aligned but withheld (frames wait for a full hop) into
    fixed-length blocks delayed by exactly ``delay`` samples. ``delay`` must cover the
    most the stream ever withholds.
    """

    def __init__(self, delay: int, channels: int = 1):
        self.delay = delay
        self._buf = np.zeros((channels, delay), np.float32)

    def push_pop(self, x: np.ndarray, n_out: int) -> np.ndarray:
        """x: (channels, n) -> (channels, n_out)."""
        buf = np.concatenate([self._buf, x], axis=1)
        if buf.shape[1] < n_out:
            raise RuntimeError(f"delay line underflow: {buf.shape[1]} < {n_out}; the delay is too short")
        self._buf = buf[:, n_out:]
        return buf[:, :n_out]

    def flush(self, x: np.ndarray) -> np.ndarray:
        """Push x and return everything held: the end of a stream."""
        buf, self._buf = np.concatenate([self._buf, x], axis=1), self._buf[:, :0]
        return buf


class StreamingEngine:
    """Hop-by-hop enhancer for 16 kHz mono float32 audio, with state carried across calls.

    ``process_frames(x)`` returns the enhanced samples completed so far: sample ``i`` of the
    concatenated output is the enhancement of input sample ``i`` (no delay, but up to
    ``latency`` samples are held back until their frames are complete), plus each new
    frame's gate masks, index and input level. ``process(x)``
    returns exactly ``len(x)`` samples delayed by ``latency``, for callers that need
    fixed-size blocks.

    ``gain_floor`` bounds how much any bin can be attenuated (an attenuation limit).

    ``net`` is a ``ConvFSENet`` (which this puts in eval mode) or its ``NetworkWeights``.

    >>> from freelunch.model import ConvFSENet
    >>> eng = StreamingEngine(ConvFSENet())
    >>> eng.process(np.zeros(1000, np.float32)).shape
    (1000,)
    """

    latency = S.N_FFT - 1

    def __init__(self, net: "ConvFSENet | NetworkWeights", gain_floor: float = 0.0):
        net = net if isinstance(net, NetworkWeights) else net.eval().weights()
        self.params = export_weights(net)
        self.config = net.config
        self.compression = net.compression
        self.gain_floor = np.float32(gain_floor)
        self.gain_exponent = np.float32(net.gain_exponent)
        self.gain_smoothing = np.float32(net.gain_smoothing)
        self._window_a = S.analysis_window()
        self._window_s = S.synthesis_window()
        self.reset()

    @property
    def n_blocks(self) -> int:
        return self.config["stacks"] * len(self.config["dilations"])

    def reset(self) -> None:
        cfg = self.config
        hist_len = (cfg["kernel"] - 1) * max(cfg["dilations"]) + 1
        self._ma_hist = np.zeros((self.n_blocks, cfg["gate_window"], cfg["channels"]), np.float32)
        self._dw_hist = np.zeros((self.n_blocks, cfg["hidden"], hist_len), np.float32)
        self._input = np.zeros(S.N_FFT - S.HOP, np.float32)  # previous half frame + pending samples
        self._ola = np.zeros(S.N_FFT - S.HOP, np.float32)
        self._gain_state = fresh_state(S.N_BINS)
        self._skip = S.N_FFT - S.HOP  # the first frame's left-pad region is not part of the output
        self._delay = DelayLine(self.latency)
        self.frame_index = 0

    def process_frames(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Feed samples; return (newly completed output samples, masks (F, blocks, hidden) bool,
        frame indices, input RMS of each frame in dBFS)."""
        buf = np.concatenate([self._input, np.asarray(x, np.float32)])
        n = (len(buf) - (S.N_FFT - S.HOP)) // S.HOP
        masks = np.zeros((max(n, 0), self.n_blocks, self.config["hidden"]), np.bool_)
        if n <= 0:
            self._input = buf
            return np.zeros(0, np.float32), masks, np.zeros(0, np.int64), np.zeros(0, np.float32)
        # Frame t is hops t and t + 1 of the buffer. With 512-sample buffers (two frames) the
        # per-call cost of numpy's helpers outweighs their work, so each step is one plain call.
        hops = buf[: (n + 1) * S.HOP].reshape(n + 1, S.HOP)
        frames = np.concatenate([hops[:-1], hops[1:]], axis=1)  # (n, N_FFT)
        spec = np.fft.rfft(frames * self._window_a, axis=-1).astype(np.complex64, copy=False)  # (n, 257)
        level_db = 10 * np.log10(np.add.reduce(frames * frames, axis=-1) / S.N_FFT + np.float32(1e-20))
        feats = np.abs(spec)
        feats += np.float32(1e-12)
        np.power(feats, np.float32(self.compression), out=feats)
        gains = np.empty((n, S.N_BINS), np.float32)
        _run_frames(feats, self.frame_index, self.params, self._ma_hist, self._dw_hist, masks, gains)
        if self.gain_exponent != 1:
            np.power(gains, self.gain_exponent, out=gains)
        if self.gain_smoothing > 0:
            ema(gains, self.gain_smoothing, self._gain_state)
        if self.gain_floor > 0:
            np.maximum(gains, self.gain_floor, out=gains)
        spec *= gains
        out_frames = np.fft.irfft(spec, n=S.N_FFT, axis=-1).astype(np.float32, copy=False)
        out_frames *= self._window_s
        # overlap-add: a frame's first half completes a hop, its second half waits for the next frame
        half = S.N_FFT - S.HOP
        emitted = (out_frames[:, :half] + np.concatenate([self._ola[None], out_frames[:-1, half:]])).reshape(-1)
        self._ola = out_frames[-1, half:].copy()
        self._input = buf[n * S.HOP :].copy()
        index = np.arange(self.frame_index, self.frame_index + n)
        self.frame_index += n
        drop = min(self._skip, len(emitted))
        self._skip -= drop
        return emitted[drop:], masks, index, level_db

    def process(self, x: np.ndarray) -> np.ndarray:
        emitted = self.process_frames(x)[0]
        return self._delay.push_pop(emitted[None], len(x))[0]
