"""DynCPEnhancer: the pedalboard-compatible effect that enhances speech and emits properties."""
from __future__ import annotations

import dataclasses
import functools
import math
import os

import numpy as np
from pedalboard.io import StreamResampler

from . import presets
from .audio import as_channels_first, check_buffer_size, check_sample_rate, restore_layout
from .model import StreamingEngine
from .model import framing as S
from .model.engine import DelayLine
from .probes.decisions import VadDecision
from .probes.linear import LinearProbes
from .track import PropertyTrack

ENGINE_RATE = S.SAMPLE_RATE
# Frames gathered before the probes run on them: the probes' per-call cost in Python would
# otherwise dominate small buffers (512 samples are 2 frames). The track may trail by this
# many frames more, minus one.
PROPERTY_BATCH_FRAMES = 16


@functools.lru_cache(maxsize=32)
def resampling_offset(sample_rate: int) -> int:
    """Whole samples by which a round trip through 16 kHz with StreamResampler lags (measured on an impulse)."""
    if sample_rate == ENGINE_RATE:
        return 0
    x = np.zeros((1, sample_rate), np.float32)
    x[0, sample_rate // 2] = 1.0
    down, up = StreamResampler(sample_rate, ENGINE_RATE, 1), StreamResampler(ENGINE_RATE, sample_rate, 1)
    mid = np.concatenate([down.process(x), down.process(None)], axis=1)
    y = np.concatenate([up.process(mid), up.process(None)], axis=1)
    return int(np.argmax(np.abs(y[0]))) - sample_rate // 2


class DynCPEnhancer:
    """Causal speech enhancer whose pruning gates also estimate frame properties.

    Same call as a pedalboard plugin: ``process(input_array, sample_rate, buffer_size=8192,
    reset=True)``; 1-D or 2-D float arrays (the smaller axis is channels), any sample rate
    (resampled to 16 kHz and back by ``pedalboard.io.StreamResampler``). With ``reset=True``
    the output is aligned with the input; with ``reset=False`` calls stream, and their
    concatenated output is the signal delayed by ``latency`` samples.

    Each channel is enhanced on its own. Properties come as one track: per frame, the
    probes' scores of each channel are averaged (the loudest talker dominates a stereo pair
    the way it would a downmix, without running the network a second time).

    Speech is a VAD probability over ``vad_threshold``, with gaps shorter than
    ``min_silence_ms`` filled and runs shorter than ``min_speech_ms`` dropped (None: the
    preset's values, chosen on valid data; 0: off). A noise label names its class only where
    the probe's probability of it reaches ``noise_threshold`` (None: the preset's, chosen on
    valid data so that the classes shown are right 90 % of the time) and reads ``unknown``
    elsewhere. The clean-up looks ahead, and each property is aligned with the frames it
    describes (the probes answer a few frames late), so while streaming the track trails the
    audio by ``properties_lookahead`` frames; ``end_stream()`` returns the audio still held back and
    decides the rest of the track (a ``reset=True`` call does both itself).

    One instance is not thread-safe: give each thread its own.

    >>> import numpy as np, freelunch
    >>> fx = freelunch.DynCPEnhancer.from_preset("balanced")
    >>> y = fx(np.zeros(16000, np.float32), 16000)
    >>> y.shape, len(fx.properties.times)
    ((16000,), 64)
    """

    is_effect = True

    def __init__(
        self,
        preset: str | os.PathLike = "balanced",
        attenuation_limit_db: float | None = None,
        vad_threshold: float | None = None,
        min_speech_ms: float | None = None,
        min_silence_ms: float | None = None,
        noise_threshold: float | None = None,
    ):
        if attenuation_limit_db is not None:
            if isinstance(attenuation_limit_db, bool) or not isinstance(attenuation_limit_db, (int, float)):
                raise TypeError("attenuation_limit_db must be a number of dB or None")
            if not 0 < attenuation_limit_db <= 120:
                raise ValueError(f"attenuation_limit_db must be in (0, 120] dB, got {attenuation_limit_db}")
        for name, value in (("vad_threshold", vad_threshold), ("min_speech_ms", min_speech_ms),
                            ("min_silence_ms", min_silence_ms)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise TypeError(f"{name} must be a number or None")
        if noise_threshold is not None and (isinstance(noise_threshold, bool) or not isinstance(noise_threshold, (int, float))
                                            or not 0.0 <= noise_threshold <= 1.0):
            raise ValueError(f"noise_threshold must be a probability in [0, 1], got {noise_threshold!r}")
        if vad_threshold is not None and not 0.0 < vad_threshold < 1.0:
            raise ValueError(f"vad_threshold must be strictly between 0 and 1, got {vad_threshold}")
        for name, value in (("min_speech_ms", min_speech_ms), ("min_silence_ms", min_silence_ms)):
            if value is not None and not 0 <= value <= 10_000:
                raise ValueError(f"{name} must be in [0, 10000] ms, got {value}")
        self.preset = str(preset)
        self.attenuation_limit_db = attenuation_limit_db
        self._weights, self.config, folder = presets.load_weights(preset)
        self._probes = LinearProbes.load(folder) if (folder / LinearProbes.FILE).exists() else None
        preset_decision = self._probes.decision if self._probes else VadDecision()
        frames = lambda ms, default: default if ms is None else max(1, round(ms * ENGINE_RATE / 1000 / S.HOP))  # noqa: E731
        self.decision = dataclasses.replace(
            preset_decision,
            threshold=preset_decision.threshold if vad_threshold is None else float(vad_threshold),
            bridge_frames=frames(min_silence_ms, preset_decision.bridge_frames),
            min_speech_frames=frames(min_speech_ms, preset_decision.min_speech_frames),
        )
        self.noise_threshold = (self._probes.noise_threshold if self._probes else 0.0) if noise_threshold is None \
            else float(noise_threshold)
        self._gain_floor = 0.0 if attenuation_limit_db is None else 10 ** (-attenuation_limit_db / 20)
        self._state: dict | None = None
        self.properties = self._new_track()
        self._sample_rate = ENGINE_RATE
        self._channels = 1

    @classmethod
    def from_preset(cls, preset: str | os.PathLike = "balanced", **params) -> "DynCPEnhancer":
        """Load a shipped preset by name (see ``freelunch presets``) or a preset folder."""
        return cls(preset, **params)

    def __repr__(self) -> str:
        d = self.decision
        return (f"<freelunch.DynCPEnhancer preset={self.preset!r} attenuation_limit_db={self.attenuation_limit_db}"
                f" vad_threshold={d.threshold} min_speech_frames={d.min_speech_frames}"
                f" min_silence_frames={d.bridge_frames} noise_threshold={self.noise_threshold}>")

    def _new_track(self) -> PropertyTrack:
        return PropertyTrack(self._probes.category_names if self._probes else [], noise_threshold=self.noise_threshold)

    @property
    def properties_lookahead(self) -> int:
        """The most frames (16 ms) by which the property track trails the audio while streaming."""
        held = self._probes.stream(self.decision).lookahead if self._probes else self.decision.lookahead
        return held + PROPERTY_BATCH_FRAMES - 1

    @property
    def latency(self) -> int:
        """Samples of delay, at the last call's rate and channel count, of output streamed with ``reset=False``."""
        rate = self._sample_rate
        held = self._channels if rate != ENGINE_RATE else 0
        return self._delay_for(rate) + held + resampling_offset(rate)

    @staticmethod
    def _delay_for(sample_rate: int) -> int:
        if sample_rate == ENGINE_RATE:
            return StreamingEngine.latency
        # Samples the chain can hold back: the input resampler's look-ahead, the engine's
        # unfinished hop, the output resampler's look-ahead, plus rounding of both ratios.
        look_ahead = StreamResampler(sample_rate, ENGINE_RATE, 1).input_latency
        back = StreamResampler(ENGINE_RATE, sample_rate, 1).input_latency
        return int(math.ceil(look_ahead + (StreamingEngine.latency + back) * sample_rate / ENGINE_RATE)) + 4

    def reset(self) -> None:
        """Forget all streaming state and start a new property track."""
        self._state = None
        self.properties = self._new_track()

    def end_stream(self) -> np.ndarray:
        """End a ``reset=False`` stream: return the ``latency`` samples of output still held
        back, and decide the track's frames held for the VAD's look-ahead.

        The stream's output followed by this tail is the whole enhanced input, delayed by
        ``latency`` samples; the track ends at the input's last frame, as a ``reset=True``
        call's does. The next call starts a new stream.

        >>> import numpy as np, freelunch
        >>> fx = freelunch.DynCPEnhancer.from_preset("balanced")
        >>> x = np.zeros(16000, np.float32)
        >>> y = np.concatenate([fx(x[:5000], 16000, reset=False), fx(x[5000:], 16000, reset=False), fx.end_stream()])
        >>> y[fx.latency:].shape, len(fx.properties.times)
        ((16000,), 64)
        """
        st = self._state
        if st is None:
            raise ValueError("no stream to end: end_stream() follows process(..., reset=False)")
        rest = st["delay"].flush(self._drain(st))[:, : self.latency]
        self._end_track(st)
        return restore_layout(np.pad(rest, ((0, 0), (0, self.latency - rest.shape[1]))), st["layout"])

    def _drain(self, st: dict) -> np.ndarray:
        """The output still inside the resamplers and engines once the input has ended.

        The engines are fed zeros to complete their last frames; the track records no frame
        past the input's end.
        """
        st["limit_frames"] = S.n_frames(-(-st["seen"] * ENGINE_RATE // st["sample_rate"]))
        channels = st["channels"]
        tail16 = np.zeros((channels, 0), np.float32)
        if st["down"]:
            tail16 = st["down"].process(np.pad(st["pending"], ((0, 0), (0, channels + 1))))
            tail16 = np.concatenate([tail16, st["down"].process(None)], axis=1)
        zeros = np.zeros((channels, StreamingEngine.latency + 1), np.float32)
        out16 = np.concatenate([self._run(tail16, st), self._run(zeros, st)], axis=1)
        if st["up"]:
            return np.concatenate([st["up"].process(out16), st["up"].process(None)], axis=1)
        return out16

    def _end_track(self, st: dict) -> None:
        self._record(st)
        if st["probes"] is not None:
            self._append(st["probes"].flush())
        self.properties.duration_s = st["seen"] / st["sample_rate"]  # labels end where the audio does
        self._state = None

    def _start(self, sample_rate: int, channels: int) -> dict:
        resample = sample_rate != ENGINE_RATE
        return dict(
            sample_rate=sample_rate,
            channels=channels,
            engines=[StreamingEngine(self._weights, self._gain_floor) for _ in range(channels)],
            down=StreamResampler(sample_rate, ENGINE_RATE, channels) if resample else None,
            up=StreamResampler(ENGINE_RATE, sample_rate, channels) if resample else None,
            # StreamResampler guesses the layout from the smaller axis, so blocks with no
            # more samples than channels wait here until they are unambiguous.
            pending=np.zeros((channels, 0), np.float32),
            probes=self._probes.stream(self.decision) if self._probes else None,
            frames=[],  # (index, masks per channel, level) of frames the probes have not seen
            gathered=0,  # how many
            delay=DelayLine(self._delay_for(sample_rate) + (channels if resample else 0), channels),
            seen=0,  # input samples so far
            layout="channels_first",  # of the last call, for end_stream's tail
            limit_frames=None,  # frames of the input, once it has ended
        )

    def _downsample(self, chunk: np.ndarray, st: dict) -> np.ndarray:
        if st["down"] is None:
            return chunk
        chunk = np.concatenate([st["pending"], chunk], axis=1)
        if chunk.shape[1] <= st["channels"]:
            st["pending"] = chunk
            return chunk[:, :0]
        st["pending"] = chunk[:, :0]
        return st["down"].process(chunk)

    def _run(self, x16: np.ndarray | None, st: dict) -> np.ndarray:
        """Feed 16 kHz audio (channels, n) to the engines; record properties; return emitted audio."""
        results = [engine.process_frames(x) for engine, x in zip(st["engines"], x16)]
        emitted, masks, index, level_db = results[0]
        limit = st["limit_frames"]
        keep = len(index) if limit is None or not len(index) else min(max(limit - int(index[0]), 0), len(index))
        if keep:
            if len(results) > 1:  # the loudest channel's level
                level_db = np.maximum.reduce([r[3] for r in results])
            st["frames"].append((index[:keep], [r[1][:keep] for r in results], level_db[:keep]))
            st["gathered"] += keep
            if st["gathered"] >= PROPERTY_BATCH_FRAMES:
                self._record(st)
        return emitted[None] if len(results) == 1 else np.stack([r[0] for r in results])

    def _record(self, st: dict) -> None:
        """Run the probes on the gathered frames and extend the track with what they decide."""
        if not st["frames"]:
            return
        index, masks, level_db = zip(*st["frames"])
        st["frames"], st["gathered"] = [], 0
        index, level_db = np.concatenate(index), np.concatenate(level_db)
        masks = [np.concatenate(m) for m in zip(*masks)]  # per channel
        active = sum(np.count_nonzero(m.reshape(len(m), -1), axis=1) for m in masks)  # bool means are slow
        columns = dict(times=index * S.HOP / ENGINE_RATE, usage=active / (masks[0][0].size * len(masks)))
        stream = st["probes"]
        self._append(columns if stream is None else stream.push(masks, level_db, **columns))

    def _append(self, columns: dict[str, np.ndarray]) -> None:
        if columns and len(columns["times"]):
            self.properties.extend(**columns)

    def _push(self, x: np.ndarray, st: dict, buffer_size: int) -> np.ndarray:
        """Stream (channels, n) input through resampling and the engines; return what comes out."""
        pieces = []
        for i in range(0, max(x.shape[1], 1), buffer_size):  # an empty block still yields its (channels, 0) piece
            y16 = self._run(self._downsample(x[:, i : i + buffer_size], st), st)
            pieces.append(st["up"].process(y16) if st["up"] and y16.shape[1] else y16)
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces, axis=1)

    def process(self, input_array: np.ndarray, sample_rate: float, buffer_size: int = 8192, reset: bool = True) -> np.ndarray:
        """Enhance ``input_array``; the result has its shape and is float32."""
        running = None if reset or self._state is None else self._state["channels"]
        x, layout = as_channels_first(input_array, running)
        sample_rate = check_sample_rate(sample_rate)
        buffer_size = check_buffer_size(buffer_size)
        channels, n = x.shape
        if channels == 0:
            raise ValueError("audio has no channels")
        if reset:
            self.reset()
        st = self._state
        if st is not None and (st["sample_rate"], st["channels"]) != (sample_rate, channels):
            raise ValueError(
                f"reset=False continues a stream of {st['channels']} channel(s) at {st['sample_rate']} Hz; "
                f"got {channels} at {sample_rate} Hz (call reset() first)"
            )
        if st is None:  # a new stream: after reset(), a reset=True call or end_stream()
            st = self._state = self._start(sample_rate, channels)
            self.properties = self._new_track()
        self._sample_rate, self._channels = sample_rate, channels
        st["seen"] += n
        st["layout"] = layout
        y = self._push(x, st, buffer_size)
        if not reset:
            return restore_layout(st["delay"].push_pop(y, n), layout)
        # One-shot: drain everything held back, so the output is aligned with the input.
        offset = resampling_offset(sample_rate)
        y = np.concatenate([y, self._drain(st)], axis=1)[:, offset : offset + n]
        if y.shape[1] < n:
            y = np.pad(y, ((0, 0), (0, n - y.shape[1])))
        self._end_track(st)
        return restore_layout(y, layout)

    __call__ = process
