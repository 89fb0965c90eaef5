"""The async API, written once for trio and asyncio.

These classes hold no protocol logic (that is in `protocore.driver`) and no I/O
(that is the runtime's): each call asks the driver, tells the runtime's I/O to
write (`ClientIO.kick`), and waits with the runtime's own primitive
(`AsyncRuntime.wait`). `transports.trio` and `transports.asyncio` export these very
classes, bound to their runtime, so the two cannot differ.
"""

from __future__ import annotations

import concurrent.futures
import ssl
from collections.abc import Awaitable, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from protocore.driver import (
    Call,
    ClientDriver,
    ClientState,
    Listening,
    MewsDriver,
    MewsItem,
    PlaceOSDriver,
    ServerDriver,
    Stats,
    Waitable,
    describe,
)
from protocore.mews import Envelope, MewsEvent
from protocore.placeos import Binding, DebugMessage, MockEngine, ModuleMeta

from ._transport import MEWS_PATH, PLACEOS_PATH, Transport
from ._wording import (
    ENTER_CLIENT_ONCE,
    ENTER_SUBSCRIPTION_ONCE,
    NOT_RUNNING,
    OTHER_WAITER,
    STREAM_OUTSIDE,
    SUBSCRIPTION_OUTSIDE,
    server_url,
)

__all__ = [
    "AsyncRuntime",
    "Checkpoints",
    "ClientIO",
    "MewsEvents",
    "MewsServerHandle",
    "PlaceOSConnection",
    "PlaceOSServerHandle",
    "ServerIO",
    "Subscription",
    "call_in_loop",
    "transport",
]

T = TypeVar("T")


Checkpoints = tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]], int]


class ClientIO(Protocol):
    """A running client's I/O, as the runtime provides it."""

    def kick(self) -> None:
        """Write what the driver has to send, and re-read its deadline."""

    async def shutdown(self, polite: bool) -> None:
        """After `ClientDriver.close`: wait for the end (polite) or just hang up."""


