"""The champion models the service scores with, and where they come from.

A :class:`ModelSet` is one immutable set of the champions (segments, churn,
next-purchase, and first-purchase where the store has one). A request takes the
current set once and uses only it, so swapping in a newer set never changes the models
under a request half-way through.
:class:`ChampionSource` is the seam to the registry: the service asks it which version
holds the ``champion`` alias (cheap, every poll) and loads a version only when that moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import pandas as pd
from mlflow.types import DataType

from cdp.errors import CdpError
from training.tracking import (
    MODEL_NAMES,
    OPTIONAL_FAMILIES,
    REQUIRED_FAMILIES,
    TrackingConfig,
    champion_version,
    load_champion,
)

FAMILIES = tuple(MODEL_NAMES)  # segments, churn, next-purchase, first-purchase
PURCHASE_FAMILIES = ("churn", "next-purchase")


class ModelLoadError(CdpError):
    """A champion cannot be served (missing, without a signature, or inconsistent with the others)."""


class ServedModel:
    """One champion pyfunc with what serving needs to know about it.

    ``predict`` hands the pyfunc exactly the columns its signature declares (so MLflow's
    schema check runs, and does not warn about every other feature column) and returns
    every output column of the signature, empty where the model had nothing to say: a
    purchase model given only customers who never bought returns no probability columns
    at all, and callers should not have to know that. `training.score.score` scores
    cdp-ml's own pyfuncs past it, through the `training.pyfunc.CdpModel` inside, which
    casts and checks its columns itself (`training.pyfunc.model_frame`).

    Parameters
    ----------
    pyfunc : mlflow.pyfunc.PyFuncModel
        A model logged by `training.run` (a `training.pyfunc.CdpModel` inside).
    version : str
        Its registry version.
    """

    def __init__(self, pyfunc, version: str):
        inputs = pyfunc.metadata.get_input_schema()
        outputs = pyfunc.metadata.get_output_schema()
        if inputs is None or outputs is None:
            raise ModelLoadError(f"model version {version} has no signature; retrain it with `cdp train`")
        self.pyfunc = pyfunc
        self.version = str(version)
        self.input_types = {c.name: ("number" if c.type == DataType.double else "string") for c in inputs.inputs}
        self.output_columns = list(outputs.input_names())
        self.horizon_days = getattr(pyfunc.unwrap_python_model(), "horizon_days", None)

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.input_types if c not in frame.columns]
        if missing:
            raise KeyError(f"the feature rows lack column(s) model version {self.version} reads: "
                           f"{', '.join(missing[:10])}")
        scored = self.pyfunc.predict(frame[list(self.input_types)])
        return scored.reindex(columns=self.output_columns)


@dataclass(frozen=True)
class ModelSet:
    """The champions served together: the required families' (`training.tracking.REQUIRED_FAMILIES`)
    and, where the store has one, the first-purchase model's (prospects are then answered
    with their chance of a first purchase; without it, their purchase probability is null)."""

    models: Mapping[str, ServedModel]

    def __post_init__(self) -> None:
        absent = [f for f in REQUIRED_FAMILIES if f not in self.models]
        if absent:
            raise ModelLoadError(f"no model for {', '.join(absent)}")
        horizons = {f: self.models[f].horizon_days for f in (*PURCHASE_FAMILIES, *OPTIONAL_FAMILIES)
                    if f in self.models}
        if len(set(horizons.values())) != 1:
            shown = ", ".join(f"{f} version {self.models[f].version}: {h} days" for f, h in horizons.items())
            raise ModelLoadError(f"the purchase champions were trained for different horizons ({shown}); "
                                 "retrain one of them so all look the same number of days ahead")

    @property
    def versions(self) -> dict[str, str]:
        return {family: model.version for family, model in self.models.items()}

    def versions_by_field(self) -> dict[str, str | None]:
        """Versions keyed as the API spells them (``next_purchase``, not ``next-purchase``)."""
        return version_fields(self.versions)

    @property
    def horizon_days(self) -> int:
        horizon = self.models["churn"].horizon_days
        if horizon is None:
            raise ModelLoadError(f"churn version {self.models['churn'].version} does not say its horizon: retrain it")
        return int(horizon)

    def for_scoring(self) -> dict[str, tuple[ServedModel, str]]:
        """The ``{family: (model, version)}`` mapping `training.score.score` takes."""
        return {family: (model, model.version) for family, model in self.models.items()}

    def feature_types(self) -> dict[str, str]:
        """Every column any of the models reads, as ``number`` or ``string``."""
        types: dict[str, str] = {}
        for model in self.models.values():
            types.update(model.input_types)
        return dict(sorted(types.items()))

    def replacing(self, newer: Mapping[str, ServedModel]) -> ModelSet:
        return ModelSet({**self.models, **newer})


def version_fields(versions: Mapping[str, str]) -> dict[str, str | None]:
    """``{segments, churn, next_purchase, first_purchase}`` → version (None where a family has none)."""
    return {family.replace("-", "_"): versions.get(family) for family in FAMILIES}


class ChampionSource(Protocol):
    """Where champions come from (the MLflow registry, or a fake in tests)."""

    def champion_version(self, family: str) -> str | None:
        """The version the ``champion`` alias points at now, or ``None`` if there is none."""

    def load(self, family: str) -> ServedModel:
        """Load the current champion (its version may be newer than a moment ago)."""


class RegistryChampions:
    """:class:`ChampionSource` over the MLflow registry of a `TrackingConfig`."""

    def __init__(self, tracking: TrackingConfig, horizon_days: int | None = None):
        self.tracking = tracking
        self.horizon_days = horizon_days

    def _horizon(self, family: str) -> int | None:
        return None if family == "segments" else self.horizon_days

    def champion_version(self, family: str) -> str | None:
        return champion_version(self.tracking, MODEL_NAMES[family], self._horizon(family))

    def load(self, family: str) -> ServedModel:
        pyfunc, version = load_champion(self.tracking, MODEL_NAMES[family], self._horizon(family))
        return ServedModel(pyfunc, version)
