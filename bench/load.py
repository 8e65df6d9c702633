"""A load client for the serving benchmark, run as its own process on loopback.

    python -m bench.load --url http://127.0.0.1:3000/score --ids ids.txt --clients 16 \\
        --requests 5000 --seconds 60 [--key KEY]

Each of ``--clients`` clients sends ``POST {"customer_id": ...}`` requests one after the
other on its own keep-alive connection (aiohttp), ids drawn in turn from ``--ids``, until
``--requests`` have been sent in all or ``--seconds`` have passed. ``--warmup`` requests
go first and are not counted. Prints one JSON object: requests, errors (any status but
200, or a failed connection), wall seconds, throughput and latency percentiles in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import time
from pathlib import Path

import aiohttp
import numpy as np


async def _client(session: aiohttp.ClientSession, url: str, ids, budget: dict, latencies: list, errors: list,
                  headers: dict) -> None:
    while budget["left"] > 0 and time.perf_counter() < budget["deadline"]:
        budget["left"] -= 1
        body = json.dumps({"customer_id": next(ids)}).encode()
        start = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                ok = response.status == 200
                status = response.status
        except aiohttp.ClientError as exc:
            ok, status = False, type(exc).__name__
        latencies.append(time.perf_counter() - start)
        if not ok:
            errors.append(status)


async def run(url: str, ids: list[str], clients: int, requests: int, seconds: float, key: str | None,
              warmup: int = 200) -> dict:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    cycle = itertools.cycle(ids)
    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm: list = []
        await _client(session, url, cycle, {"left": warmup, "deadline": time.perf_counter() + seconds}, warm, [],
                      headers)
        latencies: list[float] = []
        errors: list = []
        budget = {"left": requests, "deadline": time.perf_counter() + seconds}
        start = time.perf_counter()
        await asyncio.gather(*(_client(session, url, cycle, budget, latencies, errors, headers)
                               for _ in range(clients)))
        wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "clients": clients, "requests": len(latencies), "errors": len(errors),
        "error_kinds": sorted({str(e) for e in errors})[:5], "seconds": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2), "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2), "max_ms": round(float(ms.max()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--ids", type=Path, required=True, help="One customer id per line.")
    parser.add_argument("--clients", type=int, default=1)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--key")
    args = parser.parse_args()
    ids = [line for line in args.ids.read_text().splitlines() if line]
    print(json.dumps(asyncio.run(run(args.url, ids, args.clients, args.requests, args.seconds, args.key,
                                     args.warmup))))


if __name__ == "__main__":
    main()
