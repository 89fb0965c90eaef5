"""Case 5: many idle Mews clients in one process: memory per connection, keepalive CPU.

Measured for protocore's three transports and for the peers a user would pick instead
(websockets' asyncio, trio and sync clients; picows), each with its own keepalive
pinging every ``interval``. The blocking clients (protocore's sync transport and
websockets' sync client) hold one thread per connection, so they are measured at a
tenth of the count (1,000 in the full run).

Each measurement runs in a fresh interpreter (``python -m benchmarks.scale TRANSPORT
COUNT ...``, which prints one JSON object), so the RSS it reports is not inflated by
the other cases' garbage. It raises the open-file limit to the hard limit, opens
``COUNT`` connections to the idle fake server (at most ``_OPENING`` handshakes at a
time), and reports:

- ``kib_per_connection``: RSS growth from one open connection to all of them, over
  the connections added (the first one pays for imports and warm caches);
- ``cpu_percent`` and ``us_per_ping``: the process CPU time over a quiet window in
  which every connection sends a keepalive ping every ``interval`` seconds.

When opening stops short (file limit, timeouts), the figures are for the largest
number reached, which is reported as ``reached``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trio

import transports.asyncio
import transports.sync
import transports.trio

from .clients import COOKIE

__all__ = ["BLOCKING", "TRANSPORTS", "measure"]

TRANSPORTS = (
    "trio",
    "asyncio",
    "sync",
    "websockets asyncio",
    "websockets trio",
    "websockets sync",
    "picows",
)
BLOCKING = frozenset({"sync", "websockets sync"})  # a thread per connection
_OPENING = 100  # handshakes in flight at once: a burst of thousands overflows the backlog
_TOKENS = {"client_token": "client-token", "access_token": "access-token"}


def _rss_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # pragma: no cover


def _raise_file_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Tally:
    """What the opening tasks report back."""

    def __init__(self, count: int) -> None:
        self.open = 0
        self.failed = 0
        self.skipped = 0
        self.error = ""
        # Opening stops after this long (monotonic seconds), and the figures are for
        # the connections reached by then: thousands of handshakes on a loaded machine,
        # while the first connections already send keepalives, can take minutes.
        self.deadline = time.monotonic() + _opening_budget(count)

    def late(self) -> bool:
        if time.monotonic() > self.deadline:
            self.skipped += 1
            if not self.error:
                self.error = "stopped opening: time budget spent"
            return True
        return False

    @property
    def settled(self) -> int:
        return self.open + self.failed + self.skipped


def _opening_budget(count: int) -> float:
    return 30.0 + count / 50


def _options(interval: float) -> dict[str, Any]:
    return {
        **_TOKENS,
        "reconnect": False,
        "keepalive_interval": interval,
        "keepalive_timeout": 60.0,
        "connect_timeout": 30.0,
        "close_timeout": 1.0,
    }


def _figures(  # noqa: PLR0917 - one measurement's numbers
    count: int, tally: _Tally, base_rss: int, cpu: float, window: float, interval: float
) -> dict[str, Any]:
    added = tally.open - 1
    rss = _rss_kib()
    pings = tally.open * window / interval
    return {
        "requested": count,
        "reached": tally.open,
        "failed": tally.failed,
        "skipped": tally.skipped,
        "error": tally.error,
        "rss_kib": rss,
        "kib_per_connection": (rss - base_rss) / added if added > 0 else None,
        "cpu_percent": 100 * cpu / window,
        "us_per_ping": 1e6 * cpu / pings if pings else None,
        "window_s": window,
        "interval_s": interval,
    }


def _websockets_options(interval: float) -> dict[str, Any]:
    return {
        "additional_headers": {"Cookie": COOKIE},
        "ping_interval": interval,
        "ping_timeout": 60.0,
        "open_timeout": 30.0,
        "close_timeout": 1.0,
        "compression": None,
        "proxy": None,
    }


def _trio_opener(name: str, url: str, interval: float) -> Any:
    """An async context manager holding one connection open."""
    if name == "trio":
        return transports.trio.connect_mews(url, **_options(interval))
    import websockets.trio.client

    return websockets.trio.client.connect(url, **_websockets_options(interval))


class _Picows:
    """picows as an async context manager, with its own keepalive."""

    def __init__(self, url: str, interval: float) -> None:
        self.url = url
        self.interval = interval
        self.transport: Any = None

    async def __aenter__(self) -> _Picows:
        import picows

        self.transport, _ = await picows.ws_connect(
            picows.WSListener,
            self.url,
            extra_headers={"Cookie": COOKIE},
            enable_auto_ping=True,
            auto_ping_idle_timeout=self.interval,
            auto_ping_reply_timeout=self.interval,  # picows wants it within the idle time
            websocket_handshake_timeout=30.0,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        self.transport.send_close()
        self.transport.disconnect()
        await self.transport.wait_disconnected()


def _asyncio_opener(name: str, url: str, interval: float) -> Any:
    if name == "asyncio":
        return transports.asyncio.connect_mews(url, **_options(interval))
    if name == "picows":
        return _Picows(url, interval)
    import websockets.asyncio.client

    return websockets.asyncio.client.connect(url, **_websockets_options(interval))


def _sync_opener(name: str, url: str, interval: float) -> Any:
    """Connects (the blocking clients connect when called); a context manager."""
    if name == "sync":
        return transports.sync.connect_mews(url, **_options(interval))
    import websockets.sync.client

    return websockets.sync.client.connect(url, **_websockets_options(interval))


def _trio(name: str, url: str, count: int, interval: float, window: float) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        tally = _Tally(count)
        done = trio.Event()
        gate = trio.Semaphore(_OPENING)
        first = trio.Event()

        async def hold() -> None:
            try:
                async with gate:
                    if tally.late():
                        return
                    cm = _trio_opener(name, url, interval)
                    events = await cm.__aenter__()
            except Exception as exc:
                tally.failed += 1
                tally.error = f"{type(exc).__name__}: {exc}"
                return
            tally.open += 1
            first.set()
            try:
                await done.wait()
            finally:
                with trio.CancelScope(shield=True), contextlib.suppress(Exception):
                    await cm.__aexit__(None, None, None)
            del events

        async with trio.open_nursery() as nursery:
            nursery.start_soon(hold)
            await first.wait()
            gc.collect()
            base = _rss_kib()
            for _ in range(count - 1):
                if tally.failed:
                    break
                nursery.start_soon(hold)
            while tally.settled < count and not (tally.failed and gate.value == _OPENING):
                await trio.sleep(0.05)
            gc.collect()
            start = _cpu()
            await trio.sleep(window)
            cpu = _cpu() - start
            result = _figures(count, tally, base, cpu, window, interval)
            _report(result)
            done.set()
            nursery.cancel_scope.deadline = trio.current_time() + 10
        return result

    return trio.run(main)


def _asyncio(name: str, url: str, count: int, interval: float, window: float) -> dict[str, Any]:
    async def main() -> dict[str, Any]:
        tally = _Tally(count)
        done = asyncio.Event()
        gate = asyncio.Semaphore(_OPENING)
        opened: list[Any] = []

        async def hold() -> None:
            try:
                async with gate:
                    if tally.late():
                        return
                    client = _asyncio_opener(name, url, interval)
                    await client.__aenter__()
            except Exception as exc:
                tally.failed += 1
                tally.error = f"{type(exc).__name__}: {exc}"
                return
            tally.open += 1
            opened.append(client)
            await done.wait()

        tasks = [asyncio.ensure_future(hold())]
        while not tally.open:
            if tally.failed:
                raise RuntimeError(tally.error)
            await asyncio.sleep(0.01)
        gc.collect()
        base = _rss_kib()
        for _ in range(count - 1):
            if tally.failed:
                break
            tasks.append(asyncio.ensure_future(hold()))
            if len(tasks) % _OPENING == 0:
                await asyncio.sleep(0)
        while tally.settled < len(tasks):
            await asyncio.sleep(0.05)
        gc.collect()
        start = _cpu()
        await asyncio.sleep(window)
        cpu = _cpu() - start
        result = _figures(count, tally, base, cpu, window, interval)
        _report(result)
        done.set()
        await asyncio.gather(*tasks)
        await asyncio.wait_for(
            asyncio.gather(
                *(c.__aexit__(None, None, None) for c in opened), return_exceptions=True
            ),
            timeout=30,
        )
        return result

    return asyncio.run(main())


def _sync(name: str, url: str, count: int, interval: float, window: float) -> dict[str, Any]:
    tally = _Tally(count)
    opened: list[Any] = []

    def open_one() -> None:
        try:
            client = _sync_opener(name, url, interval)
            client.__enter__()
        except Exception as exc:
            tally.failed += 1
            tally.error = f"{type(exc).__name__}: {exc}"
            return
        tally.open += 1
        opened.append(client)

    open_one()
    if not tally.open:
        raise RuntimeError(tally.error)
    gc.collect()
    base = _rss_kib()
    for _ in range(count - 1):
        if tally.failed or tally.late():
            break
        open_one()
    gc.collect()
    start = _cpu()
    time.sleep(window)
    cpu = _cpu() - start
    result = _figures(count, tally, base, cpu, window, interval)
    _report(result)
    for client in opened:
        with contextlib.suppress(Exception):
            client.__exit__(None, None, None)
    return result


_RUNNERS: dict[str, Callable[[str, str, int, float, float], dict[str, Any]]] = {
    "trio": _trio,
    "asyncio": _asyncio,
    "sync": _sync,
    "websockets asyncio": _asyncio,
    "websockets trio": _trio,
    "websockets sync": _sync,
    "picows": _asyncio,
}
_PROTOCORE = {"trio": transports.trio, "asyncio": transports.asyncio, "sync": transports.sync}


def measure(
    transport: str, port: int, count: int, *, interval: float, window: float
) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter; the figures, or ``{"error": ...}``."""
    module = _PROTOCORE.get(transport)
    if module is not None and not hasattr(module, "connect_mews"):
        return {"error": f"n/a: no connect_mews in transports.{transport}"}
    args = [transport, str(port), str(count), str(interval), str(window)]
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "benchmarks.scale", *args],
            capture_output=True,
            text=True,
            timeout=_opening_budget(count) + window + 90,
            cwd=Path(__file__).resolve().parent.parent,
            check=False,
        )
    except subprocess.TimeoutExpired as timeout:
        out = timeout.stdout or ""
        text = out.decode() if isinstance(out, bytes) else out
        if not text.strip():
            return {"error": "timed out"}
        late: dict[str, Any] = json.loads(text.strip().splitlines()[-1])
        late["note"] = "measured; the child was stopped while closing its connections"
        return late
    if not proc.stdout.strip():
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"failed: {tail}"}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


_STARTED = time.perf_counter()


def _report(result: dict[str, Any]) -> None:
    """Print the figures as soon as they are known: closing ten thousand connections
    politely can take longer than the parent waits, and is not measured."""
    result["file_limit"] = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    result["seconds"] = time.perf_counter() - _STARTED
    print(json.dumps(result), flush=True)


def _child(argv: list[str]) -> None:
    transport, port, count, interval, window = argv
    _raise_file_limit()
    url = f"ws://127.0.0.1:{int(port)}/ws/connector"
    _RUNNERS[transport](transport, url, int(count), float(interval), float(window))


if __name__ == "__main__":
    _child(sys.argv[1:])
