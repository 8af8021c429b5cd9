#!/usr/bin/env python3
"""Choose a preset's noise-label threshold on valid, and write it into the preset.

    python recipes/choose_noise_threshold.py hparams/noise_threshold.yaml --preset presets/balanced --data_root /data/corpus

The story: run the split's fixed set (its mixtures and noise-only clips) through the preset
as the effect runs it; on every frame with an audible noise, keep the probe's class and its
probability. The threshold is the lowest on the grid at which the classes shown (probability
at or above it) are right ``min_precision`` of the time; what it still shows is its coverage.
The curve goes to the preset's ``probes_report.json`` under ``noise_threshold``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from hyperpyyaml import load_hyperpyyaml

from freelunch import data, evalsets, presets
from freelunch.evaluate import engine_frames, scored_columns
from freelunch.export.common import write_text_atomic
from freelunch.model import StreamingEngine
from freelunch.probes.linear import LinearProbes
from freelunch.probes.targets import mixture_targets


def frames(hp, net, probes: LinearProbes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(true class, said class, its probability) of every audible-noise frame of the set."""
    engine = StreamingEngine(net)
    rows = data.pack_layout(Path(hp["data_root"]))
    truth, said, prob = [], [], []
    for _, m, clean in evalsets.evaluation_items(rows, hp["split"], hp["limit"], hp["target_cache"]):
        targets = mixture_targets(m, probes.category_names, clean)
        n = len(targets["vad"])
        masks, level_db = (a[:n] for a in engine_frames(engine, m["noisy"]))
        columns = scored_columns(probes, probes.scores(masks), level_db)
        keep = targets["noise_category"] >= 0
        truth.append(targets["noise_category"][keep])
        said.append(columns["noise_category"][keep])
        prob.append(columns["noise_prob"][keep])
    return np.concatenate(truth), np.concatenate(said), np.concatenate(prob)


def curve(grid, truth, said, prob) -> list[dict]:
    out = []
    for t in grid:
        shown = prob >= t
        out.append({"threshold": float(t), "precision": float((said[shown] == truth[shown]).mean()) if shown.any() else 1.0,
                    "coverage": float(shown.mean())})
    return out


def main(hp) -> dict:
    net, _, folder = presets.load(hp["preset"])
    probes = LinearProbes.load(folder)
    points = curve(hp["grid"], *frames(hp, net, probes))
    chosen = next((p for p in points if p["precision"] >= hp["min_precision"]), points[-1])
    probes.noise_threshold = chosen["threshold"]
    probes.save(folder)
    report_file = folder / "probes_report.json"
    report = json.loads(report_file.read_text()) if report_file.exists() else {}
    report["noise_threshold"] = {"split": hp["split"], "min_precision": hp["min_precision"], "chosen": chosen,
                                 "curve": points}
    write_text_atomic(report_file, json.dumps(report, indent=1) + "\n")
    presets.write_checksums(folder)
    print(json.dumps(chosen), flush=True)
    return chosen


if __name__ == "__main__":
    import speechbrain as sb

    hparams_file, _, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file) as f:
        main(load_hyperpyyaml(f, overrides))
