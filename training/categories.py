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
Categories are any text: inside that column, and in the labels' ``categories_in_horizon``,
each is escaped (`features.text_items`: ``"Oil, olive"`` is written ``"Oil%2C olive"``),
and every category this module returns is the text exactly as it was bought. The
recommendations are lists of categories, never a joined text.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from features.scoring import HISTORY_COLUMN
from features.text_items import escape, split_items, unescape


def encode_history(counts: pd.DataFrame) -> pd.Series:
    """``customer_id, category, purchases`` rows → one ``"category:n;…"`` text per customer
    (sorted by category; each category escaped)."""
    if counts.empty:
        return pd.Series(dtype=object, name=HISTORY_COLUMN)
    ordered = counts.sort_values(["customer_id", "category"])
    text = (ordered["category"].astype(str).map(escape) + ":" + ordered["purchases"].astype(int).astype(str))
    return text.groupby(ordered["customer_id"]).agg(";".join).rename(HISTORY_COLUMN)


def _history_items(texts: pd.Series) -> tuple[pa.Array, pa.Array, np.ndarray]:
    """Parse `category_history` texts with Arrow: the category (still escaped), the count and
    the row of every ``category:n`` item, in text order. Missing texts and empty items are
    skipped. The separators never occur inside an escaped category, so plain splits do."""
    kind = pd.api.types.infer_dtype(texts, skipna=True)
    if kind in ("string", "empty") and not isinstance(texts.dtype, pd.CategoricalDtype):
        # Straight to Arrow (zero-copy for Arrow-backed strings); nulls give no items.
        array = pa.array(texts, type=pa.large_string(), from_pandas=True)
    else:
        array = pa.array(texts.fillna("").astype(str).to_numpy(dtype=object), type=pa.large_string())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    lists = pc.split_pattern(array, ";")
    items = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists)
    keep = pc.not_equal(items, "")
    items, rows = pc.filter(items, keep), pc.filter(rows, keep)
    pieces = pc.split_pattern(items, ":", max_splits=1, reverse=True)
    counts = pc.cast(pc.list_element(pieces, 1), pa.float64())
    return pc.list_element(pieces, 0), counts, rows.to_numpy().astype(np.int64)


def _count_matrix(codes: np.ndarray, counts: np.ndarray, rows: np.ndarray, n_rows: int, n_columns: int) -> np.ndarray:
    """Sum item counts (in item order) into a rows × columns array. Laid out column-major, as
    a pandas frame holds it, so row sums and the matrix product round exactly as they did
    when scoring went through frames: the same scores to the bit, hence the same tie-breaks."""
    flat = codes.astype(np.int64) * n_rows + rows
    sums = np.bincount(flat, weights=counts, minlength=n_rows * n_columns)
    return sums.reshape(n_columns, n_rows).T


