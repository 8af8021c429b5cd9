"""``freelunch bench``: cost and speed of the dense and gated presets on test-split audio.

Everything runs on one thread (torch intra-op threads set to 1; the numba kernel is
single-threaded). Each timing is the best of ``repeats`` runs.
"""
from __future__ import annotations

import datetime
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from . import data, presets
from .effect import DynCPEnhancer
from .model import BatchedEngine, StreamingEngine
from .model.cost import frame_macs

STREAM_BUFFER = 512


def bench_audio(seconds: float, data_root=None) -> np.ndarray:
    """The fixed test mixtures, concatenated up to ``seconds``."""
    rows = data.pack_layout(data_root or data.default_data_root())
    pieces, total = [], 0
    for _, m in data.fixed_mixtures(rows, "test"):
        pieces.append(m["noisy"])
        total += len(m["noisy"])
        if total >= seconds * data.SAMPLE_RATE:
            break
    return np.concatenate(pieces)[: int(seconds * data.SAMPLE_RATE)]


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def stream_engine(engine: StreamingEngine, x: np.ndarray) -> None:
    engine.reset()
    for i in range(0, len(x), STREAM_BUFFER):
        engine.process(x[i : i + STREAM_BUFFER])


def stream_effect(fx: DynCPEnhancer, x: np.ndarray) -> None:
    fx.reset()
    for i in range(0, len(x), STREAM_BUFFER):
        fx.process(x[i : i + STREAM_BUFFER], data.SAMPLE_RATE, reset=False)


def bench_preset(name: str, x: np.ndarray, repeats: int) -> dict:
    net, config, _ = presets.load(name)
    duration = len(x) / data.SAMPLE_RATE
    batched = BatchedEngine(net)
    _, masks = batched(x)
    usage = masks.mean(axis=(0, 2))
    macs = frame_macs(config, usage if config["gated"] else None)
    engine = StreamingEngine(net)
    fx = DynCPEnhancer.from_preset(name)
    stream_engine(engine, x[:16000])  # compile / warm caches
    stream_effect(fx, x[:16000])
    torch.set_num_threads(2)
    rtf_offline_2 = best_time(lambda: batched(x), repeats) / duration
    torch.set_num_threads(1)
    return {
        "gated": bool(config["gated"]),
        "rtf_offline_2_threads": rtf_offline_2,
        "usage": float(usage.mean()),
        "macs_per_frame": macs["total"],
        "macs_per_frame_dense": frame_macs(config)["total"],
        "rtf_offline": best_time(lambda: batched(x), repeats) / duration,
        "rtf_stream_512": best_time(lambda: stream_engine(engine, x), repeats) / duration,
        "rtf_stream_512_with_properties": best_time(lambda: stream_effect(fx, x), repeats) / duration,
    }


def scaling(name: str, x: np.ndarray, durations=(1, 10, 60, 600)) -> dict:
    """Streaming RTF and peak traced memory (numpy + Python) for inputs of growing length.

    The input is generated 512 samples at a time by looping ``x``, so only what the effect
    itself holds is measured; flat memory means the stream does not accumulate audio.
    """
    import tracemalloc

    out = {}
    for seconds in durations:
        fx = DynCPEnhancer.from_preset(name)
        n = int(seconds * data.SAMPLE_RATE)
        tracemalloc.start()
        t = time.perf_counter()
        for i in range(0, n, STREAM_BUFFER):
            j = i % (len(x) - STREAM_BUFFER)
            fx.process(x[j : j + min(STREAM_BUFFER, n - i)], data.SAMPLE_RATE, reset=False)
        elapsed = time.perf_counter() - t
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        out[f"{seconds}s"] = {"rtf": elapsed / seconds, "peak_traced_mib": peak / 2**20}
    return out


# What the long-file bench runs in a child process: the CLI itself, or (no input) only its
# imports and the preset, the floor under the figures. It prints its own peak resident memory
# (KiB): VmHWM is this address space's, while the kernel's ru_maxrss keeps the peak of the
# process it was forked from (with vfork, the whole parent's).
CLI_CHILD = """
import sys
if len(sys.argv) > 2:
    from freelunch.cli import main
    main(["enhance", *sys.argv[1:]], standalone_mode=False)
else:
    from freelunch.effect import DynCPEnhancer
    DynCPEnhancer.from_preset(sys.argv[1])
with open("/proc/self/status") as f:
    print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")))
"""
LONG_FILE_RATE = 48000


