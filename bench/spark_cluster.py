"""A real Spark standalone cluster for the tests and benchmarks: a master and workers, each its own JVM,
started from the installed PySpark (`STACK-NOTES.md`: the PyPI package has ``bin/spark-class``, not ``sbin``), on
free ports, and stopped after. Workers have 1 core and 1 GB each by default."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.redis_server import free_port


@dataclass(frozen=True)
class Cluster:
    """A running cluster: its master URL and the master's JSON status page."""

    url: str
    status_url: str

    def status(self) -> dict:
        """The master's status: ``aliveworkers``, ``cores``, ``activeapps``, ``completedapps`` …"""
        with urllib.request.urlopen(self.status_url, timeout=5) as answer:
            return json.load(answer)


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@contextmanager
def standalone_cluster(folder: Path, workers: int = 2, cores: int = 1, memory: str = "1g",
                       timeout: float = 120) -> Iterator[Cluster]:
    """A running cluster (master ``spark://127.0.0.1:PORT``) with ``workers`` registered."""
    home = _spark_home()
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOG_DIR": str(folder),
           "SPARK_NO_DAEMONIZE": "1"}
    spark_class = str(home / "bin" / "spark-class")
    port, ui = free_port(), free_port()
    processes: list[subprocess.Popen] = []

    def start(args: list[str], log: str) -> None:
        with open(folder / log, "wb") as sink:
            processes.append(subprocess.Popen([spark_class, *args], env=env, stdout=sink, stderr=subprocess.STDOUT,
                                              start_new_session=True))

    try:
        start(["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
               "--webui-port", str(ui)], "master.log")
        url = f"spark://127.0.0.1:{port}"
        cluster = Cluster(url, f"http://127.0.0.1:{ui}/json/")
        for number in range(workers):
            start(["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", str(cores),
                   "--memory", memory, "--webui-port", str(free_port()), "--work-dir", str(folder / f"work-{number}")],
                  f"worker-{number}.log")
        deadline = time.monotonic() + timeout
        while True:
            try:
                if cluster.status().get("aliveworkers", 0) >= workers:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                logs = "\n".join(p.name + ":\n" + p.read_text(errors="replace")[-2000:] for p in folder.glob("*.log"))
                raise RuntimeError(f"the Spark cluster did not start with {workers} workers:\n{logs}")
            time.sleep(0.5)
        yield cluster
    finally:
        for process in reversed(processes):
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
