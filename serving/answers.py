"""Every known customer's answer, scored once per (models, snapshot) pair and looked up by id.

The scores of a customer the store knows depend only on the served champions and the
served feature snapshot, and both change only when the service swaps them. So the
service scores the whole snapshot in one vectorized pass when either changes (the very
`training.score.score` that `cdp score` runs) and answers ``/score`` and ``/score_batch``
with a dictionary lookup: a request never runs the models' pandas preprocessing, which
costs about as much for one row as for a thousand.

An :class:`AnswerTable` holds the answers column-wise (numpy arrays and one id → row
dictionary), not as a million small dicts, and builds a JSON-ready dict only for the rows
asked for.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import pandas as pd

from features.rows import Rows, as_frame, as_numbers, row_count
from serving.models import ModelSet
from serving.online_store import InMemoryFeatureStore
from training.reasons import Customer, reason_sentence, typical_values
from training.risk_bands import BAND_LABELS, ChurnRiskBands
from training.score import score, score_columns

# Rows scored per pass: bounds the preprocessing's copies of the feature frame
# (several times its size) on a large snapshot.
CHUNK_ROWS = 100_000
NUMBERS = ("churn_probability", "purchase_probability", "expected_purchases", "expected_revenue",
           "days_to_next_purchase")
LISTS = ("next_best_categories", "top_reasons")
# Decimal places of each number in an answer: probabilities to 4 places, money to cents.
ROUNDING = {"churn_probability": 4, "purchase_probability": 4, "expected_purchases": 4, "expected_revenue": 2,
            "days_to_next_purchase": 1}


class FrameColumns(Mapping):
    """A frame's columns as NumPy arrays by name, each taken from the frame when first asked
    for: a reason's sentence reads two or three of a hundred columns, and taking them all
    costs more than scoring one row."""

    def __init__(self, frame: pd.DataFrame):
        self._frame = frame
        self._taken: dict[str, np.ndarray] = {}
        self._names = [str(c) for c in frame.columns]
        self._positions = {name: i for i, name in enumerate(self._names)}

    def __getitem__(self, name: str) -> np.ndarray:
        values = self._taken.get(name)
        if values is None:
            values = self._taken[name] = self._frame.iloc[:, self._positions[name]].to_numpy()
        return values

    def __contains__(self, name: object) -> bool:
        return name in self._positions

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


class RowValues(Mapping):
    """One row of a feature frame as a read-only mapping, each value fetched when asked for
    (a reason's sentence reads two or three of a hundred columns)."""

    def __init__(self, columns: Mapping[str, np.ndarray], row: int):
        self._columns, self._row = columns, row

    def __getitem__(self, name: str):
        return self._columns[name][self._row]

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def items(value) -> list[str]:
    """A list cell as a list of str: a list or array (``next_best_categories``: categories
    kept exactly as they are, commas and spaces included) as it is; a text of feature names
    (``top_reasons``: ``"a, b"``) split at its commas; anything else empty."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(item) for item in value]
    if not isinstance(value, str):
        return []
    return [item.strip() for item in value.split(",") if item.strip()]


def precompute(models: ModelSet, features: InMemoryFeatureStore, bands: ChurnRiskBands) -> AnswerTable:
    """Every customer of an in-memory snapshot scored by ``models`` (`serving.state.Precompute`)."""
    rows = features.all_rows()
    return AnswerTable.score(rows, models, bands, typical=typical_values(rows))


class AnswerTable:
    """The answers of a set of scored customers, by id.

    Parameters
    ----------
    scored : DataFrame
        `training.score.score` output: one row per customer.
    models : ModelSet
        The models that scored it (for their versions and horizon).
    bands : ChurnRiskBands
        Cut-offs for ``churn_risk``.
    features : DataFrame, optional
        The feature rows that were scored, in the same order: the reasons' sentences quote
        the customer's own values.
    typical : mapping, optional
        The typical (median buyer's) values the sentences compare with
        (`training.reasons.typical_values` of the whole snapshot).
    """

    def __init__(self, scored: pd.DataFrame | Mapping[str, np.ndarray], models: ModelSet, bands: ChurnRiskBands,
                 features: Rows | None = None, typical: Mapping[str, float] | None = None):
        if isinstance(scored, pd.DataFrame):
            ids = scored["customer_id"].astype(str).to_numpy()
            self._segment = scored["segment"].astype(object).to_numpy()
            self._numbers = {c: pd.to_numeric(scored[c], errors="coerce").to_numpy(dtype="float64") for c in NUMBERS}
            self._lists = {c: scored[c].astype(object).to_numpy() for c in LISTS}
            days = pd.to_datetime(scored["features_as_of"]).dt.date.unique()
        else:  # `training.score.score_columns`: arrays already
            ids = np.asarray(scored["customer_id"]).astype(str)
            self._segment = np.asarray(scored["segment"], dtype=object)
            self._numbers = {c: as_numbers(scored[c]) for c in NUMBERS}
            self._lists = {c: np.asarray(scored[c], dtype=object) for c in LISTS}
            days = list(dict.fromkeys(pd.Timestamp(day).date() for day in scored["features_as_of"]))
        self._row = dict(zip(ids.tolist(), range(len(ids))))
        self._ids = ids
        self._kept: np.ndarray | None = None  # rows `only` keeps; None: all
        self._band = bands.codes(self._numbers["churn_probability"])
        self._as_of: dt.date | None = days[0] if len(days) else None
        self._shared = {
            "horizon_days": models.horizon_days,
            "model_versions": models.versions_by_field(),
        }
        self.typical: dict[str, float] = dict(typical or {})
        self._values: Mapping[str, np.ndarray] = {}
        if features is not None and row_count(features) == len(ids):
            self._values = FrameColumns(features) if isinstance(features, pd.DataFrame) else features

    @classmethod
    def score(cls, features: Rows, models: ModelSet, bands: ChurnRiskBands,
              chunk_rows: int = CHUNK_ROWS, typical: Mapping[str, float] | None = None) -> AnswerTable:
        """Score every row of a non-empty feature frame (``customer_id``, ``features_as_of``
        and the features, one as-of day), ``chunk_rows`` rows at a time. ``typical``: what
        the reasons compare with (default: the medians of these rows). Model-ready
        `features.rows` columns (a request's row) are scored as they are, in one pass."""
        if row_count(features) == 0:
            raise ValueError("no feature rows to score")
        if not isinstance(features, pd.DataFrame):
            as_of = pd.Timestamp(features["features_as_of"][0]).date()
            typical = typical if typical is not None else typical_values(as_frame(features))
            return cls(score_columns(features, models.for_scoring(), as_of, typical), models, bands,
                       features=features, typical=typical)
        as_of = pd.Timestamp(features["features_as_of"].iloc[0]).date()
        typical = typical if typical is not None else typical_values(features)
        parts = [score(features.iloc[start:start + chunk_rows], models.for_scoring(), as_of, typical)
                 for start in range(0, len(features), chunk_rows)]
        return cls(pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0], models, bands,
                   features=features.reset_index(drop=True), typical=typical)

    def __len__(self) -> int:
        return len(self._ids) if self._kept is None else int(self._kept.sum())

    def only(self, customer_ids: set[str]) -> AnswerTable:
        """The same answers for ``customer_ids`` only (a copy; this table is left as it is)."""
        kept = copy.copy(self)
        kept._row = {i: r for i, r in self._row.items() if i in customer_ids}
        mask = np.zeros(len(self._ids), dtype=bool)
        mask[list(kept._row.values())] = True
        kept._kept = mask if self._kept is None else mask & self._kept
        return kept

    def __contains__(self, customer_id: str) -> bool:
        return customer_id in self._row

    @property
    def features_as_of(self) -> dt.date | None:
        return self._as_of

    def answer(self, customer_id: str) -> dict | None:
        """One customer's JSON-ready answer, or ``None`` if the table does not hold the id."""
        row = self._row.get(customer_id)
        return None if row is None else self._answer(row)

    def all(self) -> list[dict]:
        """Every row's answer, in the order scored (ids need not be unique)."""
        return [self._answer(row) for row in range(len(self._ids)) if self._kept is None or self._kept[row]]

    def answers(self, customer_ids: Iterable[str]) -> tuple[list[dict], list[str]]:
        """The answers of the ids held (in the order asked, repeats once) and the ids not held."""
        found, missing = [], []
        for customer_id in dict.fromkeys(customer_ids):
            row = self._row.get(customer_id)
            if row is None:
                missing.append(customer_id)
            else:
                found.append(self._answer(row))
        return found, missing

    def _answer(self, row: int) -> dict:
        answer = {"customer_id": str(self._ids[row]), "segment": self._segment[row]}
        for column, values in self._numbers.items():
            value = values[row]
            answer[column] = round(float(value), ROUNDING[column]) if np.isfinite(value) else None
        answer["churn_risk"] = BAND_LABELS[self._band[row]]
        for column, values in self._lists.items():
            answer[column] = items(values[row])
        answer["reasons"] = self._reasons(row, answer["top_reasons"])
        answer["features_as_of"] = self._as_of
        answer.update(self._shared)
        answer["model_versions"] = dict(answer["model_versions"])
        return answer

    def _reasons(self, row: int, codes: list[str]) -> list[dict]:
        """Each reason's code and the sentence the churn lists print for it."""
        if not codes:
            return []
        customer = Customer(RowValues(self._values, row), self.typical)
        return [{"code": code, "text": reason_sentence(code, customer)} for code in codes]