def peak_rss_mib(*args: str) -> tuple[float, float]:
    """Peak resident memory (MiB) and wall-clock seconds of ``CLI_CHILD`` run with ``args``
    (Linux: it reads /proc)."""
    t = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", CLI_CHILD, *args], capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if child.returncode:
        raise RuntimeError(f"the long-file bench's child failed: {child.stderr.strip()[-500:]}")
    return int(child.stdout.split()[-1]) / 1024, elapsed


def write_long_file(path: Path, x: np.ndarray, minutes: float) -> None:
    """``minutes`` of 48 kHz stereo 24-bit WAV: ``x`` (16 kHz) upsampled and looped, one block
    at a time (the right channel starts 7 s later), so writing it holds only one block."""
    up = np.interp(np.arange(3 * len(x)) / 3, np.arange(len(x)), x).astype(np.float32)
    block = np.stack([up, np.roll(up, 7 * LONG_FILE_RATE)], axis=1)
    frames = int(minutes * 60 * LONG_FILE_RATE)
    with sf.SoundFile(path, "w", LONG_FILE_RATE, 2, subtype="PCM_24") as f:
        for i in range(0, frames, len(block)):
            f.write(block[: frames - i])


def long_files(name: str, x: np.ndarray, minutes=(1, 10, 60)) -> dict:
    """``freelunch enhance`` on 48 kHz stereo files of growing length, each in a fresh process:
    its peak RSS (the whole process: Python, numba, the preset) and real-time factor.
    ``no audio`` is the process that only imports and loads the preset. Flat figures mean the
    CLI streams the file instead of holding it. Empty where there is no /proc (not Linux)."""
    if not Path("/proc/self/status").exists():
        return {}
    preset = str(presets.resolve(name))
    rss, _ = peak_rss_mib(preset)
    out = {"no audio": {"peak_rss_mib": rss}}
    with tempfile.TemporaryDirectory(prefix="freelunch-bench-") as tmp:
        for m in minutes:
            src, dst = Path(tmp) / f"{m}min.wav", Path(tmp) / f"{m}min_enhanced.wav"
            write_long_file(src, x, m)
            rss, seconds = peak_rss_mib(str(src), "-o", str(dst), "--preset", preset)
            if sf.info(dst).frames != sf.info(src).frames:
                raise RuntimeError(f"the long-file bench's output is {sf.info(dst).frames} frames, not {sf.info(src).frames}")
            out[f"{m:g} min"] = {"peak_rss_mib": rss, "rtf": seconds / (60 * m)}
            src.unlink()
            dst.unlink()
    return out


def run_bench(seconds: float = 60.0, data_root=None, repeats: int = 3, names=("dense", "quality", "balanced"),
              scaling_durations=(1, 10, 60, 600), long_minutes=(1, 10, 60)) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = bench_audio(seconds, data_root)
        systems = {n: bench_preset(n, x, repeats) for n in names if n in presets.available()}
        scale = scaling("balanced", x, scaling_durations) if "balanced" in systems else {}
    finally:
        torch.set_num_threads(threads)
    if "dense" not in systems:
        raise ValueError(f"bench needs the dense preset as its reference; have {presets.available()}")
    long = long_files("balanced", x, long_minutes) if "balanced" in systems and long_minutes else {}
    dense = systems["dense"]
    for s in systems.values():
        s["mac_saving"] = 1 - s["macs_per_frame"] / dense["macs_per_frame"]
        for mode in ("rtf_offline", "rtf_stream_512"):
            s[f"wallclock_saving_{mode[4:]}"] = 1 - s[mode] / dense[mode]
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "threads": 1,
        "audio_seconds": len(x) / data.SAMPLE_RATE,
        "audio": "fixed test-split mixtures (freelunch.data.fixed_mixtures), concatenated",
        "systems": systems,
        "scaling_balanced_stream_512": scale,
        "long_file_cli_balanced": long,
        "notes": "peak_traced_mib grows with length only through the property track (a few floats per 16 ms frame); "
                 "long_file_cli_balanced runs `freelunch enhance` on 48 kHz stereo 24-bit WAVs in a fresh process "
                 "with the CLI's own thread defaults, 'no audio' being the process that only loads the preset; "
                 "peak RSS is the child's VmHWM",
    }


