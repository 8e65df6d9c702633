"""`bentoml build` packages the service with every project module it imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cdp", "store", "profiles", "features", "training", "serving")


@pytest.mark.slow
def test_bentoml_build_packages_every_module_the_service_imports(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "true"}
    built = subprocess.run([sys.executable, "-m", "bentoml", "build", str(ROOT)], env=env, cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout + built.stderr
    (bento,) = [p for p in (tmp_path / "bentoml" / "bentos" / "cdp-scoring").iterdir() if p.name != "latest"]
    packaged = {p.relative_to(bento / "src").as_posix() for p in (bento / "src").rglob("*") if p.is_file()}
    # What importing the service pulls in from this project (run apart: the test process has more loaded).
    imported = subprocess.run(
        [sys.executable, "-c", "import sys, serving.service; print('\\n'.join(sorted(m.__file__ for m in "
         f"list(sys.modules.values()) if getattr(m, '__file__', None) and m.__name__.split('.')[0] in {PACKAGES!r})))"],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    needed = {Path(f).resolve().relative_to(ROOT).as_posix() for f in imported.stdout.split()}
    assert needed and needed <= packaged, sorted(needed - packaged)
    assert not any(p.startswith("tests/") for p in packaged)
    manifest = yaml.safe_load((bento / "bento.yaml").read_text())
    assert manifest["service"] == "serving.service:ScoringService"
    assert manifest["services"][0]["config"]["workers"] == 1


def _lock_names(path: Path) -> set[str]:
    from packaging.utils import canonicalize_name

    return {canonicalize_name(line.split("==")[0]) for line in path.read_text().splitlines()
            if line.strip() and not line.startswith("#")}


def test_the_bento_installs_the_runtime_lock_current_and_without_dev_or_spark_packages():
    bentofile = yaml.safe_load((ROOT / "bentofile.yaml").read_text())
    assert bentofile["python"]["requirements_txt"] == "./requirements-runtime.lock"
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "lock-runtime"), "--check"],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    runtime = _lock_names(ROOT / "requirements-runtime.lock")
    assert not runtime & {"pytest", "playwright", "schemathesis", "hypothesis", "pyspark", "py4j"}
    assert runtime < _lock_names(ROOT / "requirements.lock")


def test_every_package_the_service_imports_is_in_the_runtime_lock():
    """Imported apart (the test process has more loaded); pyspark is only tried by MLflow
    (`mlflow.data` imports it when present) and ``_distutils_hack`` is setuptools' start-up hook."""
    from packaging.utils import canonicalize_name

    imported = subprocess.run(
        [sys.executable, "-c", "import sys, json, serving.service; from importlib.metadata import "
         "packages_distributions as p; d = p(); print(json.dumps(sorted({x for m in list(sys.modules) "
         "if m.split('.')[0] != '_distutils_hack' for x in d.get(m.split('.')[0], [])})))"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    import json

    needed = {canonicalize_name(n) for n in json.loads(imported.stdout)} - {"cdp-ml", "pyspark", "py4j"}
    assert needed and needed <= _lock_names(ROOT / "requirements-runtime.lock"), sorted(
        needed - _lock_names(ROOT / "requirements-runtime.lock"))
