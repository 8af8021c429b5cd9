"""PropertyTrack: per-frame properties of the audio that went through an enhancer.

One row per 16 ms STFT frame; ``times`` is each frame's centre in seconds. Columns are
numpy arrays that grow while streaming. Columns a preset cannot estimate (a preset without
probes, or the dense preset) are NaN; ``noise_category`` is -1 where there is no category (no
probes, or digital silence, which holds no noise to name).
"""
from __future__ import annotations

import numpy as np

HOP_S = 256 / 16000

FLOAT_COLUMNS = ("vad_prob", "voiced_prob", "f0_hz", "snr_db", "noise_level_db", "usage")
COLUMNS = ("times", "vad", "voiced", "noise_category") + FLOAT_COLUMNS


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

    def __init__(self, category_names: list[str] | None = None, hop_s: float = HOP_S):
        self.category_names = list(category_names or [])
        self.hop_s = hop_s
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
        defaults = {"vad": np.zeros(n, bool), "voiced": np.zeros(n, bool), "noise_category": np.full(n, -1)}
        self._chunks["times"].append(np.asarray(times, np.float64))
        for c in COLUMNS[1:]:
            value = columns.get(c)
            if value is None:
                value = defaults.get(c, np.full(n, np.nan))
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
            values = self.column(name).astype(int)
            label_of = {i: n for i, n in enumerate(self.category_names)}
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
        return [(round(s, 6), round(e, 6), lab) for s, e, lab in out if e - s >= min_duration - 1e-9]

    def to_dict(self) -> dict:
        """Plain lists, ready for JSON."""
        out = {c: self.column(c).tolist() for c in COLUMNS}
        out["noise_category_name"] = self.noise_category_name
        out["category_names"] = self.category_names
        out["hop_s"] = self.hop_s
        return out

    def export(self, path, format: str | None = None, **options) -> None:
        """Write the track as labels or markers; ``format`` defaults from the file extension."""
        from .export import export

        export(self, path, format, **options)
