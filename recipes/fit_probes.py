#!/usr/bin/env python3
"""Fit the six frame-property probes of a preset on its gate masks.

    python recipes/fit_probes.py hparams/probes.yaml --preset presets/balanced

The story: mix every train and valid utterance a few times (fixed seeds), run the preset's
network, keep a sample of frames with all feature types and all six targets. For each task,
fit a standardised linear model on the masks with regularisation picked on valid, rank the mask features, find C*
where the score saturates, and ship that probe folded into weighted sums
(``probes.safetensors``). The feature-type comparison and the selection curves go to
``probes_report.json``.
"""
from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np
from hyperpyyaml import load_hyperpyyaml
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.preprocessing import StandardScaler

from freelunch import data, presets
from freelunch.export.common import write_text_atomic
from freelunch.probes.cache import cached_clean_targets
from freelunch.probes.features import extract
from freelunch.probes.level import LEVEL_FEATURES, level_features
from freelunch.probes.decisions import VadDecision
from freelunch.probes.linear import CLASSIFIERS, TASKS, LinearProbes, Probe
from freelunch.probes.scoring import pitch, score_task
from freelunch.model.stft import n_frames
from freelunch.probes.targets import frame_level_db, mixture_targets, no_speech
from freelunch.taxonomy import noise_class


def category_names(rows: list[dict]) -> list[str]:
    """The noise classes of the data (freelunch.taxonomy), sorted."""
    return sorted({noise_class(r) for r in rows if r["kind"] == "noise"})


def at_level(x: np.ndarray, level_db: float) -> np.ndarray:
    """``x`` scaled to an RMS of ``level_db`` dBFS, as float32."""
    return (x * (10 ** (level_db / 20) / data.rms(x))).astype(np.float32)


def no_speech_clips(hp, bank: data.NoiseBank, rng, crops: int = 1) -> list[dict]:
    """``crops`` of every noise file of the split alone, each at a random level, and digital
    silence. Without these the probes only ever see speech mixtures, and call silence speech."""
    length = int(hp["no_speech_seconds"] * data.SAMPLE_RATE)
    silence = np.zeros(length, np.float32)
    clips = [dict(noisy=silence, clean=silence, noise=silence, category="") for _ in range(hp["silence_clips"])]
    for audio, row in zip(bank.audio, bank.rows):
        for _ in range(crops):
            noise = at_level(data.crop(audio, length, rng), rng.uniform(*hp["no_speech_level_db"]))
            clips.append(dict(noisy=noise, clean=silence, noise=noise, category=noise_class(row)))
    return clips


def collect(hp, net, rows, split, draws, seed, names, types, rng) -> tuple[dict, dict]:
    """Sampled frames of one split: features {type: (N, D)}, with the input-level features as
    "levels"; and targets {task: (N,)}."""
    speech, noise = data.split_rows(rows, split)
    speech = data.spread(speech, hp["max_utterances"])
    bank = data.NoiseBank(noise)
    feats = {t: [] for t in [*types, "levels"]}
    targets = {t: [] for t in [*TASKS, "vad_only"]}

    def keep_frames(mixture, clean, vad_only=False, pick=rng):
        tg = mixture_targets(mixture, names, clean)
        ft = {**extract(net, mixture["noisy"], types), "levels": level_features(frame_level_db(mixture["noisy"]))}
        frames = len(tg["vad"])
        start = np.arange(min(hp["startup_frames"], frames))
        rest = pick.choice(frames - len(start), min(hp["frames_per_mixture"], frames - len(start)), replace=False)
        keep = np.concatenate([start, len(start) + rest])
        for t in feats:
            feats[t].append(ft[t][keep])
        for t in TASKS:
            targets[t].append(tg[t][keep])
        targets["vad_only"].append(np.full(len(keep), vad_only))

    for draw in range(draws):
        for r in speech:
            mixture = data.make_mixture(data.load(r["path"]), bank, data.item_rng(seed + draw, r["id"]))
            keep_frames(mixture, cached_clean_targets(hp["target_cache"], r["id"], r["path"]))
        for clip in no_speech_clips(hp, bank, data.item_rng(seed + draw, split)):
            keep_frames(clip, no_speech(n_frames(len(clip["noisy"]))))
        if split == "train" and hp["vad_no_speech_crops"] > 1:  # more noise alone, for the VAD only;
            more = data.item_rng(seed + draw, f"{split}-vad")  # its own generator keeps every other frame as it was
            for clip in no_speech_clips(hp, bank, more, hp["vad_no_speech_crops"] - 1)[hp["silence_clips"]:]:
                keep_frames(clip, no_speech(n_frames(len(clip["noisy"]))), vad_only=True, pick=more)
    return {t: np.concatenate(v) for t, v in feats.items()}, {t: np.concatenate(v) for t, v in targets.items()}


