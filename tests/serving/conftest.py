"""A trained sample shop and the real scoring service on it, shared by the serving tests.

The shop is built once per session through the CLI, as a user would: `cdp sample`,
`ingest`, `unify`, `train all`, `score` (which writes the feature snapshot the service
reads), with MLflow in a throw-away local store. Each server is `cdp serve` started as a
subprocess in its own session on a free port, and always stopped (its whole process
group) when the fixture ends, even after a failure.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.trained_shop import SHOP_NAME, TrainedShop, run_cli  # noqa: F401  (the serving tests import them from here)

STARTUP_SECONDS = 120
KEY_LINE = re.compile(r"CDP_API_KEY is not set: the API key of this run is in (\S+) \(readable by you only\)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Server:
    """`cdp serve` in a subprocess (its own process group), with a small HTTP client."""

    def __init__(self, shop: TrainedShop, log: Path, tracking_uri: str | None = None, api_key: str | None = None,
                 extra_args: tuple[str, ...] = ()):
        self.port = free_port()
        self.log = log
        env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri or shop.tracking_uri,
               "MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "true"}
        env.pop("CDP_API_KEY", None)
        if api_key is not None:
            env["CDP_API_KEY"] = api_key
        with open(log, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cdp.cli", "serve", "--config", str(shop.config), "--port", str(self.port),
                 *extra_args],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=shop.root, start_new_session=True)
        self.key = api_key

    def wait(self, path: str = "/livez", status: int = 200) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"cdp serve exited with {self.process.returncode}:\n{self.log_text()}")
            try:
                if self.request("GET", path, key=None).status == status:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"cdp serve did not answer {path} with {status} within {STARTUP_SECONDS} s:\n"
                            f"{self.log_text()}")
            time.sleep(0.25)
        if self.key is None:
            found = KEY_LINE.search(self.log_text())
            assert found, f"no generated key file named in the log:\n{self.log_text()}"
            key_file = Path(found.group(1))
            assert key_file.stat().st_mode & 0o777 == 0o600  # the owner's alone
            self.key = key_file.read_text(encoding="utf-8").strip()
            assert self.key not in self.log_text()  # the key itself is never in the log

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def request(self, method: str, path: str, body: object = None, *, key: str | None | bool = True,
                headers: dict[str, str] | None = None, raw: bytes | None = None, timeout: float = 60) -> Response:
        """``body`` is sent as JSON; ``raw`` as it is. ``key=True`` sends the server's key."""
        sent = dict(headers or {})
        token = self.key if key is True else key
        if token:
            sent.setdefault("Authorization", f"Bearer {token}")
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.request(method, path, body=data, headers=sent)
            answer = connection.getresponse()
            return Response(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
        finally:
            connection.close()

    def post(self, path: str, body: object = None, **kwargs) -> Response:
        return self.request("POST", path, body, **kwargs)

    def stop(self) -> None:
        """SIGTERM to the server's process group, SIGKILL if it has not gone after 20 s."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            except ProcessLookupError:
                pass
        # Any worker the server forked into its group goes with it.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@pytest.fixture(scope="module")
def server(trained_shop, tmp_path_factory):
    """The service on the trained shop: no CDP_API_KEY (so it makes one up), polling every 2 s."""
    server = Server(trained_shop, tmp_path_factory.mktemp("serve-log") / "serve.log", extra_args=(
        "--poll-seconds", "2", "--churn-medium", "0.6", "--churn-high", "0.9"))
    try:
        server.wait("/readyz")
        yield server
    finally:
        server.stop()
