"""Churn risk in words: the bands that turn a churn probability into low, medium or high.

Below both the scoring service and the marketers' lists, so an app and a list name the same
customer's risk the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cdp.errors import ConfigError

BAND_LABELS = np.array([None, "low", "medium", "high"], dtype=object)


@dataclass(frozen=True)
class ChurnRiskBands:
    """Cut-offs that turn a churn probability into ``low`` / ``medium`` / ``high``.

    ``low`` below ``medium``, ``medium`` from ``medium`` up to (not including) ``high``,
    ``high`` from ``high``. The defaults follow the purchase horizon's base rate in a
    grocery-like shop, where most one-off buyers do not come back within 90 days: half
    or more is worth a look, three in four is a lapsing customer.
    """

    medium: float = 0.5
    high: float = 0.75

    def __post_init__(self) -> None:
        if not (0.0 < self.medium < self.high < 1.0):
            raise ConfigError(f"churn risk bands must satisfy 0 < medium < high < 1, got medium={self.medium}, "
                              f"high={self.high}")

    def codes(self, churn_probability: np.ndarray) -> np.ndarray:
        """`band` of many probabilities as indexes into `BAND_LABELS`: 0 (no score), 1 low,
        2 medium, 3 high."""
        p = np.asarray(churn_probability, dtype=float)
        codes = np.where(p >= self.high, 3, np.where(p >= self.medium, 2, 1))
        return np.where(np.isfinite(p), codes, 0).astype(np.int8)

    def bands(self, churn_probability: np.ndarray) -> np.ndarray:
        """`band` of many probabilities at once (an object array, ``None`` where there is no score)."""
        return BAND_LABELS[self.codes(churn_probability)]

    def band(self, churn_probability: float | None) -> str | None:
        """The risk band of one probability; ``None`` for a customer with no churn score."""
        if churn_probability is None or not math.isfinite(churn_probability):
            return None
        if churn_probability >= self.high:
            return "high"
        return "medium" if churn_probability >= self.medium else "low"
