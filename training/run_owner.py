"""Which process runs an MLflow run, and closing the runs whose process is gone.

MLflow marks a run FINISHED or FAILED when the ``with mlflow.start_run()`` block ends. A
`cdp train` killed inside that block (kill -9, the OOM killer, a power cut) leaves its
run RUNNING forever, which reads as a training still under way. Every run cdp-ml starts
carries the tag ``cdp.process`` (host, process id and the process's start time, so a
reused process id is not taken for the same process); the next training in the same
experiment marks the runs whose process is gone FAILED, with a tag saying why.

A run started on another host, or without the tag (by another tool), is left alone:
nothing here can tell whether it is still running.
"""

from __future__ import annotations

import os
import socket

import psutil
from mlflow import MlflowClient

OWNER_TAG = "cdp.process"
ENDED_TAG = "cdp.ended"
ENDED_NOTE = ("the process that ran it was gone before the run ended (killed or crashed); marked FAILED by a later "
              "cdp train")


def owner_tag(pid: int | None = None) -> str:
    """``host:pid:start time`` of process ``pid`` (default: this one)."""
    pid = os.getpid() if pid is None else pid
    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.2f}"


def owner_gone(tag: str) -> bool:
    """True when ``tag`` names a process of this host that no longer runs (or whose id now
    belongs to another process); False when it runs, or the tag is another host's or unreadable."""
    parts = tag.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname():
        return False
    try:
        pid, started = int(parts[1]), float(parts[2])
    except ValueError:
        return False
    try:
        return abs(psutil.Process(pid).create_time() - started) > 0.01
    except psutil.NoSuchProcess:
        return True
    except psutil.Error:  # no permission to look: it exists
        return False


def close_abandoned(client: MlflowClient, experiment_id: str) -> list[str]:
    """Mark FAILED the RUNNING runs of ``experiment_id`` whose process is gone; their ids."""
    closed = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'",
                                  max_results=1000):
        tag = run.data.tags.get(OWNER_TAG)
        if tag and owner_gone(tag):
            client.set_tag(run.info.run_id, ENDED_TAG, ENDED_NOTE)
            client.set_terminated(run.info.run_id, status="FAILED")
            closed.append(run.info.run_id)
    return closed
