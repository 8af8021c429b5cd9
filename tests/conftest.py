import csv
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import HealthCheck, settings

from freelunch import data
from freelunch.model import ConvFSENet


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """SpeechBrain puts its optional integrations (k2, ...) in sys.modules as lazy modules.
    Hypothesis reads every module's ``__file__`` after collection, which imports them and
    fails where the optional package is absent. Drop the ones that cannot import."""
    from speechbrain.utils.importutils import LazyModule

    for name, module in list(sys.modules.items()):
        if isinstance(module, LazyModule):
            try:
                module.ensure_module(1)
            except ImportError:
                del sys.modules[name]


# Every property-based test runs 1000 generated cases by default (the streaming-exactness
# test takes about 30 ms a case); HYPOTHESIS_PROFILE=long runs 10,000.
settings.register_profile("default", max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=10000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def assert_same_track(actual: dict, expected: dict, frames: int | None = None) -> None:
    """Two property tracks (``PropertyTrack.to_dict()``) are identical on their first ``frames``
    (a stream still running has no duration yet)."""
    assert set(expected) <= set(actual)
    for key, column in expected.items():
        if key == "duration_s" and frames is not None:
            continue
        got, want = np.asarray(actual[key]), np.asarray(column)
        if got.ndim:  # a column, not the track's hop or names
            got, want = got[:frames], want[:frames]
        np.testing.assert_array_equal(got, want, err_msg=key)


def make_net(gated: bool = True, usage_bias: float = 0.0, seed: int = 0, gate_hidden: int = 64) -> ConvFSENet:
    """A random eval-mode network whose BatchNorm statistics are not the identity.

    ``usage_bias`` shifts the gates' output bias, which moves usage away from ~50 %.
    """
    torch.manual_seed(seed)
    net = ConvFSENet(gated=gated, gate_hidden=gate_hidden)
    for block in net.blocks:
        for bn in (block.norm1, block.norm2):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)
    if gated:
        for gate in net.gates:
            gate.net[2].bias.data += usage_bias
    return net.eval()


@pytest.fixture(scope="session")
def speechlike():
    """Two seconds of a harmonic tone with a syllable envelope plus noise, 16 kHz float32."""
    rng = np.random.default_rng(1)
    t = np.arange(32000) / 16000
    voice = sum(np.sin(2 * np.pi * 140 * k * t) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 2.5 * t), 0, None)
    return (0.2 * voice * envelope + 0.03 * rng.standard_normal(len(t))).astype(np.float32)


@pytest.fixture(scope="session")
def random_preset(tmp_path_factory):
    """A preset folder holding random weights and random probes: tests the mechanics only."""
    from freelunch import presets
    from freelunch.probes.decisions import VadDecision
    from freelunch.probes.level import LEVEL_FEATURES
    from freelunch.probes.linear import LinearProbes, Probe, TASKS

    folder = tmp_path_factory.mktemp("presets") / "random"
    net = make_net()
    rng = np.random.default_rng(0)
    names = ["rain", "music", "traffic"]
    probes = {}
    for task in TASKS:
        k = len(names) if task == "noise_category" else 1
        index = np.sort(rng.choice(9 * 256, 64, replace=False))
        probes[task] = Probe(index, rng.standard_normal((64, k)).astype(np.float32), np.zeros(k, np.float32))
    for task in ("snr_db", "noise_level_db"):  # as the shipped ones, reading the input level too
        probes[task].level_coef = rng.standard_normal((len(LEVEL_FEATURES), 1)).astype(np.float32)
    staging = tmp_path_factory.mktemp("staging")
    # a VAD decision that looks ahead (4 + 6 - 2 frames) and lags (2 more), so the mechanics
    # tests cover the held frames across pushes
    decision = VadDecision(0.5, bridge_frames=4, min_speech_frames=6)
    lags = {"vad": 2, "snr_db": 1}
    LinearProbes(probes, names, {"vad": 0.5, "noise_category": 0.9, "snr_db": 0.8}, decision, lags).save(staging)
    extra = {n: staging / n for n in (LinearProbes.FILE, LinearProbes.META)}
    # a calibrated mask too, so that streaming tests cover the average's state across pushes
    presets.save(folder, net, {"name": "random", "target_usage": 0.25, "gain_exponent": 0.9, "gain_smoothing": 0.3},
                 extra)
    return folder


PACK_SPEECH = sorted((data.default_data_root() / "speech").rglob("*.wav"))[:8]  # real speech: real PESQ and F0


def make_corpus(root: Path, noise=(("animals", "dog"), ("babble", "babble")), per_category=3) -> Path:
    """A tiny copy of the corpus: the pack's layout plus its age, group and speakers columns.
    Eight speechocean762-like speakers (children 8-11, adults 12-15; splits train, train, valid,
    test in turn) reading pack utterances; ``per_category`` noise files of each (group, category)."""
    speech = [dict(path=f"speech/speechocean762/SPEAKER{i:04d}/u{i}.wav", duration_s="3.000", source="speechocean762",
                   speaker=f"SPEAKER{i:04d}", gender="FM"[i % 2], split=("train", "train", "valid", "test")[i % 4],
                   age=str(8 + i)) for i in range(8)]
    rows = [dict(path=f"noise/{g}/esc50__{c}{i}.wav", duration_s="2.000", source="esc50", category=c, group=g,
                 split=("train", "valid", "test")[i % 3], speakers="") for g, c in noise for i in range(per_category)]
    rows[-1]["speakers"] = "SPEAKER0000;SPEAKER0001"
    for i, r in enumerate(speech):
        (root / r["path"]).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / r["path"], sf.read(PACK_SPEECH[i % len(PACK_SPEECH)], dtype="float32")[0][: 3 * 16000], 16000)
    for i, r in enumerate(rows):
        (root / r["path"]).parent.mkdir(parents=True, exist_ok=True)
        sf.write(root / r["path"], 0.05 * np.random.default_rng(i).standard_normal(32000).astype(np.float32), 16000)
    for name, table in (("speech_manifest.csv", speech), ("noise_manifest.csv", rows)):
        with open(root / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(table[0]))
            w.writeheader()
            w.writerows(table)
    return root