def decode_history(texts: pd.Series) -> pd.DataFrame:
    """The inverse of `encode_history`: a customers × categories frame of purchase counts
    (columns sorted by name, one row per text in order), parsed by Arrow and summed by
    NumPy rather than item by item in Python."""
    categories, counts, rows = _history_items(texts)
    if len(categories) == 0:
        return pd.DataFrame(index=range(len(texts)))
    encoded = pc.dictionary_encode(categories)
    seen = [unescape(name) for name in encoded.dictionary.to_pylist()]  # few: one per distinct category
    names = sorted(seen)
    rank = {name: i for i, name in enumerate(names)}
    codes = np.array([rank[name] for name in seen], dtype=np.int64)[encoded.indices.to_numpy()]
    sums = _count_matrix(codes, counts.to_numpy(), rows, len(texts), len(names))
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
        """``history``: `category_history` texts; ``bought_next``: the categories bought in the
        label window (``categories_in_horizon``: escaped, comma-separated), row for row."""
        past = decode_history(history.reset_index(drop=True))
        future = bought_next.reset_index(drop=True).fillna("").astype(str).str.get_dummies(sep=",")
        future.columns = [unescape(name) for name in future.columns]  # escaping is one to one: no merges
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
        return pd.DataFrame(self._posterior(history), columns=self.categories_, index=history.index)

    def recommend(self, history: pd.Series) -> list[list[str]]:
        """The top ``k`` categories per row, best first (ties by name), as a list per row.

        Rows with the same recommendation share one list object: treat them as read-only."""
        posterior = self._posterior(history)
        width = max(0, min(self.k, len(self.categories_)))
        if width == 0:
            return [[] for _ in range(len(history))]
        top = _top_columns(posterior, width)
        # Few distinct lists among many customers: join each distinct list once.
        n_columns = len(self.categories_)
        if n_columns ** width < 2 ** 62:
            combined = np.zeros(len(top), dtype=np.int64)
            for column in top.T:
                combined = combined * n_columns + column
            _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        else:
            _, first, inverse = np.unique(top, axis=0, return_index=True, return_inverse=True)
        names = np.array(self.categories_, dtype=object)
        lists = np.empty(len(first), dtype=object)
        for i, row in enumerate(top[first]):  # one by one: numpy would read equal-length lists as a 2-D array
            lists[i] = names[row].tolist()
        return lists[inverse.reshape(-1)].tolist()

    def _history_counts(self, history: pd.Series) -> np.ndarray:
        """Rows × `categories_` purchase counts; categories the model doesn't know are dropped."""
        categories, counts, rows = _history_items(history)
        escaped = pa.array([escape(name) for name in self.categories_], type=categories.type)
        codes = pc.index_in(categories, value_set=escaped)
        known = pc.is_valid(codes)
        return _count_matrix(pc.filter(codes, known).to_numpy(), pc.filter(counts, known).to_numpy(),
                             rows[known.to_numpy(zero_copy_only=False)], len(history), len(self.categories_))

    def _posterior(self, history: pd.Series) -> np.ndarray:
        """`scores` as a rows × `categories_` array, without building frames."""
        if not hasattr(self, "transitions_"):
            raise NotFittedError("CategoryRecommender is not fitted yet: call fit first")
        own = self._history_counts(history)
        totals = own.sum(axis=1)
        no_history = totals == 0
        with np.errstate(invalid="ignore", divide="ignore"):
            shares = own / np.where(no_history, np.nan, totals)[:, None]
        np.copyto(shares, 0.0, where=np.isnan(shares))
        mixed = shares @ self.transitions_.to_numpy()
        mixed[no_history] = self.popularity_.to_numpy()
        # The customer's own mix, with the co-purchase mix as a Dirichlet prior worth
        # ``prior_purchases`` purchases: a long history speaks for itself, a short one leans
        # on what similar buyers did. (In place: these are rows × categories arrays.)
        mixed /= np.maximum(mixed.sum(axis=1, keepdims=True), 1e-12)
        mixed *= self.prior_purchases
        mixed += own
        mixed /= (totals + self.prior_purchases)[:, None]
        return mixed


def _top_columns(scores: np.ndarray, width: int) -> np.ndarray:
    """Per row, the indices of the ``width`` highest scores, best first, ties to the lower
    index (as a stable sort of the negated scores would give)."""
    return np.lexsort((np.broadcast_to(np.arange(scores.shape[1]), scores.shape), -scores), axis=1)[:, :width]


def hit_rate(recommended: Sequence[Sequence[str] | str], bought_next: pd.Series) -> dict[str, float]:
    """Among customers who bought a category in the window: the share whose top-k list holds
    one of them (hit rate@k), and the mean share of their bought categories the list covers
    (recall@k).

    ``recommended`` holds a list of categories per row (what `CategoryRecommender.recommend`
    returns); a text is read as escaped, comma-separated categories (`features.text_items`).
    ``bought_next`` is ``categories_in_horizon``."""
    hits, recalls = [], []
    for listed, bought in zip(recommended, bought_next):
        truth = set(filter(None, split_items(bought)))
        if not truth:
            continue
        shown = set(filter(None, split_items(listed) if isinstance(listed, str) else listed))
        hits.append(bool(truth & shown))
        recalls.append(len(truth & shown) / len(truth))
    if not hits:
        return {"hit_rate": float("nan"), "recall": float("nan"), "buyers": 0.0}
    return {"hit_rate": float(np.mean(hits)), "recall": float(np.mean(recalls)), "buyers": float(len(hits))}
