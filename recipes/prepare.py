#!/usr/bin/env python3
"""Write SpeechBrain manifests for a data layout, one CSV per split plus its noise.

    python recipes/prepare.py pack ../shared/data results/manifests        # the pack, or the corpus
    python recipes/prepare.py voicebank /data/VoiceBank-DEMAND results/manifests
    python recipes/prepare.py folders /data/speech /data/noise results/manifests
    python recipes/prepare.py librispeech+esc50 /data/LibriSpeech /data/ESC-50 results/manifests
    python recipes/prepare.py kaldi+pack /data/kaldi ../shared/data results/manifests

Layouts join with ``+``, each taking its folders in order: a speech layout (librispeech,
kaldi) needs a noise one beside it (esc50, or pack / folders, which bring both). For each
split it writes ``{split}.csv`` (speech, or VoiceBank's pairs) and ``{split}_noise.csv``
(noise files with their category and group). It reads the data folders and never writes
into them.
"""
from __future__ import annotations

import sys
from pathlib import Path

from freelunch import data

# layout -> (rows from its folders, how many folders it takes)
LAYOUTS = {
    "pack": (data.pack_layout, 1),
    "voicebank": (data.voicebank_layout, 1),
    "folders": (data.folder_layout, 2),
    "librispeech": (data.librispeech_layout, 1),
    "kaldi": (data.kaldi_layout, 1),
    "esc50": (data.esc50_layout, 1),
}


def layout_rows(layout: str, sources: list[str]) -> list[dict]:
    """The manifest rows of ``layout`` (names joined by ``+``) over ``sources``, in order."""
    names = layout.split("+")
    for name in names:
        if name not in LAYOUTS:
            raise ValueError(f"unknown layout {name!r}; use {', '.join(LAYOUTS)}, joined by +")
    needed = sum(LAYOUTS[name][1] for name in names)
    if len(sources) != needed:
        raise ValueError(f"layout {layout!r} needs {needed} folder(s), in order, got {len(sources)}")
    rows, rest = [], [Path(s) for s in sources]
    for name in names:
        read, n = LAYOUTS[name]
        rows += read(*rest[:n])
        rest = rest[n:]
    return rows


def prepare(layout: str, sources: list[str], out_dir: str) -> dict[str, int]:
    """Write the manifests; return the number of speech items per split."""
    out = Path(out_dir).resolve()
    for src in sources:
        if Path(src).resolve() in (out, *out.parents):
            raise ValueError(f"refusing to write manifests inside the data folder {src}")
    rows = layout_rows(layout, sources)
    counts = {}
    for split in data.SPLITS:
        if not any(r["split"] == split for r in rows):
            if split == "valid" and layout == "voicebank":
                raise ValueError("VoiceBank layout gave no valid split")
            raise ValueError(f"split {split!r} is empty in {sources}")
        speech, noise = data.split_rows(rows, split)
        data.write_manifest(speech, out / f"{split}.csv")
        if noise:
            data.write_manifest(noise, out / f"{split}_noise.csv")
        counts[split] = len(speech)
    return counts


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    print(prepare(sys.argv[1], sys.argv[2:-1], sys.argv[-1]))
