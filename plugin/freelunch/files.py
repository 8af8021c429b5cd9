"""Enhance audio files in constant memory, writing every output atomically."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
from pedalboard.io import AudioFile

from .effect import DynCPEnhancer
from .export.common import atomic_output
from .track import PropertyTrack

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif"}
BIT_DEPTH = {"int8": 8, "int16": 16, "int24": 24, "int32": 32, "float32": 32, "float64": 32}
CHUNK = 1 << 16


def check_input(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"input not found: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"input is a folder, not an audio file: {path}")
    if path.suffix.lower() not in AUDIO_EXTENSIONS:
        raise ValueError(f"unsupported file type {path.suffix or '(none)'} for {path}; use one of {sorted(AUDIO_EXTENSIONS)}")
    return path


def open_audio(path: Path):
    try:
        return AudioFile(str(path))
    except Exception as e:  # pedalboard raises plain RuntimeError/ValueError for bad files
        raise ValueError(f"cannot read audio from {path}: {e}") from None


def stream_file(src: Path, fx: DynCPEnhancer, sink: Callable[[np.ndarray], None] | None,
                progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Push a file through ``fx`` chunk by chunk, passing aligned output to ``sink``.

    Streaming delays the output by ``fx.latency``: the first ``latency`` samples are dropped
    and ``fx.end_stream()`` gives the last ones, so the output lines up with the input.
    Returns (sample_rate, channels).
    """
    with open_audio(src) as f:
        sr, channels = int(f.samplerate), f.num_channels
        fx.reset()
        to_skip = None
        while f.tell() < f.frames:
            chunk = f.read(CHUNK)
            y = fx.process(chunk, sr, buffer_size=CHUNK, reset=False)
            if to_skip is None:
                to_skip = fx.latency
            drop = min(to_skip, y.shape[1])
            to_skip -= drop
            if sink and y.shape[1] > drop:
                sink(y[:, drop:])
            if progress:
                progress(chunk.shape[1])
        if to_skip is None:
            raise ValueError(f"{src} holds no audio samples")
        tail = fx.end_stream()
        if sink:
            sink(tail[:, to_skip:])
    return sr, channels


def enhance_file(src: Path, dst: Path, fx: DynCPEnhancer, overwrite: bool = False,
                 progress: Callable[[int], None] | None = None) -> PropertyTrack:
    """Enhance ``src`` into ``dst`` (same format, rate and channels); return the property track."""
    src, dst = check_input(src), Path(dst)
    if dst.resolve() == src.resolve():
        raise ValueError(f"output {dst} is the input file; choose another output")
    if dst.exists() and not overwrite:
        raise FileExistsError(f"output exists: {dst} (use --overwrite)")
    if not dst.parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {dst.parent}")
    with open_audio(src) as f:
        sr, channels, bit_depth = f.samplerate, f.num_channels, BIT_DEPTH.get(f.file_dtype, 16)

    def write(tmp: Path) -> None:
        with AudioFile(str(tmp), "w", sr, channels, bit_depth=bit_depth) as out:
            stream_file(src, fx, out.write, progress)

    atomic_output(dst, write)
    return fx.properties
