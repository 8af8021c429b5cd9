"""PropertyTrack: per-frame properties of the audio that went through an enhancer.

One row per 16 ms STFT frame; ``times`` is each frame's centre in seconds. Columns are
numpy arrays that grow while streaming. Columns a preset cannot estimate (a preset without
probes, or the dense preset) are NaN; ``noise_category`` is -1 where there is no category (no
probes, or digital silence, which holds no noise to name). ``noise_prob`` is the probe's
probability of the class it names: labels show the class only where it reaches
``noise_threshold`` (the preset's, chosen on valid data) and say ``unknown`` elsewhere, so
that a label a user reads is right often enough to act on.
"""
from __future__ import annotations

import numpy as np

HOP_S = 256 / 16000

FLOAT_COLUMNS = ("vad_prob", "voiced_prob", "f0_hz", "snr_db", "noise_level_db", "noise_prob", "usage")
UNKNOWN = "unknown"  # the label of audible noise whose class the probe is not sure of
COLUMNS = ("times", "vad", "voiced", "noise_category") + FLOAT_COLUMNS
FILL = {"vad": False, "voiced": False, "noise_category": -1}  # a column not given; the float ones are NaN


class PropertyTrack:
    """Frame-by-frame properties: ``times``, ``vad``, ``voiced``, ``f0_hz``, ``noise_category``,
    ``snr_db``, ``noise_level_db``, ``usage`` (plus ``vad_prob`` and ``voiced_prob``).

    >>> t = PropertyTrack(["rain", "music"])
    >>> t.extend(times=np.array([0.0, 0.016]), vad=np.array([True, True]))
    >>> t.segments("vad")
    [(0.0, 0.024, 'speech')]
    """

    # A stream appends a few frames per buffer; each small array costs ~100 bytes of header,
    # more than its data. So every COMPACT_EVERY appends, the new chunks are merged into one
    # block; blocks already merged are left alone, so a long stream never recopies its history.
    COMPACT_EVERY = 256

    def __init__(self, category_names: list[str] | None = None, hop_s: float = HOP_S, noise_threshold: float = 0.0):
        self.category_names = list(category_names or [])
        self.hop_s = hop_s
        self.noise_threshold = float(noise_threshold)
        self.duration_s: float | None = None  # the audio's length once known: segments end there
        self._chunks: dict[str, list[np.ndarray]] = {c: [] for c in COLUMNS}
        self._merged = dict.fromkeys(COLUMNS, 0)  # leading chunks of each column that are merged blocks

    def __len__(self) -> int:
        return int(sum(len(a) for a in self._chunks["times"]))

    def extend(self, times: np.ndarray, **columns: np.ndarray) -> None:
        """Append frames; columns not given are filled (False, -1 or NaN)."""
        n = len(times)
        unknown = set(columns) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown property columns {sorted(unknown)}; known: {COLUMNS}")
        self._chunks["times"].append(np.asarray(times, np.float64))
        for c in COLUMNS[1:]:
            value = columns.get(c)
            if value is None:
                value = np.full(n, FILL.get(c, np.nan))
            value = np.asarray(value)
            if len(value) != n:
                raise ValueError(f"column {c} has {len(value)} rows, expected {n}")
            self._chunks[c].append(value)
        for c in COLUMNS:
            chunks, merged = self._chunks[c], self._merged[c]
            if len(chunks) - merged >= self.COMPACT_EVERY:
                chunks[merged:] = [np.concatenate(chunks[merged:])]
                self._merged[c] = merged + 1

    def column(self, name: str) -> np.ndarray:
        if name not in self._chunks:
            raise KeyError(f"no property {name!r}; known: {COLUMNS}")
        chunks = self._chunks[name]
        if not chunks:
            return np.zeros(0, bool if name in ("vad", "voiced") else np.float64)
        if len(chunks) > 1:  # keep one array so repeated reads stay cheap
            self._chunks[name] = [np.concatenate(chunks)]
            self._merged[name] = 1
        return self._chunks[name][0]

    def __getattr__(self, name: str) -> np.ndarray:
        if name.startswith("_") or name not in COLUMNS:
            raise AttributeError(name)
        return self.column(name)

    @property
    def noise_category_name(self) -> list[str]:
        return [self.category_names[i] if 0 <= i < len(self.category_names) else "" for i in self.noise_category]

    def shown_noise(self) -> np.ndarray:
        """Each frame's noise class as labels show it: the class where its probability reaches
        ``noise_threshold``, -2 (unknown) where it does not, -1 where there is none."""
        category = self.column("noise_category").astype(int)
        sure = ~(self.column("noise_prob") < self.noise_threshold)  # NaN (no probability): as the class says
        return np.where((category >= 0) & ~sure, -2, category)

    def snr_over(self, start_s: float, end_s: float) -> float:
        """The SNR (dB) of a stretch, pooled from its frames' SNR and noise level: speech and noise
        energies summed, as the segment SNR is scored. NaN where the preset gives no SNR."""
        times = self.column("times")
        keep = (times >= start_s) & (times < end_s)
        snr, level = self.column("snr_db")[keep], self.column("noise_level_db")[keep]
        ok = ~np.isnan(snr) & ~np.isnan(level)
        if not ok.any():
            return float("nan")
        noise = 10 ** (level[ok] / 10)
        return float(10 * np.log10((noise * 10 ** (snr[ok] / 10)).sum() / noise.sum()))

    def summary(self) -> dict:
        """What a user reads first: duration, speech share, median speech SNR, the dominant noise
        class with its mean probability (``unknown`` below the threshold), mean channel usage."""
        vad, snr, usage = self.column("vad"), self.column("snr_db"), self.column("usage")
        category, prob = self.column("noise_category").astype(int), self.column("noise_prob")
        named = category >= 0
        out = {"duration_s": round(self.duration_s if self.duration_s is not None else len(vad) * self.hop_s, 3),
               "speech_share": round(float(vad.mean()), 3) if len(vad) else 0.0,
               "median_speech_snr_db": None, "noise": None, "noise_confidence": None,
               "mean_usage": None if np.isnan(usage).all() else round(float(np.nanmean(usage)), 3)}
        if (vad & ~np.isnan(snr)).any():
            out["median_speech_snr_db"] = round(float(np.median(snr[vad & ~np.isnan(snr)])), 1)
        if named.any() and self.category_names:
            top = int(np.bincount(category[named]).argmax())
            confidence = float(np.nanmean(prob[category == top])) if not np.isnan(prob[category == top]).all() else 1.0
            out["noise"] = self.category_names[top] if confidence >= self.noise_threshold else UNKNOWN
            out["noise_confidence"] = round(confidence, 3)
        return out

    def segments(self, name: str = "vad", min_duration: float = 0.0, hangover: float = 0.0) -> list[tuple]:
        """Runs of a property as ``(start_s, end_s, label)``; a run spans its frames' hops,
        each centred on the frame's time.

        ``vad``/``voiced``: the runs where it is true, labelled ``speech``/``voiced``; gaps
        shorter than ``hangover`` seconds are bridged. ``noise_category``: runs of the same
        category, labelled by name. Segments shorter than ``min_duration`` are dropped.
        """
        if name in ("vad", "voiced"):
            values = self.column(name).astype(int)
            label_of = {1: "speech" if name == "vad" else "voiced"}
        elif name == "noise_category":
            values = self.shown_noise()
            label_of = {i: n for i, n in enumerate(self.category_names)} | {-2: UNKNOWN}
        else:
            raise ValueError(f"segments() works on vad, voiced or noise_category, not {name!r}")
        times, half = self.column("times"), self.hop_s / 2
        out: list[list] = []
        start = 0
        for i in range(1, len(values) + 1):
            if i == len(values) or values[i] != values[start]:
                label = label_of.get(int(values[start]))
                if label is not None:
                    # A frame stands for the hop around its centre.
                    seg = [max(0.0, float(times[start]) - half), float(times[i - 1]) + half, label]
                    if out and out[-1][2] == label and seg[0] - out[-1][1] < hangover - 1e-9:
                        out[-1][1] = seg[1]
                    else:
                        out.append(seg)
                start = i
        end = float("inf") if self.duration_s is None else self.duration_s
        out = [[s, min(e, end), lab] for s, e, lab in out if s < end]
        return [(round(s, 6), round(e, 6), lab) for s, e, lab in out if e - s >= min_duration - 1e-9]

    def to_dict(self) -> dict:
        """Plain lists, ready for JSON."""
        out = {c: self.column(c).tolist() for c in COLUMNS}
        out["noise_category_name"] = self.noise_category_name
        out["category_names"] = self.category_names
        out["noise_threshold"] = self.noise_threshold
        out["duration_s"] = self.duration_s
        out["hop_s"] = self.hop_s
        return out

    def export(self, path, format: str | None = None, **options) -> None:
        """Write the track as labels or markers; ``format`` defaults from the file extension."""
        from .export import export

        export(self, path, format, **options)
