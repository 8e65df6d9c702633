"""Multi-touch attribution: journeys from the unified store (or a marketer's paths file),
credited to channels by rule-based, Markov-chain and Shapley models.

Journeys (:mod:`attribution.journeys`) are aggregated into distinct paths
(:class:`PathCounts`); every model is an estimator whose ``fit(paths)`` learns
``credits_`` (``channel, conversions, value``) summing to the paths' totals.
"""

from attribution.credit import MODEL_NAMES, ModelSettings, attribute, bootstrap_shares, parse_model_names
from attribution.heuristics import FirstTouch, LastNonDirectTouch, LastTouch, Linear, PositionBased, TimeDecay
from attribution.journeys import JourneySettings, StoreJourneys, journeys_from_tables, journeys_from_touches
from attribution.markov import MarkovChain
from attribution.paths import PathCounts
from attribution.paths_file import read_paths_file, write_paths_file
from attribution.shapley import Shapley

__all__ = [
    "MODEL_NAMES", "FirstTouch", "JourneySettings", "LastNonDirectTouch", "LastTouch", "Linear", "MarkovChain",
    "ModelSettings", "PathCounts", "PositionBased", "Shapley", "StoreJourneys", "TimeDecay", "attribute",
    "bootstrap_shares", "journeys_from_tables", "journeys_from_touches", "parse_model_names", "read_paths_file",
    "write_paths_file",
]
