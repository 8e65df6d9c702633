"""Markov-chain attribution with removal effects (Anderl, Becker, von Wangenheim & Schumann, 2016).

States are the start, one state per distinct *history* of the last ``order`` channels
(order 1: the current channel; order 2: the previous and current channel, and so on;
the first touches of a journey have shorter histories, kept apart from the full ones),
and two absorbing states, conversion and null. Transition probabilities are the
observed transition counts of all journeys (converting and not) divided by each state's
outgoing count.

The probability of reaching conversion from the start solves the absorbing chain's
linear system ``(I - Q) x = r`` (``Q``: transient-to-transient probabilities, ``r``:
probability of converting on leaving each state), by a sparse LU solve: exact, no
simulation. Removing a channel sends every state whose current channel is that channel
to null. The **removal effect** of channel ``c`` is ``1 - P(conversion without c) /
P(conversion)``; conversions are credited in proportion to the removal effects, so they
sum to the total conversions.

**Value** has its own removal effects, from the same chain with the reward of leaving a
state being the conversion value observed there (``r_value``): the expected conversion
value from the start, with and without each channel. Total value is split in proportion
to those value removal effects, so a channel that leads to big orders earns more of the
value than of the count. (With every order worth the same, both splits are equal.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import scipy.sparse.linalg as spla

from attribution._base import AttributionModel, credits_frame
from attribution.paths import PathCounts
from cdp.errors import CdpError

__all__ = ["MAX_ORDER", "MarkovChain", "absorbing_conversion"]

MAX_ORDER = 4


def absorbing_conversion(transitions: sp.csr_matrix, reward: np.ndarray, removed: np.ndarray | None = None,
                         start: int = 0) -> np.ndarray:
    """Expected reward collected before absorption, from ``start``, for each reward column.

    ``transitions`` is the (sub)stochastic matrix between transient states; ``reward``
    (n_states × m) what leaving each state pays on absorption (the probability of
    converting, or the expected value). States flagged in ``removed`` are absorbed into
    null: their row of ``transitions`` and their reward become zero.
    """
    n = transitions.shape[0]
    if removed is not None and removed.any():
        keep = sp.diags((~removed).astype(np.float64))
        transitions = keep @ transitions
        reward = reward * (~removed)[:, None]
    system = (sp.identity(n, format="csc") - transitions).tocsc()
    solution = spla.spsolve(system, reward)
    return np.atleast_2d(np.asarray(solution).reshape(n, -1))[start]


class MarkovChain(AttributionModel):
    """Markov-chain attribution of order ``order`` (1 to 4) with removal effects.

    Parameters
    ----------
    order : int, default 1

    Attributes
    ----------
    credits_ : DataFrame
        ``channel, conversions, value``.
    removal_effects_ : DataFrame
        ``channel, conversions, value``: the removal effect of each channel on the
        conversion probability and on the expected value.
    conversion_probability_ : float
        P(conversion) from the start of the fitted chain.
    n_states_ : int
        Transient states, the start included.
    """

    def __init__(self, order: int = 1):
        self.order = order

    @property
    def name(self) -> str:  # type: ignore[override]  # read-only: it follows the order
        return f"markov_{self.order}"

    def fit(self, paths: PathCounts) -> MarkovChain:
        if self.order not in range(1, MAX_ORDER + 1):
            raise CdpError(f"Markov order must be 1 to {MAX_ORDER}, not {self.order}")
        transitions, reward, current_channel = _chain(paths, self.order)
        k = len(paths.channels)
        base = absorbing_conversion(transitions, reward)
        removed = np.array([absorbing_conversion(transitions, reward, current_channel == c) for c in range(k)])
        with np.errstate(invalid="ignore", divide="ignore"):
            effect = np.where(base > 0, 1.0 - removed / base, 0.0).reshape(k, 2)
        effect = np.clip(effect, 0.0, None)  # never negative in exact arithmetic; clip solver round-off
        totals = np.array([paths.total_conversions, paths.total_value])
        sums = effect.sum(axis=0)
        credit = np.where(sums > 0, effect / np.where(sums > 0, sums, 1.0), 0.0) * totals
        self.credits_ = credits_frame(paths, credit[:, 0], credit[:, 1])
        self.removal_effects_ = pd.DataFrame({"channel": list(paths.channels), "conversions": effect[:, 0],
                                              "value": effect[:, 1]})
        self.conversion_probability_ = float(base[0])
        self.n_states_ = transitions.shape[0]
        return self


def _chain(paths: PathCounts, order: int) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Transition matrix between transient states (state 0 is the start), the reward
    matrix (columns: conversion probability, expected value on leaving each state), and
    each state's current channel (-1 for the start)."""
    steps = paths.steps.astype(np.int64)
    n_paths, width = steps.shape
    radix = len(paths.channels) + 1  # digit 0 pads a history shorter than the order
    code = np.zeros_like(steps)
    for lag in range(order):
        shifted = np.zeros_like(steps)
        shifted[:, lag:] = steps[:, :width - lag] + 1
        shifted[shifted < 0] = 0
        code += shifted * radix ** lag
    valid = steps >= 0
    states, index = np.unique(code[valid], return_inverse=True)
    state = np.full(steps.shape, -1, dtype=np.int64)
    state[valid] = index + 1
    n_states = len(states) + 1
    journeys = paths.conversions + paths.nulls
    last = state[np.arange(n_paths), paths.lengths - 1]

    source = np.concatenate([np.zeros(n_paths, np.int64), state[:, :-1][valid[:, 1:]]])
    target = np.concatenate([state[:, 0], state[:, 1:][valid[:, 1:]]])
    weight = np.concatenate([journeys, np.broadcast_to(journeys[:, None], steps.shape)[:, 1:][valid[:, 1:]]])
    counts = sp.csr_matrix((weight, (source, target)), shape=(n_states, n_states))
    ends = np.stack([np.bincount(last, weights=w, minlength=n_states)
                     for w in (paths.conversions, paths.value, paths.nulls)], axis=1)
    out = np.asarray(counts.sum(axis=1)).ravel() + ends[:, 0] + ends[:, 2]
    scale = np.divide(1.0, out, out=np.zeros(n_states), where=out > 0)
    transitions = sp.diags(scale) @ counts
    reward = ends[:, :2] * scale[:, None]
    current = np.concatenate([[-1], states % radix - 1])
    return transitions.tocsr(), reward, current