def markdown(report: dict) -> str:
    lines = [
        f"{report['audio_seconds']:.0f} s of test-split mixtures, {report['threads']} thread, {report['date']}, {report['machine']}",
        "",
        "| preset | usage | MAC/frame | MAC saving | RTF offline | RTF stream 512 | RTF stream + properties | wall-clock saving stream | wall-clock saving offline |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in report["systems"].items():
        lines.append(
            f"| {name} | {s['usage']:.3f} | {s['macs_per_frame']:,.0f} | {100 * s['mac_saving']:.1f} % | {s['rtf_offline']:.4f} |"
            f" {s['rtf_stream_512']:.4f} | {s['rtf_stream_512_with_properties']:.4f} |"
            f" {100 * s['wallclock_saving_stream_512']:.1f} % | {100 * s['wallclock_saving_offline']:.1f} % |"
        )
    lines += ["", "| 2 threads, RTF offline |" + "|".join(f" {n} {s['rtf_offline_2_threads']:.4f} " for n, s in report["systems"].items()) + "|"]
    if report.get("scaling_balanced_stream_512"):
        lines += ["", "| balanced, streaming 512 | " + " | ".join(report["scaling_balanced_stream_512"]) + " |",
                  "|---|" + "---|" * len(report["scaling_balanced_stream_512"]),
                  "| RTF | " + " | ".join(f"{v['rtf']:.4f}" for v in report["scaling_balanced_stream_512"].values()) + " |",
                  "| peak traced memory (MiB) | " + " | ".join(f"{v['peak_traced_mib']:.1f}" for v in report["scaling_balanced_stream_512"].values()) + " |"]
    long = report.get("long_file_cli_balanced")
    if long:
        lines += ["", "| `freelunch enhance`, balanced, 48 kHz stereo WAV | " + " | ".join(long) + " |",
                  "|---|" + "---|" * len(long),
                  "| peak RSS (MiB) | " + " | ".join(f"{v['peak_rss_mib']:.0f}" for v in long.values()) + " |",
                  "| RTF (whole process) | " + " | ".join(f"{v['rtf']:.4f}" if "rtf" in v else "" for v in long.values()) + " |"]
    return "\n".join(lines) + "\n"


class LaterScores:
    """Quality scores computed in one worker process while the bench times the systems: the
    scores (PESQ, STOI, DNSMOS) took most of a corpus bench's time, and none of them is timed.
    At most ``backlog`` clips wait, so memory stays bounded; each system's scores keep their order."""

    def __init__(self, backlog: int = 32):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # spawn: a forked copy of a process that holds torch's and numba's threads can hang
        self.pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        self.backlog = backlog
        self.pending: list[tuple[str, object]] = []

    def submit(self, key: str, estimate: np.ndarray, reference: np.ndarray) -> None:
        from . import metrics

        # copies: the arguments are pickled later, by the pool's feeder thread
        self.pending.append((key, self.pool.submit(metrics.quality_and_dnsmos, np.array(estimate), np.array(reference))))
        waiting = [f for _, f in self.pending if not f.done()]
        if len(waiting) > self.backlog:
            waiting[0].result()

    def results(self) -> dict[str, list[dict]]:
        """Every score, per system, once all have come (the caller shuts the pool down)."""
        out: dict[str, list[dict]] = {}
        for key, future in self.pending:
            out.setdefault(key, []).append(future.result())
        return out


F0_MIXTURES = 60  # F0 is compared on the first mixtures only: harvest and CREPE are slow
CREPE_FULL_MIXTURES = 12  # CREPE full ran at RTF ≈ 3.7-5.9 on one thread


def noise_baseline(rows: list[dict], names: list[str], seed: int = 4242):
    """The no-network noise-class baseline, fitted on the training split: one 4-s crop of every
    training noise file, alone and under a training utterance (SNR as the mixtures), read as
    one-second log-mel windows."""
    from .peers import LogMelNoiseClassifier
    from .taxonomy import noise_class

    speech, noise = data.split_rows(rows, "train")
    windows, labels = [], []
    for row in noise:
        if noise_class(row) not in names:
            continue
        rng = data.item_rng(seed, row["id"])
        clip = data.crop(data.load(row["path"]), 4 * data.SAMPLE_RATE, rng)
        talker = data.crop(data.load(speech[int(rng.integers(len(speech)))]["path"]), len(clip), rng)
        mixed = data.mix(talker, clip, rng.uniform(*data.SNR_RANGE_DB), rng.uniform(*data.LEVEL_RANGE_DB))["noisy"]
        for x in (clip, mixed):
            w = LogMelNoiseClassifier.features(x)
            windows.append(w)
            labels += [names.index(noise_class(row))] * len(w)
    if len(set(labels)) < 2:
        return None  # the presets' classes are not this data's: nothing to learn
    return LogMelNoiseClassifier.fit(np.concatenate(windows), np.array(labels), names)


def run_peer_comparison(limit: int | None = None, data_root=None, names=("dense", "quality", "balanced"),
                        target_cache: str = "results/targets_cache") -> dict:
    """Every system on the same fixed test set (``evalsets``): quality with DNSMOS, VAD with
    false alarms on noise alone, F0 by the pitch field's metrics, the noise class against the
    no-network baseline, and RTF (one thread; the quality scores run in a worker process beside it)."""
    from . import evalsets
    from .peers import load_peers
    from .probes.scoring import per_mixture_classes, pitch, score_task
    from .probes.targets import mixture_targets

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    peers, skipped = load_peers()
    effects = {n: DynCPEnhancer.from_preset(n) for n in names if n in presets.available()}
    rows = data.pack_layout(data_root or data.default_data_root())
    category_names = next((fx.properties.category_names for fx in effects.values() if fx.properties.category_names), None)
    baseline = noise_baseline(rows, category_names) if category_names else None
    if baseline is None:
        skipped["logmel_logistic"] = "the presets' noise classes are not among the data's"
    seconds, f0_seconds, wall = 0.0, {}, {}
    scores, vad_pred, f0_pred, noise_pred = LaterScores(), {}, {}, {}
    vad_true, f0_true, noise_true, false_alarm = [], [], [], {}

    def timed(key, fn):
        t = time.perf_counter()
        out = fn()
        wall[key] = wall.get(key, 0.0) + time.perf_counter() - t
        return out

    try:
        speech_index = -1
        for item_id, m, clean_targets in evalsets.evaluation_items(rows, "test", limit, target_cache):
            x, clean, is_speech = m["noisy"], m["clean"], m["kind"] == "speech"
            targets = mixture_targets(m, category_names or [m["category"]], clean_targets)
            frames = len(targets["vad"])
            if is_speech:
                speech_index += 1
                seconds += len(x) / data.SAMPLE_RATE
                vad_true.append(targets["vad"])
                noise_true.append(targets["noise_category"])
                scores.submit("noisy", x, clean)
            for name, fx in effects.items():
                y = timed(name, lambda: fx(x, data.SAMPLE_RATE)) if is_speech else fx(x, data.SAMPLE_RATE)
                key, props = f"freelunch_{name}", fx.properties
                if is_speech:
                    scores.submit(key, y, clean)
                if not props.category_names:
                    continue
                if not is_speech:
                    false_alarm.setdefault(key, []).append(bool(props.vad.any()))
                    continue
                vad_pred.setdefault(key, []).append(props.vad[:frames])
                noise_pred.setdefault(key, []).append(props.noise_category[:frames])
                if speech_index < F0_MIXTURES:
                    f0_pred.setdefault(key, []).append(np.where(props.voiced[:frames], props.f0_hz[:frames], np.nan))
            if baseline is not None and is_speech:
                noise_pred.setdefault(baseline.name, []).append(timed(baseline.name, lambda: baseline.noise_category(x))[:frames])
            for p in peers:
                if hasattr(p, "enhance"):
                    if is_speech:
                        y = timed(p.name, lambda: p.enhance(x))
                        scores.submit(p.name, y, clean)
                elif hasattr(p, "vad"):
                    said = p.vad(x)[:frames] if not is_speech else timed(p.name, lambda: p.vad(x))[:frames]
                    if is_speech:
                        vad_pred.setdefault(p.name, []).append(said)
                    else:
                        false_alarm.setdefault(p.name, []).append(bool(said.any()))
                elif is_speech and speech_index < (CREPE_FULL_MIXTURES if p.name == "torchcrepe_full" else F0_MIXTURES):
                    f0_pred.setdefault(p.name, []).append(timed(p.name, lambda: p.f0(x))[:frames])
                    f0_seconds[p.name] = f0_seconds.get(p.name, 0.0) + len(x) / data.SAMPLE_RATE
            if is_speech and speech_index < F0_MIXTURES:
                f0_true.append(targets["f0_hz"])
        quality = scores.results()
    finally:
        torch.set_num_threads(threads)
        scores.pool.shutdown(cancel_futures=True)
    vt = np.concatenate(vad_true)
    report_vad = {k: {**score_task("vad", vt, np.concatenate(v)),
                      **({"noise_only_clips_with_speech": float(np.mean(false_alarm[k]))} if k in false_alarm else {})}
                  for k, v in vad_pred.items()}
    report_f0 = {}
    for k, v in f0_pred.items():
        ft, pred = np.concatenate(f0_true[: len(v)]), np.concatenate(v)
        both = ~np.isnan(ft) & ~np.isnan(pred)
        report_f0[k] = {**pitch(ft, pred), **score_task("f0_hz", ft[both], pred[both]), "mixtures": len(v)}
    nt = np.concatenate(noise_true)
    report_noise = {k: {"frames": score_task("noise_category", nt, np.concatenate(v)),
                        "per_mixture": per_mixture_classes(noise_true, v, len(category_names))} for k, v in noise_pred.items()}
    mean = lambda scores: {k: float(np.nanmean([s[k] for s in scores])) for k in scores[0]}  # noqa: E731
    rtf = {k: v / (f0_seconds.get(k) or seconds) for k, v in wall.items()}
    return {
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "threads": 1,
        "set": "corpus" if evalsets.is_corpus(rows) else "pack",
        "mixtures": len(vad_true),
        "noise_only_clips": len(next(iter(false_alarm.values()), [])),
        "audio_seconds": seconds,
        "quality": {k: mean(v) for k, v in quality.items()},
        "vad": report_vad,
        "f0": report_f0,
        "noise_category": report_noise,
        "category_names": category_names,
        "rtf": rtf,
        "skipped": skipped,
        "notes": {
            "freelunch rtf": "the effect's whole path (resampling-free 16 kHz, engine, all probes), reset=True",
            "f0": f"RPA, GPE, VDE, and R² and MAE on frames both call voiced, against harvest on the clean speech, over the"
                  f" first {F0_MIXTURES} mixtures ({CREPE_FULL_MIXTURES} for torchcrepe_full)",
            "vad": "frame accuracy against the clean-speech VAD target (freelunch.probes.targets.vad); "
                   "noise_only_clips_with_speech: the share of noise-only clips where any frame is called speech",
            "noise_category": "frames with an audible noise, and each mixture's majority class",
        },
    }


def peer_markdown(report: dict) -> str:
    lines = [f"{report['mixtures']} {report.get('set', 'pack')} test mixtures ({report['audio_seconds'] / 60:.1f} min)"
             + (f" and {report['noise_only_clips']} noise-only clips" if report.get("noise_only_clips") else "")
             + f", {report['threads']} thread, {report['date']}, {report['machine']}", "",
             "| system | PESQ-WB | STOI | SI-SDR (dB) | DNSMOS SIG | BAK | OVRL | RTF |", "|---|---|---|---|---|---|---|---|"]
    for k, q in report["quality"].items():
        rtf = report["rtf"].get(k.removeprefix("freelunch_"), report["rtf"].get(k))
        dns = " | ".join(f"{q[m]:.2f}" if m in q else "" for m in ("sig", "bak", "ovrl"))
        lines.append(f"| {k} | {q['pesq']:.3f} | {q['stoi']:.3f} | {q['si_sdr']:.2f} | {dns} | {'' if rtf is None else f'{rtf:.4f}'} |")
    lines += ["", "| VAD | accuracy | balanced acc. | F1 | noise-only clips with speech |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {v['accuracy']:.3f} | {v['balanced_accuracy']:.3f} | {v['f1']:.3f} |"
              f" {v['noise_only_clips_with_speech']:.3f} |" if "noise_only_clips_with_speech" in v else
              f"| {k} | {v['accuracy']:.3f} | {v['balanced_accuracy']:.3f} | {v['f1']:.3f} | |" for k, v in report["vad"].items()]
    lines += ["", "| F0 | mixtures | RPA | GPE | VDE | R² (both voiced) | MAE (Hz) | RTF |", "|---|---|---|---|---|---|---|---|"]
    for k, v in report["f0"].items():
        rtf = report["rtf"].get(k)
        lines.append(f"| {k} | {v['mixtures']} | {v['rpa']:.3f} | {v['gpe']:.3f} | {v['vde']:.3f} | {v['r2']:.3f} | {v['mae']:.1f}"
                     f" | {'' if rtf is None else f'{rtf:.4f}'} |")
    if report.get("noise_category"):
        lines += ["", "| noise class | frame accuracy | frame balanced | per-mixture accuracy | per-mixture balanced |",
                  "|---|---|---|---|---|"]
        for k, v in report["noise_category"].items():
            f, m = v["frames"], v["per_mixture"]
            lines.append(f"| {k} | {f['accuracy']:.3f} | {f['balanced_accuracy']:.3f} | {m['accuracy']:.3f} | {m['balanced_accuracy']:.3f} |")
    if report["skipped"]:
        lines += ["", "skipped: " + "; ".join(f"{k} ({v})" for k, v in report["skipped"].items())]
    return "\n".join(lines) + "\n"
