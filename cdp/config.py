"""Typed, frozen configuration, read once from `cdp.toml` by the CLI and passed down.

The file is written by hand, so every mistake is reported with the file and the
offending key (``sources[2].columns.amount``) rather than a traceback.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from cdp.errors import ConfigError
from cdp.sources import KINDS, check_columns

DEFAULT_MAX_LINKED_IDENTIFIERS = 12
DEFAULT_MEMORY_LIMIT = "1500MB"
_MEMORY = re.compile(r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


@dataclass(frozen=True)
class StoreConfig:
    """Where the embedded DuckDB store lives, and how much memory DuckDB may use before spilling to disk."""

    path: Path
    memory_limit: str = DEFAULT_MEMORY_LIMIT
    name: str | None = None
    """Names the store's models in a model registry shared with other stores (an MLflow
    server); by default they are told apart by the store file's path."""
    format: str | None = None
    """``"duckdb"`` (one file) or ``"parquet"`` (a directory of Parquet tables switched by one
    manifest: what Spark reads and writes), as cdp.toml says. None: what is on disk, else
    ``new_format`` (`store.interface.store_format`)."""
    new_format: str = "duckdb"
    """The format a store is created in when cdp.toml names none: ``"parquet"`` with ``[engine]
    kind = "spark"``. A store already on disk keeps its own."""


@dataclass(frozen=True)
class TrackingSettings:
    """Where the store's MLflow runs and models go: ``uri`` (any MLflow tracking URI; a
    relative ``sqlite:///`` path is taken from cdp.toml's folder). ``None``: a folder of its
    own beside the store (``<store>.mlflow/``). ``MLFLOW_TRACKING_URI`` overrides both."""

    uri: str | None = None


MODEL_BTYD = ("bgnbd", "pareto_nbd")


@dataclass(frozen=True)
class ModelSettings:
    """The purchase models' settings (`training.purchase.PurchaseModel`); None keeps its default.

    ``btyd``: the classical model the boosters start from and carry forward with,
    ``"bgnbd"`` (the default: fitted in seconds on millions of customers) or
    ``"pareto_nbd"`` (better on CDNOW-sized stores, but its likelihood needs a
    hypergeometric function per customer: minutes to fit on 200,000 distinct histories).
    ``learning_rate``, ``n_estimators``, ``num_leaves``, ``min_child_samples``: LightGBM's.
    """

    btyd: str | None = None
    learning_rate: float | None = None
    n_estimators: int | None = None
    num_leaves: int | None = None
    min_child_samples: int | None = None

    def params(self) -> dict[str, Any]:
        """The settings given, as `PurchaseModel` keyword arguments."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class SourceConfig:
    """One source file and how its columns map onto the canonical fields of its kind.

    ``customer_key_namespace`` lets a source whose ``customer_key`` column holds another
    source's customer ids (POS receipts carrying the CRM's id) link to that source's
    records; by default a source's keys only link within the source itself.
    ``mode`` is ``upsert`` (rows are added or updated by source key; the file may be an
    increment) or ``replace`` (the file is the whole source; rows no longer in it go).
    The default is ``upsert`` when ``source_key`` is mapped and ``replace`` when it is not,
    since keys derived from values cannot tell an edited row from a new one.
    """

    name: str
    kind: str
    path: Path
    columns: Mapping[str, str]
    default_phone_region: str | None = None
    timestamp_format: str | None = None
    timezone: str = "UTC"
    delimiter: str = ","
    header: bool = True
    names: tuple[str, ...] = ()
    customer_key_namespace: str | None = None
    mode: str = "upsert"

    @property
    def key_namespace(self) -> str:
        return self.customer_key_namespace or self.name


@dataclass(frozen=True)
class UnifyConfig:
    """Identity-resolution settings.

    ``blocked_identifiers`` extends the built-in block list (placeholder emails, all-zero
    phones, ...). An identifier seen together with more than ``max_linked_identifiers``
    distinct other identifiers is treated as shared junk and not used as a link.
    """

    blocked_identifiers: tuple[str, ...] = ()
    max_linked_identifiers: int = DEFAULT_MAX_LINKED_IDENTIFIERS


@dataclass(frozen=True)
class CurrencyConfig:
    """The currency money features are summed in, and fixed conversion rates into it.

    ``rates`` maps a currency code to the units of ``base`` that one unit of it is worth
    (``USD = 3.7`` with base ILS). Orders with no currency are taken to be in ``base``.
    Without a ``[currency]`` section the shop must sell in one currency only; the feature
    stage refuses to add up mixed currencies.
    """

    base: str | None = None
    rates: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: how `cdp train` reads the store. ``max_customers``: above this many
    customers, train on a hash sample of about this many (with all their orders and events),
    drawn on the store's engine; 0 trains on everyone. The models are fitted on one machine
    (the driver, on Spark): BENCHMARKS.md's learning curves show what the sample size buys."""

    max_customers: int = 50_000


