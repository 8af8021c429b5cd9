#!/usr/bin/env python3
"""Measure what each rule of a preset's VAD decision buys, on valid.

    python recipes/measure_vad_rules.py hparams/vad_rules.yaml --preset presets/balanced --data_root /data/corpus

The story: run the split's fixed set (its speech mixtures and its noise-only clips) through
the preset as the effect runs it, once, and keep each clip's raw VAD scores and input level. Then decide the VAD again with the preset's decision, and with each of its
rules turned off in turn: the frame accuracy on the mixtures, and the false alarms on noise
alone (the share of clips where any frame is speech, and of their frames). Each variant is
scored at the preset's threshold and at the threshold of the grid that is most accurate
without it. A rule pays if it gains ``min_accuracy_gain`` of accuracy over both, or if, at the
same threshold, it cuts false alarms at no cost in accuracy. The table goes to ``--out`` as JSON.
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
from hyperpyyaml import load_hyperpyyaml

from freelunch import data, evalsets, presets
from freelunch.evaluate import engine_frames, scored_columns
from freelunch.export.common import write_text_atomic
from freelunch.model import StreamingEngine
from freelunch.probes.decisions import VadDecision
from freelunch.probes.linear import LinearProbes
from freelunch.probes.targets import mixture_targets

# Each rule of the decision, and the settings that turn it off.
RULES = {
    "run clean-up": dict(bridge_frames=1, min_speech_frames=1),
}


def clips(hp, net, probes: LinearProbes) -> list[tuple]:
    """Every clip of the set: (speech?, raw VAD scores, input level, VAD target)."""
    engine = StreamingEngine(net)
    rows = data.pack_layout(Path(hp["data_root"]))
    out = []
    for _, m, clean in evalsets.evaluation_items(rows, hp["split"], hp["limit"], hp["target_cache"]):
        target = mixture_targets(m, probes.category_names, clean)["vad"]
        masks, level_db = (a[: len(target)] for a in engine_frames(engine, m["noisy"]))
        out.append((m["kind"] == "speech", {"vad": probes.scores(masks)["vad"]}, level_db, target))
    return out


def score(probes: LinearProbes, clips: list[tuple], decision: VadDecision) -> dict:
    said = [scored_columns(probes, raw, level, decision)["vad"] for _, raw, level, _ in clips]
    speech = [(s, c[-1]) for s, c in zip(said, clips) if c[0]]
    alone = [s for s, c in zip(said, clips) if not c[0]]
    return {"threshold": decision.threshold,
            "accuracy": float(np.mean(np.concatenate([s == t for s, t in speech]))),
            "noise_only_clips_with_speech": float(np.mean([s.any() for s in alone])) if alone else float("nan"),
            "noise_only_speech_frames": float(np.concatenate(alone).mean()) if alone else float("nan")}


def measure(hp, probes: LinearProbes, clips: list[tuple]) -> dict:
    """The shipped decision, then each rule it has on turned off, at its threshold and retuned."""
    shipped = probes.decision

    def both(decision: VadDecision) -> dict:
        retuned = max((score(probes, clips, dataclasses.replace(decision, threshold=t)) for t in hp["threshold_grid"]),
                      key=lambda s: s["accuracy"])
        return {"at_threshold": score(probes, clips, decision), "retuned": retuned}

    table = {"decision": both(shipped)}
    base = table["decision"]["at_threshold"]
    for rule, off in RULES.items():
        without = dataclasses.replace(shipped, **off)
        if without == shipped:
            continue  # this rule is off already
        row = both(without)
        same = row["at_threshold"]
        fewer_alarms = same["noise_only_clips_with_speech"] - base["noise_only_clips_with_speech"]
        gain = base["accuracy"] - max(same["accuracy"], row["retuned"]["accuracy"])
        row["rule_accuracy_gain"] = float(gain)
        row["rule_cuts_noise_only_clips_with_speech"] = float(fewer_alarms)
        row["pays"] = bool(gain >= hp["min_accuracy_gain"] or (fewer_alarms > 0 and base["accuracy"] >= same["accuracy"]))
        table[f"without {rule}"] = row
    return table


def main(hp) -> dict:
    net, _, folder = presets.load(hp["preset"])
    probes = LinearProbes.load(folder)
    table = {"preset": folder.name, "split": hp["split"], "decision": probes.decision.as_dict(),
             "rules": measure(hp, probes, clips(hp, net, probes))}
    if hp["out"]:
        write_text_atomic(Path(hp["out"]), json.dumps(table, indent=1) + "\n")
    for name, row in table["rules"].items():
        print(name, json.dumps(row), flush=True)
    return table


if __name__ == "__main__":
    import speechbrain as sb

    hparams_file, _, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file) as f:
        main(load_hyperpyyaml(f, overrides))