def task_rows(task: str, y: np.ndarray) -> np.ndarray:
    """Frames a task is trained and scored on: those with a defined target (F0 only where the
    reference is voiced, SNR not in digital silence, a noise category only where there is noise)."""
    if task == "noise_category":
        return y >= 0
    return ~np.isnan(y) if task not in CLASSIFIERS else np.ones(len(y), bool)


def train_rows(task: str, targets: dict) -> np.ndarray:
    """The training frames of a task: its defined targets, less the VAD's extra noise crops."""
    return task_rows(task, targets[task]) & ((task == "vad") | ~targets["vad_only"])


def pitch_class_values(hp) -> np.ndarray | None:
    """The F0 of each pitch class (its centre on a log scale), or None where F0 is a regression."""
    per_octave = hp["f0_classes_per_octave"]
    if not per_octave:
        return None
    low, high = hp["f0_class_range_hz"]
    return (low * 2 ** ((np.arange(int(np.ceil(per_octave * np.log2(high / low)))) + 0.5) / per_octave)).astype(np.float32)


def pitch_class(hp, f0_hz: np.ndarray) -> np.ndarray:
    """Each F0's pitch class (the range's ends take what lies beyond them)."""
    n = len(pitch_class_values(hp))
    return np.clip(np.floor(hp["f0_classes_per_octave"] * np.log2(f0_hz / hp["f0_class_range_hz"][0])), 0, n - 1).astype(int)


def metric(task, hp) -> str:
    """What a task's probe is chosen by: accuracy for the classifiers, R² for the regressions,
    and for F0 read as pitch classes the share of frames within 50 cents (RPA, what a pitch
    tracker is judged by)."""
    return "accuracy" if task in CLASSIFIERS else "rpa" if task == "f0_hz" and hp["f0_classes_per_octave"] else "r2"


def task_score(task, hp, y: np.ndarray, pred: np.ndarray) -> float:
    """``metric`` of predictions (F0 in Hz) on the frames with a target."""
    if metric(task, hp) == "rpa":
        return pitch(y, pred)["rpa"]
    result = score_task(task, y, pred)
    return result.get("accuracy", result.get("r2"))


def valid_score(task, hp, model, xvs, yv) -> float:
    pred = model.predict(xvs)
    return task_score(task, hp, yv, pitch_class_values(hp)[pred] if metric(task, hp) == "rpa" else pred)


def fit(task, hp, x, y, xv, yv, grid=None):
    """Best-on-valid standardised model over the regularisation grid: (score, model, scaler, reg)."""
    scaler = StandardScaler().fit(x)
    xs, xvs = scaler.transform(x), scaler.transform(xv)
    kind = metric(task, hp)
    target = pitch_class(hp, y) if kind == "rpa" else y
    best = None
    for reg in grid or (hp["logistic_C"] if kind != "r2" else hp["ridge_alpha"]):
        if kind != "r2":
            model = LogisticRegression(C=reg, max_iter=hp["max_iter"]).fit(xs, target)
        else:
            model = Ridge(alpha=reg).fit(xs, y)
        score = valid_score(task, hp, model, xvs, yv)
        if best is None or score > best[0]:
            best = (score, model, scaler, reg)
    return best