@dataclass(frozen=True)
class RefreshConfig:
    """``[refresh]``: how `cdp refresh` runs the daily job."""

    retrain_after_days: int = 7
    horizon_days: int = 90


@dataclass(frozen=True)
class EngineConfig:
    """``[engine]``: where the batch stages run. ``kind``: ``"duckdb"`` (embedded, the default)
    or ``"spark"``; ``master``: the Spark master (``"local[*]"``, ``"local-cluster[2,1,1024]"``,
    ``"spark://host:7077"``); ``conf``: further Spark settings (``spark.executor.memory`` …),
    applied last; ``work_dir``: where the store's tables are handed to Spark as Parquet (every
    executor must read it: shared storage on a real cluster; default: the system's temporary
    folder, which serves one machine)."""

    kind: str = "duckdb"
    master: str = "local[2]"
    conf: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    work_dir: Path | None = None


ENGINE_KINDS = ("duckdb", "spark")
STORE_FORMATS = ("duckdb", "parquet")
_MASTER = re.compile(r"^(local(\[(\*|\d+)(,\d+)?\])?|local-cluster\[\d+,\d+,\d+\]|(spark|k8s|yarn)(://\S+)?)$")


@dataclass(frozen=True)
class OnlineStoreConfig:
    """``[online_store]``: where `cdp score` publishes every customer's answer, serving features
    and look-up keys for the service's workers to read (`store.online_redis`). ``url``: a
    ``redis://`` or ``rediss://`` URL; ``None`` (the default): the service holds the serving
    snapshot in its own memory, as on one machine."""

    url: str | None = None


