# %% [markdown]
# # cdp-ml from Python: CDNOW ingested, evaluated, trained and scored without the CLI
#
# Every `cdp` command is one function of its stage; the CLI only parses arguments, calls it
# and prints. This notebook (a Jupytext "percent" script: open it in Jupyter with Jupytext,
# VS Code or PyCharm, or run it with `python`) does the data scientist's loop on the CDNOW
# file through those functions. Run it from the repository's root, with `../shared` beside
# the clone; `tests/examples/test_notebooks.py` runs it on a 10% sample of the customers.

# %% tags=["parameters"]
CONFIG = "examples/cdnow/cdp.toml"

# %%
import datetime as dt
import uuid

from cdp.config import load_config
from features.engine import store_tables
from marketing.inputs import marketing_inputs
from marketing.lists import ListOptions, churn_list
from profiles.ingest import ingest
from profiles.unify import unify
from store.interface import open_configured, open_store
from training.evaluate import backtest
from training.run import train_store
from training.score import score_store
from training.tracking import store_tracking

config = load_config(CONFIG)
# The store's own MLflow beside it (<store>.mlflow/); {} ignores MLFLOW_TRACKING_URI.
tracking = store_tracking(config, {})
now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)

# %% [markdown]
# ## Ingest and unify: one profile per customer

# %%
with open_configured(config.store) as store:
    ingested = ingest(store, config, now=now, run_id=uuid.uuid4().hex[:12])
    unified = unify(store, config, now=now, run_id=uuid.uuid4().hex[:12])
print(f"{sum(r.accepted for r in ingested):,} orders accepted, {unified.customers:,} customers")

# %% [markdown]
# ## How good would a model trained on 30 September 1997 have been?
#
# `backtest` trains on what was known that day and compares cdp-ml with BG/NBD, Pareto/NBD
# and a recency heuristic on the next 13 weeks (`cdp evaluate`).

# %%
AS_OF = dt.date(1997, 9, 30)
with open_store(config.store.path, read_only=True) as store:
    found = backtest(store_tables(store, config), AS_OF, 91, n_snapshots=7, step_days=14,
                     model_params=config.model.params())
comparison = found.table[["purchase_roc_auc", "purchase_days_mae", "total_ratio"]]
comparison

# %% [markdown]
# ## Train, register and gate the models; score every customer

# %%
trained = train_store(config, tracking, as_of=AS_OF, horizon_days=91, n_snapshots=7, step_days=14)
for result in trained.results:
    print(result.family, "version", result.version, "-", result.decision.reason)

scored = score_store(config, tracking, as_of=AS_OF)
scores = scored.scores
scores.sort_values("churn_probability", ascending=False).head()

# %% [markdown]
# ## The marketer's churn-risk list
#
# CDNOW holds no consent, so the list names customers by id only (`include_no_consent`).

# %%
inputs = marketing_inputs(config, tracking)
at_risk = churn_list(inputs.inputs, ListOptions(top=20, include_no_consent=True, horizon_days=inputs.horizon_days))
at_risk.rows[["customer_id", "churn_probability", "revenue_at_risk"]].head()