def to_probe(task, model, scaler, index, n_classes, values=None) -> Probe:
    """Fold standardisation into weights: w·(x-μ)/σ + b = Σ (w/σ)·x + (b - Σ w·μ/σ). Columns
    after the ``index`` masks are input-level features. ``values``: F0 read as pitch classes."""
    coef = np.atleast_2d(model.coef_).T / scaler.scale_[:, None]  # (C + levels, K')
    bias = np.atleast_1d(model.intercept_) - (scaler.mean_[:, None] * coef).sum(0)
    if task == "noise_category" or values is not None:  # classes missing from training never win
        n_out = n_classes if values is None else len(values)
        full_coef = np.zeros((len(coef), n_out))
        full_bias = np.full(n_out, -1e4)
        full_coef[:, model.classes_] = coef
        full_bias[model.classes_] = bias
        coef, bias = full_coef, full_bias
    coef, level_coef = coef[: len(index)], coef[len(index):]
    return Probe(np.asarray(index, np.int64), coef.astype(np.float32), bias.astype(np.float32),
                 level_coef.astype(np.float32) if len(level_coef) else None, values)


def select(task, hp, x, y, xv, yv, full, levels, levels_valid) -> tuple[list, np.ndarray, tuple]:
    """Score against mask feature count, the input-level features always kept (refits keep the
    full probe's regularisation); return the curve, the ranking of the masks and the fit at
    C*, the smallest count within ``saturation`` of the full probe."""
    weights = np.abs(np.atleast_2d(full[1].coef_)).sum(0)[: x.shape[1]]
    ranking = np.argsort(-weights)
    curve, chosen = [], None
    for k in [k for k in hp["feature_counts"] if k < x.shape[1]] + [x.shape[1]]:
        sub = full if k == x.shape[1] else fit(task, hp, np.hstack([x[:, ranking[:k]], levels]), y,
                                               np.hstack([xv[:, ranking[:k]], levels_valid]), yv, [full[3]])
        curve.append({"features": k, "valid_score": float(sub[0])})
        if chosen is None and sub[0] >= full[0] - hp["saturation"]:
            chosen = (k, sub)
    return curve, ranking, chosen


def stream_scores(engine, probes: LinearProbes, noisy: np.ndarray, frames: int) -> tuple[dict, np.ndarray]:
    """A clip's first ``frames`` raw scores and input levels, from a fresh stream as the effect runs it."""
    from freelunch.evaluate import engine_frames

    masks, level_db = (a[:frames] for a in engine_frames(engine, noisy))
    return probes.scores(masks), level_db


def valid_sequences(hp, net, probes: LinearProbes, rows, names) -> list[tuple]:
    """Whole valid clips, scored as the effect scores them: every utterance mixed
    ``valid_draws`` times and the clips without speech. Each is (raw scores, input level, targets)."""
    from freelunch.model import StreamingEngine

    engine = StreamingEngine(net)
    speech, noise = data.split_rows(rows, "valid")
    bank = data.NoiseBank(noise)
    clips = []
    for draw in range(hp["valid_draws"]):
        rng = data.item_rng(hp["valid_seed"] + draw, "valid")
        for r in data.spread(speech, hp["max_utterances"]):
            mixture = data.make_mixture(data.load(r["path"]), bank, data.item_rng(hp["valid_seed"] + draw, r["id"]))
            clips.append((mixture, cached_clean_targets(hp["target_cache"], r["id"], r["path"])))
        clips += [(clip, no_speech(n_frames(len(clip["noisy"])))) for clip in no_speech_clips(hp, bank, rng)]
    sequences = []
    for mixture, clean in clips:
        targets = mixture_targets(mixture, names, clean)
        sequences.append((*stream_scores(engine, probes, mixture["noisy"], len(targets["vad"])), targets))
    return sequences


def noise_alone_clips(hp, net, probes: LinearProbes, rows) -> list[tuple]:
    """At each RMS level of ``vad_no_speech_levels_db``, every valid noise file alone, its first
    ``no_speech_seconds``, scored as the effect scores them: (raw scores, input level)."""
    from freelunch.model import StreamingEngine

    engine = StreamingEngine(net)
    length = int(hp["no_speech_seconds"] * data.SAMPLE_RATE)
    noises = [data.load(row["path"])[:length] for row in data.split_rows(rows, "valid")[1]]
    return [stream_scores(engine, probes, at_level(noise, level_db), n_frames(len(noise)))
            for level_db in hp["vad_no_speech_levels_db"] for noise in noises]


