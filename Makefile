# The README's first two commands are `make demo` and `make test`; both build .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO := demo

.PHONY: setup demo test lint serve bench clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cdp-ml needs Python >= 3.11")'
	@./scripts/system-packages java openjdk-17-jre-headless "Java 17: the Spark engine (cdp features --engine spark and its tests)"
	@./scripts/system-packages chromium chromium "Chromium: the tests that open the HTML report and attribution pages"
	@./scripts/system-packages redis-server redis-server "Redis: the shared online store ([online_store] url) and its tests"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

demo: setup
	@rm -rf $(DEMO)
	$(BIN)/cdp sample --customers 3000 --seed 7 --out $(DEMO)
	$(BIN)/cdp ingest --config $(DEMO)/cdp.toml
	$(BIN)/cdp unify --config $(DEMO)/cdp.toml
	$(BIN)/cdp status --config $(DEMO)/cdp.toml
	$(BIN)/cdp features --config $(DEMO)/cdp.toml --as-of $$(date -u -d yesterday +%F) --out $(DEMO)/features.parquet
	$(BIN)/cdp train all --config $(DEMO)/cdp.toml --horizon-days 90
	$(BIN)/cdp features --config $(DEMO)/cdp.toml --materialize
	$(BIN)/cdp score --config $(DEMO)/cdp.toml --horizon-days 90 --out $(DEMO)/scores.parquet
	$(BIN)/cdp churn-list --config $(DEMO)/cdp.toml --top 200 --out $(DEMO)/churn-list.xlsx
	$(BIN)/cdp report --config $(DEMO)/cdp.toml --out $(DEMO)/report.html
	$(BIN)/cdp attribution --config $(DEMO)/cdp.toml --out $(DEMO)/attribution.html
	$(BIN)/cdp refresh --config $(DEMO)/cdp.toml
	$(BIN)/cdp audience --config $(DEMO)/cdp.toml --band high --format meta --out $(DEMO)/audience-high-risk.meta.csv
	@$(BIN)/python -c "import csv; rows = sorted(csv.DictReader(open('$(DEMO)/truth/channels.csv')), key=lambda r: -float(r['true_share'])); print('the sample shop\'s true channel shares (conversions each channel causes; the generator\'s truth):', ', '.join(f\"{r['channel']} {float(r['true_share']):.0%}\" for r in rows))"
	@echo "churn-risk list: $(DEMO)/churn-list.xlsx   marketing report: $(DEMO)/report.html   attribution: $(DEMO)/attribution.html   Meta audience: $(DEMO)/audience-high-risk.meta.csv"
	@echo "MLflow: $(BIN)/mlflow ui --backend-store-uri sqlite:///$(DEMO)/cdp.mlflow/mlflow.db  (then http://127.0.0.1:5000)"

test: setup
	$(BIN)/python -m pytest -q

# make lint: ruff (style and mistakes), the layer contracts of pyproject.toml, and mypy.
lint: setup
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy

# make serve [CONFIG=path/cdp.toml] [PORT=3000]: the scoring service on the demo shop by default (after make demo).
serve: setup
	$(BIN)/cdp serve --config $(or $(CONFIG),$(DEMO)/cdp.toml) --port $(or $(PORT),3000)

# make bench: every benchmark, in the order the data flows (each prints its figures; BENCHMARKS.md
# says what each one measures and its floor). About an hour and a half on a 2-core machine.
BENCHMARKS := ingest_unify features training serving attribution cdnow_backtest

bench: setup
	@for b in $(BENCHMARKS); do echo "== bench.$$b"; $(BIN)/python -m bench.$$b || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO) bench/out .pytest_cache
