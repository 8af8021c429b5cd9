"""``freelunch bench``: cost and speed of the dense and gated presets on test-split audio.

Everything runs on one thread (torch intra-op threads set to 1; the numba kernel is
single-threaded). Each timing is the best of ``repeats`` runs.
"""
from __future__ import annotations

import datetime
import platform
import time

import numpy as np
import torch

from . import data, presets
from .effect import DynCPEnhancer
from .evaluate import enhance_offline
from .model import StreamingEngine
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
    _, masks = enhance_offline(net, x)
    usage = masks.mean(axis=(0, 2))
    macs = frame_macs(config, usage if config["gated"] else None)
    engine = StreamingEngine(net)
    fx = DynCPEnhancer.from_preset(name)
    stream_engine(engine, x[:16000])  # compile / warm caches
    stream_effect(fx, x[:16000])
    return {
        "gated": bool(config["gated"]),
        "usage": float(usage.mean()),
        "macs_per_frame": macs["total"],
        "macs_per_frame_dense": frame_macs(config)["total"],
        "rtf_offline": best_time(lambda: enhance_offline(net, x), repeats) / duration,
        "rtf_stream_512": best_time(lambda: stream_engine(engine, x), repeats) / duration,
        "rtf_stream_512_with_properties": best_time(lambda: stream_effect(fx, x), repeats) / duration,
    }


def run_bench(seconds: float = 60.0, data_root=None, repeats: int = 3, names=("dense", "quality", "balanced")) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = bench_audio(seconds, data_root)
        systems = {n: bench_preset(n, x, repeats) for n in names if n in presets.available()}
    finally:
        torch.set_num_threads(threads)
    if "dense" not in systems:
        raise ValueError(f"bench needs the dense preset as its reference; have {presets.available()}")
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
    return "\n".join(lines) + "\n"
