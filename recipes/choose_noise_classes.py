#!/usr/bin/env python3
"""Measure each candidate noise taxonomy on valid, as the probes and the baseline would learn it.

    python recipes/choose_noise_classes.py hparams/noise_classes.yaml --data_root /data/corpus

The story: crop every train and valid noise file once, alone and under speech. Cut each crop
into one-second windows of two features: the log-mel statistics of the no-network baseline
(peers.LogMelNoiseClassifier) and the mean gate masks of a preset. For each taxonomy, fit a
logistic regression per feature on train and score valid windows and files. The report also
counts each class's distinct training recordings (an ESC-50 freesound original counts once).
"""
from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from hyperpyyaml import load_hyperpyyaml
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.preprocessing import StandardScaler

from freelunch import data, presets
from freelunch.export.common import write_text_atomic
from freelunch.model import BatchedEngine
from freelunch.peers import LogMelNoiseClassifier, window_statistics
from freelunch.probes.targets import noise_level_db
from freelunch.taxonomy import NOISE_CLASSES, by_category

# Classes named for what a user does about them.
ACTIONABLE = by_category({
    "babble": ("babble", "crowd_babble"),
    "music": ("music",),
    "traffic": ("airplane", "engine", "helicopter", "train", "street_traffic", "transport"),
    "machines": ("chainsaw", "hand_saw", "vacuum_cleaner", "washing_machine", "electrical_hum", "fan_ventilation",
                 "machinery"),
    "weather": ("rain", "rain_storm", "thunderstorm", "sea_waves", "wind", "water_drops", "pouring_water",
                "toilet_flush", "water", "crackling_fire", "fire", "nature_ambience"),
    "alarms": ("siren", "clock_alarm", "church_bells", "car_horn"),
    "impacts": ("door_wood_knock", "door_wood_creaks", "mouse_click", "keyboard_typing", "typing", "clock_tick",
                "footsteps", "glass_breaking", "can_opening", "fireworks", "clapping", "kitchen", "drinking_sipping"),
    "animals": ("dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow", "chirping_birds",
                "crickets"),
    "human": ("crying_baby", "sneezing", "breathing", "coughing", "laughing", "brushing_teeth", "snoring"),
})

# The acoustic classes, with animals and body sounds apart and alarms as their own class.
HYBRID = by_category({
    "babble": ("babble", "crowd_babble"),
    "music": ("music",),
    "steady": ("rain", "rain_storm", "sea_waves", "wind", "engine", "train", "airplane", "helicopter", "vacuum_cleaner",
               "washing_machine", "fan_ventilation", "machinery", "street_traffic", "transport", "crackling_fire", "fire",
               "pouring_water", "toilet_flush", "water", "chainsaw", "hand_saw", "nature_ambience", "thunderstorm",
               "electrical_hum"),
    "impacts": ("door_wood_knock", "door_wood_creaks", "mouse_click", "keyboard_typing", "typing", "clock_tick",
                "footsteps", "glass_breaking", "can_opening", "fireworks", "clapping", "kitchen", "drinking_sipping",
                "water_drops"),
    "alarms": ("siren", "clock_alarm", "church_bells", "car_horn"),
    "animals": ("dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow", "chirping_birds",
                "crickets"),
    "human": ("crying_baby", "sneezing", "breathing", "coughing", "laughing", "brushing_teeth", "snoring"),
})

# The candidates; ``None`` reads the manifest's own ``group`` column (the corpus's 7 groups).
CANDIDATES = {"acoustic": NOISE_CLASSES, "actionable": ACTIONABLE, "hybrid": HYBRID, "groups": None}


def noise_class(row: dict, name: str) -> str:
    table = CANDIDATES[name]
    return row.get("group") or row["category"] if table is None else table.get(row["category"], row["category"])

WINDOW = LogMelNoiseClassifier.window_frames


def recording(row: dict) -> str:
    """An ESC-50 clip's freesound original (``esc50__{fold}-{id}-{take}-{target}``); else the file."""
    match = re.match(r"noise-esc50__\d-(\d+)-", row["id"])
    return f"freesound-{match.group(1)}" if match else row["id"]


