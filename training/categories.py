"""Next-best categories: what a customer is likely to buy next, from what buyers like them bought next.

Co-purchase statistics over training snapshots: for each category a customer had bought
by the as-of date (weighted by its share of their purchases), which categories they
bought in the following window. Those transition rates, shrunk towards the overall rate
of each category, give a prior that the customer's own category mix then updates (a
Dirichlet posterior): a long history speaks for itself, a short one leans on what
similar buyers did next. Categories are ranked by score; the
ones a customer already buys stay eligible, since repeat purchase is the commonest next
purchase in a grocery-like shop.

A customer's history travels as one text column, ``category_history``
(``"olive_oil:3;soap:1"``), so the model reads it from the same row as its features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

HISTORY_COLUMN = "category_history"


def encode_history(counts: pd.DataFrame) -> pd.Series:
    """``customer_id, category, purchases`` rows → one ``"category:n;…"`` text per customer (sorted)."""
    if counts.empty:
        return pd.Series(dtype=object, name=HISTORY_COLUMN)
    ordered = counts.sort_values(["customer_id", "category"])
    text = (ordered["category"].astype(str) + ":" + ordered["purchases"].astype(int).astype(str))
    return text.groupby(ordered["customer_id"]).agg(";".join).rename(HISTORY_COLUMN)


def decode_history(texts: pd.Series) -> pd.DataFrame:
    """The inverse of `encode_history`: a customers × categories frame of purchase counts
    (columns sorted by name, one row per text in order), parsed by Arrow and summed by
    NumPy rather than item by item in Python."""
    import pyarrow as pa
    import pyarrow.compute as pc

    lists = pc.split_pattern(pa.array(texts.fillna("").astype(str).to_numpy(dtype=object), type=pa.string()), ";")
    items = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists)
    keep = pc.not_equal(items, "")
    items, rows = pc.filter(items, keep), pc.filter(rows, keep)
    if len(items) == 0:
        return pd.DataFrame(index=range(len(texts)))
    pieces = pc.split_pattern(items, ":", max_splits=1, reverse=True)
    categories = pc.list_element(pieces, 0).to_numpy(zero_copy_only=False)
    counts = pc.cast(pc.list_element(pieces, 1), pa.float64()).to_numpy()
    names, codes = np.unique(categories, return_inverse=True)
    flat = rows.to_numpy().astype(np.int64) * len(names) + codes
    sums = np.bincount(flat, weights=counts, minlength=len(texts) * len(names)).reshape(len(texts), len(names))
    return pd.DataFrame(sums, columns=pd.Index(names, name="category"), index=range(len(texts)))


class CategoryRecommender(BaseEstimator):
    """Rank categories per customer by share-weighted co-purchase transition rates.

    Parameters
    ----------
    k : int
        How many categories to recommend.
    prior_weight : float
        Pseudo-customers of the overall rate mixed into each transition row.
    prior_purchases : float
        Weight, in purchases, of the co-purchase mix against the customer's own category mix.

    Attributes
    ----------
    categories_ : list of str
    transitions_ : DataFrame, past category × next category rates
    popularity_ : Series, share of training customers buying each category in the window
    """

    def __init__(self, k: int = 3, prior_weight: float = 20.0, prior_purchases: float = 2.0):
        self.k = k
        self.prior_weight = prior_weight
        self.prior_purchases = prior_purchases

    def fit(self, history: pd.Series, bought_next: pd.Series) -> "CategoryRecommender":
        """``history``: `category_history` texts; ``bought_next``: comma-separated categories
        bought in the label window (``categories_in_horizon``), row for row."""
        past = decode_history(history.reset_index(drop=True))
        future = bought_next.reset_index(drop=True).fillna("").astype(str).str.get_dummies(sep=",")
        # pandas 3 turns an empty row ("bought nothing") into a category named "".
        self.categories_ = sorted((set(past.columns) | set(future.columns)) - {""})
        past = past.reindex(columns=self.categories_, fill_value=0.0)
        future = future.reindex(columns=self.categories_, fill_value=0).astype(float)
        self.popularity_ = future.mean() if len(future) else pd.Series(0.0, index=self.categories_)
        totals = past.sum(axis=1).replace(0, np.nan)
        shares = past.div(totals, axis=0).fillna(0.0)
        weight = shares.sum()                                    # customers' worth of history per category
        joint = shares.T.to_numpy() @ future.to_numpy()          # past a → next c, share-weighted
        rates = (joint + self.prior_weight * self.popularity_.to_numpy()) / (
            weight.to_numpy()[:, None] + self.prior_weight)
        self.transitions_ = pd.DataFrame(rates, index=self.categories_, columns=self.categories_)
        return self

    def scores(self, history: pd.Series) -> pd.DataFrame:
        """Per row, each category's estimated chance of being bought next."""
        if not hasattr(self, "transitions_"):
            raise NotFittedError("CategoryRecommender is not fitted yet: call fit first")
        past = decode_history(history.reset_index(drop=True)).reindex(columns=self.categories_, fill_value=0.0)
        totals = past.sum(axis=1)
        shares = past.div(totals.replace(0, np.nan), axis=0).fillna(0.0).to_numpy()
        mixed = shares @ self.transitions_.to_numpy()
        no_history = (totals == 0).to_numpy()
        mixed[no_history] = self.popularity_.to_numpy()
        # The customer's own mix, with the co-purchase mix as a Dirichlet prior worth
        # ``prior_purchases`` purchases: a long history speaks for itself, a short one leans
        # on what similar buyers did.
        own = past.to_numpy()
        mixed = mixed / np.maximum(mixed.sum(axis=1, keepdims=True), 1e-12)
        posterior = (own + self.prior_purchases * mixed) / (totals.to_numpy()[:, None] + self.prior_purchases)
        return pd.DataFrame(posterior, columns=self.categories_, index=history.index)

    def recommend(self, history: pd.Series) -> list[str]:
        """The top ``k`` categories per row, comma-separated, best first (ties by name)."""
        if not self.categories_:
            return [""] * len(history)
        scores = self.scores(history)
        names = np.array(self.categories_)
        order = np.lexsort((np.broadcast_to(np.arange(len(names)), scores.shape), -scores.to_numpy()), axis=1)
        return [",".join(names[row[: self.k]]) for row in order]


def hit_rate(recommended: list[str], bought_next: pd.Series) -> dict[str, float]:
    """Among customers who bought a category in the window: the share whose top-k list holds
    one of them (hit rate@k), and the mean share of their bought categories the list covers
    (recall@k)."""
    hits, recalls = [], []
    for listed, bought in zip(recommended, bought_next.fillna("").astype(str)):
        truth = set(filter(None, bought.split(",")))
        if not truth:
            continue
        shown = set(filter(None, listed.split(",")))
        hits.append(bool(truth & shown))
        recalls.append(len(truth & shown) / len(truth))
    if not hits:
        return {"hit_rate": float("nan"), "recall": float("nan"), "buyers": 0.0}
    return {"hit_rate": float(np.mean(hits)), "recall": float(np.mean(recalls)), "buyers": float(len(hits))}
