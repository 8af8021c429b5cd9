"""Load and save presets: a folder with weights (safetensors), config, metrics and checksums.

A preset folder holds:

- ``model.safetensors``: the network's state dict (no pickles, nothing executable);
- ``config.json``: the network's constructor arguments (``gain_exponent`` and
  ``gain_smoothing``, the mask's calibration, are optional) plus ``name`` and ``target_usage``;
- ``probes.safetensors`` (optional): linear probe weights read from the gate masks;
- ``metrics.json``: what the preset scored on each test set (``pack``, ``corpus``), each with its date and commit;
- ``hyperparams.yaml``: for SpeechBrain's ``FreelunchEnhancer.from_hparams(source=folder)``;
- ``checksums.json``: SHA-256 of every other file, checked before anything is loaded.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError
from safetensors.numpy import load_file as load_numpy

from .export.common import write_text_atomic
from .model import NetworkWeights

if TYPE_CHECKING:
    from .model import ConvFSENet

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
HYPERPARAMS = """\
# SpeechBrain interface: freelunch.pretrained.FreelunchEnhancer.from_hparams(source=<this folder>).
# The weights load from model.safetensors after the checksums are verified; nothing is fetched.
preset_folder: null
model: !apply:freelunch.presets.load_network [!ref <preset_folder>]
modules:
    model: !ref <model>
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables: {}
"""
CHECKSUMS = "checksums.json"


class PresetError(ValueError):
    """A preset is missing, incomplete, tampered with or does not fit the network."""


def available() -> list[str]:
    """Names of the presets shipped in the package."""
    if not PRESETS_DIR.is_dir():
        return []
    return sorted(p.name for p in PRESETS_DIR.iterdir() if (p / "config.json").exists())


def resolve(preset: str | os.PathLike) -> Path:
    """A shipped preset name or a folder path -> the preset folder."""
    path = Path(preset)
    if path.is_dir():
        return path
    if isinstance(preset, str) and (PRESETS_DIR / preset).is_dir():
        return PRESETS_DIR / preset
    raise PresetError(f"unknown preset {str(preset)!r}: not a folder, and not one of {available()}")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(folder: Path) -> dict:
    """Check every file against checksums.json; return the config."""
    manifest_path = folder / CHECKSUMS
    if not manifest_path.exists():
        raise PresetError(f"preset {folder} has no {CHECKSUMS}")
    try:
        manifest = json.loads(manifest_path.read_text())
    except json.JSONDecodeError as e:
        raise PresetError(f"preset {folder}: {CHECKSUMS} is not valid JSON ({e})") from None
    for name in ("config.json", "model.safetensors"):
        if name not in manifest:
            raise PresetError(f"preset {folder}: {CHECKSUMS} does not list {name}")
    for name, digest in manifest.items():
        file = folder / name
        if not file.exists():
            raise PresetError(f"preset {folder} is missing {name}")
        if _sha256(file) != digest:
            raise PresetError(f"preset {folder}: {name} does not match its checksum (corrupt or modified)")
    try:
        return json.loads((folder / "config.json").read_text())
    except json.JSONDecodeError as e:
        raise PresetError(f"preset {folder}: config.json is not valid JSON ({e})") from None


def network_kwargs(config: dict) -> dict:
    keys = ("channels", "hidden", "kernel", "dilations", "stacks", "gated", "gate_hidden", "gate_window",
            "gate_temperature", "compression")
    missing = [k for k in keys if k not in config]
    if missing:
        raise PresetError(f"preset config lacks {missing}")
    return {k: config[k] for k in keys} | {k: config[k] for k in ("gain_exponent", "gain_smoothing") if k in config}


def load_network(preset: str | os.PathLike) -> ConvFSENet:
    """The verified, eval-mode network of a preset (used by the SpeechBrain hyperparams)."""
    return load(preset)[0]


def load(preset: str | os.PathLike) -> tuple[ConvFSENet, dict, Path]:
    """Verify and load a preset: (eval-mode network, config, folder)."""
    import torch

    from .model import ConvFSENet

    weights, config, folder = load_weights(preset)
    net = ConvFSENet(**network_kwargs(config))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in weights.state.items()}, strict=True)
    return net.eval(), config, folder


def load_weights(preset: str | os.PathLike) -> tuple[NetworkWeights, dict, Path]:
    """Verify and load a preset without torch: (the network's weights as numpy, config, folder).
    The streaming engine runs on these; names and shapes are checked against the config."""
    folder = resolve(preset)
    config = verify(folder)
    kwargs = network_kwargs(config)  # a config that lacks a key says so itself
    try:
        weights = NetworkWeights(kwargs, load_numpy(str(folder / "model.safetensors")))
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as e:
        raise PresetError(f"preset {folder}: weights do not fit the network ({e})") from None
    return weights, config, folder


def save(folder: Path, net: ConvFSENet, config: dict, extra_files: dict[str, Path] | None = None) -> Path:
    """Write a preset atomically: everything goes to a temporary folder that is renamed into place."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    from safetensors.torch import save_file

    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(tmp / "model.safetensors"))
        (tmp / "config.json").write_text(json.dumps({**net.config, **config}, indent=2) + "\n")
        (tmp / "hyperparams.yaml").write_text(HYPERPARAMS)
        for name, src in (extra_files or {}).items():
            shutil.copyfile(src, tmp / name)
        write_checksums(tmp)
        if folder.exists():
            old = folder.with_name(f".{folder.name}-old")
            shutil.rmtree(old, ignore_errors=True)
            folder.rename(old)
            tmp.rename(folder)
            shutil.rmtree(old)
        else:
            tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def write_metrics(folder: Path, report: dict) -> None:
    """Store a test-split ``freelunch evaluate`` report in ``metrics.json`` under its set, keeping
    the other set's, and refresh the checksums."""
    if report.get("split") != "test":
        raise ValueError(f"metrics.json holds test-split scores; this report is of {report.get('split')!r}")
    file = Path(folder) / "metrics.json"
    metrics = json.loads(file.read_text()) if file.exists() else {}
    metrics = {k: v for k, v in metrics.items() if k in ("pack", "corpus")}  # an older flat report is replaced
    metrics[report["set"]] = report
    write_text_atomic(file, json.dumps(metrics, indent=2) + "\n")
    write_checksums(Path(folder))


def write_checksums(folder: Path) -> None:
    files = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != CHECKSUMS)
    write_text_atomic(folder / CHECKSUMS, json.dumps({n: _sha256(folder / n) for n in files}, indent=2) + "\n")


def load_state_from_checkpoint(path: Path) -> dict:
    """Model weights from a SpeechBrain checkpoint file, loaded without unpickling code."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
