"""Augmentation of the dynamic mixing: each stage does what it says, and off changes nothing."""
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from freelunch import augment, data

PACK = data.default_data_root()
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def speech():
    rows = data.pack_layout(PACK)
    return data.load(next(r for r in rows if r["kind"] == "speech")["path"])[: 3 * 16000]


def band_energy_db(x, low, high):
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / 16000)
    return 10 * np.log10(spec[(f >= low) & (f < high)].sum() + 1e-20)


def test_eq_colours_within_its_bounds(speech):
    y = augment.eq(speech, np.random.default_rng(0))
    assert y.shape == speech.shape and not np.allclose(y, speech)
    for low, high in ((100, 300), (1000, 2000), (4000, 6000)):  # at most 3 octaves × 3 dB + 2 bells × 6 dB apart
        assert abs(band_energy_db(y, low, high) - band_energy_db(speech, low, high)) < 21.0


def test_band_limit_leaves_nothing_above_its_cutoff(speech):
    for seed in range(4):
        y = augment.band_limit(speech, np.random.default_rng(seed))
        cut = 4000 if band_energy_db(y, 4600, 7000) < band_energy_db(speech, 4600, 7000) - 40 else 8000
        if cut == 4000:
            assert band_energy_db(y, 500, 3000) == pytest.approx(band_energy_db(speech, 500, 3000), abs=0.5)
        else:
            assert band_energy_db(y, 500, 7000) == pytest.approx(band_energy_db(speech, 500, 7000), abs=0.5)


def test_reverb_keeps_the_direct_path_aligned_and_the_target_drier(speech):
    wet, target = augment.reverb(speech, np.random.default_rng(3))
    assert wet.shape == target.shape == speech.shape
    lags = np.arange(-40, 41)
    corr = [np.dot(np.roll(target, k), speech) for k in lags]
    assert lags[int(np.argmax(corr))] == 0  # the direct path is where the speech is
    late = lambda y: float(np.sum((y - target) ** 2))  # noqa: E731
    assert late(wet) > 0.01 * float(np.sum(target ** 2))  # reverberation beyond 50 ms is in the input only


def test_clip_cuts_the_peak_by_one_to_six_db(speech):
    y = augment.clip(speech, np.random.default_rng(1))
    drop = 20 * np.log10(np.abs(speech).max() / np.abs(y).max())
    assert 1.0 <= drop <= 6.0


def test_off_leaves_the_mixture_as_before_and_on_keeps_the_target_clean_of_clipping(speech):
    rows = data.pack_layout(PACK)
    bank = data.NoiseBank(data.split_rows(rows, "valid")[1][:3])
    plain = data.make_mixture(speech, bank, np.random.default_rng(5))
    off = data.make_mixture(speech, bank, np.random.default_rng(5), augment=augment.Augment())
    np.testing.assert_array_equal(plain["noisy"], off["noisy"])
    on = data.make_mixture(speech, bank, np.random.default_rng(5), augment=augment.Augment(clip_prob=1.0))
    assert np.abs(on["noisy"]).max() < np.abs(on["clean"] + on["noise"]).max()
    limit = np.abs(on["noisy"]).max()  # clipped where the clean mixture went past the limit, equal elsewhere
    np.testing.assert_allclose(np.clip(on["clean"] + on["noise"], -limit, limit), on["noisy"], atol=1e-6)


def test_training_runs_with_every_stage_on(tmp_path):
    cmd = [sys.executable, "recipes/train.py", "hparams/train.yaml", "--device", "cpu", "--debug", "--debug_epochs", "1",
           "--debug_batches", "2", "--output_folder", str(tmp_path / "run"), "--data_root", str(PACK),
           "--crops_per_utterance", "1", "--valid_limit", "2", "--batch_size", "4", "--augment_eq_prob", "1",
           "--augment_band_limit_prob", "1", "--augment_reverb_prob", "1", "--augment_clip_prob", "1",
           "--level_range_db", "[-45.0, -10.0]"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "valid pesq" in (tmp_path / "run" / "train_log.txt").read_text()