def decide(probes: LinearProbes, sequences, decision: VadDecision, smoothing: dict, lags: dict) -> dict[str, np.ndarray]:
    """Every sequence's columns as ``evaluate`` scores them (F0 on every frame), concatenated."""
    from freelunch.evaluate import scored_columns

    trial = LinearProbes(probes.probes, probes.category_names, smoothing, decision, lags)
    columns = [scored_columns(trial, raw, level_db) for raw, level_db, _ in sequences]
    return {t: np.concatenate([c[t] for c in columns]) for t in TASKS if t in columns[0]}


def tune_smoothing(hp, probes: LinearProbes, sequences) -> tuple[dict[str, float], dict[str, int]]:
    """Per task, the causal smoothing coefficient and the lag that score best on the whole valid
    clips; the smaller of each wins a tie."""
    truth = {t: np.concatenate([s[-1][t] for s in sequences]) for t in TASKS}
    smoothing, lags = {}, {}
    for task in TASKS:
        needed = (task, "vad") if task == "voiced" else (task,)  # voicing is reported in speech only
        task_only = [({k: raw[k] for k in needed}, *rest) for raw, *rest in sequences]
        rows = task_rows(task, truth[task])
        best = None
        for alpha, lag in itertools.product(hp["smoothing_grid"], hp["lag_grid"]):
            pred = decide(probes, task_only, VadDecision(), {task: alpha}, {task: lag})[task]
            value = task_score(task, hp, truth[task][rows], pred[rows])
            if best is None or value > best[0] + 1e-4:
                best = (value, alpha, lag)
        smoothing[task], lags[task] = best[1], best[2]
    return smoothing, lags


def tune_vad_decision(hp, probes: LinearProbes, sequences, quiet=()) -> tuple[VadDecision, list[dict]]:
    """The VAD decision (threshold, run clean-up) that finds speech in the fewest
    ``quiet`` clips of noise alone, among those within ``vad_accuracy_tolerance`` of the best
    frame accuracy on the whole valid clips (the clips without speech included). Frame accuracy
    alone would trade a whole false segment on a noise for a few frames of the mixtures; the
    fewest false segments alone would drop true speech wholesale, since corpus noise holds
    babble, real talkers. Then the best accuracy wins, then the smallest look-ahead."""
    truth = np.concatenate([s[-1]["vad"] for s in sequences])
    vad_only = [({"vad": raw["vad"]}, *rest) for raw, *rest in sequences]
    smoothing, lags = {"vad": probes.smoothing.get("vad", 0.0)}, {"vad": probes.lags.get("vad", 0)}
    trials = []
    for decision in itertools.starmap(VadDecision, itertools.product(
            hp["vad_threshold_grid"], hp["vad_bridge_frames_grid"], hp["vad_min_speech_frames_grid"])):
        speech = decide(probes, vad_only, decision, smoothing, lags)["vad"]
        alone = sum(decide(probes, [({"vad": raw["vad"]}, level_db, None)], decision, smoothing, lags)["vad"].any()
                    for raw, level_db in quiet)
        trials.append({**decision.as_dict(), "valid_accuracy": float(np.mean(speech == truth)),
                       "noise_alone_with_speech": int(alone)})
    floor = max(t["valid_accuracy"] for t in trials) - hp["vad_accuracy_tolerance"]
    best = max((t for t in trials if t["valid_accuracy"] >= floor - 1e-9),
               key=lambda t: (-t["noise_alone_with_speech"], round(t["valid_accuracy"], 4),
                              -t["bridge_frames"] - t["min_speech_frames"]))
    return VadDecision(**{k: v for k, v in best.items() if k not in ("valid_accuracy", "noise_alone_with_speech")}), trials


def task_levels(x: dict, rows: np.ndarray, reads_levels: bool) -> np.ndarray:
    """A task's rows of the level features, none if it does not read them."""
    return x["levels"][rows] if reads_levels else x["levels"][rows, :0]


