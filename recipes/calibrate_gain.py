#!/usr/bin/env python3
"""Calibrate a preset's mask at inference: the exponent it is raised to, and its average over frames.

    python recipes/calibrate_gain.py hparams/calibrate_gain.yaml --preset presets/balanced

The story: mix every valid utterance a few times (fixed seeds), enhance each mixture with
each setting of the grid, and keep the setting with the best mean PESQ-WB. A trained mask
tends to suppress a little more than PESQ-WB likes; an exponent below 1 lifts its small
gains most and leaves gains near 1 alone. A causal average over frames, y_t = a·y_(t-1) +
(1 - a)·g_t, then steadies each bin's gain from frame to frame. It writes
``gain_exponent``, ``gain_smoothing`` and the scores of the grid into the preset's
config.json, and the checksums. Training never sees them: the network applies them in eval
mode only.
"""
from __future__ import annotations

import itertools
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
    for exponent, smoothing in itertools.product(hp["gain_exponent_grid"], hp["gain_smoothing_grid"]):
        net.gain_exponent, net.gain_smoothing = float(exponent), float(smoothing)
        engine = BatchedEngine(net)
        scores[exponent, smoothing] = float(np.mean([metrics.quality(engine(m["noisy"])[0], m["clean"])["pesq"]
                                                     for m in mixtures]))
        print(f"gain exponent {exponent}, smoothing {smoothing}: valid PESQ-WB {scores[exponent, smoothing]:.4f}",
              flush=True)
    # a tie keeps the mask nearer as trained: the larger exponent, then the lighter smoothing
    exponent, smoothing = max(scores, key=lambda k: (round(scores[k], 4), k[0], -k[1]))
    config = {**config, "gain_exponent": float(exponent), "gain_smoothing": float(smoothing),
              "gain_calibration": {"valid_mixtures": len(mixtures), "valid_seed": hp["valid_seed"],
                                   "pesq_by_exponent_and_smoothing": {f"{e}/{a}": s for (e, a), s in scores.items()}}}
    write_text_atomic(Path(folder) / "config.json", json.dumps(config, indent=2) + "\n")
    presets.write_checksums(Path(folder))
    return config["gain_calibration"] | {"gain_exponent": exponent, "gain_smoothing": smoothing}


if __name__ == "__main__":
    import speechbrain as sb

    hparams_file, _, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file) as f:
        print(json.dumps(main(load_hyperpyyaml(f, overrides)), indent=2))