@dataclass(frozen=True)
class Config:
    """The whole configuration of one shop."""

    path: Path
    store: StoreConfig
    sources: tuple[SourceConfig, ...]
    unify: UnifyConfig = field(default_factory=UnifyConfig)
    currency: CurrencyConfig = field(default_factory=CurrencyConfig)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    refresh: RefreshConfig = field(default_factory=RefreshConfig)
    online_store: OnlineStoreConfig = field(default_factory=OnlineStoreConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def source(self, name: str) -> SourceConfig:
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(f"{self.path}: no source named {name!r}")


_SOURCE_KEYS = {
    "name", "kind", "path", "columns", "default_phone_region", "timestamp_format", "timezone",
    "delimiter", "header", "names", "customer_key_namespace", "mode",
}
_MODES = ("upsert", "replace")


def load_config(path: str | Path) -> Config:
    """Read and validate a cdp.toml; relative paths are taken from the file's folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found (pass --config PATH)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(raw, path)


def parse_config(raw: Mapping[str, Any], path: Path) -> Config:
    """Validate an already parsed TOML document; ``path`` anchors relative paths and messages."""
    base = path.parent
    known = ("store", "sources", "unify", "currency", "tracking", "model", "refresh", "online_store", "engine",
             "training")
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"{path}: unknown section(s) {', '.join(sorted(unknown))}; expected {', '.join(known)}")
    store_raw = _table(raw.get("store", {}), path, "store")
    store_path = store_raw.get("path", "cdp.duckdb")
    if not isinstance(store_path, str) or not store_path:
        raise ConfigError(f"{path}: store.path must be a non-empty string")
    unknown = set(store_raw) - {"path", "memory_limit", "name", "format"}
    if unknown:
        raise ConfigError(f"{path}: store: unknown key(s) {', '.join(sorted(unknown))}; "
                          "expected path, memory_limit, name, format")
    store_format = store_raw.get("format")
    if store_format is not None and store_format not in STORE_FORMATS:
        raise ConfigError(f"{path}: store.format {store_format!r} must be one of {', '.join(STORE_FORMATS)}")
    store_name = store_raw.get("name")
    if store_name is not None and (not isinstance(store_name, str) or not re.search(r"[A-Za-z0-9]", store_name)):
        raise ConfigError(f"{path}: store.name must be a string with at least one letter or digit")
    memory_limit = store_raw.get("memory_limit", DEFAULT_MEMORY_LIMIT)
    if not isinstance(memory_limit, str) or not _MEMORY.match(memory_limit.strip()):
        raise ConfigError(f"{path}: store.memory_limit {memory_limit!r} must be a size such as '1500MB' or '4GB'")
    store = StoreConfig(path=_resolve(base, store_path), memory_limit=memory_limit.strip(), name=store_name,
                        format=store_format)

    sources_raw = raw.get("sources", [])
    if not isinstance(sources_raw, list):
        raise ConfigError(f"{path}: sources must be an array of tables ([[sources]])")
    sources = tuple(_parse_source(s, path, base, i) for i, s in enumerate(sources_raw))
    seen: set[str] = set()
    for source in sources:
        if source.name in seen:
            raise ConfigError(f"{path}: source name {source.name!r} is used twice; names must be unique")
        seen.add(source.name)
    for source in sources:
        if source.customer_key_namespace and source.customer_key_namespace not in seen:
            raise ConfigError(f"{path}: source {source.name!r}: customer_key_namespace "
                              f"{source.customer_key_namespace!r} is not a source name; expected one of "
                              f"{', '.join(sorted(seen))}")

    unify_raw = _table(raw.get("unify", {}), path, "unify")
    unknown = set(unify_raw) - {"blocked_identifiers", "max_linked_identifiers"}
    if unknown:
        raise ConfigError(f"{path}: unify: unknown key(s) {', '.join(sorted(unknown))}")
    blocked = unify_raw.get("blocked_identifiers", [])
    if not isinstance(blocked, list) or not all(isinstance(b, str) for b in blocked):
        raise ConfigError(f"{path}: unify.blocked_identifiers must be a list of strings")
    max_linked = unify_raw.get("max_linked_identifiers", DEFAULT_MAX_LINKED_IDENTIFIERS)
    if not isinstance(max_linked, int) or isinstance(max_linked, bool) or max_linked < 1:
        raise ConfigError(f"{path}: unify.max_linked_identifiers must be a whole number >= 1")
    unify = UnifyConfig(blocked_identifiers=tuple(blocked), max_linked_identifiers=max_linked)
    currency = _parse_currency(raw.get("currency"), path)
    tracking = _parse_tracking(raw.get("tracking"), path)
    model = _parse_model(raw.get("model"), path)
    refresh = _parse_refresh(raw.get("refresh"), path)
    online_store = _parse_online_store(raw.get("online_store"), path)
    engine = _parse_engine(raw.get("engine"), path)
    training = _parse_training(raw.get("training"), path)
    if engine.kind == "spark":
        store = dataclasses.replace(store, new_format="parquet")
    return Config(path=path, store=store, sources=sources, unify=unify, currency=currency, tracking=tracking,
                  model=model, refresh=refresh, online_store=online_store, engine=engine, training=training)


def _parse_engine(raw: Any, path: Path) -> EngineConfig:
    if raw is None:
        return EngineConfig()
    raw = _table(raw, path, "engine")
    unknown = set(raw) - {"kind", "master", "conf", "work_dir"}
    if unknown:
        raise ConfigError(f"{path}: engine: unknown key(s) {', '.join(sorted(unknown))}; "
                          "expected kind, master, conf, work_dir")
    work_dir = raw.get("work_dir")
    if work_dir is not None and (not isinstance(work_dir, str) or not work_dir.strip()):
        raise ConfigError(f"{path}: engine.work_dir must be a folder path")
    kind = raw.get("kind", EngineConfig.kind)
    if kind not in ENGINE_KINDS:
        raise ConfigError(f"{path}: engine.kind {kind!r} must be one of {', '.join(ENGINE_KINDS)}")
    master = raw.get("master", EngineConfig.master)
    if not isinstance(master, str) or not _MASTER.match(master.strip()):
        raise ConfigError(f"{path}: engine.master {master!r} must be a Spark master such as \"local[*]\", "
                          "\"local-cluster[2,1,1024]\" or \"spark://host:7077\"")
    conf = _table(raw.get("conf", {}), path, "engine.conf")
    settings = {}
    for key, value in conf.items():
        if not key.startswith("spark.") or isinstance(value, (dict, list)):
            raise ConfigError(f"{path}: engine.conf.{key}: keys are Spark settings (spark.…) with a text, number "
                              "or true/false value")
        settings[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return EngineConfig(kind=kind, master=master.strip(), conf=MappingProxyType(settings),
                        work_dir=_resolve(path.parent, work_dir.strip()) if work_dir else None)


def online_store_url(value: Any, where: str) -> str:
    """A Redis URL as given (``redis://`` or ``rediss://``), else a ConfigError naming ``where``
    (never the value: it may hold a password)."""
    if not isinstance(value, str) or not re.match(r"^rediss?://[^\s]+$", value.strip()):
        raise ConfigError(f"{where} must be a Redis URL such as \"redis://127.0.0.1:6379/0\"")
    return value.strip()


def _parse_online_store(raw: Any, path: Path) -> OnlineStoreConfig:
    if raw is None:
        return OnlineStoreConfig()
    raw = _section(raw, path, "online_store", ("url",))
    if "url" not in raw:
        return OnlineStoreConfig()
    return OnlineStoreConfig(url=online_store_url(raw["url"], f"{path}: online_store.url"))


def _parse_refresh(raw: Any, path: Path) -> RefreshConfig:
    if raw is None:
        return RefreshConfig()
    raw = _section(raw, path, "refresh", ("retrain_after_days", "horizon_days"))
    values = {}
    for key, least in (("retrain_after_days", 0), ("horizon_days", 1)):
        value = raw.get(key, getattr(RefreshConfig, key))
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ConfigError(f"{path}: refresh.{key} {value!r} must be a whole number >= {least}")
        values[key] = value
    return RefreshConfig(**values)


def _section(raw: Any, path: Path, name: str, known: tuple[str, ...]) -> dict:
    """A section's table with only ``known`` keys, else a ConfigError naming the others."""
    raw = _table(raw, path, name)
    unknown = set(raw) - set(known)
    if unknown:
        raise ConfigError(f"{path}: {name}: unknown key(s) {', '.join(sorted(unknown))}; expected {', '.join(known)}")
    return raw


def _parse_training(raw: Any, path: Path) -> TrainingConfig:
    if raw is None:
        return TrainingConfig()
    raw = _section(raw, path, "training", ("max_customers",))
    value = raw.get("max_customers", TrainingConfig.max_customers)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{path}: training.max_customers {value!r} must be a whole number >= 0 (0: everyone)")
    return TrainingConfig(max_customers=value)


def _parse_model(raw: Any, path: Path) -> ModelSettings:
    if raw is None:
        return ModelSettings()
    raw = _section(raw, path, "model", ("btyd", "learning_rate", "n_estimators", "num_leaves", "min_child_samples"))
    btyd = raw.get("btyd")
    if btyd is not None and btyd not in MODEL_BTYD:
        raise ConfigError(f"{path}: model.btyd {btyd!r} must be one of {', '.join(MODEL_BTYD)}")
    rate = raw.get("learning_rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 < rate <= 1):
        raise ConfigError(f"{path}: model.learning_rate {rate!r} must be a number above 0 and at most 1")
    whole = {}
    for key, least in (("n_estimators", 1), ("num_leaves", 2), ("min_child_samples", 1)):
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            raise ConfigError(f"{path}: model.{key} {value!r} must be a whole number >= {least}")
        whole[key] = value
    return ModelSettings(btyd=btyd, learning_rate=None if rate is None else float(rate), **whole)


def _parse_tracking(raw: Any, path: Path) -> TrackingSettings:
    if raw is None:
        return TrackingSettings()
    raw = _table(raw, path, "tracking")
    unknown = set(raw) - {"uri"}
    if unknown:
        raise ConfigError(f"{path}: tracking: unknown key(s) {', '.join(sorted(unknown))}; expected uri")
    uri = raw.get("uri")
    if not isinstance(uri, str) or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:", uri.strip()):
        raise ConfigError(f"{path}: tracking.uri {uri!r} must be an MLflow tracking URI such as "
                          "\"sqlite:///mlruns/mlflow.db\" or \"http://mlflow:5000\"")
    uri = uri.strip()
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/") and uri != prefix + ":memory:":
        uri = prefix + str(_resolve(path.parent, uri[len(prefix):]).resolve())
    return TrackingSettings(uri=uri)


_CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


def _parse_currency(raw: Any, path: Path) -> CurrencyConfig:
    if raw is None:
        return CurrencyConfig()
    raw = _table(raw, path, "currency")
    unknown = set(raw) - {"base", "rates"}
    if unknown:
        raise ConfigError(f"{path}: currency: unknown key(s) {', '.join(sorted(unknown))}; expected base, rates")
    base = raw.get("base")
    if not isinstance(base, str) or not _CURRENCY_CODE.match(base):
        raise ConfigError(f"{path}: currency.base must be a three-letter ISO 4217 code such as \"ILS\"")
    rates = _table(raw.get("rates", {}), path, "currency.rates")
    for code, rate in rates.items():
        if not _CURRENCY_CODE.match(code):
            raise ConfigError(f"{path}: currency.rates.{code}: not a three-letter ISO 4217 code")
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not rate > 0 or rate == float("inf"):
            raise ConfigError(f"{path}: currency.rates.{code} must be a positive number "
                              f"(units of {base} per 1 {code})")
    return CurrencyConfig(base=base, rates=MappingProxyType({k: float(v) for k, v in rates.items()}))


def _parse_source(raw: Any, path: Path, base: Path, index: int) -> SourceConfig:
    where = f"{path}: sources[{index}]"
    raw = _table(raw, path, f"sources[{index}]")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: 'name' is required (a unique string)")
    where = f"{path}: source {name!r}"
    if ":" in name:
        raise ConfigError(f"{where}: a source name cannot contain ':' (it separates source and key in order ids)")
    unknown = set(raw) - _SOURCE_KEYS
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
                          f"expected some of {', '.join(sorted(_SOURCE_KEYS))}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
    file = raw.get("path")
    if not isinstance(file, str) or not file:
        raise ConfigError(f"{where}: 'path' is required (a CSV or Parquet file)")
    columns = raw.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ConfigError(f"{where}: [sources.columns] is required: canonical field = column name in the file")
    for canonical, column in columns.items():
        if not isinstance(column, str) or not column:
            raise ConfigError(f"{where}: columns.{canonical} must be a column name (a non-empty string)")
    problem = check_columns(kind, columns)
    if problem:
        raise ConfigError(f"{where}: {problem}")

    region = raw.get("default_phone_region")
    if region is not None:
        if not isinstance(region, str) or region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(f"{where}: default_phone_region {region!r} is not an ISO country code "
                              "phonenumbers knows (e.g. 'PS', 'US')")
        region = region.upper()
    timestamp_format = raw.get("timestamp_format")
    if timestamp_format is not None and (not isinstance(timestamp_format, str) or "%" not in timestamp_format):
        raise ConfigError(f"{where}: timestamp_format {timestamp_format!r} must be a strftime pattern such as '%Y%m%d'")
    timezone = raw.get("timezone", "UTC")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: timezone {timezone!r} is not an IANA zone "
                          "such as 'Asia/Hebron' or 'UTC'") from None
    delimiter = raw.get("delimiter", ",")
    if not isinstance(delimiter, str) or not (delimiter == "whitespace" or len(delimiter) == 1):
        raise ConfigError(f"{where}: delimiter must be one character (',' ';' '|' '\\t') or \"whitespace\"")
    header = raw.get("header", True)
    if not isinstance(header, bool):
        raise ConfigError(f"{where}: header must be true or false")
    names = raw.get("names", [])
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(f"{where}: names must be a list of column names")
    if not header and not names:
        raise ConfigError(f"{where}: header = false needs names = [...] to say what the columns are")
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: names repeats a column name")
    namespace = raw.get("customer_key_namespace")
    if namespace is not None and (not isinstance(namespace, str) or not namespace):
        raise ConfigError(f"{where}: customer_key_namespace must be a source name")
    # Without a key, an edited row looks like a new one: such a file is read whole by default.
    mode = raw.get("mode", "upsert" if "source_key" in columns else "replace")
    if mode not in _MODES:
        raise ConfigError(f"{where}: mode {mode!r} is not one of {', '.join(_MODES)}")
    return SourceConfig(
        name=name,
        kind=kind,
        path=_resolve(base, file),
        columns=MappingProxyType(dict(columns)),
        default_phone_region=region,
        timestamp_format=timestamp_format,
        timezone=str(timezone),
        delimiter=delimiter,
        header=header,
        names=tuple(names),
        customer_key_namespace=namespace,
        mode=mode,
    )


def _table(value: Any, path: Path, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: {where} must be a table")
    return value


def _resolve(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base / p)