def fit_all(hp, net, rows, names) -> tuple[LinearProbes, dict]:
    """The six probes at C*, and the report of their fit: selection curves, feature types."""
    rng = np.random.default_rng(0)
    types = list(dict.fromkeys(["masks", *hp["compare_types"]]))
    xtr, ytr = collect(hp, net, rows, "train", hp["train_draws"], hp["train_seed"], names, types, rng)
    xva, yva = collect(hp, net, rows, "valid", hp["valid_draws"], hp["valid_seed"], names, types, rng)
    report = {"frames_train": len(ytr["vad"]), "frames_valid": len(yva["vad"]), "tasks": {}}
    probes = {}
    for task in TASKS:
        tr, va = train_rows(task, ytr), task_rows(task, yva[task])
        y, yv = ytr[task][tr], yva[task][va]
        reads_levels = task in hp["level_tasks"]
        levels, levels_valid = (task_levels(x, rows, reads_levels) for x, rows in ((xtr, tr), (xva, va)))
        x, xv = xtr["masks"][tr], xva["masks"][va]
        full = fit(task, hp, np.hstack([x, levels]), y, np.hstack([xv, levels_valid]), yv)
        curve, ranking, (c_star, chosen) = select(task, hp, x, y, xv, yv, full, levels, levels_valid)
        probes[task] = to_probe(task, chosen[1], chosen[2], ranking[:c_star], len(names),
                                pitch_class_values(hp) if task == "f0_hz" else None)
        sub = rng.choice(tr.sum(), min(hp["compare_frames"], tr.sum()), replace=False)
        comparison = {t: float(fit(task, hp, xtr[t][tr][sub], y[sub], xva[t][va], yv)[0]) for t in hp["compare_types"]}
        if reads_levels:  # what the level features add to the masks, and what they do alone
            comparison["masks_and_levels"] = float(fit(task, hp, np.hstack([xtr["masks"][tr][sub], levels[sub]]), y[sub],
                                                       np.hstack([xva["masks"][va], levels_valid]), yv)[0])
            comparison["levels"] = float(fit(task, hp, levels[sub], y[sub], levels_valid, yv)[0])
        report["tasks"][task] = {
            "metric": metric(task, hp),
            "valid_score_full": float(full[0]),
            "input_level_features": list(LEVEL_FEATURES) if reads_levels else [],
            "c_star": int(c_star),
            "valid_score_c_star": float(chosen[0]),
            "selection_curve": curve,
            "feature_types_valid": comparison,
            "top64": ranking[:64].tolist(),
            "top64_coef": np.atleast_2d(full[1].coef_)[:, ranking[:64]].tolist(),
        }
        print(task, json.dumps({k: v for k, v in report["tasks"][task].items() if not k.startswith("top")}), flush=True)
    return LinearProbes(probes, names), report


def main(hp) -> dict:
    net, _, folder = presets.load(hp["preset"])
    if not net.gated:
        raise ValueError(f"{folder} is a dense network: it has no gate masks to probe")
    rows = data.pack_layout(Path(hp["data_root"]))
    names = category_names(rows)
    if hp["refit"]:
        linear, report = fit_all(hp, net, rows, names)
    else:  # keep the fitted probes, choose their smoothing, lags and VAD decision again
        linear, report = LinearProbes.load(folder), json.loads(Path(hp["report"]).read_text())
    sequences = valid_sequences(hp, net, linear, rows, names)
    linear.smoothing, linear.lags = tune_smoothing(hp, linear, sequences)
    quiet = noise_alone_clips(hp, net, linear, rows)
    linear.decision, report["vad_decision_trials"] = tune_vad_decision(hp, linear, sequences, quiet)
    report["smoothing"], report["lag_frames"], report["vad_decision"] = linear.smoothing, linear.lags, linear.decision.as_dict()
    print("smoothing", linear.smoothing, "lags", linear.lags, "VAD decision", report["vad_decision"], flush=True)
    linear.save(folder)
    write_text_atomic(Path(hp["report"]), json.dumps(report, indent=1) + "\n")
    presets.write_checksums(Path(folder))
    return report


if __name__ == "__main__":
    import speechbrain as sb

    hparams_file, _, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file) as f:
        main(load_hyperpyyaml(f, overrides))
