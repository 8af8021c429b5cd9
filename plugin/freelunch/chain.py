"""Chain: native pedalboard plugins and Python effects (like DynCPEnhancer) in one signal path."""
from __future__ import annotations

import numpy as np
import pedalboard

from .audio import as_channels_first, check_buffer_size, check_sample_rate, restore_layout


class Chain:
    """Run ``stages`` in order with pedalboard's call signature.

    Consecutive native plugins run together as one ``pedalboard.Pedalboard``; Python stages
    (anything with ``process`` and ``is_effect``) run between them. Native plugins are
    never subclassed: pedalboard's chains ignore a Python ``process`` override.

    >>> import numpy as np, pedalboard, freelunch
    >>> chain = freelunch.Chain([pedalboard.HighpassFilter(80), freelunch.DynCPEnhancer.from_preset("balanced")])
    >>> chain(np.zeros(16000, np.float32), 16000).shape
    (16000,)
    """

    is_effect = True

    def __init__(self, stages: list):
        if not isinstance(stages, (list, tuple)) or not stages:
            raise TypeError("Chain takes a non-empty list of plugins")
        for s in stages:
            if not isinstance(s, pedalboard.Plugin) and not (hasattr(s, "process") and getattr(s, "is_effect", False)):
                raise TypeError(f"{s!r} is neither a pedalboard plugin nor an effect with process() and is_effect")
        self.stages = list(stages)
        self._segments = []  # runs of native plugins become one Pedalboard
        for s in self.stages:
            if isinstance(s, pedalboard.Plugin):
                if self._segments and isinstance(self._segments[-1], pedalboard.Pedalboard):
                    self._segments[-1].append(s)
                else:
                    self._segments.append(pedalboard.Pedalboard([s]))
            else:
                self._segments.append(s)
        self._stream = None  # (sample_rate, buffer_size, channels, layout) of a reset=False stream

    @property
    def latency(self) -> int:
        """Sum of the stages' latencies in samples (native plugins report none here)."""
        return int(sum(getattr(s, "latency", 0) for s in self.stages if not isinstance(s, pedalboard.Plugin)))

    @property
    def properties(self) -> dict:
        """{stage index: PropertyTrack} for every stage that emits properties."""
        return {i: s.properties for i, s in enumerate(self.stages) if hasattr(s, "properties")}

    def reset(self) -> None:
        self._stream = None
        for s in self._segments:
            s.reset()

    def end_stream(self) -> np.ndarray:
        """End a ``reset=False`` stream: return the samples the stages still hold back, run
        through the stages after them.

        The stream's output followed by this tail is the chain's whole output, delayed by
        ``latency`` samples. The next call starts a new stream.

        >>> import numpy as np, pedalboard, freelunch
        >>> chain = freelunch.Chain([freelunch.DynCPEnhancer.from_preset("balanced"), pedalboard.Gain(-6)])
        >>> x = np.zeros(16000, np.float32)
        >>> y = np.concatenate([chain(x[:5000], 16000, reset=False), chain(x[5000:], 16000, reset=False), chain.end_stream()])
        >>> y[chain.latency:].shape
        (16000,)
        """
        if self._stream is None:
            raise ValueError("no stream to end: end_stream() follows process(..., reset=False)")
        sample_rate, buffer_size, channels, layout = self._stream
        self._stream = None
        tail = np.zeros((channels, 0), np.float32)
        for segment in self._segments:
            if tail.shape[1]:
                tail = self._through(segment, tail, sample_rate, buffer_size, reset=False)
            if hasattr(segment, "end_stream"):
                held, _ = as_channels_first(segment.end_stream(), channels)
                tail = np.concatenate([tail, held], axis=1)
        return restore_layout(tail, layout)

    @staticmethod
    def _through(segment, x: np.ndarray, sample_rate: int, buffer_size: int, reset: bool) -> np.ndarray:
        y = np.asarray(segment.process(x, sample_rate, buffer_size=buffer_size, reset=reset), np.float32)
        return y.reshape(1, -1) if y.ndim == 1 else y

    def process(self, input_array: np.ndarray, sample_rate: float, buffer_size: int = 8192, reset: bool = True) -> np.ndarray:
        x, layout = as_channels_first(input_array)
        sample_rate = check_sample_rate(sample_rate)
        buffer_size = check_buffer_size(buffer_size)
        self._stream = None if reset else (sample_rate, buffer_size, x.shape[0], layout)
        for segment in self._segments:
            x = self._through(segment, x, sample_rate, buffer_size, reset)
        return restore_layout(x, layout)

    __call__ = process
