#!/usr/bin/env python3
"""Turn a training run's best checkpoint into a complete preset folder.

    python recipes/export_preset.py results/balanced presets/balanced --probes hparams/probes.yaml \
        --calibrate hparams/calibrate_gain.yaml --noise-threshold hparams/noise_threshold.yaml

Writes model.safetensors and config.json (with the checkpoint's valid metrics). A run that
keeps its best N checkpoints (``average_checkpoints`` in its hyperparams) is exported as the
average of their weights, as SpeechBrain's ASR recipes average theirs. Given a
calibration hparams file, picks the mask's exponent on valid (``calibrate_gain.py``); for a
gated network given a probes hparams file, fits the probes on its masks (``fit_probes.py``)
and, given a threshold hparams file, the probability a noise label needs on valid
(``choose_noise_threshold.py``); then scores the preset on the test split into metrics.json
(``freelunch evaluate``) and writes checksums.json. A new network makes old probes
meaningless, so the folder is replaced whole.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from freelunch import presets
from freelunch.evaluate import evaluate_preset

sys.path.insert(0, str(Path(__file__).parent))
import calibrate_gain  # noqa: E402
import choose_noise_threshold  # noqa: E402
import fit_probes  # noqa: E402


def export(run_folder: Path, preset_folder: Path, probes_hparams: Path | None = None, limit: int | None = None,
           calibration_hparams: Path | None = None, threshold_hparams: Path | None = None) -> dict:
    with open(run_folder / "hyperparams.yaml") as f:
        hparams = load_hyperpyyaml(f, {"output_folder": str(run_folder)})
    checkpointer = hparams["checkpointer"]
    checkpoints = checkpointer.find_checkpoints(max_key="score", max_num_checkpoints=hparams.get("average_checkpoints", 1))
    if not checkpoints:
        raise FileNotFoundError(f"no checkpoint in {run_folder}")
    checkpoint = checkpoints[0]
    checkpointer.load_checkpoint(checkpoint)
    net = hparams["model"].eval()
    if len(checkpoints) > 1:
        net.load_state_dict(sb.utils.checkpoints.average_checkpoints(checkpoints, "model"))
    config = {
        "name": preset_folder.name,
        "target_usage": float(hparams["target_usage"]) if hparams["gated"] else 1.0,
        "training": {
            "run": str(run_folder),
            "epoch": int(hparams["epoch_counter"].current),
            "valid": {k: float(v) for k, v in checkpoint.meta.items() if isinstance(v, (int, float))},
            "checkpoints": [{"name": c.path.name, "valid_pesq": float(c.meta["pesq"])} for c in checkpoints],
        },
    }
    presets.save(preset_folder, net, config)
    if calibration_hparams is not None:
        with open(calibration_hparams) as f:
            calibrate_gain.main(load_hyperpyyaml(f, {"preset": str(preset_folder)}))
    if probes_hparams is not None and net.gated:
        with open(probes_hparams) as f:
            fit_probes.main(load_hyperpyyaml(f, {"preset": str(preset_folder)}))
        if threshold_hparams is not None:
            with open(threshold_hparams) as f:
                choose_noise_threshold.main(load_hyperpyyaml(f, {"preset": str(preset_folder)}))
    metrics = evaluate_preset(str(preset_folder), split="test", limit=limit)
    presets.write_metrics(preset_folder, metrics)
    return metrics


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_folder", type=Path)
    parser.add_argument("preset_folder", type=Path)
    parser.add_argument("--probes", type=Path, default=None, help="probes hparams (gated networks)")
    parser.add_argument("--calibrate", type=Path, default=None, help="gain calibration hparams")
    parser.add_argument("--noise-threshold", type=Path, default=None, help="noise-label threshold hparams (gated networks)")
    args = parser.parse_args()
    print(json.dumps(export(args.run_folder, args.preset_folder, args.probes, calibration_hparams=args.calibrate,
                            threshold_hparams=args.noise_threshold), indent=2))
