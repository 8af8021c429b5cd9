"""Speech and noise layouts, manifests, and the mixing that every stage shares.

Training mixes dynamically; valid and test mixtures are fixed by seed, so that every run and
every system (``freelunch evaluate``, ``freelunch bench``) is scored on the same audio.
"""
from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .taxonomy import noise_class

SAMPLE_RATE = 16000
SPLITS = ("train", "valid", "test")
SNR_RANGE_DB = (-5.0, 20.0)
LEVEL_RANGE_DB = (-35.0, -15.0)  # active speech level of a mixture, dBFS
ACTIVE_THRESHOLD_DB = -40.0  # a frame is active within this of the loudest 16 ms frame
TEST_SEED = 20260
MANIFEST_FIELDS = ("id", "kind", "path", "duration", "category", "split")


def default_data_root() -> Path:
    """The shared data pack: ``$FREELUNCH_DATA`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("FREELUNCH_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data"
        if (candidate / "speech_manifest.csv").exists():
            return candidate
    return Path("../shared/data").resolve()


# --- layouts -> manifest rows -------------------------------------------------------


def _check_wav(path: Path) -> float:
    info = sf.info(str(path))
    if info.samplerate != SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate {info.samplerate} Hz, expected {SAMPLE_RATE} Hz"
                         " (resample the set first, e.g. sox IN -r 16000 OUT)")
    return info.frames / info.samplerate


def _require_dir(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{what} folder not found: {path}")
    return path


# Manifest columns carried through when the data has them (the corpus does; the pack lacks
# group, age and speakers): who speaks, and which noise group a file belongs to.
EXTRA_COLUMNS = {"speech": ("source", "speaker", "gender", "age"), "noise": ("source", "group", "speakers")}


def pack_layout(root: Path) -> list[dict]:
    """Rows for the shared pack or the corpus: their own speech/noise manifests carry the splits."""
    root = _require_dir(root, "data pack")
    rows = []
    for kind, name in (("speech", "speech_manifest.csv"), ("noise", "noise_manifest.csv")):
        manifest = root / name
        if not manifest.exists():
            raise FileNotFoundError(f"data pack has no {name}: {manifest}")
        with open(manifest, newline="") as f:
            for r in csv.DictReader(f):
                rows.append(
                    dict(
                        id=Path(r["path"]).stem if kind == "speech" else f"noise-{Path(r['path']).stem}",
                        kind=kind,
                        path=str(root / r["path"]),
                        duration=float(r["duration_s"]),
                        category=r.get("category", ""),
                        split=r["split"],
                        **{c: r.get(c) or "" for c in EXTRA_COLUMNS[kind]},
                    )
                )
    return rows


def _hash_split(name: str, valid_fraction: float, test_fraction: float) -> str:
    u = int(hashlib.sha1(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if u < test_fraction else "valid" if u < test_fraction + valid_fraction else "train"


def folder_layout(speech_dir: Path, noise_dir: Path, valid_fraction=0.1, test_fraction=0.1) -> list[dict]:
    """Rows for any folder of speech WAVs and a folder of noise WAVs in category subfolders.

    Speech is split by its first subfolder (the speaker, when there is one) and noise by
    file, both by a stable hash, so adding files never moves old ones between splits.
    """
    speech_dir = _require_dir(speech_dir, "speech")
    noise_dir = _require_dir(noise_dir, "noise")
    rows = []
    for p in sorted(speech_dir.rglob("*.wav")):
        rel = p.relative_to(speech_dir)
        group = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        rows.append(dict(id=str(rel.with_suffix("")).replace(os.sep, "-"), kind="speech", path=str(p),
                         duration=_check_wav(p), category="", split=_hash_split(group, valid_fraction, test_fraction)))
    for p in sorted(noise_dir.rglob("*.wav")):
        rel = p.relative_to(noise_dir)
        if len(rel.parts) < 2:
            raise ValueError(f"noise file {p} is not in a category subfolder")
        rows.append(dict(id="noise-" + str(rel.with_suffix("")).replace(os.sep, "-"), kind="noise", path=str(p),
                         duration=_check_wav(p), category=rel.parts[0],
                         split=_hash_split(str(rel), valid_fraction, test_fraction)))
    return rows


def voicebank_layout(root: Path) -> list[dict]:
    """Rows for VoiceBank-DEMAND: ``{clean,noisy}_{trainset_28spk,testset}_wav`` folders of pairs.

    Pairs are fixed mixtures (kind ``pair``), so ``path`` is the noisy file and ``clean`` its
    reference. The last two training speakers are held out as ``valid``.
    """
    root = _require_dir(root, "VoiceBank-DEMAND")
    rows = []
    for split_name, folder in (("train", "trainset_28spk_wav"), ("test", "testset_wav")):
        clean_dir = _require_dir(root / f"clean_{folder}", "VoiceBank clean")
        noisy_dir = _require_dir(root / f"noisy_{folder}", "VoiceBank noisy")
        speakers = sorted({p.name.split("_")[0] for p in clean_dir.glob("*.wav")})
        held_out = set(speakers[-2:]) if split_name == "train" else set()
        for clean in sorted(clean_dir.glob("*.wav")):
            noisy = noisy_dir / clean.name
            if not noisy.exists():
                raise FileNotFoundError(f"VoiceBank pair without a noisy file: {noisy}")
            rows.append(dict(id=clean.stem, kind="pair", path=str(noisy), clean=str(clean), duration=_check_wav(noisy),
                             category="", split="valid" if clean.name.split("_")[0] in held_out else split_name))
    return rows


# ESC-50's major categories, by target // 10 (its own grouping; the corpus's noise groups).
ESC50_GROUPS = ("animals", "nature", "human", "interior", "exterior")
ESC50_FOLD_SPLITS = {"1": "train", "2": "train", "3": "train", "4": "valid", "5": "test"}
SUBSET_SPLITS = {"train": "train", "dev": "valid", "valid": "valid", "test": "test"}


def _subset_split(name: str) -> str | None:
    """``train-clean-100`` → train, ``dev-clean`` → valid, ``test-other`` → test; None otherwise."""
    return SUBSET_SPLITS.get(name.split("-")[0].split("_")[0].lower())


def _hold_out_valid(rows: list[dict]) -> list[dict]:
    """Without a valid split, hold out about a tenth of the training speakers (stable hash)."""
    if any(r["split"] == "valid" for r in rows):
        return rows
    for r in rows:
        if r["split"] == "train" and _hash_split(r["speaker"], 0.1, 0.0) == "valid":
            r["split"] = "valid"
    return rows


def _speech_row(path: Path, rid: str, split: str, source: str, speaker: str, gender: str) -> dict:
    return dict(id=rid, kind="speech", path=str(path), duration=_check_wav(path), category="", split=split,
                source=source, speaker=speaker, gender=gender, age="")


def librispeech_layout(root: Path) -> list[dict]:
    """Speech rows for LibriSpeech as downloaded: ``SPEAKERS.TXT`` and ``<subset>/<speaker>/<chapter>/*.flac``.

    Each reader's subset gives the split (``train-*``, ``dev-*``, ``test-*``); with no dev
    subset, a tenth of the training readers is held out as valid.
    """
    root = _require_dir(root, "LibriSpeech")
    table = root / "SPEAKERS.TXT"
    if not table.exists():
        raise FileNotFoundError(f"LibriSpeech folder has no SPEAKERS.TXT: {table}")
    genders = {}
    for line in table.read_text().splitlines():
        fields = [f.strip() for f in line.split("|")]
        if line.startswith(";") or len(fields) < 3:
            continue
        genders[fields[0]] = fields[1]
    rows = []
    for p in sorted(root.rglob("*.flac")):
        subset, speaker = p.parts[-4], p.parts[-3]
        split = _subset_split(subset)
        if split is None:
            raise ValueError(f"{p}: subset folder {subset!r} is not train-*, dev-* or test-*")
        if speaker not in genders:
            raise ValueError(f"{p}: reader {speaker} is not in {table}")
        rows.append(_speech_row(p, p.stem, split, "librispeech", speaker, genders[speaker]))
    if not rows:
        raise ValueError(f"no .flac files under {root}")
    return _hold_out_valid(rows)


def _kaldi_table(path: Path) -> dict[str, str]:
    """A Kaldi ``key value`` table; {} when the file is absent."""
    if not path.exists():
        return {}
    return dict(line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())


def kaldi_layout(root: Path) -> list[dict]:
    """Speech rows for Kaldi data folders: ``<root>/{train,dev|valid,test}/wav.scp`` with
    ``utt2spk`` and ``spk2gender`` beside it (both optional). Relative paths are read from
    ``root``, then from the data folder. With no dev folder, a tenth of the training
    speakers is held out as valid."""
    root = _require_dir(root, "Kaldi data")
    rows = []
    for folder in sorted(p for p in root.iterdir() if (p / "wav.scp").exists()):
        split = _subset_split(folder.name)
        if split is None:
            raise ValueError(f"Kaldi folder {folder} is not named train, dev, valid or test")
        utt2spk, spk2gender = _kaldi_table(folder / "utt2spk"), _kaldi_table(folder / "spk2gender")
        for utt, where in sorted(_kaldi_table(folder / "wav.scp").items()):
            if where.rstrip().endswith("|"):
                raise ValueError(f"{folder / 'wav.scp'}: {utt} is a command pipe; give a plain audio path")
            path = Path(where.strip())
            if not path.is_absolute():
                path = root / path if (root / path).exists() else folder / path
            if not path.exists():
                raise FileNotFoundError(f"{folder / 'wav.scp'}: {utt}: no file {path}")
            speaker = utt2spk.get(utt, utt)
            rows.append(_speech_row(path, utt, split, "kaldi", speaker, spk2gender.get(speaker, "").upper()))
    if not rows:
        raise ValueError(f"no train/dev/test folder with a wav.scp under {root}")
    return _hold_out_valid(rows)


def esc50_layout(root: Path) -> list[dict]:
    """Noise rows for ESC-50 (``meta/esc50.csv``, ``audio/*.wav``), converted to 16 kHz. Folds
    1-3 train, 4 valid, 5 test, as in the corpus; the group is ESC-50's major category."""
    root = _require_dir(root, "ESC-50")
    meta = root / "meta" / "esc50.csv"
    if not meta.exists():
        raise FileNotFoundError(f"ESC-50 folder has no meta/esc50.csv: {meta}")
    rows = []
    with open(meta, newline="") as f:
        for r in csv.DictReader(f):
            path = root / "audio" / r["filename"]
            if not path.exists():
                raise FileNotFoundError(f"{meta} lists {r['filename']}, but there is no {path}")
            rows.append(dict(id=f"noise-esc50-{path.stem}", kind="noise", path=str(path), duration=_check_wav(path),
                             category=r["category"], split=ESC50_FOLD_SPLITS[r["fold"]], source="esc50",
                             group=ESC50_GROUPS[int(r["target"]) // 10], speakers=""))
    return rows


def write_manifest(rows: list[dict], path: Path) -> None:
    """Write rows as a SpeechBrain CSV manifest (``ID`` first), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["ID"] + list(dict.fromkeys(k for r in rows for k in r if k != "id"))  # layouts combined: every column
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields, restval="")
        w.writeheader()
        for r in rows:
            w.writerow({"ID": r["id"], **{k: v for k, v in r.items() if k != "id"}})
    os.replace(tmp, path)


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [dict(r, id=r.pop("ID")) for r in csv.DictReader(f)]


def spread(rows: list, limit: int | None) -> list:
    """``limit`` rows evenly spaced over ``rows`` (all when ``limit`` is None or enough): a small
    valid set that still covers every source of a manifest sorted by path."""
    if limit is None or limit >= len(rows):
        return list(rows)
    return [rows[int(i * len(rows) / limit)] for i in range(limit)]


def split_rows(rows: list[dict], split: str) -> tuple[list[dict], list[dict]]:
    """(speech-or-pair rows, noise rows) of one split; a clear error when the split is empty."""
    speech = [r for r in rows if r["split"] == split and r["kind"] in ("speech", "pair")]
    noise = [r for r in rows if r["split"] == split and r["kind"] == "noise"]
    if not speech:
        raise ValueError(f"split {split!r} has no speech files")
    if not noise and not all(r["kind"] == "pair" for r in speech):
        raise ValueError(f"split {split!r} has no noise files")
    return speech, noise


# --- mixing --------------------------------------------------------------------------


def load(path: str) -> np.ndarray:
    wav, sr = sf.read(path, dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate {sr} Hz, expected {SAMPLE_RATE} Hz")
    return wav.mean(axis=1)


def active_rms(x: np.ndarray, threshold_db: float = ACTIVE_THRESHOLD_DB, frame: int = 256) -> float:
    """RMS over the 16 ms frames within ``threshold_db`` of the loudest one."""
    n = len(x) // frame
    if n == 0:
        return float(np.sqrt(np.mean(x.astype(np.float64) ** 2) + 1e-20))
    energy = (x[: n * frame].astype(np.float64).reshape(n, frame) ** 2).mean(1)
    active = energy >= energy.max() * 10 ** (threshold_db / 10)
    return float(np.sqrt(energy[active].mean() + 1e-20))


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2) + 1e-20))


def crop_start(n: int, length: int, rng: np.random.Generator, align: int = 1) -> int:
    """A random start, a multiple of ``align``, for a ``length``-sample excerpt of ``n`` samples."""
    return align * int(rng.integers(0, (n - length) // align + 1))


def crop(x: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A random ``length``-sample excerpt; shorter signals are looped."""
    if len(x) < length:
        x = np.tile(x, -(-length // len(x)) + 1)
    start = crop_start(len(x), length, rng)
    return x[start : start + length]


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float, level_db: float, target: np.ndarray | None = None) -> dict:
    """Scale speech to ``level_db`` dBFS active level and noise to ``snr_db`` below it.

    SNR is active speech level over noise RMS. If the mixture would clip, everything is
    scaled down together, so the SNR is kept. ``target`` (an augmented crop's, see
    ``freelunch.augment``) is the ``clean`` returned, scaled as the speech is; by default the speech.
    """
    gain = 10 ** (level_db / 20) / active_rms(speech)
    speech = speech * gain
    target = speech if target is None else target * gain
    noise = noise * (active_rms(speech) / rms(noise) / 10 ** (snr_db / 20))
    mixture = speech + noise
    peak = float(np.abs(mixture).max())
    if peak > 0.99:
        target, noise, mixture = (a * (0.99 / peak) for a in (target, noise, mixture))
    f32 = lambda a: a.astype(np.float32)  # noqa: E731
    return dict(noisy=f32(mixture), clean=f32(target), noise=f32(noise), snr_db=float(snr_db))


class NoiseBank:
    """The noise files of one split, loaded once, with their noise classes (``taxonomy``)."""

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.audio = [load(r["path"]) for r in rows]
        self.classes = [noise_class(r) for r in rows]

    @property
    def names(self) -> list[str]:
        """The classes of the bank, sorted: the index a class target takes."""
        return sorted(set(self.classes))

    def sample(self, length: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
        i = int(rng.integers(len(self.rows)))
        return crop(self.audio[i], length, rng), self.classes[i]


def make_mixture(speech: np.ndarray, bank: NoiseBank, rng: np.random.Generator, length: int | None = None,
                 augment=None, level_range_db: tuple[float, float] = LEVEL_RANGE_DB) -> dict:
    """One mixture: a crop of ``speech`` (whole when ``length`` is None) with random noise, SNR and
    level; ``augment`` (``freelunch.augment.Augment``) changes the crop, its target and the mixture."""
    if length is not None:
        speech = crop(speech, length, rng)
    target = None
    if augment is not None and augment.active:
        speech, target = augment.speech(speech, rng)
    noise, category = bank.sample(len(speech), rng)
    out = mix(speech, noise, rng.uniform(*SNR_RANGE_DB), rng.uniform(*level_range_db), target)
    if augment is not None and augment.active:
        out["noisy"] = augment.mixture(out["noisy"], rng)
    out["category"] = category
    return out


def item_rng(seed: int, item_id: str) -> np.random.Generator:
    """A generator fixed by ``seed`` and the item's id: the same mixture on every run."""
    return np.random.default_rng([seed, int(hashlib.sha1(item_id.encode()).hexdigest()[:12], 16)])


def fixed_mixtures(rows: list[dict], split: str, seed: int = TEST_SEED, limit: int | None = None):
    """Yield the deterministic (id, mixture) pairs of a split, whole utterances."""
    speech, noise = split_rows(rows, split)
    bank = NoiseBank(noise) if noise else None
    for r in speech[:limit]:
        if r["kind"] == "pair":
            noisy, clean = load(r["path"]), load(r["clean"])
            yield r["id"], dict(noisy=noisy, clean=clean, noise=noisy - clean, category="", snr_db=float("nan"))
        else:
            yield r["id"], make_mixture(load(r["path"]), bank, item_rng(seed, r["id"]))
