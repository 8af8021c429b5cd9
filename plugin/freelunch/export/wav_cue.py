"""Markers and regions embedded in a WAV file: a ``cue `` chunk plus a ``LIST``/``adtl`` list.

Layout: Microsoft/IBM RIFF specification (1991), "Cue-Points Chunk" and "Associated Data
List": each segment is a cue point at its start sample, a ``labl`` (its label) and an
``ltxt`` with purpose ``rgn `` (its length in samples), which makes it a region in
Audition, Sound Forge, REAPER and WaveLab. Existing cue/adtl chunks are replaced; the
audio data is copied untouched.
"""
import struct
from pathlib import Path

from .common import label_segments, write_atomic

EXTENSION = ".wav"


def _chunks(riff: bytes):
    if riff[:4] != b"RIFF" or riff[8:12] != b"WAVE":
        raise ValueError("not a RIFF/WAVE file")
    pos = 12
    while pos + 8 <= len(riff):
        cid, size = riff[pos : pos + 4], struct.unpack("<I", riff[pos + 4 : pos + 8])[0]
        yield cid, riff[pos + 8 : pos + 8 + size]
        pos += 8 + size + (size & 1)


def _chunk(cid: bytes, body: bytes) -> bytes:
    return cid + struct.pack("<I", len(body)) + body + (b"\0" if len(body) & 1 else b"")


def write(track, path, audio_path=None, **options):
    source = Path(audio_path or path)
    if source.suffix.lower() != ".wav":
        raise ValueError(f"WAV cue markers need a .wav file to embed into, got {source}")
    riff = source.read_bytes()
    chunks = list(_chunks(riff))
    by_id = dict(chunks)
    fmt = by_id.get(b"fmt ")
    if fmt is None:
        raise ValueError(f"{source} has no fmt chunk")
    sample_rate, block_align = struct.unpack("<I", fmt[4:8])[0], struct.unpack("<H", fmt[12:14])[0]
    samples = len(by_id.get(b"data", b"")) // max(block_align, 1)
    segments = label_segments(track, **options)
    cues, adtl = [], []
    for i, (s, e, lab) in enumerate(segments, 1):
        # The last frame reaches past the audio's end: regions stop at the last sample.
        start = min(int(round(s * sample_rate)), samples)
        length = min(int(round(e * sample_rate)), samples) - start
        cues.append(struct.pack("<II4sIII", i, start, b"data", 0, 0, start))
        adtl.append(_chunk(b"labl", struct.pack("<I", i) + lab.encode("utf-8") + b"\0"))
        adtl.append(_chunk(b"ltxt", struct.pack("<II4sHHHH", i, length, b"rgn ", 0, 0, 0, 0)))
    kept = [(cid, body) for cid, body in chunks if cid != b"cue " and not (cid == b"LIST" and body[:4] == b"adtl")]
    body = b"WAVE" + b"".join(_chunk(cid, b) for cid, b in kept)
    if segments:
        body += _chunk(b"cue ", struct.pack("<I", len(cues)) + b"".join(cues))
        body += _chunk(b"LIST", b"adtl" + b"".join(adtl))
    write_atomic(path, b"RIFF" + struct.pack("<I", len(body)) + body)
