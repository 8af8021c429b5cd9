"""``freelunch evaluate``: score a preset on the fixed mixtures of a split.

Speech quality comes from the batched engine (the same output as the streaming engine
to ~1e-4); the probes read the streaming engine's masks, exactly as the effect does, and
are scored as the effect decides them (``probes``: the preset's smoothing and VAD decision)
and frame by frame (``probes_unsmoothed``: no smoothing, VAD threshold 0.5, no clean-up).
"""
from __future__ import annotations

import numpy as np

from . import data, metrics, presets
from .model import BatchedEngine, StreamingEngine
from .model.cost import frame_macs
from .peers import PyworldF0
from .probes.cache import cached_clean_targets
from .probes.decisions import VadDecision
from .probes.linear import TASKS, LinearProbes
from .probes.scoring import score_task
from .probes.targets import mixture_targets

TARGET_CACHE = "results/targets_cache"


def engine_frames(engine: StreamingEngine, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A whole signal through a fresh stream: its frames' masks, input levels (dBFS) and the
    enhancer's gains (dB)."""
    engine.reset()
    _, masks, _, level_db, gain_db = engine.process_frames(np.concatenate([noisy, np.zeros(engine.latency + 1, np.float32)]))
    return masks, level_db, gain_db


def scored_columns(probes: LinearProbes, raw: dict[str, np.ndarray], level_db: np.ndarray, gain_db: np.ndarray,
                   decision: VadDecision | None = None, smooth: bool = True) -> dict[str, np.ndarray]:
    """A whole signal's columns from its raw scores, as the effect decides them, except that
    F0 is kept on every frame: it is scored wherever the reference is voiced, whatever the VAD said."""
    columns = probes.stream(decision, smooth).whole(raw, level_db, gain_db)
    if "f0_hz" in raw:  # a stream of F0 alone: no VAD to gate it
        columns["f0_hz"] = probes.stream(decision, smooth).whole({"f0_hz": raw["f0_hz"]}, level_db)["f0_hz"]
    return columns


def evaluate_preset(preset: str, split: str = "test", limit: int | None = None, data_root=None,
                    target_cache: str = TARGET_CACHE) -> dict:
    """Speech quality, usage and MACs; with probes, the six tasks against their targets."""
    net, config, folder = presets.load(preset)
    probes = LinearProbes.load(folder) if (folder / LinearProbes.FILE).exists() else None
    batched = BatchedEngine(net)
    engine = StreamingEngine(net) if probes else None
    rows = data.pack_layout(data_root or data.default_data_root())
    paths = {r["id"]: r["path"] for r in rows}
    noisy_scores, enhanced_scores, usage = [], [], []
    truth, peer_f0 = {t: [] for t in TASKS}, []
    pred = {variant: {t: [] for t in TASKS} for variant in ("smoothed", "raw")}
    adds = {t: [] for t in TASKS}
    dio = PyworldF0("dio")
    for item_id, mixture in data.fixed_mixtures(rows, split, limit=limit):
        enhanced, masks = batched(mixture["noisy"])
        noisy_scores.append(metrics.quality(mixture["noisy"], mixture["clean"]))
        enhanced_scores.append(metrics.quality(enhanced, mixture["clean"]))
        usage.append(masks.mean(axis=(0, 2)))
        if probes is None:
            continue
        targets = mixture_targets(mixture, probes.category_names,
                                  cached_clean_targets(target_cache, item_id, paths[item_id]))
        frames = len(targets["vad"])
        masks, level_db, gain_db = (a[:frames] for a in engine_frames(engine, mixture["noisy"]))
        raw = probes.scores(masks)
        for task, per_frame in probes.adds(masks).items():
            adds[task].append(per_frame)
        for variant, smooth, decision in (("smoothed", True, None), ("raw", False, VadDecision())):
            columns = scored_columns(probes, raw, level_db, gain_db, decision, smooth)
            for task in TASKS:
                pred[variant][task].append(columns[task])
        for task in TASKS:
            truth[task].append(targets[task])
        peer_f0.append(dio.f0(mixture["noisy"])[:frames])
    block_usage = np.mean(usage, axis=0)
    mean = lambda scores: {k: float(np.nanmean([s[k] for s in scores])) for k in scores[0]}  # noqa: E731
    dense, gated = frame_macs(config)["total"], frame_macs(config, block_usage if config["gated"] else None)["total"]
    report = {
        "preset": folder.name,  # the name from_preset takes, however the folder was given
        "split": split,
        "mixtures": len(noisy_scores),
        "noisy": mean(noisy_scores),
        "enhanced": mean(enhanced_scores),
        "usage": float(block_usage.mean()),
        "usage_per_block": block_usage.round(4).tolist(),
        "macs_dense": dense,
        "macs_gated": gated,
        "mac_saving": 1 - gated / dense,
    }
    if probes is not None:
        t = {k: np.concatenate(v) for k, v in truth.items()}
        for variant, key in (("smoothed", "probes"), ("raw", "probes_unsmoothed")):
            p = {k: np.concatenate(v) for k, v in pred[variant].items()}
            report[key] = {task: score_task(task, t[task], p[task]) for task in TASKS}
            both = ~np.isnan(t["f0_hz"]) & p["voiced"]
            report[key]["f0_hz_voiced_in_both"] = score_task("f0_hz", t["f0_hz"][both], p["f0_hz"][both])
        report["smoothing"] = probes.smoothing
        report["vad_decision"] = probes.decision.as_dict()
        report["peers"] = {"pyworld_dio_noisy_f0": score_task("f0_hz", t["f0_hz"], np.concatenate(peer_f0))}
        # Measured on the masks, and the most possible (every selected channel active).
        report["probe_adds_per_frame"] = {task: float(np.concatenate(a).mean()) for task, a in adds.items()}
        report["probe_adds_per_frame_max"] = {task: int(pr.coef.size + pr.level_adds) for task, pr in probes.probes.items()}
        report["probe_share_of_se"] = sum(report["probe_adds_per_frame"].values()) / gated
    return report


def markdown(report: dict) -> str:
    n, e = report["noisy"], report["enhanced"]
    lines = [
        f"preset {report['preset']} on {report['mixtures']} {report['split']} mixtures",
        "",
        "| | PESQ-WB | STOI | SI-SDR (dB) |",
        "|---|---|---|---|",
        f"| noisy | {n['pesq']:.3f} | {n['stoi']:.3f} | {n['si_sdr']:.2f} |",
        f"| enhanced | {e['pesq']:.3f} | {e['stoi']:.3f} | {e['si_sdr']:.2f} |",
        "",
        f"usage {report['usage']:.3f}, MACs/frame {report['macs_gated']:,.0f} of {report['macs_dense']:,.0f}"
        f" ({100 * report['mac_saving']:.1f} % saved)",
    ]
    if "probes" in report:
        lines += ["", "| task | accuracy / R² | balanced acc. / MAE | F1 |", "|---|---|---|---|"]
        for task, s in {**report["probes"], **report["peers"]}.items():
            if "accuracy" in s:
                lines.append(f"| {task} | {s['accuracy']:.3f} | {s['balanced_accuracy']:.3f} | {s['f1']:.3f} |")
            else:
                lines.append(f"| {task} | R² {s['r2']:.3f} | MAE {s['mae']:.2f} | |")
        adds = sum(report["probe_adds_per_frame"].values())
        lines += ["", f"probes: {adds:,.0f} adds/frame (at most {sum(report['probe_adds_per_frame_max'].values()):,}),"
                      f" {100 * report['probe_share_of_se']:.2f} % of the enhancement's MACs"]
    return "\n".join(lines) + "\n"
