"""The soak's clients, one driver per transport, through the public API only.

Each driver runs, until told to stop, a PlaceOS client with 50 bindings and a
stream of execs, and a Mews client reading numbered events. What they see goes to
an `Observed`, which checks the invariants that can be checked as things arrive
(values never go back, events in order and never twice, each gap after a
`Reconnected`, every exec right or a documented error within its timeout).
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from protocore.backoff import Backoff
from protocore.errors import ConnectionLost
from protocore.mews import DeviceCommandEvent, Reconnected
from protocore.placeos.exceptions import RequestTimeout

__all__ = ["BINDINGS", "EXEC_TIMEOUT", "MOD", "SYS", "Observed", "Urls", "run_clients"]

SYS, MOD = "sys-soak", "Counter"
BINDINGS = 50
API_KEY = "soak-api-key"
CLIENT_TOKEN, ACCESS_TOKEN = "soak-client-token", "soak-access-token"
EXEC_TIMEOUT = 3.0
EXEC_SLACK = 1.5
"""An exec may take its timeout plus this (a loaded machine) before it is a violation."""

_CONNECTION = {
    "connect_timeout": 3.0,
    "close_timeout": 1.0,
    "keepalive_interval": 1.0,
    "keepalive_timeout": 2.0,
}


def _backoff() -> Backoff:
    return Backoff(base=0.05, cap=0.5)


def _placeos_options() -> dict[str, Any]:
    return {
        "api_key": API_KEY,
        "reconnect": _backoff(),
        "exec_timeout": EXEC_TIMEOUT,
        "heartbeat_interval": 1.5,
        "heartbeat_timeout": 3.0,
        **_CONNECTION,
    }


def _mews_options() -> dict[str, Any]:
    return {
        "client_token": CLIENT_TOKEN,
        "access_token": ACCESS_TOKEN,
        "reconnect": _backoff(),
        **_CONNECTION,
    }


@attrs.frozen
class Urls:
    placeos: str
    mews: str


@attrs.define
class Observed:
    """What the clients saw; the checks that hold at every item."""

    latest: list[Any] = attrs.field(factory=lambda: [None] * BINDINGS)
    mews_last: int = -1
    mews_events: int = 0
    mews_reconnected: int = 0
    mews_gaps: int = 0
    execs_ok: int = 0
    execs_documented_errors: int = 0
    tasks: int | None = None
    violations: list[str] = attrs.field(factory=list)
    _after_reconnect: bool = False
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def violation(self, text: str) -> None:
        with self._lock:
            if len(self.violations) < 100:
                self.violations.append(text)

    def value(self, index: int, value: Any) -> None:
        previous = self.latest[index]
        if not isinstance(value, int) or (previous is not None and value < previous):
            self.violation(f"binding v{index}: {value!r} after {previous!r}")
        self.latest[index] = value

    def mews(self, item: Any) -> None:
        if isinstance(item, Reconnected):
            self.mews_reconnected += 1
            self._after_reconnect = True
            return
        if not isinstance(item, DeviceCommandEvent):
            self.violation(f"mews: unexpected item {type(item).__name__}")
            return
        number = int(item.id.removeprefix("evt-"))
        last = self.mews_last
        if number <= last:
            self.violation(f"mews: event {number} after {last} (out of order or twice)")
        elif number > last + 1 and last >= 0:
            if not self._after_reconnect:
                self.violation(f"mews: events {last + 1}..{number - 1} missing, no Reconnected")
            self.mews_gaps += 1
        self._after_reconnect = False
        self.mews_last = max(last, number)
        self.mews_events += 1

    def exec_done(self, ok: bool, elapsed: float, error: BaseException | None) -> None:
        if elapsed > EXEC_TIMEOUT + EXEC_SLACK:
            self.violation(f"exec took {elapsed:.1f} s (timeout {EXEC_TIMEOUT} s)")
        if ok:
            self.execs_ok += 1
        elif isinstance(error, ConnectionLost | RequestTimeout):
            self.execs_documented_errors += 1
        else:
            self.violation(f"exec: {type(error).__name__}: {error}")


def _check_sum(observed: Observed, a: int, b: int, result: Any, elapsed: float) -> None:
    if result != a + b:
        observed.violation(f"exec add({a}, {b}) returned {result!r}")
    observed.exec_done(True, elapsed, None)


# -- trio and asyncio: the same code over a small runtime shim -------------------------


class _Runtime:
    """What the async drivers need from trio or asyncio."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def sleep(self, seconds: float) -> None:
        if self.name == "trio":
            import trio

            await trio.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    def tasks(self) -> int:
        if self.name == "trio":
            import trio

            def count(task: Any) -> int:
                return 1 + sum(count(t) for n in task.child_nurseries for t in n.child_tasks)

            return count(trio.lowlevel.current_root_task())
        return len(asyncio.all_tasks())

    def run(self, main: Callable[[], Awaitable[None]]) -> None:
        if self.name == "trio":
            import trio

            trio.run(main)
        else:
            asyncio.run(main())  # type: ignore[arg-type]


