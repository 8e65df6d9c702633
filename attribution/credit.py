"""Run several attribution models on the same paths and stack their credits in one long table."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from attribution._base import AttributionModel
from attribution.heuristics import FirstTouch, LastNonDirectTouch, LastTouch, Linear, PositionBased, TimeDecay
from attribution.markov import MAX_ORDER, MarkovChain
from attribution.paths import PathCounts
from attribution.shapley import Shapley
from cdp.errors import CdpError

__all__ = ["MODEL_NAMES", "ModelSettings", "attribute", "bootstrap_shares", "build_models", "parse_model_names"]

MODEL_NAMES = ("first_touch", "last_touch", "last_non_direct", "linear", "time_decay", "position_based",
               *(f"markov_{k}" for k in range(1, MAX_ORDER + 1)), "shapley")
TABLE_COLUMNS = ["channel", "model", "conversions", "value", "share"]


@dataclass(frozen=True)
class ModelSettings:
    """Hyperparameters of the rule-based models (Markov's order is in its name)."""

    half_life_days: float = 7.0
    direct_channel: str = "direct"
    position_first: float = 0.4
    position_last: float = 0.4


def parse_model_names(text: str) -> tuple[str, ...]:
    """``"all"`` or comma-separated model names, in :data:`MODEL_NAMES` order, without repeats.

    Raises
    ------
    CdpError
        An unknown name; the message lists the valid ones.
    """
    if text.strip().lower() == "all":
        return MODEL_NAMES
    asked = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in asked if n not in MODEL_NAMES]
    if unknown or not asked:
        raise CdpError(f"unknown model name(s) {', '.join(map(repr, unknown)) or '(none given)'} in --models: "
                       f"use all or any of {', '.join(MODEL_NAMES)}")
    return tuple(n for n in MODEL_NAMES if n in asked)


def build_models(names: tuple[str, ...], settings: ModelSettings) -> list[AttributionModel]:
    made: dict[str, Callable[[], AttributionModel]] = {
        "first_touch": FirstTouch, "last_touch": LastTouch, "linear": Linear, "shapley": Shapley,
        "last_non_direct": lambda: LastNonDirectTouch(settings.direct_channel),
        "time_decay": lambda: TimeDecay(settings.half_life_days),
        "position_based": lambda: PositionBased(settings.position_first, settings.position_last),
    }
    for order in range(1, MAX_ORDER + 1):
        made[f"markov_{order}"] = functools.partial(MarkovChain, order)
    return [made[n]() for n in names]


def attribute(paths: PathCounts, names: tuple[str, ...], settings: ModelSettings = ModelSettings()) -> pd.DataFrame:
    """The long table ``channel, model, conversions, value, share``: each model's credited
    conversions and value per channel, and the channel's share of the credited conversions.
    Rows in model order, channels sorted within a model."""
    frames = []
    total = paths.total_conversions
    for model in build_models(names, settings):
        credits = model.fit(paths).credits_.copy()
        credits.insert(1, "model", model.name)
        credits["share"] = credits["conversions"] / total if total > 0 else 0.0
        frames.append(credits)
    return pd.concat(frames, ignore_index=True)[TABLE_COLUMNS]


def bootstrap_shares(paths: PathCounts, names: tuple[str, ...], settings: ModelSettings, resamples: int,
                     seed: int, level: float = 0.95, attributed: pd.DataFrame | None = None) -> pd.DataFrame:
    """Percentile bootstrap intervals of each model's shares: ``channel, model, share_low,
    share_high``. Journeys are resampled with replacement (multinomially over paths, converting
    and non-converting separately), so the totals stay fixed; touch times are not resampled, so
    time-decay on store journeys gets no interval (NaN). ``attributed``: `attribute`'s table
    of ``paths``, when the caller has it already (it is not computed again)."""
    if resamples < 2:
        raise CdpError(f"--bootstrap needs at least 2 resamples, not {resamples}")
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        table = attribute(paths.resampled(rng), names, settings)
        draws.append(table["share"].to_numpy())
    stacked = np.vstack(draws)
    alpha = (1 - level) / 2
    keys = (attributed if attributed is not None else attribute(paths, names, settings))[["channel", "model"]]
    low, high = np.quantile(stacked, alpha, axis=0), np.quantile(stacked, 1 - alpha, axis=0)
    if paths.touch_ages is not None:  # resamples have no touch times: no interval rather than another rule's
        timed = (keys["model"] == "time_decay").to_numpy()
        low[timed], high[timed] = np.nan, np.nan
    return keys.assign(share_low=low, share_high=high)

