#!/usr/bin/env python3
"""Turn a training run's best checkpoint into a complete preset folder.

    python recipes/export_preset.py results/balanced presets/balanced hparams/probes.yaml

Writes model.safetensors and config.json (with the checkpoint's valid metrics); for a gated
network given a probes hparams file, fits the probes on its masks (``fit_probes.py``);
then scores the preset on the test split into metrics.json (``freelunch evaluate``) and
writes checksums.json. A new network makes old probes meaningless, so the folder is
replaced whole.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from hyperpyyaml import load_hyperpyyaml

from freelunch import presets
from freelunch.evaluate import evaluate_preset
from freelunch.export.common import write_text_atomic

sys.path.insert(0, str(Path(__file__).parent))
import fit_probes  # noqa: E402


def export(run_folder: Path, preset_folder: Path, probes_hparams: Path | None = None, limit: int | None = None) -> dict:
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
    if probes_hparams is not None and net.gated:
        with open(probes_hparams) as f:
            fit_probes.main(load_hyperpyyaml(f, {"preset": str(preset_folder)}))
    metrics = evaluate_preset(str(preset_folder), split="test", limit=limit)
    write_text_atomic(preset_folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    presets.write_checksums(preset_folder)
    return metrics


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    probes_file = Path(sys.argv[3]) if len(sys.argv) == 4 else None
    print(json.dumps(export(Path(sys.argv[1]), Path(sys.argv[2]), probes_file), indent=2))