class ServerIO(Protocol):
    """A listening server's I/O, as the runtime provides it."""

    host: str
    port: int

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` where the server's state lives (its loop), from any thread."""

    def stop_accepting(self) -> None:
        """Close the listening sockets: a client that comes now is refused."""

    async def drain(self, timeout: float) -> None:
        """Wait until every connection has ended, at most ``timeout`` seconds."""


class AsyncRuntime(Protocol):
    """What trio or asyncio supplies to the shared async API."""

    def now(self) -> float: ...

    async def wait(self, waitable: Waitable, timeout: float | None) -> None:
        """Return once ``waitable.ready`` (or after ``timeout`` seconds)."""

    @property
    def checkpoints(self) -> Checkpoints | None:
        """For an iterator handing out an item that was already waiting: a cheap
        checkpoint for most items and a full one every so many (None: neither needed)."""

    def run_client(
        self, driver: ClientDriver, ssl_context: ssl.SSLContext | None
    ) -> AbstractAsyncContextManager[ClientIO]: ...

    def run_server(
        self, driver: ServerDriver, host: str, port: int, ssl_context: ssl.SSLContext | None
    ) -> AbstractAsyncContextManager[ServerIO]: ...


def call_in_loop(schedule: Callable[[Callable[[], None]], object], fn: Callable[[], T]) -> T:
    """Run ``fn`` in a loop's thread (``schedule`` hands it over) and wait for its result."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if future.set_running_or_notify_cancel():
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the calling thread
                future.set_exception(exc)

    schedule(run)
    return future.result()


async def _wait(runtime: AsyncRuntime, waitable: Waitable, timeout: float | None) -> None:
    if waitable.waker is not None:
        raise RuntimeError(OTHER_WAITER)
    await runtime.wait(waitable, timeout)


# -- clients ------------------------------------------------------------------------------


class _Client:
    """Entering connects (raising the first failure), leaving closes."""

    __slots__ = ("_checkpoints", "_driver", "_io", "_rt", "_run", "_served", "_ssl")

    _driver: ClientDriver

    def __init__(
        self, driver: ClientDriver, ssl_context: ssl.SSLContext | None, runtime: AsyncRuntime
    ) -> None:
        self._driver = driver
        self._ssl = ssl_context
        self._rt = runtime
        self._io: ClientIO | None = None
        self._run: AbstractAsyncContextManager[ClientIO] | None = None
        self._checkpoints = runtime.checkpoints
        self._served = 0

    async def _checkpoint(self) -> None:
        checkpoints = self._checkpoints
        if checkpoints is not None:
            cheap, full, every = checkpoints
            self._served = served = self._served + 1
            await (cheap() if served % every else full())

    async def __aenter__(self) -> Self:
        if self._run is not None:
            raise RuntimeError(ENTER_CLIENT_ONCE)
        self._run = run = self._rt.run_client(self._driver, self._ssl)
        io = await run.__aenter__()
        opened = self._driver.opened
        try:
            await self._rt.wait(opened, None)
            opened.result()
        except BaseException as exc:
            self._driver.abort(self._rt.now())
            await run.__aexit__(type(exc), exc, exc.__traceback__)
            raise
        self._io = io
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run = self._run
        if run is None or self._io is None:
            return
        try:
            await self._shutdown(polite=exc is None or isinstance(exc, Exception))
        finally:
            await run.__aexit__(exc_type, exc, tb)

    async def close(self) -> None:
        """Close politely (a close frame, its answer up to ``close_timeout``); no reconnects."""
        await self._shutdown(polite=True)

    async def _shutdown(self, *, polite: bool) -> None:
        io = self._io
        if io is None:
            return
        self._driver.close(self._rt.now())
        io.kick()
        await io.shutdown(polite)

    def _kick(self) -> None:
        io = self._io
        if io is None:
            raise RuntimeError(NOT_RUNNING)
        io.kick()

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now (False while reconnecting)."""
        return self._driver.connected

    @property
    def stats(self) -> Stats:
        """Counters since the start: bytes, messages, reconnects, dropped, bad messages."""
        return self._driver.stats

    @property
    def latency(self) -> float | None:
        """The last keepalive round trip in seconds (None before the first pong)."""
        return self._driver.latency

    @property
    def state(self) -> ClientState:
        """Connecting, open, reconnecting (attempt, delay), closing or closed."""
        return self._driver.state

    async def ping(self) -> float:
        """Send a WebSocket ping; its round trip in seconds."""
        call = self._driver.ping(self._rt.now())
        self._kick()
        await _wait(self._rt, call, None)
        return float(call.result())

    @property
    def url(self) -> str:
        """Where it connects: scheme, host and path (never the query)."""
        return self._driver.where

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._driver.where} {self._driver.phase.value}>"


class PlaceOSConnection(_Client):
    """A PlaceOS real-time client (see ``connect_placeos``): `exec`, `bind`, `debug`."""

    __slots__ = ()

    _driver: PlaceOSDriver

    async def exec(
        self,
        sys: str,
        mod: str,
        method: str,
        *args: Any,
        index: int = 1,
        timeout: float | None = None,
    ) -> Any:
        """Call ``method`` of module ``mod`` (``index``) in system ``sys``; its result.

        Raises the `protocore.placeos.exceptions` class of the server's error number,
        `RequestTimeout` when no answer comes within ``timeout`` (default
        ``exec_timeout``), `ConnectionLost` when the connection is or goes down.
        """
        driver = self._driver
        call = driver.exec(sys, mod, method, args, index=index, timeout=timeout, now=self._rt.now())
        self._kick()
        return await _settled(self._rt, driver, call)

    def bind(self, sys: str, mod: str, name: str, *, index: int = 1) -> Subscription[Any]:
        """Status variable ``name``'s values: ``async with client.bind(...) as values``.

        The current value comes first (when it has one), then every change. Entering
        raises the server's error (`ModuleNotFound`...) if the bind is refused; the
        binding survives reconnects; leaving unbinds.
        """
        return Subscription(self, Binding(sys, mod, index, name))

    def debug(self, sys: str, module_id: str, *, index: int = 1) -> Subscription[DebugMessage]:
        """Module ``module_id``'s log lines (`DebugMessage`) while the block runs."""
        return Subscription(self, ModuleMeta(sys, module_id, index))


async def _settled(runtime: AsyncRuntime, driver: PlaceOSDriver, call: Call) -> Any:
    try:
        await runtime.wait(call, None)
    except BaseException:
        driver.forget(call)  # cancelled: the late answer is dropped
        raise
    return call.result()


class Subscription(Generic[T]):
    """A binding's values or a debug stream's lines: enter it, then iterate.

    Items wait in a drop-oldest buffer of ``buffer_size`` (`dropped` counts what a
    slow consumer missed). Iteration ends with the server's error when it takes the
    subscription away (`BindingLost`), with `ConnectionLost` when the client is gone
    for good, and quietly when the block exits.
    """

    __slots__ = ("_client", "_entered", "_sub", "target")

    def __init__(self, client: PlaceOSConnection, target: Binding | ModuleMeta) -> None:
        self._client = client
        #: What it follows: a `Binding`, or a `ModuleMeta` for a debug stream.
        self.target = target
        self._sub: Listening | None = None
        self._entered = False

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError(ENTER_SUBSCRIPTION_ONCE)
        self._entered = True
        client = self._client
        driver = client._driver
        runtime = client._rt
        sub = driver.subscribe(self.target, runtime.now())
        try:
            client._kick()
            await runtime.wait(sub.reply, None)
            sub.reply.result()
        except BaseException:
            driver.unsubscribe(sub, runtime.now())
            if client._io is not None:
                client._io.kick()
            raise
        self._sub = sub
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        sub = self._sub
        if sub is not None:
            self._sub = None
            client = self._client
            client._driver.unsubscribe(sub, client._rt.now())
            if client._io is not None:
                client._io.kick()

    @property
    def dropped(self) -> int:
        """How many items were dropped (oldest first) because the consumer was behind."""
        sub = self._sub
        return 0 if sub is None else sub.feed.dropped

    def __len__(self) -> int:
        """How many items wait for the consumer."""
        sub = self._sub
        return 0 if sub is None else len(sub.feed)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        item = await self._next(None)
        if item is _END:
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    async def get(self, timeout: float | None = None) -> T:
        """The next item; `TimeoutError` if none comes within ``timeout`` seconds."""
        item = await self._next(timeout)
        if item is _END:
            raise self._client._driver.lost_error()
        return item  # type: ignore[return-value]

    async def _next(self, timeout: float | None) -> object:
        sub = self._sub
        if sub is None:
            raise RuntimeError(SUBSCRIPTION_OUTSIDE)
        feed = sub.feed
        if not feed.items and not feed.closed:
            await _wait(self._client._rt, feed, timeout)
            if not feed.ready:
                raise TimeoutError(f"no new item within {timeout:g} s")
        if feed.items:
            await self._client._checkpoint()
            return feed.items.popleft()
        error = feed.error
        if error is not None:
            raise error
        return _END

    def __repr__(self) -> str:
        sub = self._sub
        waiting = 0 if sub is None else len(sub.feed)
        return f"<Subscription {describe(self.target)} waiting={waiting} dropped={self.dropped}>"


_END = object()


class MewsEvents(_Client):
    """A Mews Connector stream (see ``connect_mews``): an async iterator of events."""

    __slots__ = ()

    _driver: MewsDriver

    def __len__(self) -> int:
        """How many events wait for the consumer."""
        return len(self._driver.feed)

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> MewsItem:
        driver = self._driver
        items = driver.feed.items
        if items:  # the hot path, inlined: an item per call on a busy stream
            checkpoints = self._checkpoints
            if checkpoints is not None:
                cheap, full, every = checkpoints
                self._served = served = self._served + 1
                await (cheap() if served % every else full())
            first = items.popleft()
            if driver.on_resume is not None and len(items) <= driver.resume_at:
                driver.resume()
            return first
        item = await self._next(None)
        if item is _END:
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    async def get(self, timeout: float | None = None) -> MewsItem:
        """The next item; `TimeoutError` if none comes within ``timeout`` seconds."""
        item = await self._next(timeout)
        if item is _END:
            raise self._driver.lost_error()
        return item  # type: ignore[return-value]

    async def _next(self, timeout: float | None) -> object:
        if self._io is None:
            raise RuntimeError(STREAM_OUTSIDE)
        driver = self._driver
        feed = driver.feed
        if not feed.items and not feed.closed:
            await _wait(self._rt, feed, timeout)
            if not feed.ready:
                raise TimeoutError(f"no new event within {timeout:g} s")
        if feed.items:
            await self._checkpoint()  # counted like the fast path's items
            return driver.take()
        error = feed.error
        if error is not None:
            raise error
        return _END


# -- servers ------------------------------------------------------------------------------


class _ServerHandle:
    """Entering listens, leaving says goodbye (1001) to every client."""

    _path = ""

    def __init__(
        self,
        driver: ServerDriver,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        runtime: AsyncRuntime,
    ) -> None:
        self._driver = driver
        self._bind = (host, port)
        self._ssl = ssl_context
        self._rt = runtime
        self._run: AbstractAsyncContextManager[ServerIO] | None = None
        self._io: ServerIO | None = None

    async def __aenter__(self) -> Self:
        if self._run is not None:
            raise RuntimeError("a server can be entered only once")
        self._run = run = self._rt.run_server(self._driver, *self._bind, self._ssl)
        self._io = await run.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        run = self._run
        if run is None or self._io is None:
            return
        try:
            if exc is None or isinstance(exc, Exception):
                await self.close()
        finally:
            self._io = None
            await run.__aexit__(exc_type, exc, tb)

    async def close(self) -> None:
        """Say goodbye (1001) to every client and wait up to ``close_timeout`` for them."""
        io = self._io
        if io is not None:
            io.stop_accepting()
            io.call(lambda: self._driver.close_all(self._rt.now()))
            await io.drain(self._driver.close_timeout + 1.0)

    def _running(self) -> ServerIO:
        io = self._io
        if io is None:
            raise RuntimeError(NOT_RUNNING)
        return io

    @property
    def host(self) -> str:
        return self._running().host

    @property
    def port(self) -> int:
        return self._running().port

    @property
    def url(self) -> str:
        """``ws://host:port/path`` (``wss://`` with TLS) to give the clients."""
        io = self._running()
        return server_url(io.host, io.port, self._ssl is not None, self._path)

    @property
    def connections(self) -> int:
        """How many connections are open right now (past the handshake)."""
        return self._running().call(lambda: self._driver.connections)

    def drop_connections(self) -> int:
        """Abort every connection abruptly (no close frame): fault tests. How many."""
        return self._running().call(lambda: self._driver.drop(self._rt.now()))

    def __repr__(self) -> str:
        where = self.url if self._io is not None else "(not running)"
        return f"<{type(self).__name__} {where}>"


class PlaceOSServerHandle(_ServerHandle):
    """A running fake PlaceOS engine (see ``serve_placeos``); its methods are thread-safe."""

    _path = PLACEOS_PATH

    def __init__(  # noqa: PLR0917 - what serve_placeos hands over
        self,
        driver: ServerDriver,
        engine: MockEngine,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        runtime: AsyncRuntime,
    ) -> None:
        super().__init__(driver, host, port, ssl_context, runtime)
        self._engine = engine

    @property
    def engine(self) -> MockEngine:
        """The engine: touch it only through `call` (it lives in the server's loop)."""
        return self._engine

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the server's loop (from any thread) and return its result."""
        return self._running().call(fn)

    def set_status(self, sys: str, mod: str, name: str, value: Any, *, index: int = 1) -> int:
        """Set a status variable and notify every bound client; how many were notified."""
        return self.call(lambda: self._engine.set_status(sys, mod, name, value, index=index))

    def log(self, sys: str, mod: str, message: str, *, level: str = "debug", index: int = 1) -> int:
        """Send a module's log line to every client debugging it; how many got it."""
        return self.call(lambda: self._engine.log(sys, mod, message, level=level, index=index))


class MewsServerHandle(_ServerHandle):
    """A running fake Mews server (see ``serve_mews``); its methods are thread-safe."""

    _path = MEWS_PATH

    def publish(self, events: Envelope | Iterable[MewsEvent]) -> int:
        """Push one message (an `Envelope`, or events to wrap in one) to every client;
        how many got it."""
        return self._running().call(lambda: self._driver.publish(events))


def transport(
    runtime: AsyncRuntime,
) -> Transport[PlaceOSConnection, MewsEvents, PlaceOSServerHandle, MewsServerHandle]:
    """The entry points, returning these classes bound to ``runtime``."""
    return Transport(
        lambda driver, tls: PlaceOSConnection(driver, tls, runtime),
        lambda driver, tls: MewsEvents(driver, tls, runtime),
        lambda driver, engine, host, port, tls: PlaceOSServerHandle(
            driver, engine, host, port, tls, runtime
        ),
        lambda driver, host, port, tls: MewsServerHandle(driver, host, port, tls, runtime),
    )