async def _run_async(rt: _Runtime, urls: Urls, observed: Observed, stop: threading.Event) -> None:
    mod = importlib.import_module(f"transports.{rt.name}")
    spawned: list[Callable[[], Awaitable[None]]] = []

    async with (
        mod.connect_placeos(urls.placeos, **_placeos_options()) as client,
        mod.connect_mews(urls.mews, **_mews_options()) as events,
    ):

        async def binding(index: int) -> None:
            while True:
                try:
                    async with client.bind(SYS, MOD, f"v{index}") as values:
                        async for value in values:
                            observed.value(index, value)
                    observed.violation(f"binding v{index}: the iteration ended")
                    return
                except (ConnectionLost, RequestTimeout):
                    await rt.sleep(0.1)

        async def execs() -> None:
            n = 0
            while True:
                n += 1
                start = time.monotonic()
                try:
                    result = await client.exec(SYS, MOD, "add", n, 1)
                except Exception as error:
                    observed.exec_done(False, time.monotonic() - start, error)
                    await rt.sleep(0.1)
                    continue
                _check_sum(observed, n, 1, result, time.monotonic() - start)
                await rt.sleep(0.02)

        async def mews() -> None:
            async for item in events:
                observed.mews(item)
            observed.violation("mews: the iteration ended")

        async def watch() -> None:
            while not stop.is_set():
                observed.tasks = rt.tasks()
                await rt.sleep(0.2)

        spawned = [*(lambda i=i: binding(i) for i in range(BINDINGS)), execs, mews]
        if rt.name == "trio":
            import trio

            async with trio.open_nursery() as nursery:
                for fn in spawned:
                    nursery.start_soon(fn)
                await watch()
                nursery.cancel_scope.cancel()
        else:
            tasks = [asyncio.create_task(fn()) for fn in spawned]  # type: ignore[arg-type]
            await watch()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


# -- sync: threads ---------------------------------------------------------------------


def _run_sync(urls: Urls, observed: Observed, stop: threading.Event) -> None:
    from transports import sync

    with (
        sync.connect_placeos(urls.placeos, **_placeos_options()) as client,
        sync.connect_mews(urls.mews, **_mews_options()) as events,
    ):

        def binding(index: int) -> None:
            while not stop.is_set():
                try:
                    with client.bind(SYS, MOD, f"v{index}") as values:
                        for value in values:
                            observed.value(index, value)
                    if not stop.is_set():
                        observed.violation(f"binding v{index}: the iteration ended")
                    return
                except (ConnectionLost, RequestTimeout):
                    if stop.is_set():
                        return
                    time.sleep(0.1)

        def execs() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                start = time.monotonic()
                try:
                    result = client.exec(SYS, MOD, "add", n, 1)
                except Exception as error:
                    if not stop.is_set():
                        observed.exec_done(False, time.monotonic() - start, error)
                    time.sleep(0.1)
                    continue
                _check_sum(observed, n, 1, result, time.monotonic() - start)
                time.sleep(0.02)

        def mews() -> None:
            for item in events:
                observed.mews(item)
            if not stop.is_set():
                observed.violation("mews: the iteration ended")

        threads = [
            threading.Thread(target=binding, args=(i,), name=f"soak-bind-{i}")
            for i in range(BINDINGS)
        ]
        threads += [
            threading.Thread(target=execs, name="soak-exec"),
            threading.Thread(target=mews, name="soak-mews"),
        ]
        for thread in threads:
            thread.start()
        stop.wait()
        client.close()
        events.close()
        for thread in threads:
            thread.join(10)
            if thread.is_alive():
                observed.violation(f"{thread.name} did not end after close")


def run_clients(transport: str, urls: Urls, observed: Observed, stop: threading.Event) -> None:
    """Run the clients of ``transport`` until ``stop`` is set (call in a thread)."""
    try:
        if transport == "sync":
            _run_sync(urls, observed, stop)
        else:
            rt = _Runtime(transport)
            rt.run(lambda: _run_async(rt, urls, observed, stop))
    except BaseException as error:
        observed.violation(f"{transport} clients raised {type(error).__name__}: {error}")
