"""Training losses: the SE loss of Conv-FSENet, the DynCP gate-sparsity and liveness losses, and the optional PESQ and SI-SDR terms."""
from __future__ import annotations

import functools

import torch

from . import stft as S


def active_level(clean: torch.Tensor, threshold_db: float = -40.0) -> torch.Tensor:
    """RMS of the clean speech over its active 16 ms frames, (B, 1).

    A frame is active when its energy is within ``threshold_db`` of the loudest frame, so
    leading and trailing silence do not dilute the level.
    """
    frames = clean.unfold(-1, S.HOP, S.HOP)  # (B, T, 256)
    energy = frames.pow(2).mean(-1)  # (B, T)
    active = energy >= energy.amax(-1, keepdim=True) * 10 ** (threshold_db / 10)
    level = (energy * active).sum(-1) / active.sum(-1).clamp(min=1)
    return level.clamp(min=1e-10).sqrt().unsqueeze(-1)


def se_loss(
    enhanced_spec: torch.Tensor, clean: torch.Tensor, power: float = 0.3, complex_weight: float = 0.3
) -> torch.Tensor:
    """Power-compressed complex + magnitude MSE, normalised by the active speech level.

    Both spectra are divided by the clean speech's active level first, so the loss does not
    depend on the mixture's gain: ``w * MSE(|S|^p e^{jS}, |Y|^p e^{jY}) + (1-w) * MSE(|S|^p, |Y|^p)``.
    """
    level = active_level(clean).unsqueeze(-1)  # (B, 1, 1)
    target = S.stft(clean) / level
    estimate = enhanced_spec / level
    t_mag, e_mag = S.compress(target, power), S.compress(estimate, power)
    t_c = t_mag * torch.exp(1j * target.angle())
    e_c = e_mag * torch.exp(1j * estimate.angle())
    complex_term = (t_c - e_c).abs().pow(2).mean()
    magnitude_term = (t_mag - e_mag).pow(2).mean()
    return complex_weight * complex_term + (1 - complex_weight) * magnitude_term


@functools.cache
def _pesq_model(device: str) -> torch.nn.Module:
    try:
        from torch_pesq import PesqLoss
    except ImportError as err:  # the recipe's extra, not the plugin's
        raise ImportError("pesq_weight > 0 needs torch-pesq: pip install 'freelunch[train]'") from err
    return PesqLoss(1.0, sample_rate=S.SAMPLE_RATE).to(device)


def pesq_loss(enhanced: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """A differentiable PESQ disturbance (torch-pesq, ITU P.862 without time alignment), mean
    over the batch: 0.1 d_sym + 0.0309 d_asym, the raw MOS's distance below 4.5.

    The spectral loss above weighs every bin alike, and at the end of training ``dense`` and
    ``balanced`` had the same losses but PESQ-WB 0.1 apart. This term sees what PESQ sees:
    loudness on a Bark scale, and added noise weighted more than removed speech. On 40 valid
    mixtures (noisy and enhanced) its MOS follows PESQ-WB with a Pearson r of 0.9995.
    ``enhanced``, ``clean``: (B, samples); ``clean`` must not be silent (PESQ levels by it).
    """
    return _pesq_model(str(enhanced.device))(clean, enhanced).mean().to(enhanced.dtype)


def si_sdr_loss(enhanced: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """Negative scale-invariant SDR in dB, mean over the batch.

    PESQ forgives a fixed filter (it equalises the long-term band levels before comparing),
    so the PESQ term alone thinned 100–300 Hz by 4–10 dB. SI-SDR pins the waveform, and
    with it the spectral balance. ``enhanced``, ``clean``: (B, samples).
    """
    scale = (enhanced * clean).sum(-1, keepdim=True) / clean.pow(2).sum(-1, keepdim=True).clamp(min=1e-10)
    target = scale * clean
    ratio = target.pow(2).sum(-1) / (enhanced - target).pow(2).sum(-1).clamp(min=1e-10)
    return -10 * torch.log10(ratio.clamp(min=1e-10)).mean()


def sparsity_loss(masks: torch.Tensor, target_usage: float, scope: str = "block") -> torch.Tensor:
    """L_DCP: usage pulled to Φ, over batch and frames so that frames stay free to differ
    (that is what makes the pruning dynamic).

    ``scope="block"``: mean over blocks of (u_b - Φ)², so no block can spend the budget of
    the others. ``scope="network"``: (mean_b u_b - Φ)², the same compute (every block costs
    the same MACs) but the network chooses which blocks get it.

    Why a square: a one-sided hinge max(0, u_b - Φ)² was tried first, and at Φ = 0.25 usage
    drifted down to 0.195 by epoch 29, because the straight-through gradient of the SE loss
    alone barely defends channels, so quality was given away for nothing. The two-sided
    square holds usage at its budget. ``masks``: (B, blocks, hidden, T), binary in the
    forward pass with straight-through gradients.
    """
    usage = masks.mean(dim=(0, 2, 3))  # (blocks,)
    if scope == "network":
        return (usage.mean() - target_usage).pow(2)
    if scope != "block":
        raise ValueError(f"usage scope must be 'block' or 'network', got {scope!r}")
    return (usage - target_usage).pow(2).mean()


def liveness_loss(logits: torch.Tensor, min_usage: float) -> torch.Tensor:
    """Every hidden channel should be computed on at least ``min_usage`` of the frames.

    Without it the gates prune statically: in the epoch-81 ``balanced`` network, 43 % of the
    channels are never computed on valid audio, and block 0 keeps the same 64 channels for
    every frame. A never-computed channel gets no SE gradient, and its gate's surrogate
    gradient vanishes far below the step, so it can never come back. This loss reads each
    channel's logit at its ``1 - min_usage`` quantile over batch and frames, the logit it
    must lift above 0 to be on that often, and penalises how far it stays below: linear in
    the logit, so a dead channel gets the full gradient however deep it sits. At weight 0.1
    it revived every channel but cost valid PESQ (docs/training.md), so it is off by default.
    ``logits``: (B, blocks, hidden, T).
    """
    if not 0.0 < min_usage < 1.0:
        raise ValueError(f"min_usage must be in (0, 1), got {min_usage}")
    per_channel = logits.transpose(0, 2).reshape(logits.shape[2] * logits.shape[1], -1)  # (hidden*blocks, B*T)
    frames = per_channel.shape[1]
    quantile = per_channel.kthvalue(frames - max(1, round(min_usage * frames)) + 1, dim=1).values  # the n-th largest
    return torch.relu(-quantile).mean()
