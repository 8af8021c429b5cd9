"""The fixed evaluation sets: the same audio for every run and every system, by seed.

- **The pack** (``../shared/data``): every valid or test utterance once, mixed with a random
  noise of its split (``data.fixed_mixtures``): the 120 test mixtures of every figure so far.
- **The corpus** (its manifests carry a noise ``group``): ``MIXTURES[split]`` mixtures of 5-12 s,
  each noise class equally often, SNR uniform in [-5, 20] dB, speakers taken in turn from
  every (source, child/adult, gender) cell, each mixture one speaker's utterances joined by
  short pauses; and ``NOISE_ONLY_PER_CLASS`` clips of each class's noise alone, where any
  speech found is a false alarm.

Each item is ``(item_id, mixture, clean_targets)``: ``mixture`` as ``data.mix`` makes it,
with its ``category`` (the noise class), ``kind`` ("speech" or "noise_only"), ``source``,
``age`` and ``speaker``.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterator

import numpy as np

from . import data
from .probes.cache import cached_clean_targets
from .probes.targets import no_speech
from .model.framing import n_frames
from .taxonomy import noise_class

MIXTURES = {"valid": 200, "test": 400}
NOISE_ONLY_PER_CLASS = 20
SECONDS = (5.0, 12.0)
PAUSE_SECONDS = (0.2, 0.8)  # between one speaker's utterances
NOISE_ONLY_LEVEL_DB = (-50.0, -15.0)  # RMS of a noise-only clip: a quiet room to a loud street
CHILD_AGE = 13
SEED = 31031


def is_corpus(rows: list[dict]) -> bool:
    """The corpus's manifests give every noise file a group; the pack's do not."""
    return any(r.get("group") for r in rows if r["kind"] == "noise")


def age_group(age: str) -> str:
    """"child" under CHILD_AGE, "adult" from it, "" where the manifest gives no age."""
    return "" if not age else "child" if float(age) < CHILD_AGE else "adult"


def _cells(speech: list[dict]) -> list[list[list[dict]]]:
    """Speakers' utterances, per (source, child/adult, gender) cell, in a fixed order."""
    cells = defaultdict(lambda: defaultdict(list))
    for r in speech:
        cells[(r.get("source", ""), age_group(r.get("age", "")), r.get("gender", ""))][r.get("speaker") or r["id"]].append(r)
    return [list(cells[key].values()) for key in sorted(cells)]


def _joined(utterances: list[dict], seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """One speaker's utterances, from a random one on, with pauses between, cut to ``seconds``."""
    length, parts, used = int(seconds * data.SAMPLE_RATE), [], []
    k = int(rng.integers(len(utterances)))
    while sum(map(len, parts)) < length and len(used) < 4 * len(utterances):
        r = utterances[k % len(utterances)]
        x = data.load(r["path"])
        parts += [x - x.mean(), np.zeros(int(rng.uniform(*PAUSE_SECONDS) * data.SAMPLE_RATE), np.float32)]
        used.append(r["id"])
        k += 1
    return np.concatenate(parts)[:length].astype(np.float32), used


def corpus_items(rows: list[dict], split: str, count: int | None = None, seed: int = SEED,
                 target_cache: str | None = None) -> Iterator[tuple[str, dict, dict]]:
    """The corpus set of a split: its speech mixtures, then its noise-only clips."""
    speech, noise = data.split_rows(rows, split)
    by_class = defaultdict(list)
    for r in noise:
        by_class[noise_class(r)].append(r)
    classes = sorted(by_class)
    cells = _cells(speech)
    rng = np.random.default_rng([seed, data.SPLITS.index(split)])
    for cell in cells:
        rng.shuffle(cell)
    cache: dict[str, np.ndarray] = {}

    def noise_audio(row):
        if row["path"] not in cache:
            cache[row["path"]] = data.load(row["path"])
        return cache[row["path"]]

    count = MIXTURES[split] if count is None else count
    for k in range(count):
        cell = cells[k % len(cells)]
        speaker = cell[(k // len(cells)) % len(cell)]
        item_rng = np.random.default_rng([seed, data.SPLITS.index(split), k])
        clean, used = _joined(speaker, item_rng.uniform(*SECONDS), item_rng)
        files = by_class[classes[k % len(classes)]]
        row = files[int(item_rng.integers(len(files)))]
        m = data.mix(clean, data.crop(noise_audio(row), len(clean), item_rng), item_rng.uniform(*data.SNR_RANGE_DB),
                     item_rng.uniform(*data.LEVEL_RANGE_DB))
        first = speaker[0]
        m.update(category=noise_class(row), noise_file=row["id"], kind="speech", utterances=used,
                 source=first.get("source", ""), age=first.get("age", ""), speaker=first.get("speaker", ""))
        item_id = f"corpus{seed}-{split}-{k:03d}"
        yield item_id, m, cached_clean_targets(target_cache, item_id, audio=m["clean"])
    for c, name in enumerate(classes):
        for k in range(NOISE_ONLY_PER_CLASS):
            item_rng = np.random.default_rng([seed, data.SPLITS.index(split), 1000 + c, k])
            row = by_class[name][k % len(by_class[name])]
            x = data.crop(noise_audio(row), int(item_rng.uniform(*SECONDS) * data.SAMPLE_RATE), item_rng)
            x = (x * (10 ** (item_rng.uniform(*NOISE_ONLY_LEVEL_DB) / 20) / data.rms(x))).astype(np.float32)
            silence = np.zeros_like(x)
            m = dict(noisy=x, clean=silence, noise=x, snr_db=float("nan"), category=name, noise_file=row["id"],
                     kind="noise_only", source="", age="", speaker="")
            yield f"corpus{seed}-{split}-noise-{name}-{k:02d}", m, no_speech(n_frames(len(x)))


def pack_items(rows: list[dict], split: str, limit: int | None = None,
               target_cache: str | None = None) -> Iterator[tuple[str, dict, dict]]:
    """The pack's set of a split: every utterance once, with a noise of its split."""
    by_id = {r["id"]: r for r in rows}
    for item_id, m in data.fixed_mixtures(rows, split, limit=limit):
        r = by_id[item_id]
        m.update(kind="speech", source=r.get("source", ""), age=r.get("age", ""), speaker=r.get("speaker", ""))
        yield item_id, m, cached_clean_targets(target_cache, item_id, r.get("clean", r["path"]))


def evaluation_items(rows: list[dict], split: str, limit: int | None = None,
                     target_cache: str | None = None) -> Iterator[tuple[str, dict, dict]]:
    """The fixed set of a split for these rows: the corpus's, or the pack's. ``limit`` caps the
    speech mixtures (and, on the corpus, the noise-only clips per class at limit // 10)."""
    if not is_corpus(rows):
        yield from pack_items(rows, split, limit, target_cache)
        return
    items = corpus_items(rows, split, limit, target_cache=target_cache)
    per_class = NOISE_ONLY_PER_CLASS if limit is None else max(1, limit // 10)
    seen = defaultdict(int)
    for item_id, m, targets in items:
        if m["kind"] == "noise_only":
            seen[m["category"]] += 1
            if seen[m["category"]] > per_class:
                continue
        yield item_id, m, targets
