#!/usr/bin/env python3
"""Calibrate a preset's mask: the exponent it is raised to at inference.

    python recipes/calibrate_gain.py hparams/calibrate_gain.yaml --preset presets/balanced

The story: mix every valid utterance a few times (fixed seeds), enhance each mixture with
the mask raised to each exponent of the grid, and keep the exponent with the best mean
PESQ-WB. A trained mask tends to suppress a little more than PESQ-WB likes; an exponent
below 1 lifts its small gains most and leaves gains near 1 alone. It writes
``gain_exponent`` and the scores of the grid into the preset's config.json, and the
checksums. Training never sees it: the network applies it in eval mode only.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from hyperpyyaml import load_hyperpyyaml

from freelunch import data, metrics, presets
from freelunch.export.common import write_text_atomic
from freelunch.model import BatchedEngine


def valid_mixtures(hp) -> list[dict]:
    rows = data.pack_layout(Path(hp["data_root"]))
    return [mixture for k in range(hp["valid_draws"])
            for _, mixture in data.fixed_mixtures(rows, "valid", seed=hp["valid_seed"] + k, limit=hp["valid_limit"])]


def main(hp) -> dict:
    net, config, folder = presets.load(hp["preset"])
    mixtures = valid_mixtures(hp)
    scores = {}
    for exponent in hp["gain_exponent_grid"]:
        net.gain_exponent = float(exponent)
        engine = BatchedEngine(net)
        scores[float(exponent)] = float(np.mean([metrics.quality(engine(m["noisy"])[0], m["clean"])["pesq"]
                                                 for m in mixtures]))
        print(f"gain exponent {exponent}: valid PESQ-WB {scores[float(exponent)]:.4f}", flush=True)
    best = max(scores, key=lambda e: (round(scores[e], 4), e))  # a tie keeps the mask nearer as trained
    config = {**config, "gain_exponent": best,
              "gain_calibration": {"valid_mixtures": len(mixtures), "valid_seed": hp["valid_seed"],
                                   "pesq_by_exponent": {str(e): s for e, s in scores.items()}}}
    write_text_atomic(Path(folder) / "config.json", json.dumps(config, indent=2) + "\n")
    presets.write_checksums(Path(folder))
    return config["gain_calibration"] | {"gain_exponent": best}


if __name__ == "__main__":
    import speechbrain as sb

    hparams_file, _, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file) as f:
        print(json.dumps(main(load_hyperpyyaml(f, overrides)), indent=2))
