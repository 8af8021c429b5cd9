"""The layouts users download (LibriSpeech, ESC-50, Kaldi lists) and the corpus's manifests,
each on a tiny copy built here, read by recipes/prepare.py and trained on by train.py --debug."""
import csv
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from freelunch import data

from conftest import PACK_SPEECH, make_corpus

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "recipes"))
from prepare import prepare  # noqa: E402

PACK = data.default_data_root()


def speech_audio(i: int) -> np.ndarray:
    return sf.read(PACK_SPEECH[i % len(PACK_SPEECH)], dtype="float32")[0][: 3 * 16000]


def write(path: Path, audio: np.ndarray, rate=16000, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, audio, rate, format=fmt)


def make_librispeech(root: Path, subsets=("train-clean-5", "dev-clean-2", "test-clean")) -> Path:
    lines = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    for s, subset in enumerate(subsets):
        for k in range(3):
            spk = str(100 + 10 * s + k)
            lines.append(f"{spk:<5}| {'FM'[k % 2]} | {subset:<17}| 1.00 | Reader {spk}")
            for u in range(2):
                write(root / subset / spk / "7" / f"{spk}-7-{u:04d}.flac", speech_audio(s + k + u), fmt="FLAC")
    (root / "SPEAKERS.TXT").write_text("\n".join(lines) + "\n")
    return root


