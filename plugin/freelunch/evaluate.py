"""``freelunch evaluate``: score a preset on the fixed set of a split (``evalsets``).

Speech quality comes from the batched engine (the same output as the streaming engine
to ~1e-4); the probes read the streaming engine's masks, exactly as the effect does, and
are scored as the effect decides them (``probes``: the preset's smoothing and VAD decision)
and frame by frame (``probes_unsmoothed``: no smoothing, VAD threshold 0.5, no clean-up).
"""
from __future__ import annotations

import datetime
import time
from pathlib import Path

import numpy as np

from . import data, evalsets, metrics, presets
from .evalsets import age_group
from .model import BatchedEngine, StreamingEngine
from .model.cost import frame_macs
from .peers import PyworldF0
from .probes.decisions import VadDecision
from .probes.linear import TASKS, LinearProbes
from .probes.scoring import (confusion, energy_snr_db, per_mixture_classes, pooled_snr_db, score_task, segment_snr)
from .probes.scoring import pitch as pitch_scores
from .probes.targets import frame_energy, mixture_targets

TARGET_CACHE = "results/targets_cache"


def engine_frames(engine: StreamingEngine, noisy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A whole signal through a fresh stream: its frames' masks and input levels (dBFS)."""
    engine.reset()
    _, masks, _, level_db = engine.process_frames(np.concatenate([noisy, np.zeros(engine.latency + 1, np.float32)]))
    return masks, level_db


def scored_columns(probes: LinearProbes, raw: dict[str, np.ndarray], level_db: np.ndarray,
                   decision: VadDecision | None = None, smooth: bool = True) -> dict[str, np.ndarray]:
    """A whole signal's columns from its raw scores, as the effect decides them, except that
    F0 is kept on every frame: it is scored wherever the reference is voiced, whatever the VAD said."""
    columns = probes.stream(decision, smooth).whole(raw, level_db)
    if "f0_hz" in raw:  # a stream of F0 alone: no VAD to gate it
        columns["f0_hz"] = probes.stream(decision, smooth).whole({"f0_hz": raw["f0_hz"]}, level_db)["f0_hz"]
    return columns


def source_commit() -> str:
    """The checkout's commit, with ``-dirty`` when files differ from it; "unknown" outside git."""
    import subprocess

    here = Path(__file__).parent
    try:
        run = lambda *a: subprocess.run(["git", "-C", str(here), *a], capture_output=True, text=True, check=True).stdout.strip()  # noqa: E731
        return run("rev-parse", "--short", "HEAD") + ("-dirty" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


SNR_BANDS_DB = (-5.0, 0.0, 5.0, 10.0, 15.0, 20.0)


def snr_band(snr_db: float) -> str:
    lows = [b for b in SNR_BANDS_DB[:-1] if snr_db >= b]
    low = lows[-1] if lows else SNR_BANDS_DB[0]
    return f"{low:g}..{SNR_BANDS_DB[SNR_BANDS_DB.index(low) + 1]:g} dB"


def breakdown(records: list[dict], key, order=None) -> dict[str, dict]:
    """Mean noisy and enhanced quality per value of ``key`` (a function of a record), sorted by
    ``order`` (a function of the value; default its name)."""
    groups: dict[str, list[dict]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    return {name: {"mixtures": len(groups[name]), "noisy": _mean([r["noisy"] for r in groups[name]]),
                   "enhanced": _mean([r["enhanced"] for r in groups[name]])} for name in sorted(groups, key=order)}


def _mean(scores: list[dict]) -> dict[str, float]:
    return {k: float(np.nanmean([s[k] for s in scores])) for k in scores[0]}


def quality_breakdowns(records: list[dict]) -> dict[str, dict]:
    """Quality by SNR band, noise class, speech source and child/adult speaker."""
    return {"snr_band": breakdown(records, lambda r: snr_band(r["snr_db"]), order=lambda band: float(band.split("..")[0])),
            "noise_class": breakdown(records, lambda r: r["category"]),
            "source": breakdown(records, lambda r: r["source"] or "unknown"),
            "speaker_age": breakdown(records, lambda r: age_group(r["age"]) or "unknown")}


def property_scores(names: list[str], truth: dict, pred: dict, clips: list[dict]) -> dict:
    """The six tasks frame by frame, then what the labels read: F0 by the pitch field's metrics,
    SNR pooled over 1-s segments and whole mixtures, the noise class per mixture and its confusion."""
    t = {k: np.concatenate(v) for k, v in truth.items()}
    p = {k: np.concatenate(v) for k, v in pred.items()}
    out = {task: score_task(task, t[task], p[task]) for task in TASKS}
    both = ~np.isnan(t["f0_hz"]) & p["voiced"]
    out["f0_hz_voiced_in_both"] = score_task("f0_hz", t["f0_hz"][both], p["f0_hz"][both])
    out["f0_pitch"] = pitch_scores(t["f0_hz"], np.where(p["voiced"], p["f0_hz"], np.nan))
    segments = [segment_snr(c["speech_energy"], c["noise_energy"], ps, c["level_db"], tv)
                for c, ps, tv in zip(clips, pred["snr_db"], truth["vad"])]
    seg_true, seg_pred = (np.concatenate([s[k] for s in segments]) for k in (0, 1))
    utterance = [(energy_snr_db(c["speech_energy"], c["noise_energy"]), pooled_snr_db(ps[tv], c["level_db"][tv]))
                 for c, ps, tv in zip(clips, pred["snr_db"], truth["vad"]) if tv.any()]
    out["snr_segment"] = {"mae": float(np.nanmean(np.abs(seg_true - seg_pred))), "segments": int(len(seg_true))}
    out["snr_utterance"] = {"mae": float(np.nanmean([abs(a - b) for a, b in utterance])), "mixtures": len(utterance)}
    out["noise_category_per_mixture"] = per_mixture_classes(truth["noise_category"], pred["noise_category"], len(names))
    out["noise_category_confusion"] = confusion(t["noise_category"], p["noise_category"], names)
    return out


def noise_only_scores(truth: dict, pred: dict, names: list[str]) -> dict:
    """False alarms on noise alone: clips where any speech is found, and the share of frames."""
    speech = pred["vad"]
    found = [bool(s.any()) for s in speech]
    by_class: dict[str, list[bool]] = {}
    for t, f in zip(truth["noise_category"], found):
        audible = t[t >= 0]
        by_class.setdefault(names[audible[0]] if len(audible) else "inaudible", []).append(f)
    return {"clips": len(speech), "clips_with_speech": float(np.mean(found)),
            "clips_with_speech_by_class": {k: float(np.mean(v)) for k, v in sorted(by_class.items())},
            "speech_frames": float(np.concatenate(speech).mean()),
            "noise_category": score_task("noise_category", *(np.concatenate(d["noise_category"]) for d in (truth, pred))),
            "noise_category_per_clip": per_mixture_classes(truth["noise_category"], pred["noise_category"], len(names))}


def evaluate_preset(preset: str, split: str = "test", limit: int | None = None, data_root=None,
                    target_cache: str = TARGET_CACHE, with_dnsmos: bool = True) -> dict:
    """Speech quality (with DNSMOS unless ``with_dnsmos`` is False), usage and MACs on the split's
    fixed set (``evalsets``); with probes, the six tasks against their targets, and on the
    corpus the false alarms on its noise-only clips."""
    started = time.perf_counter()
    net, config, folder = presets.load(preset)
    probes = LinearProbes.load(folder) if (folder / LinearProbes.FILE).exists() else None
    batched = BatchedEngine(net)
    engine = StreamingEngine(net) if probes else None
    rows = data.pack_layout(data_root or data.default_data_root())
    records, usage = [], []
    variants = {"smoothed": (True, None), "raw": (False, VadDecision())}
    truth = {kind: {t: [] for t in TASKS} for kind in ("speech", "noise_only")}
    pred = {kind: {v: {t: [] for t in TASKS} for v in variants} for kind in ("speech", "noise_only")}
    clips, peer_f0, adds = [], [], {t: [] for t in TASKS}
    dio = PyworldF0("dio")
    for item_id, m, clean_targets in evalsets.evaluation_items(rows, split, limit, target_cache):
        if m["kind"] == "speech":
            enhanced, masks = batched(m["noisy"])
            record = {k: m[k] for k in ("category", "snr_db", "source", "age")}
            record["noisy"], record["enhanced"] = metrics.quality(m["noisy"], m["clean"]), metrics.quality(enhanced, m["clean"])
            if with_dnsmos:
                record["noisy"].update(metrics.dnsmos(m["noisy"]))
                record["enhanced"].update(metrics.dnsmos(enhanced))
            records.append(record)
            usage.append(masks.mean(axis=(0, 2)))
        if probes is None:
            continue
        targets = mixture_targets(m, probes.category_names, clean_targets)
        frames = len(targets["vad"])
        masks, level_db = (a[:frames] for a in engine_frames(engine, m["noisy"]))
        raw = probes.scores(masks)
        for task, per_frame in probes.adds(masks).items():
            adds[task].append(per_frame)
        for variant, (smooth, decision) in variants.items():
            columns = scored_columns(probes, raw, level_db, decision, smooth)
            for task in TASKS:
                pred[m["kind"]][variant][task].append(columns[task])
        for task in TASKS:
            truth[m["kind"]][task].append(targets[task])
        if m["kind"] == "speech":
            clips.append({"speech_energy": frame_energy(m["clean"])[:frames], "noise_energy": frame_energy(m["noise"])[:frames],
                          "level_db": level_db})
            peer_f0.append(dio.f0(m["noisy"])[:frames])
    block_usage = np.mean(usage, axis=0)
    dense, gated = frame_macs(config)["total"], frame_macs(config, block_usage if config["gated"] else None)["total"]
    report = {
        "preset": folder.name,  # the name from_preset takes, however the folder was given
        "split": split,
        "set": "corpus" if evalsets.is_corpus(rows) else "pack",
        "date": datetime.date.today().isoformat(),
        "commit": source_commit(),
        "mixtures": len(records),
        "noise_only_clips": len(truth["noise_only"]["vad"]),
        "noisy": _mean([r["noisy"] for r in records]),
        "enhanced": _mean([r["enhanced"] for r in records]),
        "quality_by": quality_breakdowns(records),
        "usage": float(block_usage.mean()),
        "usage_per_block": block_usage.round(4).tolist(),
        "macs_dense": dense,
        "macs_gated": gated,
        "mac_saving": 1 - gated / dense,
    }
    if probes is not None:
        names = probes.category_names
        for variant, key in (("smoothed", "probes"), ("raw", "probes_unsmoothed")):
            report[key] = property_scores(names, truth["speech"], pred["speech"][variant], clips)
        if truth["noise_only"]["vad"]:
            report["noise_only"] = noise_only_scores(truth["noise_only"], pred["noise_only"]["smoothed"], names)
        report["category_names"] = names
        report["smoothing"] = probes.smoothing
        report["vad_decision"] = probes.decision.as_dict()
        f0_true, f0_dio = np.concatenate(truth["speech"]["f0_hz"]), np.concatenate(peer_f0)
        report["peers"] = {"pyworld_dio_noisy_f0": {**score_task("f0_hz", f0_true, f0_dio), **pitch_scores(f0_true, f0_dio)}}
        # Measured on the masks, and the most possible (every selected channel active).
        report["probe_adds_per_frame"] = {task: float(np.concatenate(a).mean()) for task, a in adds.items()}
        report["probe_adds_per_frame_max"] = {task: int(pr.coef.size + pr.level_adds) for task, pr in probes.probes.items()}
        report["probe_share_of_se"] = sum(report["probe_adds_per_frame"].values()) / gated
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def _quality_row(name: str, q: dict) -> str:
    dns = f" | {q['sig']:.2f} | {q['bak']:.2f} | {q['ovrl']:.2f}" if "ovrl" in q else " | | |"
    return f"| {name} | {q['pesq']:.3f} | {q['stoi']:.3f} | {q['si_sdr']:.2f}{dns} |"


def markdown(report: dict) -> str:
    lines = [
        f"preset {report['preset']} on the {report['set']} {report['split']} set: {report['mixtures']} mixtures"
        + (f" and {report['noise_only_clips']} noise-only clips" if report.get("noise_only_clips") else "")
        + f" ({report['date']}, {report['commit']}, {report['seconds']:.0f} s)",
        "",
        "| | PESQ-WB | STOI | SI-SDR (dB) | DNSMOS SIG | BAK | OVRL |",
        "|---|---|---|---|---|---|---|",
        _quality_row("noisy", report["noisy"]),
        _quality_row("enhanced", report["enhanced"]),
        "",
        f"usage {report['usage']:.3f}, MACs/frame {report['macs_gated']:,.0f} of {report['macs_dense']:,.0f}"
        f" ({100 * report['mac_saving']:.1f} % saved)",
    ]
    for by, groups in report["quality_by"].items():
        if len(groups) < 2:
            continue
        lines += ["", f"| {by} | mixtures | PESQ-WB noisy → enhanced | STOI noisy → enhanced | SI-SDR noisy → enhanced |",
                  "|---|---|---|---|---|"]
        for name, g in groups.items():
            n, e = g["noisy"], g["enhanced"]
            lines.append(f"| {name} | {g['mixtures']} | {n['pesq']:.2f} → {e['pesq']:.2f} | {n['stoi']:.3f} → {e['stoi']:.3f}"
                         f" | {n['si_sdr']:.1f} → {e['si_sdr']:.1f} |")
    if "probes" in report:
        pr = report["probes"]
        lines += ["", "| task | accuracy / R² | balanced acc. / MAE | F1 |", "|---|---|---|---|"]
        for task in TASKS:
            s = pr[task]
            if "accuracy" in s:
                lines.append(f"| {task} | {s['accuracy']:.3f} | {s['balanced_accuracy']:.3f} | {s['f1']:.3f} |")
            else:
                lines.append(f"| {task} | R² {s['r2']:.3f} | MAE {s['mae']:.2f} | |")
        f0, dio = pr["f0_pitch"], report["peers"]["pyworld_dio_noisy_f0"]
        mixture = pr["noise_category_per_mixture"]
        lines += ["",
                  f"F0: RPA {f0['rpa']:.3f}, GPE {f0['gpe']:.3f}, VDE {f0['vde']:.3f}"
                  f" (pyworld dio on the noisy input: RPA {dio['rpa']:.3f}, GPE {dio['gpe']:.3f}, VDE {dio['vde']:.3f})",
                  f"SNR MAE: frame {pr['snr_db']['mae']:.2f} dB, 1-s segment {pr['snr_segment']['mae']:.2f} dB,"
                  f" utterance {pr['snr_utterance']['mae']:.2f} dB",
                  f"noise class per mixture: accuracy {mixture['accuracy']:.3f}, balanced {mixture['balanced_accuracy']:.3f}"
                  f" ({mixture['mixtures']} mixtures)"]
        if "noise_only" in report:
            no = report["noise_only"]
            by_class = ", ".join(f"{k} {100 * v:.0f} %" for k, v in no["clips_with_speech_by_class"].items())
            lines.append(f"noise alone ({no['clips']} clips): speech found in {100 * no['clips_with_speech']:.1f} % of clips"
                         f" ({by_class}), {100 * no['speech_frames']:.1f} % of frames; noise class per clip"
                         f" {no['noise_category_per_clip']['balanced_accuracy']:.3f} balanced")
        names = report["category_names"]
        lines += ["", "| true \\ said | " + " | ".join(names) + " | none |", "|---|" + "---|" * (len(names) + 1)]
        for true, row in pr["noise_category_confusion"].items():
            lines.append(f"| {true} | " + " | ".join(str(v) for v in row.values()) + " |")
        adds = sum(report["probe_adds_per_frame"].values())
        lines += ["", f"probes: {adds:,.0f} adds/frame (at most {sum(report['probe_adds_per_frame_max'].values()):,}),"
                      f" {100 * report['probe_share_of_se']:.2f} % of the enhancement's MACs"]
    return "\n".join(lines) + "\n"
