"""A throwaway Redis server for tests (`bench.redis_server`); a missing ``redis-server`` fails the
test rather than skipping it, so a machine without it cannot pass by not running them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.redis_server import RedisMissing
from bench.redis_server import redis_server as _redis_server


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    try:
        with _redis_server(folder) as url:
            yield url
    except RedisMissing as missing:
        pytest.fail(str(missing))
