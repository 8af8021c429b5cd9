"""The SpeechBrain recipe: manifests for three layouts, exact mixing, training, resume, DDP."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from freelunch import data

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes"))
from prepare import prepare  # noqa: E402

PACK = data.default_data_root()
TINY = ["--crops_per_utterance", "1", "--valid_limit", "2", "--batch_size", "8"]


def write_wav(path: Path, seconds=1.0, rate=16000, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.random.default_rng(seed).standard_normal(int(seconds * rate)) * 0.1, rate)


def test_prepare_pack_keeps_the_packs_splits(tmp_path):
    counts = prepare("pack", [str(PACK)], str(tmp_path))
    assert counts == {"train": 211, "valid": 20, "test": 120}
    noise = data.read_manifest(tmp_path / "train_noise.csv")
    assert len({r["category"] for r in noise}) == 13
    test_speakers = {Path(r["path"]).parent.name for r in data.read_manifest(tmp_path / "test.csv")}
    train_speakers = {Path(r["path"]).parent.name for r in data.read_manifest(tmp_path / "train.csv")}
    assert not test_speakers & train_speakers


def test_prepare_folders_layout(tmp_path):
    for spk in range(40):
        write_wav(tmp_path / "speech" / f"spk{spk}" / "a.wav", seed=spk)
    for cat in ("rain", "fan"):
        for i in range(30):
            write_wav(tmp_path / "noise" / cat / f"{i}.wav", seed=100 + i)
    counts = prepare("folders", [str(tmp_path / "speech"), str(tmp_path / "noise")], str(tmp_path / "out"))
    assert sum(counts.values()) == 40 and all(counts.values())
    rows = data.read_manifest(tmp_path / "out" / "train_noise.csv")
    assert {r["category"] for r in rows} == {"rain", "fan"}


def test_prepare_voicebank_layout(tmp_path):
    for folder, speakers in (("trainset_28spk_wav", ["p226", "p227", "p228"]), ("testset_wav", ["p232"])):
        for spk in speakers:
            for kind in ("clean", "noisy"):
                write_wav(tmp_path / "vb" / f"{kind}_{folder}" / f"{spk}_001.wav")
    counts = prepare("voicebank", [str(tmp_path / "vb")], str(tmp_path / "out"))
    assert counts == {"train": 1, "valid": 2, "test": 1}
    pair = data.read_manifest(tmp_path / "out" / "test.csv")[0]
    assert pair["kind"] == "pair" and pair["clean"].endswith("clean_testset_wav/p232_001.wav")


def test_prepare_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        prepare("folders", [str(tmp_path / "nope"), str(tmp_path / "nope2")], str(tmp_path / "out"))
    write_wav(tmp_path / "s" / "spk" / "a.wav", rate=8000)
    write_wav(tmp_path / "n" / "rain" / "a.wav")
    with pytest.raises(ValueError, match="8000 Hz"):
        prepare("folders", [str(tmp_path / "s"), str(tmp_path / "n")], str(tmp_path / "out"))
    write_wav(tmp_path / "s" / "spk" / "a.wav")
    with pytest.raises(ValueError, match="empty|no speech|no noise"):
        prepare("folders", [str(tmp_path / "s"), str(tmp_path / "n")], str(tmp_path / "out"))
    with pytest.raises(ValueError, match="inside the data folder"):
        prepare("pack", [str(PACK)], str(PACK / "manifests"))


@pytest.mark.parametrize("snr", [-5.0, 0.0, 7.5, 20.0])
def test_mixing_hits_the_requested_snr(snr):
    rows = data.pack_layout(PACK)
    speech = data.load(next(r for r in rows if r["kind"] == "speech")["path"])
    noise = data.load(next(r for r in rows if r["kind"] == "noise")["path"])[: len(speech)]
    for level in (-30.0, -3.0):  # the second one clips and is scaled down
        m = data.mix(speech, np.resize(noise, len(speech)), snr, level)
        measured = 20 * np.log10(data.active_rms(m["clean"]) / data.rms(m["noise"]))
        assert measured == pytest.approx(snr, abs=0.1)
        np.testing.assert_allclose(m["noisy"], m["clean"] + m["noise"], atol=1e-6)
        assert np.abs(m["noisy"]).max() <= 0.99 + 1e-6


def test_fixed_mixtures_are_the_same_every_time():
    rows = data.pack_layout(PACK)
    a = [m for _, m in data.fixed_mixtures(rows, "valid", limit=3)]
    b = [m for _, m in data.fixed_mixtures(rows, "valid", limit=3)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x["noisy"], y["noisy"])
        assert x["category"] == y["category"]


def train_cmd(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "recipes/train.py", "hparams/train.yaml", "--device", "cpu",
            "--output_folder", str(out), "--data_root", str(PACK), *TINY, *extra]


def test_debug_training_runs_end_to_end(tmp_path):
    result = subprocess.run(train_cmd(tmp_path / "run", "--debug"), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "valid pesq" in (tmp_path / "run" / "train_log.txt").read_text()


def test_optional_losses_run_end_to_end(tmp_path):
    """Probe heads on the masks, the liveness loss, and the PESQ and SI-SDR terms beside the SE
    loss; F0 targets come from (and fill) the harvest cache. The Φ ramp starts below 1, as
    when warm-starting from a gated network."""
    cache = tmp_path / "targets"
    args = train_cmd(tmp_path / "run", "--debug", "--debug_epochs", "1", "--debug_batches", "1", "--joint_weight", "0.1",
                     "--liveness_weight", "0.1", "--pesq_weight", "0.1", "--si_sdr_weight", "0.02", "--dense_warmup_epochs", "0", "--usage_ramp_epochs", "2", "--usage_ramp_start", "0.5",
                     "--target_usage", "0.25", "--target_cache", str(cache))
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    log = (tmp_path / "run" / "train_log.txt").read_text()
    assert "valid pesq" in log
    assert "phi: 3.75e-01" in log  # halfway from 0.5 to 0.25 after the first of 2 ramp epochs
    assert 1 <= len(list(cache.glob("*.npz"))) <= 8


def test_training_resumes_after_sigkill(tmp_path):
    out = tmp_path / "run"
    args = train_cmd(out, "--number_of_epochs", "3", "--dense_warmup_epochs", "1", "--usage_ramp_epochs", "1")
    log = out / "train_log.txt"
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and not (log.exists() and "epoch: 1" in log.read_text()):
        time.sleep(0.5)
    time.sleep(2.0)  # well into epoch 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    text = log.read_text()
    assert "epoch: 1," in text and "epoch: 3," not in text
    for ckpt in (out / "save").glob("CKPT+*"):
        assert (ckpt / "CKPT.yaml").exists() and (ckpt / "model.ckpt").exists()
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    epochs = [line.split(",")[0] for line in log.read_text().splitlines() if line.startswith("epoch")]
    assert epochs == ["epoch: 1", "epoch: 2", "epoch: 3"]


def test_two_process_gloo_training(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    args = [str(torchrun), "--nproc_per_node=2", *train_cmd(tmp_path / "ddp", "--debug", "--distributed_backend=gloo")[1:]]
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "valid pesq" in (tmp_path / "ddp" / "train_log.txt").read_text()


def test_export_turns_a_run_into_a_complete_preset(tmp_path):
    """A tiny gated run -> export (its 2 checkpoints averaged) with probes -> a preset that
    verifies, loads and reports."""
    run = tmp_path / "run"
    args = train_cmd(run, "--number_of_epochs", "2", "--dense_warmup_epochs", "1", "--usage_ramp_epochs", "1",
                     "--average_checkpoints", "2")
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    probes_yaml = (ROOT / "hparams" / "probes.yaml").read_text()
    for key, value in {"max_utterances": "4", "train_draws": "1", "valid_draws": "1", "compare_frames": "300",
                       "data_root": str(PACK), "target_cache": str(tmp_path / "cache"), "f0_classes_per_octave": "6"}.items():
        probes_yaml = "\n".join(f"{key}: {value}" if line.startswith(f"{key}:") else line
                                for line in probes_yaml.splitlines())
    (tmp_path / "probes.yaml").write_text(probes_yaml)
    (tmp_path / "calibrate.yaml").write_text(f"preset: null\ndata_root: {PACK}\nvalid_limit: 2\nvalid_seed: 202\n"
                                             "valid_draws: 1\ngain_exponent_grid: [0.8, 1.0]\ngain_smoothing_grid: [0.0, 0.2]\n")
    (tmp_path / "threshold.yaml").write_text(f"preset: null\ndata_root: {PACK}\ntarget_cache: {tmp_path / 'cache'}\n"
                                             "split: valid\nlimit: 2\nmin_precision: 0.9\ngrid: [0.0, 0.5, 0.9]\n")
    from export_preset import export

    folder = tmp_path / "preset"
    report = export(run, folder, tmp_path / "probes.yaml", limit=2, calibration_hparams=tmp_path / "calibrate.yaml",
                    threshold_hparams=tmp_path / "threshold.yaml")
    import torch
    from safetensors.torch import load_file

    from freelunch import DynCPEnhancer, presets
    from freelunch.probes.linear import LinearProbes

    config = presets.verify(folder)
    kept = [torch.load(p, weights_only=True) for p in sorted(run.glob("save/CKPT+*/model.ckpt"))]
    assert len(kept) == len(config["training"]["checkpoints"]) == 2
    weights = load_file(str(folder / "model.safetensors"))
    for key in ("frontend.weight", "blocks.0.up.weight", "gates.0.net.2.weight"):
        assert torch.allclose(weights[key], (kept[0][key] + kept[1][key]) / 2, atol=1e-6), key
    assert config["gain_exponent"] in (0.8, 1.0) and config["gain_smoothing"] in (0.0, 0.2)
    assert set(config["gain_calibration"]["pesq_by_exponent_and_smoothing"]) == {"0.8/0.0", "0.8/0.2", "1.0/0.0", "1.0/0.2"}
    assert report["preset"] == "preset" and report["mixtures"] == 2 and set(report["probes"]) >= {"vad", "f0_hz", "noise_category"}
    fx = DynCPEnhancer.from_preset(folder)
    fx(np.zeros(16000, np.float32), 16000)
    assert len(fx.properties.vad) == len(fx.properties.times) > 0
    fitted = json.loads((folder / "probes_report.json").read_text())
    # the noise label's threshold chosen on valid, from the grid, and kept with the probes
    assert [p["threshold"] for p in fitted["noise_threshold"]["curve"]] == [0.0, 0.5, 0.9]
    assert LinearProbes.load(folder).noise_threshold == fitted["noise_threshold"]["chosen"]["threshold"]
    # F0 read as pitch classes, chosen by RPA: the shipped probe holds each class's F0
    assert fitted["tasks"]["f0_hz"]["metric"] == "rpa"
    f0_probe = LinearProbes.load(folder).probes["f0_hz"]
    assert f0_probe.values is not None and f0_probe.coef.shape[1] == len(f0_probe.values) == 24
    # --refit False keeps the fitted weights and chooses the smoothing and VAD decision again
    import fit_probes
    from hyperpyyaml import load_hyperpyyaml

    before = (folder / LinearProbes.FILE).read_bytes()
    hp = load_hyperpyyaml((tmp_path / "probes.yaml").read_text(), {"preset": str(folder), "refit": False})
    again = fit_probes.main(hp)
    assert (folder / LinearProbes.FILE).read_bytes() == before
    assert again["vad_decision"] == LinearProbes.load(folder).decision.as_dict()
    assert again["lag_frames"] == LinearProbes.load(folder).lags and set(again["lag_frames"]) == set(again["smoothing"])
    clean_ups = len(hp["vad_bridge_frames_grid"]) * len(hp["vad_min_speech_frames_grid"])
    assert len(again["vad_decision_trials"]) == len(hp["vad_threshold_grid"]) * clean_ups
    presets.verify(folder)


def vad_grids(**grids) -> dict:
    """``tune_vad_decision``'s grids, one value each unless given (``threshold=[0.5, 0.7]`` sets
    ``vad_threshold_grid``)."""
    return {"vad_threshold_grid": [0.5], "vad_bridge_frames_grid": [1], "vad_min_speech_frames_grid": [1],
            "vad_accuracy_tolerance": 0.1,
            **{f"vad_{name}_grid": values for name, values in grids.items()}}


def test_vad_decision_finds_no_speech_in_noise_alone_within_the_accuracy_tolerance():
    """The most accurate threshold calls a noise clip speech; with that clip counted the tuning
    takes the stricter threshold while it costs less accuracy than the tolerance, the more
    accurate one once it costs more, and the more accurate one without the clip."""
    from fit_probes import tune_vad_decision
    from freelunch.probes.linear import LinearProbes

    truth = np.zeros(100, bool)
    truth[20:80] = True
    logits = np.where(truth, 3.0, -3.0).astype(np.float32)
    logits[20:26] = 0.4  # faint speech onset: probability 0.6
    noise = np.full(100, -3.0, np.float32)
    noise[30:60] = 0.4  # a noise the probe half believes
    level = np.full(100, -20.0, np.float32)
    mixtures = [({"vad": logits[:, None]}, level, {"vad": truth})]
    hp = vad_grids(threshold=[0.5, 0.7], min_speech_frames=[1, 8])
    probes = LinearProbes({}, [])
    free, _ = tune_vad_decision(hp, probes, mixtures)
    assert free.threshold == 0.5
    constrained, trials = tune_vad_decision(hp, probes, mixtures, [({"vad": noise[:, None]}, level)])
    assert constrained.threshold == 0.7
    chosen = [t for t in trials if t["threshold"] == 0.7]
    assert chosen[0]["noise_alone_with_speech"] == 0 and chosen[0]["valid_accuracy"] == pytest.approx(0.94)
    assert max(t["valid_accuracy"] for t in trials) == pytest.approx(1.0)
    tight, _ = tune_vad_decision({**hp, "vad_accuracy_tolerance": 0.05}, probes, mixtures,
                                 [({"vad": noise[:, None]}, level)])
    assert tight.threshold == 0.5


def test_vad_rules_are_measured_as_evaluate_scores_the_vad(random_preset, tmp_path):
    """The shipped decision's accuracy is evaluate's VAD accuracy on the same mixtures; each rule
    the decision has on gets a row of its own, scored without it."""
    import json

    import measure_vad_rules
    from hyperpyyaml import load_hyperpyyaml
    from freelunch.evaluate import evaluate_preset

    out = tmp_path / "rules.json"
    hp = load_hyperpyyaml((ROOT / "hparams" / "vad_rules.yaml").read_text(),
                          {"preset": str(random_preset), "data_root": str(PACK), "split": "test", "limit": 3,
                           "out": str(out), "target_cache": str(tmp_path / "cache")})
    table = measure_vad_rules.main(hp)
    assert json.loads(out.read_text()) == json.loads(json.dumps(table))
    rows = table["rules"]
    assert set(rows) == {"decision", "without run clean-up"}
    report = evaluate_preset(str(random_preset), split="test", limit=3, with_dnsmos=False, target_cache=str(tmp_path / "cache"))
    assert rows["decision"]["at_threshold"]["accuracy"] == pytest.approx(report["probes"]["vad"]["accuracy"])
    unclean = rows["without run clean-up"]
    assert unclean["at_threshold"]["accuracy"] != rows["decision"]["at_threshold"]["accuracy"]
    assert unclean["retuned"]["accuracy"] >= unclean["at_threshold"]["accuracy"]
    assert unclean["rule_accuracy_gain"] == pytest.approx(
        rows["decision"]["at_threshold"]["accuracy"] - unclean["retuned"]["accuracy"])
