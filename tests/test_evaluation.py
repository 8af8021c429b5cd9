"""The evaluation: noise classes, the fixed corpus sets, the pitch and SNR scores a label reads,
DNSMOS and the no-network noise baseline."""
import numpy as np
import pytest

from freelunch import data, evalsets, metrics
from freelunch.peers import LogMelNoiseClassifier, log_mel_frames
from freelunch.probes import scoring
from freelunch.probes.targets import AUDIBLE_DB, mixture_targets
from freelunch.taxonomy import NOISE_CLASSES, noise_class

from conftest import make_corpus

PACK = data.default_data_root()
NOISE = (("animals", "dog"), ("babble", "babble"), ("nature", "rain"), ("exterior", "siren"))


def test_every_pack_category_has_a_class_and_a_users_own_category_stays():
    pack = {r["category"] for r in data.pack_layout(PACK) if r["kind"] == "noise"}
    assert len(pack) == 13 and {noise_class({"category": c}) for c in pack} <= set(NOISE_CLASSES.values())
    assert set(NOISE_CLASSES.values()) == {"stationary", "babble", "music", "impulsive", "tonal"}
    assert noise_class({"category": "dishwasher"}) == "dishwasher"
    assert noise_class({"category": "siren", "group": "exterior"}) == "tonal"


def test_the_corpus_set_is_balanced_fixed_and_spread(tmp_path):
    rows = data.pack_layout(make_corpus(tmp_path / "c", noise=NOISE))
    assert evalsets.is_corpus(rows) and not evalsets.is_corpus(data.pack_layout(PACK))
    cache = str(tmp_path / "cache")
    items = list(evalsets.corpus_items(rows, "train", count=8, target_cache=cache))
    speech = [m for _, m, _ in items if m["kind"] == "speech"]
    noise_only = [m for _, m, _ in items if m["kind"] == "noise_only"]
    assert len(speech) == 8 and len(noise_only) == 4 * evalsets.NOISE_ONLY_PER_CLASS
    classes = [m["category"] for m in speech]
    assert sorted(set(classes)) == ["babble", "impulsive", "stationary", "tonal"] and all(classes.count(c) == 2 for c in set(classes))
    assert all(5.0 <= len(m["clean"]) / 16000 <= 12.0 for m in speech)
    assert all(-5.0 <= m["snr_db"] <= 20.0 for m in speech)
    # the train split holds children (8, 9, 12) and adults (13): both cells, F and M, are used
    assert {(float(m["age"]) < 13, m["speaker"]) for m in speech} >= {(True, "SPEAKER0000"), (True, "SPEAKER0001"),
                                                                      (False, "SPEAKER0005")}
    again = list(evalsets.corpus_items(rows, "train", count=8, target_cache=cache))
    for (a, ma, _), (b, mb, _) in zip(items, again):
        assert a == b
        np.testing.assert_array_equal(ma["noisy"], mb["noisy"])
    clip_targets = next(t for _, m, t in items if m["kind"] == "noise_only")
    assert not clip_targets["vad"].any() and np.isnan(clip_targets["f0_hz"]).all()


def test_the_pack_set_is_the_120_test_mixtures():
    rows = data.pack_layout(PACK)
    ids = [i for i, _ in data.fixed_mixtures(rows, "test")]
    assert len(ids) == 120
    first = next(evalsets.evaluation_items(rows, "test", limit=1))
    np.testing.assert_array_equal(first[1]["noisy"], next(data.fixed_mixtures(rows, "test", limit=1))[1]["noisy"])


def test_noise_class_target_only_where_the_noise_is_audible():
    noise = np.concatenate([np.full(8000, 1e-4), 0.01 * np.random.default_rng(0).standard_normal(8000)]).astype(np.float32)
    silence = np.zeros_like(noise)
    t = mixture_targets(dict(clean=silence, noise=noise, category="tonal"), ["babble", "tonal"],
                        {"vad": np.zeros(64, bool), "voiced": np.zeros(64, bool), "f0_hz": np.full(64, np.nan)})
    quiet = 10 * np.log10(1e-8) < AUDIBLE_DB  # -80 dBFS
    assert quiet and (t["noise_category"][5:25] == -1).all() and (t["noise_category"][40:60] == 1).all()