def make_esc50(root: Path, rate=16000) -> Path:
    rng = np.random.default_rng(0)
    rows = []
    for fold in range(1, 6):
        for target, category in ((0, "dog"), (10, "rain"), (40, "helicopter")):
            name = f"{fold}-{1000 + target}-A-{target}.wav"
            write(root / "audio" / name, (0.05 * rng.standard_normal(rate * 2)).astype(np.float32), rate)
            rows.append(dict(filename=name, fold=fold, target=target, category=category, esc10="False",
                             src_file=1000 + target, take="A"))
    (root / "meta").mkdir(parents=True, exist_ok=True)
    with open(root / "meta" / "esc50.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


def make_kaldi(root: Path) -> Path:
    """speechocean762's shape: train/ and test/ only, paths relative to the root."""
    for split, speakers in (("train", [f"{i:04d}" for i in range(20)]), ("test", ["0900", "0901"])):
        scp, u2s, s2g = [], [], []
        for i, spk in enumerate(speakers):
            utt = f"{spk}0001"
            write(root / "WAVE" / f"SPEAKER{spk}" / f"{utt}.WAV", speech_audio(i))
            scp.append(f"{utt}\tWAVE/SPEAKER{spk}/{utt}.WAV")
            u2s.append(f"{utt} {spk}")
            s2g.append(f"{spk} {'mf'[i % 2]}")
        (root / split).mkdir(parents=True, exist_ok=True)
        for name, lines in (("wav.scp", scp), ("utt2spk", u2s), ("spk2gender", s2g)):
            (root / split / name).write_text("\n".join(lines) + "\n")
    return root


def test_prepare_reads_the_corpus_columns(tmp_path):
    counts = prepare("pack", [str(make_corpus(tmp_path / "corpus"))], str(tmp_path / "out"))
    assert counts == {"train": 4, "valid": 2, "test": 2}
    speech = data.read_manifest(tmp_path / "out" / "train.csv")
    assert [r["age"] for r in speech] == ["8", "9", "12", "13"] and speech[0]["source"] == "speechocean762"
    noise = data.read_manifest(tmp_path / "out" / "test_noise.csv")
    assert [(r["category"], r["group"]) for r in noise] == [("dog", "animals"), ("babble", "babble")]
    assert noise[1]["speakers"] == "SPEAKER0000;SPEAKER0001"


def test_prepare_librispeech_with_esc50(tmp_path):
    counts = prepare("librispeech+esc50", [str(make_librispeech(tmp_path / "LibriSpeech")),
                                           str(make_esc50(tmp_path / "ESC-50"))], str(tmp_path / "out"))
    assert counts == {"train": 6, "valid": 6, "test": 6}  # one subset each, 3 readers × 2 utterances
    valid = data.read_manifest(tmp_path / "out" / "valid.csv")
    assert {r["speaker"] for r in valid} == {"110", "111", "112"} and valid[0]["gender"] == "F"
    noise = {s: data.read_manifest(tmp_path / "out" / f"{s}_noise.csv") for s in data.SPLITS}
    assert [len(noise[s]) for s in data.SPLITS] == [9, 3, 3]  # folds 1-3, 4, 5 × 3 classes
    assert {(r["category"], r["group"]) for r in noise["test"]} == {
        ("dog", "animals"), ("rain", "nature"), ("helicopter", "exterior")}


def test_librispeech_without_a_dev_subset_holds_readers_out(tmp_path):
    root = make_librispeech(tmp_path / "LS", subsets=("train-clean-100", "test-clean"))
    for k in range(20):  # enough readers that the hash holds some out
        spk = str(500 + k)
        write(root / "train-clean-100" / spk / "1" / f"{spk}-1-0000.flac", speech_audio(k), fmt="FLAC")
        with open(root / "SPEAKERS.TXT", "a") as f:
            f.write(f"{spk} | M | train-clean-100 | 1.0 | R\n")
    rows = data.librispeech_layout(root)
    valid = {r["speaker"] for r in rows if r["split"] == "valid"}
    train = {r["speaker"] for r in rows if r["split"] == "train"}
    assert valid and train and not valid & train and len(valid) < len(train)


def test_prepare_kaldi_lists_hold_out_valid_speakers(tmp_path):
    counts = prepare("kaldi+esc50", [str(make_kaldi(tmp_path / "so762")), str(make_esc50(tmp_path / "esc"))],
                     str(tmp_path / "out"))
    assert counts["test"] == 2 and counts["train"] + counts["valid"] == 20 and counts["valid"] >= 1
    row = data.read_manifest(tmp_path / "out" / "test.csv")[0]
    assert row["speaker"] == "0900" and row["gender"] == "M" and row["path"].endswith("WAVE/SPEAKER0900/09000001.WAV")


def test_layout_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="SPEAKERS.TXT"):
        data.librispeech_layout(tmp_path)
    with pytest.raises(FileNotFoundError, match="meta/esc50.csv"):
        data.esc50_layout(tmp_path)
    with pytest.raises(ValueError, match="44100 Hz.*resample"):  # ESC-50 as distributed is 44.1 kHz
        data.esc50_layout(make_esc50(tmp_path / "esc44", rate=44100))
    with pytest.raises(FileNotFoundError, match="Kaldi data folder not found"):
        data.kaldi_layout(tmp_path / "missing")
    kaldi = make_kaldi(tmp_path / "k")
    (kaldi / "train" / "wav.scp").write_text("u1 sox a.wav -t wav - |\n")
    with pytest.raises(ValueError, match="command pipe"):
        data.kaldi_layout(kaldi)
    with pytest.raises(ValueError, match="unknown layout 'timit'"):
        prepare("timit", [str(tmp_path / "data")], str(tmp_path / "out"))
    with pytest.raises(ValueError, match="needs 2 folder"):
        prepare("librispeech+esc50", [str(tmp_path / "data")], str(tmp_path / "out"))
    ls = make_librispeech(tmp_path / "LS")
    with pytest.raises(ValueError, match="split 'train' has no noise"):  # speech alone cannot be mixed
        prepare("librispeech", [str(ls)], str(tmp_path / "out"))
    shutil.rmtree(ls / "test-clean")
    with pytest.raises(ValueError, match="split 'test' has no speech"):
        prepare("librispeech+esc50", [str(ls), str(make_esc50(tmp_path / "e"))], str(tmp_path / "out"))


@pytest.mark.parametrize("layout", ["librispeech+esc50", "kaldi+esc50", "corpus"])
def test_debug_training_runs_on_each_layout(tmp_path, layout):
    if layout == "corpus":
        roots, name = [make_corpus(tmp_path / "corpus")], "pack"
    else:
        speech = make_librispeech(tmp_path / "ls") if layout.startswith("librispeech") else make_kaldi(tmp_path / "k")
        roots, name = [speech, make_esc50(tmp_path / "esc")], layout
    cmd = [sys.executable, "recipes/train.py", "hparams/train.yaml", "--device", "cpu", "--debug",
           "--debug_epochs", "1", "--debug_batches", "1", "--output_folder", str(tmp_path / "run"),
           "--data_layout", name, "--data_root", "[" + ", ".join(str(r) for r in roots) + "]",
           "--crops_per_utterance", "1", "--valid_limit", "2", "--batch_size", "2"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "valid pesq" in (tmp_path / "run" / "train_log.txt").read_text()
    assert len(data.read_manifest(tmp_path / "run" / "manifests" / "train.csv")) >= 3
