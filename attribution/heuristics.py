"""Rule-based attribution: first touch, last touch, last non-direct, linear, time decay, position based.

Each splits every converting journey's conversion (and its value) over the journey's
touches by a fixed rule; a channel's credit is the sum over its touches. Touches of the
same channel in one path count separately (a path ``fb > email > fb`` gives Facebook
two thirds under the linear rule).
"""

from __future__ import annotations

import numpy as np

from attribution._base import AttributionModel, credits_frame, position_credits
from attribution.paths import PathCounts
from cdp.errors import CdpError

__all__ = ["FirstTouch", "LastNonDirectTouch", "LastTouch", "Linear", "PositionBased", "TimeDecay"]


def _one_hot(paths: PathCounts, position: np.ndarray) -> np.ndarray:
    weights = np.zeros(paths.steps.shape)
    weights[np.arange(paths.n_paths), position] = 1.0
    return weights


class FirstTouch(AttributionModel):
    """All credit to the journey's first touch."""

    name = "first_touch"

    def fit(self, paths: PathCounts) -> FirstTouch:
        self.credits_ = position_credits(paths, _one_hot(paths, np.zeros(paths.n_paths, np.int64)))
        return self


class LastTouch(AttributionModel):
    """All credit to the journey's last touch."""

    name = "last_touch"

    def fit(self, paths: PathCounts) -> LastTouch:
        self.credits_ = position_credits(paths, _one_hot(paths, paths.lengths - 1))
        return self


class LastNonDirectTouch(AttributionModel):
    """All credit to the last touch that is not ``direct_channel``; a journey of direct
    visits only keeps its credit on direct (Google Analytics' classic rule: typing the
    address is how a decided customer comes back, not what decided them).

    Parameters
    ----------
    direct_channel : str, default "direct"
    """

    name = "last_non_direct"

    def __init__(self, direct_channel: str = "direct"):
        self.direct_channel = direct_channel

    def fit(self, paths: PathCounts) -> LastNonDirectTouch:
        position = paths.lengths - 1
        if self.direct_channel in paths.channels:
            direct = paths.channels.index(self.direct_channel)
            columns = np.arange(paths.steps.shape[1])
            eligible = (paths.steps >= 0) & (paths.steps != direct)
            last_eligible = np.where(eligible, columns, -1).max(axis=1)
            position = np.where(last_eligible >= 0, last_eligible, position)
        self.credits_ = position_credits(paths, _one_hot(paths, position))
        return self


class Linear(AttributionModel):
    """Equal credit to every touch."""

    name = "linear"

    def fit(self, paths: PathCounts) -> Linear:
        valid = paths.steps >= 0
        self.credits_ = position_credits(paths, valid / paths.lengths[:, None])
        return self


class PositionBased(AttributionModel):
    """U-shaped: ``first`` to the first touch, ``last`` to the last, the rest shared by the
    touches between. A one-touch journey gives it all credit; a two-touch journey splits
    it in proportion first : last (half each at the default 40/40).

    Parameters
    ----------
    first, last : float, default 0.4
    """

    name = "position_based"

    def __init__(self, first: float = 0.4, last: float = 0.4):
        self.first = first
        self.last = last

    def fit(self, paths: PathCounts) -> PositionBased:
        if min(self.first, self.last) < 0 or self.first + self.last > 1:
            raise CdpError(f"position-based shares first={self.first}, last={self.last} must be >= 0 and sum to <= 1")
        n = paths.lengths[:, None]
        columns = np.arange(paths.steps.shape[1])[None, :]
        middle = (1 - self.first - self.last) / np.maximum(n - 2, 1)
        weights = np.where(columns == 0, self.first, np.where(columns == n - 1, self.last, middle))
        weights = np.where(columns < n, weights, 0.0)
        weights[paths.lengths == 1, 0] = 1.0
        two = paths.lengths == 2
        weights[two, 0] = self.first / (self.first + self.last) if self.first + self.last > 0 else 0.5
        weights[two, 1] = 1 - weights[two, 0]
        self.credits_ = position_credits(paths, weights)
        return self


class TimeDecay(AttributionModel):
    """Credit halves for every ``half_life_days`` a touch lies before the conversion:
    weight ``2 ** (-age / half_life)``, normalized within the journey.

    Journeys read from the store know each touch's age in days. A paths file does not:
    there the age of a touch is the number of touches after it (the last touch has age 0)
    and ``half_life_days`` is read as a half-life in touches.

    Parameters
    ----------
    half_life_days : float, default 7
    """

    name = "time_decay"

    def __init__(self, half_life_days: float = 7.0):
        self.half_life_days = half_life_days

    def fit(self, paths: PathCounts) -> TimeDecay:
        if not self.half_life_days > 0:
            raise CdpError(f"time-decay half-life must be positive, not {self.half_life_days}")
        ages = paths.touch_ages
        if ages is None:
            valid = paths.steps >= 0
            age = (paths.lengths[:, None] - 1 - np.arange(paths.steps.shape[1])[None, :]).astype(np.float64)
            raw = np.where(valid, np.exp2(-np.maximum(age, 0) / self.half_life_days), 0.0)
            self.credits_ = position_credits(paths, raw / raw.sum(axis=1, keepdims=True))
            self.age_unit_ = "touches"
            return self
        # Relative to the journey's newest touch, so a long gap before a conversion cannot underflow to 0/0.
        newest = np.full(int(ages.journey.max(initial=-1)) + 1, np.inf)
        np.minimum.at(newest, ages.journey, ages.age_days)
        raw = np.exp2(-(ages.age_days - newest[ages.journey]) / self.half_life_days)
        share = raw / np.bincount(ages.journey, weights=raw)[ages.journey]
        channel = paths.steps[ages.path, ages.position]
        k = len(paths.channels)
        self.credits_ = credits_frame(paths, np.bincount(channel, weights=share * ages.conversion, minlength=k),
                                      np.bincount(channel, weights=share * ages.value, minlength=k))
        self.age_unit_ = "days"
        return self


