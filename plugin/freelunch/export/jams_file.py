"""JAMS (JSON Annotated Music Specification) annotations.

Layout: the ``jams`` package's schema: speech segments in ``segment_open``, noise
categories in ``tag_open`` and F0 in ``pitch_contour`` (one observation per frame).
"""
import math

import jams

from .common import label_segments, write_text_atomic

EXTENSION = ".jams"


def write(track, path, min_duration: float = 0.1, hangover: float = 0.1, **_):
    times = track.times
    duration = track.duration_s if track.duration_s is not None else float(times[-1] + track.hop_s / 2) if len(times) else 0.0
    jam = jams.JAMS()
    jam.file_metadata.duration = duration
    speech = jams.Annotation(namespace="segment_open", duration=duration)
    for s, e, lab in label_segments(track, ("vad",), min_duration, hangover):
        speech.append(time=s, duration=e - s, value=lab, confidence=None)
    jam.annotations.append(speech)
    if track.category_names:
        noise = jams.Annotation(namespace="tag_open", duration=duration)
        for s, e, lab in label_segments(track, ("noise_category",), min_duration, hangover):
            noise.append(time=s, duration=e - s, value=lab.removeprefix("noise: "), confidence=None)
        jam.annotations.append(noise)
    pitch = jams.Annotation(namespace="pitch_contour", duration=duration)
    for t, f0, voiced in zip(times, track.f0_hz, track.voiced):
        if not math.isnan(f0) and t <= duration:
            pitch.append(time=float(t), duration=0.0, value={"index": 0, "frequency": float(f0), "voiced": bool(voiced)})
    jam.annotations.append(pitch)
    write_text_atomic(path, jam.dumps(indent=1) + "\n")
