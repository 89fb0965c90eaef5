"""Run any adapter's server in a thread, and any adapter's client in one scenario.

Servers: `running_server(kind, protocol, **options)` starts ``serve_placeos`` or
``serve_mews`` of ``transports.<kind>`` in a background thread (its own trio or
asyncio loop, or the blocking adapter's ``with``) on 127.0.0.1:0, yields the
adapter's own handle (its methods are thread-safe by contract) and stops it after.

Clients: a `Client` facade runs one ``async def scenario(client)`` with one adapter:
``trio.run`` for trio, ``asyncio.run`` for asyncio, and ``asyncio.run`` over a thin
async shell for the blocking adapter (its calls simply block). A scenario uses only
the facade (``connect_placeos``, ``connect_mews``, ``within``), so one scenario runs
unchanged against every client kind.

Adapters whose module is missing are skipped (`require`), so suites grow as they land.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import queue
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from types import ModuleType
from typing import Any, Literal

import pytest
import trio

from protocore.driver import READ_SIZE
from protocore.mews import Envelope, MewsEvent, encode_envelope
from protocore.placeos import Exec, MockEngine, PlaceOSServer
from protocore.placeos.models import Command

KINDS = ("trio", "asyncio", "sync")
Kind = Literal["trio", "asyncio", "sync"]
Protocol = Literal["placeos", "mews"]

WAIT = 10.0
"""Upper bound of any single wait in a scenario: generous, only a failing test hits it."""

SYS = "sys-room1"
DISPLAY = "Display"
DISPLAY_ID = "mod-display"
API_KEY = "key-Aa1-not-a-real-key"
BEARER = "tok-Bb2-not-a-real-token"
CLIENT_TOKEN = "CT-Cc3-not-a-real-client-token"
ACCESS_TOKEN = "AT-Dd4-not-a-real-access-token"
SECRETS = (API_KEY, BEARER, CLIENT_TOKEN, ACCESS_TOKEN)


def adapter(kind: str) -> ModuleType | None:
    """``transports.<kind>``, or None when it does not exist (yet)."""
    try:
        return importlib.import_module(f"transports.{kind}")
    except ModuleNotFoundError as exc:
        if exc.name == f"transports.{kind}":
            return None
        raise


def require(kind: str, protocol: Protocol) -> ModuleType:
    """The adapter module, skipping the test when it lacks ``protocol``."""
    module = adapter(kind)
    if module is None:
        pytest.skip(f"transports.{kind} does not exist yet")
    if not hasattr(module, f"connect_{protocol}") or not hasattr(module, f"serve_{protocol}"):
        pytest.skip(f"transports.{kind} has no {protocol} support yet")
    return module


# -- the engine the PlaceOS servers serve ---------------------------------------------


class TestEngine(MockEngine):
    """A `MockEngine` with one method that never answers: ``hang``.

    ``hung`` is set (a threading.Event, so any thread can wait on it) when a ``hang``
    request arrived: a fault test then drops the connection while it is pending.
    """

    __slots__ = ("hung",)
    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        super().__init__()
        self.hung = threading.Event()

    def handle_request(self, server: PlaceOSServer, request: Command) -> None:
        if isinstance(request, Exec) and request.name == "hang":
            self.hung.set()
            return
        super().handle_request(server, request)


def _raise_failure(*_: Any) -> None:
    raise RuntimeError("projector lamp failure")


def make_engine() -> TestEngine:
    """One system: a display (status, methods) and a protected ``_Secret`` module."""
    engine = TestEngine()
    engine.add_system(SYS)
    engine.add_module(
        SYS,
        DISPLAY,
        module_id=DISPLAY_ID,
        klass="::Place::Display",
        status={"power": False, "input": "hdmi1"},
        methods={
            "add": lambda a, b: a + b,
            "echo": lambda *args: list(args),
            "fail": _raise_failure,
            "not_json": lambda: {1, 2},
        },
    )
    engine.add_module(SYS, "_Secret", methods={"peek": lambda: 42})
    return engine


# The three Mews seed documents' example messages (seeds 000, 001, 002), as JSON text.
# 000 is the 2017 form (a legacy ``Space``); 002's PriceUpdate has no dates (optional
# since 2023-02); unknown fields and types must come through too.
_COMMAND = {"Type": "DeviceCommand", "Id": "2391a3df", "State": "Pending"}
_RESERVATION = {
    "Type": "Reservation",
    "Id": "bfee2c44",
    "State": "Processed",
    "StartUtc": "2016-02-20T13:00:00Z",
    "EndUtc": "2016-02-22T11:00:00Z",
}
_PRICE_UPDATE = {
    "Type": "PriceUpdate",
    "Id": "bd75f159",
    "StartUtc": "2019-09-07T22:00:00Z",
    "EndUtc": "2019-09-07T22:00:00Z",
    "RateId": "9c6c0556",
    "ResourceCategoryId": None,
}
MEWS_MESSAGES = {
    name: json.dumps({"Events": events})
    for name, events in {
        "000": [_COMMAND, _RESERVATION, {"Type": "Space", "Id": "5ee074b1", "State": "Dirty"}],
        "001": [
            _COMMAND,
            _RESERVATION,
            {"Type": "Resource", "Id": "5ee074b1", "State": "Dirty"},
            _PRICE_UPDATE,
        ],
        "002": [
            {"Type": "PriceUpdate", "Id": "bd75f159", "RateId": "9c6c0556"},
            {
                "Type": "Reservation",
                "Id": "r2",
                "State": "Inquired",
                "StartUtc": "2023-02-01T10:00:00.5+01:00",
                "EndUtc": "2023-02-02T10:00:00Z",
                "AssignedResourceId": None,
                "NewField": [1],
            },
            {"Type": "Invoice", "Id": "i1"},
        ],
    }.items()
}


def most_waiting(stop_at: int, smallest: MewsEvent) -> int:
    """How many Mews events may wait for a consumer when reading stops at ``stop_at``:
    those, and what one read (`READ_SIZE` bytes of one-event messages no smaller than
    ``smallest``'s, each with its 2-byte frame header) brought on top."""
    frame = len(encode_envelope(Envelope((smallest,)))) + 2
    return stop_at + READ_SIZE // frame + 1


def mews_options(**overrides: Any) -> dict[str, Any]:
    """What a conformance Mews server runs with."""
    options: dict[str, Any] = {"client_token": CLIENT_TOKEN, "access_token": ACCESS_TOKEN}
    options.update(overrides)
    return options


def placeos_options(**overrides: Any) -> dict[str, Any]:
    """What a conformance PlaceOS server runs with (an API key and a bearer token)."""
    options: dict[str, Any] = {"api_keys": [API_KEY], "bearer_tokens": [BEARER]}
    options.update(overrides)
    return options


class Served:
    """A running server's handle (thread-safe methods) and, for PlaceOS, its engine.

    Attribute reads go to the handle: ``served.url``, ``served.set_status(...)``. The
    engine is only for its thread-safe `TestEngine.hung` flag.
    """

    def __init__(self, handle: Any, engine: TestEngine | None = None) -> None:
        self.handle = handle
        self.engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.handle, name)


