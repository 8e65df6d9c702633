"""`bentoml build` packages the service with every project module it imports."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cdp", "profiles", "features", "training", "serving")


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
