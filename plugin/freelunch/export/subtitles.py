"""SRT and WebVTT cues, one per segment.

Layouts: SubRip (numbered cues, ``hh:mm:ss,mmm --> hh:mm:ss,mmm``) and W3C WebVTT
(``WEBVTT`` header, ``hh:mm:ss.mmm`` times).
"""
from .common import label_segments, write_text_atomic


def _clock(t: float, sep: str) -> str:
    ms = int(round(t * 1000))
    return f"{ms // 3600000:02d}:{(ms // 60000) % 60:02d}:{(ms // 1000) % 60:02d}{sep}{ms % 1000:03d}"


def write_srt(track, path, **options):
    cues = [f"{i}\n{_clock(s, ',')} --> {_clock(e, ',')}\n{lab}\n"
            for i, (s, e, lab) in enumerate(label_segments(track, **options), 1)]
    write_text_atomic(path, "\n".join(cues))


def write_vtt(track, path, **options):
    cues = [f"{_clock(s, '.')} --> {_clock(e, '.')}\n{lab}\n" for s, e, lab in label_segments(track, **options)]
    write_text_atomic(path, "WEBVTT\n\n" + "\n".join(cues))
