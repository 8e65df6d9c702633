"""What every attribution model shares: the estimator contract and turning weights into credits."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import pandas as pd

from attribution.paths import PathCounts
from cdp.errors import CdpError

__all__ = ["AttributionModel", "NotFittedError", "credits_frame", "position_credits"]


class NotFittedError(CdpError, ValueError):
    """``credits_`` was asked of a model before ``fit``."""


class AttributionModel(ABC):
    """Base of the attribution models (scikit-learn's estimator contract, without X/y).

    ``__init__`` only stores hyperparameters; ``fit(paths)`` learns ``credits_``: a frame
    ``channel, conversions, value`` (one row per channel of ``paths``, in its order) whose
    columns sum to the paths' total conversions and total value, up to float rounding.
    """

    name: str = ""  # in outputs: ``first_touch``, ``markov_2`` …
    credits_: pd.DataFrame  # learned by fit

    @abstractmethod
    def fit(self, paths: PathCounts) -> AttributionModel:
        """Learn ``credits_`` from ``paths`` and return ``self``."""

    def get_params(self) -> dict:
        """The hyperparameters given to ``__init__`` (learned attributes end in ``_``)."""
        return {k: v for k, v in vars(self).items() if not k.endswith("_")}

    @property
    def credits(self) -> pd.DataFrame:
        if not hasattr(self, "credits_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(paths) first")
        return self.credits_


def credits_frame(paths: PathCounts, conversions: np.ndarray, value: np.ndarray) -> pd.DataFrame:
    """The ``channel, conversions, value`` frame of per-channel credit arrays."""
    return pd.DataFrame({"channel": list(paths.channels), "conversions": np.asarray(conversions, np.float64),
                         "value": np.asarray(value, np.float64)})


def position_credits(paths: PathCounts, weights: np.ndarray) -> pd.DataFrame:
    """Credits from per-touch weights: ``weights`` has the shape of ``paths.steps`` and each
    row sums to 1 over the path's touches; a touch gets that share of its path's
    conversions and value, and a channel the sum over its touches."""
    valid = paths.steps >= 0
    channel = paths.steps[valid]
    k = len(paths.channels)
    conv = np.bincount(channel, weights=(weights * paths.conversions[:, None])[valid], minlength=k)
    value = np.bincount(channel, weights=(weights * paths.value[:, None])[valid], minlength=k)
    return credits_frame(paths, conv, value)