# -- servers in threads ---------------------------------------------------------------


@contextmanager
def running_server(kind: str, protocol: Protocol, *args: Any, **options: Any) -> Iterator[Any]:
    """Run ``transports.<kind>.serve_<protocol>(*args, **options)`` in a thread."""
    module = require(kind, protocol)
    serve = getattr(module, f"serve_{protocol}")
    ready: queue.Queue[tuple[Any, Callable[[], object]] | BaseException] = queue.Queue()
    failures: list[BaseException] = []

    if kind == "trio":

        async def trio_main() -> None:
            stop = trio.Event()
            token = trio.lowlevel.current_trio_token()
            async with serve(*args, **options) as server:
                ready.put((server, lambda: token.run_sync_soon(stop.set)))
                await stop.wait()

        def target() -> None:
            trio.run(trio_main)

    elif kind == "asyncio":

        async def asyncio_main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            async with serve(*args, **options) as server:
                ready.put((server, lambda: loop.call_soon_threadsafe(stop.set)))
                await stop.wait()

        def target() -> None:
            asyncio.run(asyncio_main())

    else:

        def target() -> None:
            stop = threading.Event()
            with serve(*args, **options) as server:
                ready.put((server, stop.set))
                stop.wait()

    def main() -> None:
        try:
            target()
        except BaseException as exc:
            failures.append(exc)
            ready.put(exc)

    thread = threading.Thread(target=main, name=f"{kind}-{protocol}-server")
    thread.start()
    try:
        got = ready.get(timeout=WAIT)
    except queue.Empty:
        raise AssertionError(f"the {kind} {protocol} server did not start") from None
    if isinstance(got, BaseException):
        thread.join(WAIT)
        raise got
    server, stop = got
    try:
        yield server
    finally:
        stop()
        thread.join(WAIT)
        assert not thread.is_alive(), f"the {kind} {protocol} server did not stop"
    if failures:
        raise failures[0]