def windows(hp, engine, rows, split):
    """Per condition, the log-mel and mask windows of every noise file of a split, with the
    index of the file each window came from; windows whose noise is mostly inaudible are left out."""
    speech, noise = data.split_rows(rows, split)
    length = int(hp["clip_seconds"] * data.SAMPLE_RATE)
    out = {c: defaultdict(list) for c in ("alone", "speech")}
    for i, row in enumerate(noise):
        rng = data.item_rng(hp["seed"], row["id"])
        clip = data.crop(data.load(row["path"]), length, rng)
        alone = (clip * (10 ** (rng.uniform(*hp["noise_level_db"]) / 20) / data.rms(clip))).astype(np.float32)
        talker = data.crop(data.load(speech[int(rng.integers(len(speech)))]["path"]), length, rng)
        m = data.mix(talker, clip, rng.uniform(*hp["snr_db"]), rng.uniform(*hp["speech_level_db"]))
        for condition, noisy, noise_part in (("alone", alone, alone), ("speech", m["noisy"], m["noise"])):
            audible = noise_level_db(noise_part) >= hp["audible_db"]
            _, masks = engine(noisy)
            mel = LogMelNoiseClassifier.features(noisy)
            keep = window_statistics(audible[:, None].astype(np.float32), WINDOW)[:, 0] > 0.5
            mask_windows = window_statistics(masks.reshape(len(masks), -1).astype(np.float32), WINDOW)
            out[condition]["logmel"].append(mel[keep])
            out[condition]["masks"].append(mask_windows[keep, : mask_windows.shape[1] // 2])  # the means
            out[condition]["file"].append(np.full(int(keep.sum()), i))
    return noise, {c: {k: np.concatenate(v) for k, v in d.items()} for c, d in out.items()}


def score(hp, xtr, ytr, xva, yva, files, n_classes):
    """Best-on-valid logistic regression: window accuracy and balanced accuracy, file (majority) balanced accuracy."""
    scaler = StandardScaler().fit(xtr)
    best = None
    for c in hp["logistic_C"]:
        pred = LogisticRegression(C=c, max_iter=1000).fit(scaler.transform(xtr), ytr).predict(scaler.transform(xva))
        balanced = balanced_accuracy_score(yva, pred)
        if best is None or balanced > best["balanced_accuracy"]:
            majority = {f: np.bincount(pred[files == f], minlength=n_classes).argmax() for f in np.unique(files)}
            truth = {f: yva[files == f][0] for f in majority}
            best = {"C": c, "accuracy": float(accuracy_score(yva, pred)), "balanced_accuracy": float(balanced),
                    "file_balanced_accuracy": float(balanced_accuracy_score(list(truth.values()), list(majority.values())))}
    best["chance_corrected"] = (best["balanced_accuracy"] - 1 / n_classes) / (1 - 1 / n_classes)
    return best


def main(hp) -> dict:
    rows = data.pack_layout(Path(hp["data_root"]))
    net, _, _ = presets.load(hp["preset"])
    engine = BatchedEngine(net)
    (train_noise, train), (valid_noise, valid) = (windows(hp, engine, rows, s) for s in ("train", "valid"))
    report = {"windows_train": len(train["alone"]["file"]), "windows_valid": len(valid["alone"]["file"]), "taxonomies": {}}
    for name in CANDIDATES:
        classes = sorted({noise_class(r, name) for r in train_noise})
        recordings = {c: len({recording(r) for r in train_noise if noise_class(r, name) == c}) for c in classes}
        label = lambda noise, d: np.array([classes.index(noise_class(noise[f], name)) for f in d["file"]])  # noqa: E731
        result = {"classes": recordings, "eligible": len(classes) in range(5, 11)
                  and min(recordings.values()) >= hp["min_train_recordings"]}
        for condition in ("alone", "speech"):
            tr, va = train[condition], valid[condition]
            for feature in ("logmel", "masks"):
                result[f"{condition}/{feature}"] = score(hp, tr[feature], label(train_noise, tr), va[feature],
                                                         label(valid_noise, va), va["file"], len(classes))
        report["taxonomies"][name] = result
        print(name, json.dumps(result), flush=True)
    write_text_atomic(Path(hp["report"]), json.dumps(report, indent=1) + "\n")
    return report


if __name__ == "__main__":
    import speechbrain as sb

    hparams_file, _, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file) as f:
        main(load_hyperpyyaml(f, overrides))
