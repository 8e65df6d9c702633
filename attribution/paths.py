"""Journeys aggregated into distinct channel paths: the one input every attribution model reads.

A *path* is the ordered list of channels a journey touched (``facebook > email > direct``).
Models never look at journeys one by one: journeys with the same path are counted
together (``conversions``, ``value``, ``nulls``), which is exactly the table marketers
export from other tools (``path;total_conversions;total_conversion_value;total_null``),
so a million journeys are a few thousand rows.

Time-decay also needs how long before the conversion each touch happened; journeys read
from the store keep that in :attr:`PathCounts.touch_ages`, one row per touch of a
converting journey. A paths file has no times.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from cdp.errors import SchemaError

__all__ = ["PATH_SEPARATOR", "PathCounts", "TouchAges"]

PATH_SEPARATOR = " > "


@dataclass(frozen=True)
class TouchAges:
    """Touches of converting journeys with their age: how long before the conversion they happened.

    Parallel arrays, one entry per touch: ``path`` (row of :class:`PathCounts`),
    ``position`` (0 = first touch of the path), ``age_days`` (>= 0), and the journey's
    ``conversion`` (1) and ``value``; ``journey`` numbers the journeys (touches of one
    journey are contiguous).
    """

    journey: np.ndarray
    path: np.ndarray
    position: np.ndarray
    age_days: np.ndarray
    conversion: np.ndarray
    value: np.ndarray


@dataclass(frozen=True)
class PathCounts:
    """Distinct channel paths with their conversions, conversion value and non-conversions.

    Attributes
    ----------
    channels : tuple of str
        The channel names, sorted; ``steps`` holds indexes into it.
    steps : ndarray of int32, shape (n_paths, max_length)
        Each row one path, left-aligned, padded with -1.
    lengths : ndarray of int64
        Touches per path (>= 1).
    conversions, value, nulls : ndarray of float64
        Journeys of this path that converted, the value they converted, and journeys that
        did not convert.
    touch_ages : TouchAges or None
        Touch times of the converting journeys, when known (store input only).
    """

    channels: tuple[str, ...]
    steps: np.ndarray
    lengths: np.ndarray
    conversions: np.ndarray
    value: np.ndarray
    nulls: np.ndarray
    touch_ages: TouchAges | None = None

    @classmethod
    def from_paths(cls, paths: Sequence[Sequence[str]], conversions: Sequence[float], value: Sequence[float],
                   nulls: Sequence[float], touch_ages: TouchAges | None = None) -> PathCounts:
        """Build from channel lists; identical paths are summed (first occurrence keeps its row).

        Raises
        ------
        SchemaError
            An empty path, a negative or non-finite count, or no journeys at all.
        """
        counts = {name: np.asarray(given, dtype=np.float64)
                  for name, given in (("conversions", conversions), ("value", value), ("nulls", nulls))}
        if not (len(paths) == len(counts["conversions"]) == len(counts["value"]) == len(counts["nulls"])):
            raise SchemaError("paths, conversions, value and nulls must have the same length")
        for name, array in counts.items():
            if not np.all(np.isfinite(array)) or np.any(array < 0):
                raise SchemaError(f"{name} must be finite and non-negative")
        if any(len(p) == 0 for p in paths):
            raise SchemaError("a path has no touches")
        channels = tuple(sorted({c for p in paths for c in p}))
        code = {c: i for i, c in enumerate(channels)}
        keys: dict[tuple[int, ...], int] = {}
        row_of = np.empty(len(paths), dtype=np.int64)
        for i, p in enumerate(paths):
            row_of[i] = keys.setdefault(tuple(code[c] for c in p), len(keys))
        n = len(keys)
        conversions_, value_, nulls_ = (np.bincount(row_of, weights=a, minlength=n) for a in counts.values())
        return cls._from_codes(channels, list(keys), conversions_, value_, nulls_, touch_ages=touch_ages)

    @classmethod
    def _from_codes(cls, channels: tuple[str, ...], coded: list[tuple[int, ...]], conversions: np.ndarray,
                    value: np.ndarray, nulls: np.ndarray, touch_ages: TouchAges | None = None) -> PathCounts:
        lengths = np.array([len(p) for p in coded], dtype=np.int64)
        steps = np.full((len(coded), int(lengths.max(initial=1))), -1, dtype=np.int32)
        for i, p in enumerate(coded):
            steps[i, :len(p)] = p
        paths = cls(channels, steps, lengths, conversions, value, nulls, touch_ages)
        if paths.total_conversions + paths.total_nulls <= 0:
            raise SchemaError("no journeys to attribute: every path has zero conversions and zero nulls")
        return paths

    @property
    def n_paths(self) -> int:
        return len(self.lengths)

    @property
    def total_conversions(self) -> float:
        return math.fsum(self.conversions)

    @property
    def total_value(self) -> float:
        return math.fsum(self.value)

    @property
    def total_nulls(self) -> float:
        return math.fsum(self.nulls)

    def path_strings(self) -> list[str]:
        """Each path written ``a > b > c``."""
        return [PATH_SEPARATOR.join(self.channels[c] for c in row[:n]) for row, n in zip(self.steps, self.lengths)]

    def to_frame(self) -> pd.DataFrame:
        """``path, total_conversions, total_conversion_value, total_null``: the paths-file table."""
        return pd.DataFrame({"path": self.path_strings(), "total_conversions": self.conversions,
                             "total_conversion_value": self.value, "total_null": self.nulls})

    def channel_sets(self) -> np.ndarray:
        """Bitmask (int64) of the distinct channels each path touched."""
        if len(self.channels) > 62:
            raise SchemaError(f"{len(self.channels)} channels: at most 62 are supported")
        bits = np.where(self.steps >= 0, np.left_shift(np.int64(1), np.maximum(self.steps, 0).astype(np.int64)), 0)
        return np.bitwise_or.reduce(bits, axis=1)

    def resampled(self, rng: np.random.Generator) -> PathCounts:
        """A bootstrap resample of the journeys: each path's converting and non-converting
        journeys drawn again (multinomially) from the observed ones; value scales with the
        path's mean conversion value. Touch ages are dropped (time-decay falls back to steps)."""
        n_conv = int(round(self.total_conversions))
        n_null = int(round(self.total_nulls))
        total = self.total_conversions
        conversions = (rng.multinomial(n_conv, self.conversions / total) if total > 0
                       else np.zeros(self.n_paths)).astype(np.float64)
        nulls = (rng.multinomial(n_null, self.nulls / self.total_nulls) if self.total_nulls > 0
                 else np.zeros(self.n_paths)).astype(np.float64)
        mean_value = np.divide(self.value, self.conversions, out=np.zeros(self.n_paths), where=self.conversions > 0)
        return PathCounts(self.channels, self.steps, self.lengths, conversions, conversions * mean_value, nulls)