def test_pitch_metrics_on_known_answers():
    truth = np.array([100, 100, 100, 100, np.nan, np.nan, 200, 200])
    said = np.array([101, 130, np.nan, 100, 150, np.nan, 200 * 2 ** (60 / 1200), 199])
    s = scoring.pitch(truth, said)
    # voiced in the reference: 6 frames; within 50 cents: 101, 100, 199 (60 cents is out)
    assert s["rpa"] == pytest.approx(3 / 6) and s["voiced_frames"] == 6
    assert s["gpe"] == pytest.approx(1 / 5)  # of 5 both-voiced frames, 130 is 30 % off
    assert s["vde"] == pytest.approx(2 / 8)  # one missed voiced frame, one false voiced frame


def test_segment_and_utterance_snr_pool_energies():
    level = np.full(124, -30.0)
    assert scoring.pooled_snr_db(np.full(10, 6.0), level[:10]) == pytest.approx(6.0, abs=1e-6)
    # half the frames at 20 dB and half at 0 dB: energies pooled, not dB averaged (10 dB)
    mixed = scoring.pooled_snr_db(np.r_[np.full(5, 20.0), np.full(5, 0.0)], level[:10])
    assert mixed == pytest.approx(10 * np.log10((100 / 101 + 0.5) / (1 / 101 + 0.5)), abs=1e-4)
    speech_energy, noise_energy = np.full(124, 1e-3), np.full(124, 1e-4)
    speech = np.r_[np.ones(62, bool), np.zeros(62, bool)]
    truth, said = scoring.segment_snr(speech_energy, noise_energy, np.full(124, 7.0), level, speech)
    assert truth.tolist() == [pytest.approx(10.0)] and said.tolist() == [pytest.approx(7.0)]


def test_per_mixture_majority_and_confusion():
    truth = [np.array([0, 0, 0, -1]), np.array([1, 1, 1, 1]), np.array([-1, -1])]
    said = [np.array([1, 0, 0, 1]), np.array([0, 0, 1, -1]), np.array([0, 0])]
    s = scoring.per_mixture_classes(truth, said, 2)
    assert s["mixtures"] == 2 and s["accuracy"] == pytest.approx(0.5)  # mixture 0 right, mixture 1 said 0
    table = scoring.confusion(np.concatenate(truth), np.concatenate(said), ["a", "b"])
    assert table == {"a": {"a": 2, "b": 1, "none": 0}, "b": {"a": 2, "b": 1, "none": 1}}


def test_dnsmos_scores_clean_speech_above_the_same_speech_in_noise():
    rows = data.pack_layout(PACK)
    _, m = next(data.fixed_mixtures(rows, "test", limit=1))
    noisy = data.mix(m["clean"], np.random.default_rng(0).standard_normal(len(m["clean"])), -5.0, -25.0)["noisy"]
    clean, loud = metrics.dnsmos(m["clean"]), metrics.dnsmos(noisy)
    assert set(clean) == {"sig", "bak", "ovrl"} and all(1.0 <= v <= 5.0 for v in clean.values())
    assert clean["ovrl"] > loud["ovrl"] + 0.5 and clean["bak"] > loud["bak"] + 0.5


def test_log_mel_baseline_puts_a_tone_in_its_band_and_learns_two_noises():
    t = np.arange(16000) / 16000
    mel = log_mel_frames((0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    assert mel.shape == (64, 40) and 13 <= mel[10:50].mean(0).argmax() <= 17  # 1 kHz sits in band ~15 of 40
    rng = np.random.default_rng(0)
    hiss = lambda: (0.05 * rng.standard_normal(16000 * 3)).astype(np.float32)  # noqa: E731
    hum = lambda: (0.05 * np.sin(2 * np.pi * 120 * np.arange(48000) / 16000 + rng.uniform(0, 6))).astype(np.float32)  # noqa: E731
    clips = [(hiss(), 0) for _ in range(4)] + [(hum(), 1) for _ in range(4)]
    windows = [LogMelNoiseClassifier.features(x) for x, _ in clips]
    model = LogMelNoiseClassifier.fit(np.concatenate(windows), np.concatenate([[y] * len(w) for (_, y), w in zip(clips, windows)]),
                                      ["hiss", "hum"])
    said = model.noise_category(hum())
    assert said.shape == (189,) and (said == 1).all() and (model.noise_category(hiss()) == 0).all()