# -- clients: one scenario, any adapter ---------------------------------------------


class Items:
    """An async facade over a subscription or event iterator of any adapter."""

    def __init__(self, client: Client, source: Any) -> None:
        self._client = client
        self.source = source

    async def next(self, timeout: float = WAIT) -> Any:
        """The next item; StopAsyncIteration at the end; the iterator's error raised."""
        return await self._client.within(timeout, self._client.next_of(self.source))

    async def until(self, wanted: Any, timeout: float = WAIT) -> list[Any]:
        """Items up to and including the first equal to ``wanted`` (all of them)."""
        seen = []
        while True:
            item = await self.next(timeout)
            seen.append(item)
            if item == wanted:
                return seen

    @property
    def dropped(self) -> int:
        return int(self.source.dropped)


class PlaceOS:
    """An async facade over any adapter's PlaceOS client."""

    def __init__(self, client: Client, raw: Any) -> None:
        self._client = client
        self.raw = raw

    @property
    def connected(self) -> bool:
        return bool(self.raw.connected)

    async def exec(self, sys: str, mod: str, method: str, *args: Any, **kw: Any) -> Any:
        return await self._client.call(self.raw.exec, sys, mod, method, *args, **kw)

    @asynccontextmanager
    async def bind(self, sys: str, mod: str, name: str, *, index: int = 1) -> AsyncIterator[Items]:
        async with self._client.enter(self.raw.bind(sys, mod, name, index=index)) as values:
            yield Items(self._client, values)

    @asynccontextmanager
    async def debug(self, sys: str, module_id: str, *, index: int = 1) -> AsyncIterator[Items]:
        async with self._client.enter(self.raw.debug(sys, module_id, index=index)) as lines:
            yield Items(self._client, lines)


class Client:
    """Runs a scenario with one adapter's client (see the module doc)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __repr__(self) -> str:
        return f"<{self.kind} client>"

    @property
    def module(self) -> ModuleType:
        module = adapter(self.kind)
        assert module is not None
        return module

    def run(self, scenario: Callable[[Client], Awaitable[None]]) -> None:
        async def main() -> None:
            await scenario(self)

        if self.kind == "trio":
            trio.run(main)
        else:
            asyncio.run(main())

    async def leftovers(self) -> list[str]:
        """Tasks of this scenario's loop still alive besides the caller (asyncio only:
        trio nurseries cannot leak tasks; the conftest checks the blocking adapter's
        threads). Call it after every client block has exited."""
        if self.kind != "asyncio":
            return []
        current = asyncio.current_task()
        return sorted(repr(t) for t in asyncio.all_tasks() if t is not current and not t.done())

    async def within(self, seconds: float, awaitable: Coroutine[Any, Any, Any]) -> Any:
        """Await with a bound (the blocking adapter bounds its own calls)."""
        if self.kind == "trio":
            with trio.fail_after(seconds):
                return await awaitable
        if self.kind == "asyncio":
            async with asyncio.timeout(seconds):
                return await awaitable
        return await awaitable

    async def wait_for(self, event: threading.Event, timeout: float = WAIT) -> None:
        """Wait for a flag set by another thread, without blocking this client's loop."""
        if self.kind == "trio":
            done = await trio.to_thread.run_sync(event.wait, timeout)
        elif self.kind == "asyncio":
            done = await asyncio.to_thread(event.wait, timeout)
        else:
            done = event.wait(timeout)
        assert done, "the awaited flag was never set"

    async def call(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        if self.kind == "sync":
            return fn(*args, **kw)
        return await fn(*args, **kw)

    async def next_of(self, source: Any) -> Any:
        if self.kind == "sync":
            try:
                return next(source)
            except StopIteration:
                raise StopAsyncIteration from None
        return await source.__anext__()

    @asynccontextmanager
    async def enter(self, manager: Any) -> AsyncIterator[Any]:
        """Enter any adapter's context manager (sync ``with`` or ``async with``)."""
        if self.kind == "sync":
            with manager as value:
                yield value
        else:
            async with manager as value:
                yield value

    @asynccontextmanager
    async def connect_placeos(self, url: str, **options: Any) -> AsyncIterator[PlaceOS]:
        require(self.kind, "placeos")
        async with self.enter(self.module.connect_placeos(url, **options)) as raw:
            yield PlaceOS(self, raw)

    @asynccontextmanager
    async def connect_mews(self, url: str, **options: Any) -> AsyncIterator[Items]:
        require(self.kind, "mews")
        async with self.enter(self.module.connect_mews(url, **options)) as events:
            yield Items(self, events)
