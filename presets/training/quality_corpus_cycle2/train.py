#!/usr/bin/env python3
"""Train the causal DynCP Conv-FSENet with SE loss + gate-sparsity loss.

    python recipes/train.py hparams/train.yaml --target_usage 0.25 --output_folder results/balanced

The story: prepare manifests for the data (the pack, the corpus or a user's layout), build the dynamic-mixing pipelines, then
fit. Epochs run dense first (gates computed, but every channel kept), then the usage
budget Φ ramps from 1 (or ``usage_ramp_start``) to its target. The checkpoint kept is the
best valid PESQ among those within the budget; an interrupted run resumes from its last
checkpoint. With ``--joint_weight`` above 0, linear heads on the masks add probe losses
(probes.joint).
"""
from __future__ import annotations

import functools
import os
import sys

import numpy as np
import speechbrain as sb
import torch
from torch.nn.parallel import DistributedDataParallel as DDP
from hyperpyyaml import load_hyperpyyaml

from freelunch import data, metrics
from freelunch.augment import Augment
from freelunch.model.losses import liveness_loss, pesq_loss, se_loss, si_sdr_loss, sparsity_loss
from freelunch.model.stft import HOP
from freelunch.probes.cache import cached_clean_targets
from freelunch.probes.joint import JointHeads, crop_targets, frame_targets, joint_loss, silence_span

sys.path.insert(0, os.path.dirname(__file__))
from prepare import prepare  # noqa: E402


class EnhanceBrain(sb.Brain):
    def _wrap_distributed(self):
        """Plain DDP on CPU: SpeechBrain converts BatchNorm to SyncBatchNorm, which has no CPU
        kernel, so there each process keeps its own batch statistics. Unused-parameter search
        is on because the gates get no gradient during the dense warm-up."""
        if not (self.distributed_launch and str(self.device).startswith("cpu")):
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DDP(module, find_unused_parameters=True)

    def compute_forward(self, batch, stage):
        batch = batch.to(self.device)
        noisy, _ = batch.noisy
        return self.modules.model(noisy, force_dense=self.dense_phase)

    def compute_objectives(self, predictions, batch, stage):
        enhanced, enhanced_spec, trace = predictions
        clean, _ = batch.clean
        se = se_loss(enhanced_spec, clean, self.hparams.compression, self.hparams.complex_weight)
        loss = se
        if self.hparams.pesq_weight > 0:
            loss = loss + self.hparams.pesq_weight * pesq_loss(enhanced, clean)
        if self.hparams.si_sdr_weight > 0:
            loss = loss + self.hparams.si_sdr_weight * si_sdr_loss(enhanced, clean)
        if self.hparams.gated and not self.dense_phase:
            loss = loss + self.hparams.sparsity_weight * sparsity_loss(trace.masks, self.phi, self.hparams.usage_scope)
            if self.hparams.liveness_weight > 0:
                loss = loss + self.hparams.liveness_weight * liveness_loss(trace.logits, self.hparams.min_channel_usage)
            if self.hparams.joint_weight > 0 and stage == sb.Stage.TRAIN:
                targets, _ = batch.joint_targets
                heads = self.modules.joint_heads(trace.masks)
                loss = loss + self.hparams.joint_weight * joint_loss(heads, targets, self.hparams.joint_task_weights)
        self.usage.append(trace.usage.mean().item())
        if stage != sb.Stage.TRAIN:
            for est, ref in zip(enhanced.detach().cpu().numpy(), clean.cpu().numpy()):
                self.scores.append(metrics.quality(est, ref))
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.usage, self.scores = [], []
        if epoch is not None:
            warmup, ramp = self.hparams.dense_warmup_epochs, self.hparams.usage_ramp_epochs
            self.dense_phase = self.hparams.gated is False or epoch <= warmup
            progress = min(1.0, max(0.0, (epoch - warmup) / max(ramp, 1)))
            start = self.hparams.usage_ramp_start
            self.phi = start + progress * (self.hparams.target_usage - start)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = {"loss": stage_loss, "usage": float(np.mean(self.usage))}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        for key in ("pesq", "stoi", "si_sdr"):
            stats[key] = float(np.nanmean([s[key] for s in self.scores]))
        # Best = valid PESQ, penalised when usage exceeds the final budget (+ slack), so an
        # early dense checkpoint never wins over a gated one that meets the budget.
        excess = max(0.0, stats["usage"] - self.hparams.target_usage - self.hparams.usage_slack)
        stats["score"] = stats["pesq"] - 10.0 * excess if self.hparams.gated else stats["pesq"]
        if stage == sb.Stage.VALID:
            old_lr, new_lr = self.hparams.lr_annealing(epoch)
            sb.nnet.schedulers.update_learning_rate(self.optimizer, new_lr)
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": old_lr, "phi": round(self.phi, 4), "dense": self.dense_phase},
                train_stats=self.train_stats,
                valid_stats=stats,
            )
            self.checkpointer.save_and_keep_only(
                meta=stats, max_keys=["score"], num_to_keep=self.hparams.average_checkpoints)
        else:
            self.hparams.train_logger.log_stats({"Epoch loaded": self.hparams.epoch_counter.current}, test_stats=stats)


