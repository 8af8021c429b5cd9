#!/usr/bin/env python3
"""Write SpeechBrain manifests for one of three layouts, one CSV per split plus its noise.

    python recipes/prepare.py pack ../shared/data results/manifests
    python recipes/prepare.py voicebank /data/VoiceBank-DEMAND results/manifests
    python recipes/prepare.py folders /data/speech /data/noise results/manifests

For each split it writes ``{split}.csv`` (speech, or VoiceBank's pairs) and
``{split}_noise.csv`` (noise files with their category). It reads the data folders and
never writes into them.
"""
from __future__ import annotations

import sys
from pathlib import Path

from freelunch import data


def prepare(layout: str, sources: list[str], out_dir: str) -> dict[str, int]:
    """Write the manifests; return the number of speech items per split."""
    if layout == "pack":
        rows = data.pack_layout(Path(sources[0]))
    elif layout == "voicebank":
        rows = data.voicebank_layout(Path(sources[0]))
    elif layout == "folders":
        rows = data.folder_layout(Path(sources[0]), Path(sources[1]))
    else:
        raise ValueError(f"unknown layout {layout!r}; use pack, voicebank or folders")
    out = Path(out_dir).resolve()
    for src in sources:
        if Path(src).resolve() in (out, *out.parents):
            raise ValueError(f"refusing to write manifests inside the data folder {src}")
    counts = {}
    for split in data.SPLITS:
        split_items = [r for r in rows if r["split"] == split]
        if not split_items:
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
