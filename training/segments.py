"""Customer segments a marketer can name and trust: clustered, named, stable across retrains.

:class:`CustomerSegmenter` clusters the customers who have bought (``recency_days`` not
null) on log1p-transformed, standardized RFM features, plus engagement features when the
data has them (an orders-only shop such as CDNOW has RFM only). Customers who never
bought are the segment ``"Prospects"`` and are never clustered.

Model selection
    KMeans and a Gaussian mixture are fitted for every k in ``k_range``. KMeans' k is the
    one with the best silhouette, the mixture's the one with the lowest BIC; of those two
    the one with the better silhouette wins. Silhouettes are computed on one seeded sample
    of at most ``sample_size`` buyers, the same for every candidate. Every candidate's
    scores are kept in ``selection_``.

Names from the profile
    Each cluster is named by :func:`segment_name` from where its centroid sits in the
    scaled space, where 0 is the average buyer and 1 one standard deviation (of log1p
    values) better or worse. With ``r`` = minus the recency z-score (higher is more
    recent), ``f`` the purchase-days z-score, ``m`` the revenue z-score and ``t`` the
    tenure z-score, the first rule that matches names the cluster:

    ================  =============================================================
    Champions         f > 0 and r, f, m all ≥ 1 (strongly better on all three)
    Loyal             f > 0 and r ≥ 0.5 (buy often, recently)
    At risk           f > 0 (bought often, but not recently)
    Promising         r ≥ 0 and t < 0 (few, recent purchases by new customers)
    Need attention    r ≥ 0 (few purchases, recent, not new)
    Hibernating       everything else (few purchases, long ago)
    ================  =============================================================

    Clusters that would share a name get a value qualifier ranked by ``m``: two get
    "(high value)" and "(low value)", three "(high value)", "(mid value)", "(low value)",
    more "(value tier 1)", "(value tier 2)" … (see :func:`unique_names`).

Stable across retrains
    ``fit(X, previous=old.centroids_table())`` keeps last model's names: previous
    centroids (in original units) are mapped into the *new* scaled space (the scaler
    changes between fits, the units do not), and new clusters are matched to previous
    ones by Euclidean distance with the Hungarian algorithm
    (:func:`scipy.optimize.linear_sum_assignment`). A matched cluster keeps its previous
    name unless the pair is farther apart than ``max_match_distance``; unmatched clusters
    are named by the rule, qualified if that name is taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import KMeans
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.mixture import GaussianMixture
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from features.rows import Rows, as_frame, has_column, has_number, row_count

__all__ = [
    "PROSPECTS",
    "CustomerSegmenter",
    "default_features",
    "match_previous",
    "segment_name",
    "silhouette_scores",
    "unique_names",
]

PROSPECTS = "Prospects"
BUYER_COLUMN = "recency_days"
# The centroid coordinates the naming rule reads; the first three must be clustered on.
NAMING_FEATURES = ("recency_days", "purchase_days", "revenue_total")
TENURE_FEATURE = "tenure_days"
RFM_FEATURES = ("recency_days", "tenure_days", "purchase_days", "revenue_total", "mean_order_value")
ENGAGEMENT_FEATURES = ("days_since_last_engagement", "email_opens")
PROFILE_FEATURES = (
    "recency_days", "tenure_days", "purchase_days", "orders_count", "revenue_total", "mean_order_value",
    "purchase_days_365d", "interpurchase_days_mean", "days_since_last_engagement", "email_open_rate",
)
RECENT_Z = 0.5   # "recent": half a standard deviation more recent than the average buyer
STRONG_Z = 1.0   # "strongly better": a full standard deviation
METHODS = ("kmeans", "gmm")
# Below this many buyers one thread is faster than several: the clusterings are small and
# native thread pools on a busy machine cost more than they save.
PARALLEL_FROM_ROWS = 200_000
# Frames below this many rows are scaled in NumPy and predicted without thread limits
# (`/score_features`' one row: 9 ms in pandas and threadpoolctl, 0.3 ms so).
SMALL_FRAME_ROWS = 256
SILHOUETTE_CHUNK_ROWS = 1_000   # distance rows held at once: 1,000 × 20,000 float64 = 160 MB


def default_features(columns: Sequence[str]) -> list[str]:
    """The features clustered on when none are given: the RFM core, plus engagement
    recency and email opens when the data has events (orders-only shops have RFM only).

    Chosen to describe *behaviour* without double counting: ``purchase_days`` rather than
    also ``orders_count``, all-time counts rather than every window of them, and no
    rates that are undefined for most customers (an open rate without emails sent).
    """
    present = set(columns)
    return [c for c in (*RFM_FEATURES, *ENGAGEMENT_FEATURES) if c in present]


def segment_name(recency_z: float, frequency_z: float, monetary_z: float, tenure_z: float = -np.inf) -> str:
    """The rule name of a centroid from its z-scores (0 = the average buyer).

    ``recency_z`` is the z-score of ``recency_days`` itself, so a *negative* value means
    more recent than average. ``tenure_z`` defaults to "new" when tenure is not clustered on.
    See the module docstring for the table.
    """
    r, f, m, t = -recency_z, frequency_z, monetary_z, tenure_z
    if f > 0:
        if r >= STRONG_Z and f >= STRONG_Z and m >= STRONG_Z:
            return "Champions"
        return "Loyal" if r >= RECENT_Z else "At risk"
    if r >= 0:
        return "Promising" if t < 0 else "Need attention"
    return "Hibernating"


def unique_names(names: Sequence[str], monetary_z: Sequence[float], taken: Sequence[str] = ()) -> list[str]:
    """Make clashing names unique with a value qualifier ranked by ``monetary_z``.

    A name used once (and not in ``taken``) stays as it is. The clusters sharing a name
    are ranked by monetary z-score, highest first (ties by position), and get "(high
    value)"/"(low value)" when two, "(high value)"/"(mid value)"/"(low value)" when three,
    "(value tier i)" beyond. A name already ``taken`` (kept from a previous model) gets a
    number: "Loyal 2", then "Loyal 3".
    """
    out = list(names)
    for name in dict.fromkeys(names):
        members = [i for i, n in enumerate(names) if n == name]
        if len(members) == 1:
            continue
        ranked = sorted(members, key=lambda i: (-monetary_z[i], i))
        n = len(ranked)
        if n == 2:
            labels = ["high value", "low value"]
        elif n == 3:
            labels = ["high value", "mid value", "low value"]
        else:
            labels = [f"value tier {j + 1}" for j in range(n)]
        for i, label in zip(ranked, labels):
            out[i] = f"{name} ({label})"
    used = set(taken)
    for i, name in enumerate(out):
        candidate, j = name, 2
        while candidate in used:
            candidate, j = f"{name} {j}", j + 1
        out[i] = candidate
        used.add(candidate)
    return out


def match_previous(current: np.ndarray, previous: np.ndarray, max_distance: float | None = None) -> list[int | None]:
    """For each current centroid, the index of the previous centroid it continues, or None.

    Hungarian assignment on the Euclidean distances (minimum total distance); with more
    current than previous centroids some stay unmatched, and so does any pair farther
    apart than ``max_distance`` when it is given. Both arrays are in the same space.
    """
    current, previous = np.atleast_2d(current), np.atleast_2d(previous)
    out: list[int | None] = [None] * len(current)
    if len(current) == 0 or len(previous) == 0:
        return out
    cost = np.sqrt(((current[:, None, :] - previous[None, :, :]) ** 2).sum(axis=2))
    rows, cols = linear_sum_assignment(cost)
    for i, j in zip(rows, cols):
        if max_distance is None or cost[i, j] <= max_distance:
            out[int(i)] = int(j)
    return out


def silhouette_scores(Z: np.ndarray, labelings: Sequence[np.ndarray]) -> list[float]:
    """The mean silhouette (Euclidean) of each labeling of the rows of ``Z``.

    The values of :func:`sklearn.metrics.silhouette_score`, one per labeling, but the
    pairwise distances (nearly all of its cost) are computed once for all labelings, a
    chunk of rows at a time, and each row's summed distance to every cluster of every
    labeling comes from one product with the labelings' one-hot membership matrix. A
    labeling with fewer than two clusters, or as many clusters as rows, scores -1.
    """
    n = len(Z)
    codes = [np.unique(np.asarray(labels), return_inverse=True)[1].ravel() for labels in labelings]
    ks = [int(c.max()) + 1 if n else 0 for c in codes]
    valid = [1 < k < n for k in ks]
    if not any(valid):
        return [-1.0] * len(labelings)
    offsets = np.concatenate([[0], np.cumsum(ks)])
    members = np.zeros((n, offsets[-1]))            # rows × every cluster of every labeling
    for c, offset in zip(codes, offsets):
        members[np.arange(n), offset + c] = 1.0
    sizes = members.sum(axis=0)
    totals = np.zeros(len(labelings))
    for start in range(0, n, SILHOUETTE_CHUNK_ROWS):
        rows = np.arange(start, min(start + SILHOUETTE_CHUNK_ROWS, n))
        distance_sums = euclidean_distances(Z[rows], Z) @ members
        for i in (i for i in range(len(labelings)) if valid[i]):
            block = distance_sums[:, offsets[i]:offsets[i + 1]]
            size = sizes[offsets[i]:offsets[i + 1]]
            own = codes[i][rows]
            own_size = size[own]
            a = block[np.arange(len(rows)), own] / np.maximum(own_size - 1, 1)
            mean_to = block / size
            mean_to[np.arange(len(rows)), own] = np.inf
            b = mean_to.min(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                silhouette = np.where(own_size > 1, (b - a) / np.maximum(a, b), 0.0)
            totals[i] += np.nan_to_num(silhouette).sum()
    return [float(totals[i] / n) if valid[i] else -1.0 for i in range(len(labelings))]


class CustomerSegmenter(ClusterMixin, BaseEstimator):
    """Named customer segments from RFM (and engagement) features.

    Parameters
    ----------
    features : sequence of str, optional
        Feature-table columns to cluster on; must include ``recency_days``,
        ``purchase_days`` and ``revenue_total`` (the naming rule reads them). ``None``
        takes :func:`default_features` of the columns present at fit.
    k_range : (int, int)
        Smallest and largest number of clusters tried, both included.
    methods : sequence of {"kmeans", "gmm"}
        Clustering methods tried.
    random_state : int
        Seed of the clusterings and of the silhouette sample.
    sample_size : int
        At most this many buyers are used to compute silhouettes.
    fit_size : int
        At most this many buyers (a seeded sample) are used to fit each candidate; the
        clusterings of a few standardized features settle long before a million rows.
    max_match_distance : float, optional
        In the scaled space (standard deviations): a new cluster farther than this from
        the previous centroid it is assigned to does not inherit that name. ``None``
        accepts every assignment.

    Attributes
    ----------
    features_ : list of str
        The columns clustered on.
    impute_values_ : dict
        Per feature, the median of its log1p values among the buyers seen in fit, used
        for missing values.
    center_, scale_ : dict
        Per feature, the mean and standard deviation of the imputed log1p values.
    selection_ : DataFrame
        One row per candidate: ``method``, ``k``, ``silhouette``, ``bic`` (mixtures),
        ``inertia`` (KMeans), ``best_of_method`` and ``chosen``.
    method_, k_ : str, int
        The chosen method and number of clusters.
    model_ : KMeans or GaussianMixture
        The chosen fitted clustering.
    segment_names_ : list of str
        Name of each cluster, by cluster index of ``model_``.
    centroids_ : DataFrame
        Indexed by segment name; columns ``("original", feature)`` in the feature's units
        and ``("scaled", feature)`` in the clustering space.
    matching_ : DataFrame
        Per segment (``segment``): the ``previous_segment`` whose name it kept and the
        ``distance`` to it in the scaled space; missing for a segment named by the rule
        (every segment, when fitted without ``previous``).

    Examples
    --------
    >>> seg = CustomerSegmenter(k_range=(3, 6)).fit(features)        # doctest: +SKIP
    >>> seg.predict(features)[:3]                                     # doctest: +SKIP
    array(['Loyal', 'Prospects', 'Hibernating'], dtype=object)
    >>> later = CustomerSegmenter().fit(next_month, previous=seg.centroids_table())  # doctest: +SKIP
    """

    def __init__(
        self,
        features: Sequence[str] | None = None,
        k_range: tuple[int, int] = (3, 8),
        methods: Sequence[str] = METHODS,
        random_state: int = 0,
        sample_size: int = 20_000,
        fit_size: int = 100_000,
        max_match_distance: float | None = None,
    ):
        self.features = features
        self.k_range = k_range
        self.methods = methods
        self.random_state = random_state
        self.sample_size = sample_size
        self.fit_size = fit_size
        self.max_match_distance = max_match_distance

    # ------------------------------------------------------------------ fit

    def fit(self, X: pd.DataFrame, y=None, previous: pd.DataFrame | None = None) -> "CustomerSegmenter":
        """Cluster the buyers of ``X``, choose method and k, name the clusters.

        ``previous`` is an earlier model's :meth:`centroids_table`: clusters that continue
        a previous segment keep its name.
        """
        self._check_params()
        X = _require_frame(X)
        features = list(self.features) if self.features is not None else default_features(X.columns)
        missing = [c for c in (BUYER_COLUMN, *features) if c not in X.columns]
        if missing:
            raise ValueError(f"Required column {missing[0]!r} missing from the feature table")
        absent = [c for c in NAMING_FEATURES if c not in features]
        if absent:
            raise ValueError(f"features must include {absent[0]!r}: the segment names are read from it")
        self.features_ = features
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]

        logs = _log1p(X.loc[_buyers(X), features])
        ks = [k for k in range(self.k_range[0], self.k_range[1] + 1) if k < len(logs)]
        if not ks:
            raise ValueError(f"Too few customers with a purchase ({len(logs)}) for k_range {self.k_range}")
        medians = logs.median()
        self.impute_values_ = {c: float(v) if pd.notna(v) else 0.0 for c, v in medians.items()}
        filled = logs.fillna(self.impute_values_)
        std = filled.std(ddof=0)
        self.center_ = {c: float(v) for c, v in filled.mean().items()}
        self.scale_ = {c: float(v) if v > 0 else 1.0 for c, v in std.items()}
        Z = self._scale(filled)

        with threadpool_limits(None if min(len(Z), self.fit_size) >= PARALLEL_FROM_ROWS else 1):
            self.selection_, models = self._candidates(Z, ks)
        chosen = self.selection_[self.selection_["chosen"]].iloc[0]
        self.method_, self.k_ = str(chosen["method"]), int(chosen["k"])
        self.model_ = models[(self.method_, self.k_)]
        self._name_clusters(previous)
        return self

    def _check_params(self) -> None:
        lo, hi = self.k_range
        if not (isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer)) and 2 <= lo <= hi):
            raise ValueError(f"k_range must be two integers 2 <= low <= high, got {self.k_range!r}")
        unknown = set(self.methods) - set(METHODS)
        if not self.methods or unknown:
            raise ValueError(f"methods must be a non-empty subset of {METHODS}, got {tuple(self.methods)!r}")
        if self.sample_size < 2:
            raise ValueError(f"sample_size must be at least 2, got {self.sample_size!r}")
        if self.fit_size < self.k_range[1] + 1:
            raise ValueError(f"fit_size must exceed the largest k, got {self.fit_size!r}")

    def _candidates(self, Z: np.ndarray, ks: list[int]) -> tuple[pd.DataFrame, dict]:
        rng = np.random.default_rng(self.random_state)
        sample = (np.sort(rng.choice(len(Z), self.sample_size, replace=False))
                  if len(Z) > self.sample_size else slice(None))
        fit_rows = (np.sort(np.random.default_rng([self.random_state, 1]).choice(len(Z), self.fit_size, replace=False))
                    if len(Z) > self.fit_size else slice(None))
        Z_fit = Z[fit_rows]
        rows, models, labelings = [], {}, []
        for method in (m for m in METHODS if m in self.methods):
            for k in ks:
                if method == "kmeans":
                    model = KMeans(n_clusters=k, n_init=10, random_state=self.random_state).fit(Z_fit)
                    bic, inertia = np.nan, float(model.inertia_)
                else:
                    model = GaussianMixture(n_components=k, covariance_type="full", n_init=2, reg_covar=1e-4,
                                            random_state=self.random_state).fit(Z_fit)
                    bic, inertia = float(model.bic(Z_fit)), np.nan
                labelings.append(model.predict(Z[sample]))
                rows.append({"method": method, "k": k, "bic": bic, "inertia": inertia})
                models[(method, k)] = model
        for row, silhouette in zip(rows, silhouette_scores(Z[sample], labelings)):
            row["silhouette"] = silhouette
        table = pd.DataFrame(rows, columns=["method", "k", "silhouette", "bic", "inertia"])
        table["best_of_method"] = False
        for method, part in table.groupby("method", sort=False):
            # KMeans by silhouette, the mixture by BIC; ties go to the smaller k.
            best = part.sort_values(["bic", "k"]).index[0] if method == "gmm" else \
                part.sort_values(["silhouette", "k"], ascending=[False, True]).index[0]
            table.loc[best, "best_of_method"] = True
        finalists = table[table["best_of_method"]]
        table["chosen"] = False
        # Stable sort keeps the methods' order on a silhouette tie.
        table.loc[finalists.sort_values("silhouette", ascending=False, kind="stable").index[0], "chosen"] = True
        return table, models

    def _name_clusters(self, previous: pd.DataFrame | None) -> None:
        centers = self.model_.cluster_centers_ if self.method_ == "kmeans" else self.model_.means_
        scaled = pd.DataFrame(centers, columns=self.features_)
        z = {c: scaled[c].to_numpy() if c in scaled else np.full(len(scaled), -np.inf)
             for c in (*NAMING_FEATURES, TENURE_FEATURE)}
        monetary = z["revenue_total"]
        rule = [segment_name(z["recency_days"][i], z["purchase_days"][i], monetary[i], z[TENURE_FEATURE][i])
                for i in range(len(scaled))]

        kept: list[str | None] = [None] * len(scaled)
        distances = [np.nan] * len(scaled)
        if previous is not None:
            prev_names, prev_scaled = self._previous_in_current_space(previous)
            shared = [c for c in self.features_ if c in prev_scaled.columns]
            if not shared:
                raise ValueError("previous centroids share no feature with this model")
            match = match_previous(scaled[shared].to_numpy(), prev_scaled[shared].to_numpy(), self.max_match_distance)
            for i, j in enumerate(match):
                if j is not None:
                    kept[i] = prev_names[j]
                    distances[i] = float(np.linalg.norm(scaled[shared].to_numpy()[i]
                                                        - prev_scaled[shared].to_numpy()[j]))
        new = [i for i in range(len(scaled)) if kept[i] is None]
        fresh = unique_names([rule[i] for i in new], [monetary[i] for i in new],
                             taken=[n for n in kept if n is not None])
        names = list(kept)
        for i, name in zip(new, fresh):
            names[i] = name
        self.segment_names_ = [str(n) for n in names]

        original = pd.DataFrame({c: np.expm1(scaled[c] * self.scale_[c] + self.center_[c]) for c in self.features_})
        self.centroids_ = pd.concat({"original": original, "scaled": scaled}, axis=1)
        self.centroids_.index = pd.Index(self.segment_names_, name="segment")
        self.matching_ = pd.DataFrame({
            "segment": self.segment_names_,
            "previous_segment": kept,
            "distance": distances,
        })

    def _previous_in_current_space(self, previous: pd.DataFrame) -> tuple[list[str], pd.DataFrame]:
        needed = {"segment", "feature", "original"}
        missing = sorted(needed - set(previous.columns))
        if missing:
            raise ValueError(f"Required column {missing[0]!r} missing from the previous centroids table")
        prev = previous[previous["segment"] != PROSPECTS]
        wide = prev.pivot(index="segment", columns="feature", values="original")
        names = list(dict.fromkeys(prev["segment"]))   # keep the table's order
        wide = wide.loc[names]
        cols = [c for c in self.features_ if c in wide.columns]
        logs = np.log1p(wide[cols].astype(float).clip(lower=0))
        scaled = pd.DataFrame({c: (logs[c] - self.center_[c]) / self.scale_[c] for c in cols}, index=wide.index)
        return names, scaled

    # ------------------------------------------------------------------ use

    def transform_scaled(self, X: Rows) -> np.ndarray:
        """The clustering space of the buyers of ``X`` (a frame, or model-ready `features.rows`
        columns): imputed, log1p, standardized."""
        check_is_fitted(self, "model_")
        X = _require_rows(X)
        missing = [c for c in (BUYER_COLUMN, *self.features_) if not has_column(X, c)]
        if missing:
            raise ValueError(f"Required column {missing[0]!r} missing from the feature table")
        if row_count(X) < SMALL_FRAME_ROWS:
            scaled = self._scaled_rows(X)
            if scaled is not None:
                return scaled
        X = as_frame(X)
        return self._scale(_log1p(X.loc[_buyers(X), self.features_]).fillna(self.impute_values_))

    def _scaled_rows(self, X: pd.DataFrame) -> np.ndarray | None:
        """`transform_scaled` of a few rows in NumPy (the same values: clipped at 0, log1p,
        imputed, standardized), or None where a column is not a plain NumPy number (the
        pandas path parses those)."""
        columns = [BUYER_COLUMN, *self.features_]
        if isinstance(X, pd.DataFrame):
            frame = X[columns]
            if not all(isinstance(d, np.dtype) and d.kind in "fiub" for d in frame.dtypes):
                return None
            values = frame.to_numpy(dtype=np.float64)
        else:
            if not all(np.asarray(X[c]).dtype.kind in "fiub" for c in columns):
                return None
            values = np.column_stack([np.asarray(X[c], dtype=np.float64) for c in columns])
        logs = np.log1p(np.maximum(values[~np.isnan(values[:, 0]), 1:], 0.0))
        fill = np.array([self.impute_values_[c] for c in self.features_], dtype=np.float64)
        center = np.array([self.center_[c] for c in self.features_])
        scale = np.array([self.scale_[c] for c in self.features_])
        return (np.where(np.isnan(logs), fill, logs) - center) / scale

    def predict(self, X: Rows) -> np.ndarray:
        """The segment name of every row of ``X`` (``"Prospects"`` for customers who never bought)."""
        Z = self.transform_scaled(X)
        out = np.full(row_count(X), PROSPECTS, dtype=object)
        if len(Z):
            if len(Z) < SMALL_FRAME_ROWS:  # one chunk of work; setting the limits costs ~4 ms
                labels = self.model_.predict(Z)
            else:
                with threadpool_limits(None if len(Z) >= PARALLEL_FROM_ROWS else 1):
                    labels = self.model_.predict(Z)
            out[_buyers(X)] = np.asarray(self.segment_names_, dtype=object)[labels]
        return out

    def fit_predict(self, X: pd.DataFrame, y=None, previous: pd.DataFrame | None = None) -> np.ndarray:
        return self.fit(X, previous=previous).predict(X)

    def profile(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per segment: ``customers``, ``share`` of all rows and the medians of the key
        features (``<feature>_median``), in segment order then Prospects; for reports and
        as a model artifact."""
        segments = pd.Series(self.predict(X), index=X.index, name="segment")
        cols = list(dict.fromkeys([c for c in PROFILE_FEATURES if c in X.columns] + self.features_))
        values = X[cols].apply(pd.to_numeric, errors="coerce")
        grouped = values.groupby(segments, sort=False)
        table = grouped.median().add_suffix("_median")
        table.insert(0, "share", segments.value_counts(normalize=True))
        table.insert(0, "customers", segments.value_counts())
        order = [s for s in [*self.segment_names_, PROSPECTS] if s in table.index]
        table = table.loc[order]
        table.index.name = "segment"
        return table

    def centroids_table(self) -> pd.DataFrame:
        """The named centroids as a plain long table (``segment``, ``feature``, ``original``,
        ``scaled``), to store with the model and pass as ``previous`` to the next fit."""
        check_is_fitted(self, "centroids_")
        original = self.centroids_["original"].stack().rename("original")
        scaled = self.centroids_["scaled"].stack().rename("scaled")
        table = pd.concat([original, scaled], axis=1).reset_index()
        table.columns = ["segment", "feature", "original", "scaled"]
        return table

    def _scale(self, logs: pd.DataFrame) -> np.ndarray:
        center = np.array([self.center_[c] for c in self.features_])
        scale = np.array([self.scale_[c] for c in self.features_])
        return (logs[self.features_].to_numpy(dtype=float) - center) / scale


def _require_frame(X) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame of the feature table, got {type(X).__name__}")
    return X


def _require_rows(X) -> Rows:
    """A frame, or a mapping of column name to array (`features.rows`)."""
    if not isinstance(X, (pd.DataFrame, Mapping)):
        raise TypeError(f"X must be a pandas DataFrame of the feature table, got {type(X).__name__}")
    return X


def _buyers(X: Rows) -> np.ndarray:
    return has_number(X, BUYER_COLUMN)


def _log1p(values: pd.DataFrame) -> pd.DataFrame:
    """log1p of the numeric values; counts arrive as objects from some engines, and a
    negative value (refunds above spend) counts as 0."""
    numeric = values.apply(pd.to_numeric, errors="coerce").astype(float)
    return np.log1p(numeric.clip(lower=0))
