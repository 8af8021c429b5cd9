"""SpeechBrain-style inference interface, working fully offline from a preset folder.

>>> from freelunch.pretrained import FreelunchEnhancer
>>> enhancer = FreelunchEnhancer.from_hparams(source="presets/balanced")  # doctest: +SKIP
>>> enhanced = enhancer.enhance_batch(noisy)                               # doctest: +SKIP
"""
from __future__ import annotations

import tempfile

import torch
from speechbrain.inference.interfaces import Pretrained

from . import presets


class FreelunchEnhancer(Pretrained):
    """The preset's network behind SpeechBrain's ``Pretrained`` API (16 kHz, batched, offline)."""

    MODULES_NEEDED = ["model"]

    @classmethod
    def from_hparams(cls, source, hparams_file="hyperparams.yaml", **kwargs):
        """Load from a preset (a shipped name or a local folder); no hub, no download.

        hyperpyyaml runs whatever a YAML file names, so the preset is verified first, and its own
        ``hyperparams.yaml`` must be the one freelunch writes: a tampered preset is refused before
        any of it is parsed. A different ``hparams_file`` is the caller's own, parsed as given.
        """
        folder = presets.resolve(source)
        presets.verify(folder)
        if hparams_file == "hyperparams.yaml" and (folder / hparams_file).read_text() != presets.HYPERPARAMS:
            raise presets.PresetError(f"preset {folder}: hyperparams.yaml is not the one freelunch writes; "
                                      "refusing to parse it (hyperpyyaml would run what it names)")
        kwargs.setdefault("savedir", tempfile.mkdtemp(prefix="freelunch-sb-"))
        overrides = {**kwargs.pop("overrides", {}), "preset_folder": str(folder)}
        return super().from_hparams(source=str(folder), hparams_file=hparams_file, overrides=overrides, **kwargs)

    def enhance_batch(self, noisy: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, N) 16 kHz noisy audio -> (B, N) enhanced. ``lengths`` is accepted for API parity;
        the network is causal, so padding at the end never changes the valid samples."""
        with torch.no_grad():
            enhanced, _, _ = self.mods.model(noisy.to(self.device))
        return enhanced

    def enhance_file(self, path: str) -> torch.Tensor:
        noisy = self.load_audio(path)  # resampled to the model's 16 kHz by SpeechBrain
        return self.enhance_batch(noisy.unsqueeze(0))[0]
