#!/usr/bin/env python3
"""Turn a training run's best checkpoint into a preset folder and score it on the test split.

    python recipes/export_preset.py results/balanced presets/balanced

Writes model.safetensors, config.json (with the checkpoint's valid metrics), metrics.json
(``freelunch evaluate`` on the test split) and checksums.json. A new network makes old
probes meaningless, so the folder is replaced whole: fit the probes again afterwards with
``python recipes/fit_probes.py hparams/probes.yaml``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from hyperpyyaml import load_hyperpyyaml

from freelunch import presets
from freelunch.evaluate import evaluate_preset


def export(run_folder: Path, preset_folder: Path, limit: int | None = None) -> dict:
    with open(run_folder / "hyperparams.yaml") as f:
        hparams = load_hyperpyyaml(f, {"output_folder": str(run_folder)})
    checkpoint = hparams["checkpointer"].recover_if_possible(max_key="score")
    if checkpoint is None:
        raise FileNotFoundError(f"no checkpoint in {run_folder}")
    net = hparams["model"].eval()
    config = {
        "name": preset_folder.name,
        "target_usage": float(hparams["target_usage"]) if hparams["gated"] else 1.0,
        "training": {
            "run": str(run_folder),
            "epoch": int(hparams["epoch_counter"].current),
            "valid": {k: float(v) for k, v in checkpoint.meta.items() if isinstance(v, (int, float))},
        },
    }
    presets.save(preset_folder, net, config)
    metrics = evaluate_preset(str(preset_folder), split="test", limit=limit)
    (preset_folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    presets.write_checksums(preset_folder)
    return metrics


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(json.dumps(export(Path(sys.argv[1]), Path(sys.argv[2])), indent=2))
