"""Label and marker exporters: one module per format, each reading only a PropertyTrack.

Add a format by writing one module with a ``write(track, path, **options)`` function and
naming it in ``FORMATS``.
"""
from __future__ import annotations

from pathlib import Path

from . import audacity, audition, frames, jams_file, midi, reaper, sonic_visualiser, subtitles, wav_cue

# format name -> (writer, suffix added to the audio file's stem)
FORMATS = {
    "audacity": (audacity.write, ".labels.txt"),
    "reaper": (reaper.write, ".reaper.csv"),
    "audition": (audition.write, ".audition.csv"),
    "sonic-visualiser": (sonic_visualiser.write, ".sv.csv"),
    "srt": (subtitles.write_srt, ".srt"),
    "vtt": (subtitles.write_vtt, ".vtt"),
    "wav-cue": (wav_cue.write, ".wav"),
    "midi": (midi.write, ".mid"),
    "jams": (jams_file.write, ".jams"),
    "csv": (frames.write_csv, ".frames.csv"),
    "json": (frames.write_json, ".frames.json"),
}
BY_EXTENSION = {".txt": "audacity", ".srt": "srt", ".vtt": "vtt", ".mid": "midi", ".midi": "midi",
                ".jams": "jams", ".json": "json", ".csv": "csv", ".wav": "wav-cue"}


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown label format {fmt!r}; choose from {', '.join(FORMATS)}")
    return fmt


def label_path(audio_path: Path, fmt: str) -> Path:
    """Where ``fmt`` labels for ``audio_path`` go: beside it (WAV cues go into the WAV itself)."""
    audio_path = Path(audio_path)
    if check_format(fmt) == "wav-cue":
        return audio_path
    return audio_path.with_name(audio_path.stem + FORMATS[fmt][1])


def export(track, path, format: str | None = None, **options) -> None:
    """Write ``track`` to ``path`` as ``format`` (default: from the extension)."""
    path = Path(path)
    if format is None:
        format = BY_EXTENSION.get(path.suffix.lower())
        if format is None:
            raise ValueError(f"cannot tell the label format from {path.name}; pass format=")
    writer, _ = FORMATS[check_format(format)]
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder does not exist: {path.parent}")
    if format != "wav-cue":
        options.pop("audio_path", None)
    writer(track, path, **options)
