"""Shapley-value attribution over channels ("simplified Shapley", Zhao et al., 2018).

The coalition game: the players are the channels, and the worth of a coalition ``S`` is
the conversions (or conversion value) of the journeys whose set of channels lies inside
``S``::

    v(S) = sum of conversions of paths p with channels(p) ⊆ S

Order and repetition inside a path do not matter, and journeys that did not convert add
nothing. ``v`` is a sum of unanimity games, one per observed channel set ``A`` with
weight ``conversions(A)``, and the Shapley value of a unanimity game splits its weight
equally among ``A``'s members. The exact Shapley value is therefore::

    phi(c) = sum over observed channel sets A containing c of conversions(A) / |A|

which costs one pass over the distinct channel sets however many channels there are (the
subset formula with 2^n coalitions gives the same numbers: a test checks it). Credits
sum to v(all channels) = the total conversions (efficiency).
"""

from __future__ import annotations

import numpy as np

from attribution._base import AttributionModel, credits_frame
from attribution.paths import PathCounts

__all__ = ["Shapley"]


class Shapley(AttributionModel):
    """Exact Shapley values of the channel-set game above, for conversions and for value.

    Attributes
    ----------
    credits_ : DataFrame
        ``channel, conversions, value``.
    n_channel_sets_ : int
        Distinct channel sets among converting paths.
    """

    name = "shapley"

    def fit(self, paths: PathCounts) -> Shapley:
        sets = paths.channel_sets()
        distinct, index = np.unique(sets, return_inverse=True)
        conv = np.bincount(index, weights=paths.conversions, minlength=len(distinct))
        value = np.bincount(index, weights=paths.value, minlength=len(distinct))
        k = len(paths.channels)
        member = ((distinct[:, None] >> np.arange(k)[None, :]) & 1).astype(np.float64)
        size = member.sum(axis=1)
        self.credits_ = credits_frame(paths, member.T @ (conv / size), member.T @ (value / size))
        self.n_channel_sets_ = int(np.count_nonzero(conv))
        return self
