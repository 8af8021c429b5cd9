"""Speech quality metrics on 16 kHz signals: PESQ-WB, STOI and SI-SDR against the clean
speech, and DNSMOS P.835, which needs no reference."""
from __future__ import annotations

import numpy as np

from .data import SAMPLE_RATE


def si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Scale-invariant SDR in dB (zero-mean signals)."""
    est = estimate.astype(np.float64) - estimate.mean()
    ref = reference.astype(np.float64) - reference.mean()
    target = ref * (est @ ref) / (ref @ ref + 1e-20)
    return float(10 * np.log10((target @ target + 1e-20) / ((est - target) @ (est - target) + 1e-20)))


def pesq_wb(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Wide-band PESQ (ITU-T P.862.2); NaN when the reference holds no utterance."""
    from pesq import NoUtterancesError, pesq

    try:
        return float(pesq(SAMPLE_RATE, reference.astype(np.float64), estimate.astype(np.float64), "wb"))
    except NoUtterancesError:
        return float("nan")


def stoi(estimate: np.ndarray, reference: np.ndarray) -> float:
    from pystoi import stoi as _stoi

    return float(_stoi(reference, estimate, SAMPLE_RATE, extended=False))


def quality(estimate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    return {"pesq": pesq_wb(estimate, reference), "stoi": stoi(estimate, reference), "si_sdr": si_sdr(estimate, reference)}


def quality_and_dnsmos(estimate: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """PESQ-WB, STOI, SI-SDR and DNSMOS of one estimate."""
    return {**quality(estimate, reference), **dnsmos(estimate)}


def dnsmos(audio: np.ndarray) -> dict[str, float]:
    """DNSMOS P.835 (``speechmos``, its packaged ONNX models): SIG, BAK and OVRL, 1-5."""
    from speechmos import dnsmos as _dnsmos

    peak = float(np.abs(audio).max()) if len(audio) else 0.0
    x = audio.astype(np.float32) / max(1.0, peak)  # the model refuses samples outside [-1, 1]
    scores = _dnsmos.run(x, SAMPLE_RATE)
    return {"sig": float(scores["sig_mos"]), "bak": float(scores["bak_mos"]), "ovrl": float(scores["ovrl_mos"])}
