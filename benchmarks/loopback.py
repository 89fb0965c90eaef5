"""Case 4: events per second over a real socket, each transport against websockets.

One fake server (`fake_server`, in its own process) streams 4-event Mews envelopes;
each client connects, counts events until it has ``events``, and reports how many per
second arrived after the first one (the handshake is not timed). The clients run in
alternating rounds (trio, asyncio, sync, websockets, trio, ...) and the median per
client is kept. A transport without a Mews client is reported as missing, not run.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import trio
import websockets.asyncio.client

import transports.asyncio
import transports.sync
import transports.trio

__all__ = ["CLIENTS", "loopback"]

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


def _trio(port: int, events: int) -> float:
    async def run() -> float:
        connect = transports.trio.connect_mews
        async with connect(_url(port), **_OPTIONS) as it:
            count = 0
            start = 0.0
            async for _ in it:
                count += 1
                if count == 1:
                    start = time.perf_counter()
                elif count >= events:
                    break
            return (count - 1) / (time.perf_counter() - start)

    return trio.run(run)


def _asyncio(port: int, events: int) -> float:
    async def run() -> float:
        connect = transports.asyncio.connect_mews
        async with connect(_url(port), **_OPTIONS) as it:
            count = 0
            start = 0.0
            async for _ in it:
                count += 1
                if count == 1:
                    start = time.perf_counter()
                elif count >= events:
                    break
            return (count - 1) / (time.perf_counter() - start)

    return asyncio.run(run())


def _sync(port: int, events: int) -> float:
    connect = transports.sync.connect_mews
    with connect(_url(port), **_OPTIONS) as it:
        count = 0
        start = 0.0
        for _ in it:
            count += 1
            if count == 1:
                start = time.perf_counter()
            elif count >= events:
                break
        return (count - 1) / (time.perf_counter() - start)


def _websockets(port: int, events: int) -> float:
    async def run() -> float:
        connect = websockets.asyncio.client.connect
        loads = json.loads
        headers = {"Cookie": _COOKIE}
        async with connect(
            _url(port), additional_headers=headers, ping_interval=None, close_timeout=0.2
        ) as ws:
            count = 0
            start = 0.0
            async for message in ws:
                batch = len(loads(message)["Events"])
                if count == 0:
                    start = time.perf_counter()
                    batch -= 1  # the first event starts the clock, as for the others
                count += batch
                if count >= events:
                    break
            return count / (time.perf_counter() - start)

    return asyncio.run(run())


#: Client name -> (the module that must offer ``connect_mews``, the runner).
CLIENTS: dict[str, tuple[Any, Callable[[int, int], float]]] = {
    "trio": (transports.trio, _trio),
    "asyncio": (transports.asyncio, _asyncio),
    "sync": (transports.sync, _sync),
    "websockets": (None, _websockets),
}


def loopback(port: int, *, events: int, rounds: int) -> dict[str, float | str]:
    """Median events per second per client; a reason string where a client could not run."""
    results: dict[str, float | str] = {}
    runnable = {}
    for name, (module, runner) in CLIENTS.items():
        if module is not None and not hasattr(module, "connect_mews"):
            results[name] = "n/a: no connect_mews in this transport"
        else:
            runnable[name] = runner
    samples: dict[str, list[float]] = {name: [] for name in runnable}
    for _ in range(rounds):
        for name, runner in runnable.items():
            if name in results:
                continue  # failed in an earlier round
            try:
                samples[name].append(runner(port, events))
            except Exception as exc:
                results[name] = f"n/a: {type(exc).__name__}: {exc}"
    for name, values in samples.items():
        if name not in results and values:
            results[name] = statistics.median(values)
    return results
