"""Case 4: events per second over a real socket, each transport against websockets.

One fake server (`fake_server`, in its own process) streams 4-event Mews envelopes;
each client connects, counts events until it has ``events``, and reports how many per
second arrived after the first one (the handshake is not timed), twice: over the wall
clock, and over this process's CPU time (all threads). On an idle machine the client
is the bottleneck and the two agree; on a shared one the wall clock also measures the
scheduler, so the ratios are taken from the CPU figures and the wall ones are shown.
The clients run in alternating rounds (trio, asyncio, sync, websockets, trio, ...)
and the median per client is kept. A transport without a Mews client is reported as
missing, not run.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio
import websockets.asyncio.client

import transports.asyncio
import transports.sync
import transports.trio

__all__ = ["CLIENTS", "loopback", "measure_here"]

_TOKENS = {"client_token": "client-token", "access_token": "access-token"}
# No reconnect, no keepalive (the run is short) and a short close timeout: a client
# that stopped reading cannot see the server's close frame behind the stream, and its
# wait is not part of the measurement.
_OPTIONS: dict[str, Any] = {
    **_TOKENS,
    "reconnect": False,
    "keepalive_interval": None,
    "close_timeout": 0.2,
}
_COOKIE = "ClientToken=client-token; AccessToken=access-token"


def _url(port: int) -> str:
    return f"ws://127.0.0.1:{port}/ws/connector"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


class _Clock:
    """Wall and process CPU time from the first event on."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = _cpu()

    def rates(self, count: int) -> tuple[float, float]:
        """``count`` events over the wall seconds and over the CPU seconds since start."""
        wall = time.perf_counter() - self.wall
        cpu = _cpu() - self.cpu
        return count / wall, (count / cpu if cpu > 0 else float("nan"))


def _trio(port: int, events: int) -> tuple[float, float]:
    async def run() -> tuple[float, float]:
        connect = transports.trio.connect_mews
        async with connect(_url(port), **_OPTIONS) as it:
            count = 0
            clock = None
            async for _ in it:
                count += 1
                if clock is None:
                    clock = _Clock()
                elif count >= events:
                    break
            assert clock is not None
            return clock.rates(count - 1)

    return trio.run(run)


def _asyncio(port: int, events: int) -> tuple[float, float]:
    async def run() -> tuple[float, float]:
        connect = transports.asyncio.connect_mews
        async with connect(_url(port), **_OPTIONS) as it:
            count = 0
            clock = None
            async for _ in it:
                count += 1
                if clock is None:
                    clock = _Clock()
                elif count >= events:
                    break
            assert clock is not None
            return clock.rates(count - 1)

    return asyncio.run(run())


def _sync(port: int, events: int) -> tuple[float, float]:
    connect = transports.sync.connect_mews
    with connect(_url(port), **_OPTIONS) as it:
        count = 0
        clock = None
        for _ in it:
            count += 1
            if clock is None:
                clock = _Clock()
            elif count >= events:
                break
        assert clock is not None
        return clock.rates(count - 1)


def _websockets(port: int, events: int) -> tuple[float, float]:
    async def run() -> tuple[float, float]:
        connect = websockets.asyncio.client.connect
        loads = json.loads
        headers = {"Cookie": _COOKIE}
        async with connect(
            _url(port), additional_headers=headers, ping_interval=None, close_timeout=0.2
        ) as ws:
            count = 0
            clock = None
            async for message in ws:
                batch = len(loads(message)["Events"])
                if clock is None:
                    clock = _Clock()
                    batch -= 1  # the first event starts the clock, as for the others
                count += batch
                if count >= events:
                    break
            assert clock is not None
            return clock.rates(count)

    return asyncio.run(run())


#: Client name -> (the module that must offer ``connect_mews``, the runner).
CLIENTS: dict[str, tuple[Any, Callable[[int, int], tuple[float, float]]]] = {
    "trio": (transports.trio, _trio),
    "asyncio": (transports.asyncio, _asyncio),
    "sync": (transports.sync, _sync),
    "websockets": (None, _websockets),
}


def loopback(port: int, *, events: int, rounds: int) -> dict[str, dict[str, float | str]]:
    """`measure_here`, in a fresh interpreter: the other cases leave a heap behind, and
    the transports keep received events alive until the consumer takes them, so the
    garbage collector's full passes would cost them more than in an application."""
    args = [str(port), str(events), str(rounds)]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.loopback", *args],
        capture_output=True,
        text=True,
        timeout=60 + rounds * len(CLIENTS) * (5 + events / 5000),
        cwd=Path(__file__).resolve().parent.parent,
        check=False,
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        reason = f"n/a: the loopback process failed: {tail}"
        every = dict.fromkeys(CLIENTS, reason)
        return {"wall": dict(every), "cpu": dict(every)}
    result: dict[str, dict[str, float | str]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def measure_here(port: int, *, events: int, rounds: int) -> dict[str, dict[str, float | str]]:
    """Median events per second per client, over the wall clock and over the process's
    CPU time (``"wall"``, ``"cpu"``); a reason string where a client could not run."""
    wall: dict[str, float | str] = {}
    cpu: dict[str, float | str] = {}
    runnable = {}
    for name, (module, runner) in CLIENTS.items():
        if module is not None and not hasattr(module, "connect_mews"):
            wall[name] = cpu[name] = "n/a: no connect_mews in this transport"
        else:
            runnable[name] = runner
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in runnable}
    for _ in range(rounds):
        for name, runner in runnable.items():
            if name in wall:
                continue  # failed in an earlier round
            try:
                samples[name].append(runner(port, events))
            except Exception as exc:
                wall[name] = cpu[name] = f"n/a: {type(exc).__name__}: {exc}"
    for name, values in samples.items():
        if name not in wall and values:
            wall[name] = statistics.median(v[0] for v in values)
            cpu[name] = statistics.median(v[1] for v in values)
    order = list(CLIENTS)
    return {
        "wall": {name: wall[name] for name in order if name in wall},
        "cpu": {name: cpu[name] for name in order if name in cpu},
    }


if __name__ == "__main__":
    port, events, rounds = (int(arg) for arg in sys.argv[1:4])
    print(json.dumps(measure_here(port, events=events, rounds=rounds)))
