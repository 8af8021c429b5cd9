"""``freelunch plot``: one of the user's files, or the paper's figures on our data, as PNGs
(matplotlib, no display)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import data, presets
from .model import BatchedEngine, StreamingEngine
from .probes.cache import cached_clean_targets
from .probes.features import extract
from .probes.linear import TASKS, LinearProbes
from .probes.targets import mixture_targets


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path) -> None:
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    _pyplot().close(fig)


def example_figure(net, probes, mixture, targets, enhanced, out: Path) -> None:
    """Clean / noise / enhanced spectrograms, the gate masks, and the targets with speech shaded."""
    plt = _pyplot()
    from .evaluate import engine_frames

    masks, level_db = (a[: len(targets["vad"])] for a in engine_frames(StreamingEngine(net), mixture["noisy"]))
    columns = probes.predict(masks, level_db=level_db)
    t = np.arange(len(targets["vad"])) * 0.016
    fig, axes = plt.subplots(6, 1, figsize=(11, 13), sharex=True)
    for ax, (name, x) in zip(axes[:3], [("clean", mixture["clean"]), ("noise", mixture["noise"]), ("enhanced", enhanced)]):
        ax.specgram(x + 1e-9, NFFT=512, Fs=16000, noverlap=256, cmap="magma", vmin=-130)
        ax.set_ylabel(f"{name}\nHz")
    axes[3].imshow(masks.reshape(len(masks), -1).T, aspect="auto", interpolation="nearest", cmap="gray_r",
                   extent=[0, t[-1] + 0.016, masks.shape[1], 0])
    axes[3].set_ylabel("gate masks\nblock")
    ax = axes[4]
    ax.fill_between(t, 0, 500, where=targets["vad"], color="tab:green", alpha=0.15, step="post", label="VAD target")
    ax.plot(t, targets["f0_hz"], "k.", ms=2, label="F0 target (harvest, clean)")
    ax.plot(t, columns["f0_hz"], "r.", ms=2, label="F0 probe")
    ax.plot(t, columns["vad_prob"] * 400, color="tab:blue", lw=0.8, label="VAD probe × 400")
    ax.fill_between(t, 440, 480, where=columns["vad"], color="tab:blue", step="post", label="VAD decision")
    ax.set_ylabel("Hz")
    ax.legend(loc="upper right", fontsize=7)
    ax = axes[5]
    ax.plot(t, targets["snr_db"], "k", lw=0.8, label="local SNR target")
    ax.plot(t, columns["snr_db"], "r", lw=0.8, label="SNR probe")
    ax.set_ylabel("dB")
    named = columns["noise_category"][columns["noise_category"] >= 0]  # -1: digital silence, no category
    said = probes.category_names[int(np.bincount(named).argmax())] if named.size else "nothing"
    ax.set_xlabel(f"s — noise: {mixture['category']}, probe says {said}")
    ax.legend(loc="upper right", fontsize=7)
    _save(fig, out)


def file_figure(src: Path, out: Path, preset: str = "balanced", **settings) -> Path:
    """A user's file: its spectrogram before and after, the speech runs and F0, the SNR, and the
    noise class over time (grey where the preset is not sure of it). Long files are drawn whole."""
    from .effect import DynCPEnhancer
    from .files import open_audio, stream_file

    plt = _pyplot()
    fx = DynCPEnhancer.from_preset(preset, **settings)
    with open_audio(src) as f:
        rate, x = int(f.samplerate), f.read(f.frames)
    pieces = []
    stream_file(src, fx, pieces.append)
    y = np.concatenate(pieces, axis=1) if pieces else np.zeros_like(x)
    track = fx.properties
    t, shown = track.times, track.shown_noise()
    fig, axes = plt.subplots(5, 1, figsize=(11, 10), sharex=True, gridspec_kw={"height_ratios": [3, 3, 2, 2, 0.6]})
    for ax, (name, audio) in zip(axes[:2], (("input", x), ("enhanced", y))):
        ax.specgram(audio.mean(axis=0) + 1e-9, NFFT=1024 if rate > 24000 else 512, Fs=rate, noverlap=512 if rate > 24000 else 256,
                    cmap="magma", vmin=-130)
        ax.set_ylabel(f"{name}\nHz")
    ax = axes[2]
    ax.fill_between(t, 0, 1, where=track.vad, color="tab:green", alpha=0.2, step="mid", transform=ax.get_xaxis_transform(),
                    label="speech")
    ax.plot(t, np.where(track.voiced, track.f0_hz, np.nan), "r.", ms=2, label="F0")
    ax.set_ylabel("F0 (Hz)")
    ax.legend(loc="upper right", fontsize=7)
    axes[3].plot(t, track.snr_db, "k", lw=0.8)
    axes[3].set_ylabel("SNR (dB)")
    ax = axes[4]
    colours = plt.get_cmap("tab10")
    for k, name in [(-2, "unknown"), *enumerate(track.category_names)]:
        where = shown == k
        if where.any():
            ax.fill_between(t, 0, 1, where=where, step="mid", color="0.8" if k < 0 else colours(k % 10), label=name)
    ax.set_yticks([])
    ax.set_ylabel("noise")
    ax.legend(loc="upper right", fontsize=7, ncol=len(track.category_names) + 1)
    summary = track.summary()
    axes[0].set_title(f"{Path(src).name}: speech {100 * summary['speech_share']:.0f} %, median speech SNR "
                      f"{summary['median_speech_snr_db']} dB, noise {summary['noise']}", fontsize=9)
    ax.set_xlabel("s")
    ax.set_xlim(0, max(track.duration_s or 0.0, 1e-3))
    _save(fig, out)
    return out


def feature_type_figure(report: dict, out: Path) -> None:
    plt = _pyplot()
    tasks = list(report["tasks"])
    types = list(report["tasks"][tasks[0]]["feature_types_valid"])
    fig, ax = plt.subplots(figsize=(11, 4))
    width = 0.8 / len(types)
    for i, ft in enumerate(types):
        scores = [max(report["tasks"][t]["feature_types_valid"][ft], -0.2) for t in tasks]
        ax.bar(np.arange(len(tasks)) + i * width, scores, width, label=ft)
    ax.set_xticks(np.arange(len(tasks)) + 0.4 - width / 2)
    ax.set_xticklabels([f"{t}\n({report['tasks'][t]['metric']})" for t in tasks])
    ax.set_ylabel("valid score (accuracy or R², floored at -0.2)")
    ax.axhline(0, color="k", lw=0.5)
    ax.legend(fontsize=8, ncol=len(types))
    _save(fig, out)


def selection_figure(report: dict, out: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for task, r in report["tasks"].items():
        k = [c["features"] for c in r["selection_curve"]]
        ax.plot(k, [c["valid_score"] for c in r["selection_curve"]], marker="o", ms=3, label=f"{task} (C*={r['c_star']})")
    ax.set_xscale("log")
    ax.set_xlabel("mask features kept")
    ax.set_ylabel("valid score")
    ax.legend(fontsize=7)
    _save(fig, out)


def coefficient_figure(report: dict, hidden: int, out: Path) -> None:
    """Top-64 features per task (by |coef|), grouped by the block they come from."""
    plt = _pyplot()
    tasks = list(report["tasks"])
    fig, axes = plt.subplots(len(tasks), 1, figsize=(11, 2 * len(tasks)))
    for ax, task in zip(axes, tasks):
        top = np.array(report["tasks"][task]["top64"])
        coef = np.array(report["tasks"][task]["top64_coef"])
        order = np.argsort(top // hidden, kind="stable")
        ax.imshow(coef[:, order], aspect="auto", cmap="coolwarm", vmin=-np.abs(coef).max(), vmax=np.abs(coef).max())
        ax.set_xticks(range(64))
        ax.set_xticklabels([f"B{b}" for b in (top[order] // hidden)], fontsize=5, rotation=90)
        ax.set_yticks([])
        ax.set_ylabel(task, fontsize=8)
    _save(fig, out)


def tsne_figure(masks: np.ndarray, targets: dict, names: list[str], out: Path) -> None:
    plt = _pyplot()
    from sklearn.manifold import TSNE

    emb = TSNE(n_components=2, init="pca", perplexity=30, random_state=0).fit_transform(masks.astype(np.float32))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    for ax, (title, c, cmap) in zip(axes, [("VAD", targets["vad"], "coolwarm"), ("SNR (dB)", targets["snr_db"], "viridis"),
                                           ("noise category", targets["noise_category"], "tab20")]):
        sc = ax.scatter(emb[:, 0], emb[:, 1], c=c, s=3, cmap=cmap)
        ax.set_title(f"t-SNE of gate masks, coloured by {title}")
        ax.set_xticks([])
        ax.set_yticks([])
        if title != "noise category":
            fig.colorbar(sc, ax=ax)
    _save(fig, out)


def make_figures(preset: str, out_dir: Path, data_root=None, target_cache="results/targets_cache",
                 tsne_frames: int = 3000) -> list[Path]:
    """Write every figure for a preset with probes; return the paths."""
    net, config, folder = presets.load(preset)
    if not (folder / LinearProbes.FILE).exists():
        raise ValueError(f"preset {folder} has no probes; fit them with recipes/fit_probes.py")
    probes = LinearProbes.load(folder)
    report = json.loads((folder / "probes_report.json").read_text())
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = data.pack_layout(data_root or data.default_data_root())
    paths = {r["id"]: r["path"] for r in rows}
    masks, targets = [], {t: [] for t in TASKS}
    example = None
    rng = np.random.default_rng(0)
    for item_id, mixture in data.fixed_mixtures(rows, "test"):
        tg = mixture_targets(mixture, probes.category_names, cached_clean_targets(target_cache, item_id, paths[item_id]))
        m = extract(net, mixture["noisy"], ("masks",))["masks"]
        keep = rng.choice(len(m), min(30, len(m)), replace=False)
        masks.append(m[keep])
        for t in TASKS:
            targets[t].append(tg[t][keep])
        if example is None and 6 * 16000 < len(mixture["noisy"]) < 12 * 16000:
            example = (mixture, tg)
    written = []
    enhanced, _ = BatchedEngine(net)(example[0]["noisy"])
    example_figure(net, probes, example[0], example[1], enhanced, out_dir / "example.png")
    feature_type_figure(report, out_dir / "feature_types.png")
    selection_figure(report, out_dir / "feature_selection.png")
    coefficient_figure(report, config["hidden"], out_dir / "coefficients_top64.png")
    all_masks = np.concatenate(masks)
    all_targets = {t: np.concatenate(v) for t, v in targets.items()}
    pick = rng.choice(len(all_masks), min(tsne_frames, len(all_masks)), replace=False)
    tsne_figure(all_masks[pick], {t: v[pick] for t, v in all_targets.items()}, probes.category_names, out_dir / "tsne.png")
    written += [out_dir / n for n in ("example.png", "feature_types.png", "feature_selection.png",
                                      "coefficients_top64.png", "tsne.png")]
    return written


def peer_figure(report: dict, out: Path) -> None:
    """``freelunch bench --peers``: PESQ-WB against RTF, one point per system."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    placed = 0
    for k, q in report["quality"].items():
        rtf = report["rtf"].get(k.removeprefix("freelunch_"), report["rtf"].get(k))
        if rtf:
            ax.scatter(rtf, q["pesq"])
            # labels alternate above and below: the presets sit close together
            ax.annotate(k, (rtf, q["pesq"]), xytext=(5, 5 if placed % 2 == 0 else -11), textcoords="offset points",
                        fontsize=8)
            placed += 1
    ax.axhline(report["quality"]["noisy"]["pesq"], ls="--", color="gray", lw=0.8, label="noisy input")
    ax.set_xscale("log")
    ax.set_xlabel("real-time factor (1 thread, log)")
    ax.set_ylabel("PESQ-WB")
    ax.legend(fontsize=8)
    _save(fig, out)