def dataio_prep(hparams):
    """Training items: random crops mixed on the fly. Valid items: whole utterances, fixed by seed.
    Also the training noise's class names, which the joint heads predict."""
    folder = hparams["manifest_folder"]

    def load_split(split):
        speech = data.read_manifest(os.path.join(folder, f"{split}.csv"))
        return speech, data.NoiseBank(data.read_manifest(os.path.join(folder, f"{split}_noise.csv")))

    train_speech, train_bank = load_split("train")
    augment = Augment(hparams["augment_eq_prob"], hparams["augment_band_limit_prob"], hparams["augment_reverb_prob"],
                      hparams["augment_clip_prob"])
    level_range = tuple(hparams["level_range_db"])
    valid_speech, valid_bank = load_split("valid")
    crop_len = int(hparams["crop_seconds"] * data.SAMPLE_RATE)
    rng = np.random.default_rng(torch.initial_seed() % 2**32)
    outputs = ["id", "noisy", "clean"]

    def to_item(m):
        return torch.from_numpy(m["noisy"]), torch.from_numpy(m["clean"])

    @functools.lru_cache(maxsize=None)
    def utterance_targets(utterance, path):
        """vad, voiced and F0 of a whole utterance: the same for every crop, so computed once."""
        return cached_clean_targets(hparams["target_cache"], utterance, path)

    @sb.utils.data_pipeline.takes("utterance", "path")
    @sb.utils.data_pipeline.provides("noisy", "clean", "joint_targets")
    def joint_train_pipeline(utterance, path):
        """As train_pipeline, plus the frame targets of the crop for the joint heads. The crop
        starts on a frame boundary so that the utterance's cached targets slice exactly;
        short utterances are padded with silence (not looped) so their targets stay true.
        Some crops get a span of speech silenced, so that noise alone is seen and labelled."""
        speech = data.load(path)
        speech = np.pad(speech, (0, max(0, crop_len - len(speech))))
        start = data.crop_start(len(speech), crop_len, rng, align=HOP)
        crop = speech[start : start + crop_len]
        if rng.uniform() < hparams["joint_silence_prob"]:
            crop = silence_span(crop, rng.uniform(*hparams["joint_silence_seconds"]), rng)
        m = data.make_mixture(crop, train_bank, rng, None, augment, level_range)
        yield from to_item(m)
        yield frame_targets(crop_targets(utterance_targets(utterance, path), start, crop_len), m, train_bank.names)

    @sb.utils.data_pipeline.takes("path")
    @sb.utils.data_pipeline.provides("noisy", "clean")
    def train_pipeline(path):
        yield from to_item(data.make_mixture(data.load(path), train_bank, rng, crop_len, augment, level_range))

    @sb.utils.data_pipeline.takes("utterance", "draw", "path")
    @sb.utils.data_pipeline.provides("noisy", "clean")
    def valid_pipeline(utterance, draw, path):
        rng_item = data.item_rng(hparams["valid_seed"] + draw, utterance)
        yield from to_item(data.make_mixture(data.load(path), valid_bank, rng_item))

    train_dict = {
        f"{r['id']}#{k}": {"utterance": r["id"], "path": r["path"]}
        for r in train_speech for k in range(hparams["crops_per_utterance"])
    }
    valid_dict = {
        r["id"] if k == 0 else f"{r['id']}#{k}": {"utterance": r["id"], "draw": k, "path": r["path"]}
        for r in data.spread(valid_speech, hparams["valid_limit"]) for k in range(hparams["valid_draws"])
    }
    if hparams["joint_weight"] > 0:
        train = sb.dataio.dataset.DynamicItemDataset(train_dict, [joint_train_pipeline], outputs + ["joint_targets"])
    else:
        train = sb.dataio.dataset.DynamicItemDataset(train_dict, [train_pipeline], outputs)
    valid = sb.dataio.dataset.DynamicItemDataset(valid_dict, [valid_pipeline], outputs)
    return train, valid, train_bank.names


def warm_start(hparams):
    """Start from another run's weights (e.g. a dense warm-up) unless this run has its own checkpoint."""
    path = hparams["warm_start"]
    if path and hparams["checkpointer"].find_checkpoint() is None:
        if path.endswith(".safetensors"):  # a shipped preset's weights
            from safetensors.torch import load_file

            state = load_file(path)
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
        missing, unexpected = hparams["model"].load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith("gates.") for k in missing):
            raise ValueError(f"warm start {path} does not fit this network: missing {missing}, unexpected {unexpected}")


if __name__ == "__main__":
    hparams_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    with open(hparams_file) as fin:
        hparams = load_hyperpyyaml(fin, overrides)
    sb.utils.distributed.ddp_init_group(run_opts)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"], hyperparams_to_save=hparams_file, overrides=overrides
    )
    if not os.path.exists(os.path.join(hparams["manifest_folder"], "valid.csv")):
        roots = hparams["data_root"] if isinstance(hparams["data_root"], list) else [hparams["data_root"]]
        sb.utils.distributed.run_on_main(prepare, args=[hparams["data_layout"], roots, hparams["manifest_folder"]])
    train_set, valid_set, noise_names = dataio_prep(hparams)
    warm_start(hparams)
    modules = dict(hparams["modules"])
    if hparams["joint_weight"] > 0:
        modules["joint_heads"] = JointHeads(len(hparams["model"].blocks) * hparams["hidden"], len(noise_names))
        hparams["checkpointer"].add_recoverable("joint_heads", modules["joint_heads"])
    brain = EnhanceBrain(
        modules=modules, opt_class=hparams["opt_class"], hparams=hparams,
        run_opts=run_opts, checkpointer=hparams["checkpointer"],
    )
    brain.fit(
        brain.hparams.epoch_counter, train_set, valid_set,
        train_loader_kwargs=hparams["train_dataloader_opts"],
        valid_loader_kwargs=hparams["valid_dataloader_opts"],
    )
