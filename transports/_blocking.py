"""The blocking API: the sync spelling of `transports._aio`, for `transports.sync`.

The same classes, members and messages as the async API, without ``async``: the
driver decides, the runtime (`transports.sync`'s I/O threads) moves bytes, and
these classes wait on a ``threading.Event`` that the driver's ``waker`` sets.
Every touch of a driver happens under the owner's lock, since the I/O thread
touches it too. Unlike the async API, ``connect_*`` and ``serve_*`` connect (or
listen) at once, as blocking constructors do; ``with`` closes.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from protocore.driver import (
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
    ENTER_SUBSCRIPTION_ONCE,
    NOT_RUNNING,
    OTHER_WAITER,
    SUBSCRIPTION_OUTSIDE,
    server_url,
)

__all__ = [
    "BlockingClientIO",
    "BlockingServerIO",
    "MewsEvents",
    "MewsServerHandle",
    "PlaceOSConnection",
    "PlaceOSServerHandle",
    "Subscription",
    "transport",
    "wait_event",
]

T = TypeVar("T")

SLICE = 0.05
"""Longest a blocking call waits in one go, so a Ctrl-C in the main thread is seen."""


def wait_event(event: threading.Event, timeout: float | None = None) -> bool:
    """`Event.wait` in slices: without them a pending KeyboardInterrupt waits too."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not event.is_set():
        left = SLICE if deadline is None else min(SLICE, deadline - time.monotonic())
        if left <= 0:
            return False
        event.wait(left)
    return True


class BlockingClientIO(Protocol):
    lock: threading.RLock

    def kick(self) -> None: ...

    def shutdown(self, polite: bool) -> None: ...


class BlockingServerIO(Protocol):
    lock: threading.RLock
    host: str
    port: int

    def stop_accepting(self) -> None: ...

    def drain(self, timeout: float) -> None: ...

    def stop(self) -> None: ...


def _wait(lock: threading.RLock, waitable: Waitable, timeout: float | None) -> None:
    with lock:
        if waitable.ready:
            return
        if waitable.waker is not None:
            raise RuntimeError(OTHER_WAITER)
        event = threading.Event()
        waitable.waker = event.set
    try:
        wait_event(event, timeout)
    finally:
        with lock:
            if waitable.waker == event.set:
                waitable.waker = None


# -- clients ------------------------------------------------------------------------------


class _Client:
    """Connects at once (raising the first failure); ``with`` or `close` closes."""

    _driver: ClientDriver

    def __init__(
        self, driver: ClientDriver, start: Callable[[ClientDriver], BlockingClientIO]
    ) -> None:
        self._driver = driver
        self._io = io = start(driver)
        self._lock = io.lock
        try:
            _wait(self._lock, driver.opened, None)
        except BaseException:
            io.shutdown(polite=False)
            raise
        with self._lock:
            failed = driver.error
        if failed is not None:
            io.shutdown(polite=False)
            raise failed

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._io.shutdown(polite=True)  # a Ctrl-C too: a second one abandons the wait

    def close(self) -> None:
        """Close politely (a close frame, its answer up to ``close_timeout``); no reconnects."""
        self._io.shutdown(polite=True)

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now (False while reconnecting)."""
        return self._driver.connected

    @property
    def stats(self) -> Stats:
        """Counters since the start: bytes, messages, reconnects, dropped, bad messages."""
        with self._lock:
            return self._driver.stats

    @property
    def latency(self) -> float | None:
        """The last keepalive round trip in seconds (None before the first pong)."""
        return self._driver.latency

    @property
    def state(self) -> ClientState:
        """Connecting, open, reconnecting (attempt, delay), closing or closed."""
        return self._driver.state

    def ping(self) -> float:
        """Send a WebSocket ping; its round trip in seconds."""
        with self._lock:
            call = self._driver.ping(time.monotonic())
        self._io.kick()
        _wait(self._lock, call, None)
        return float(call.result())

    @property
    def url(self) -> str:
        """Where it connects: scheme, host and path (never the query)."""
        return self._driver.where

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._driver.where} {self._driver.phase.value}>"


class PlaceOSConnection(_Client):
    """A PlaceOS real-time client (see ``connect_placeos``): `exec`, `bind`, `debug`."""

    _driver: PlaceOSDriver

    def exec(
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
        `RequestTimeout` after ``timeout`` (default ``exec_timeout``), `ConnectionLost`.
        """
        driver, lock = self._driver, self._lock
        with lock:
            call = driver.exec(
                sys, mod, method, args, index=index, timeout=timeout, now=time.monotonic()
            )
        self._io.kick()
        try:
            _wait(lock, call, None)
        except BaseException:
            with lock:
                driver.forget(call)
            raise
        return call.result()

    def bind(self, sys: str, mod: str, name: str, *, index: int = 1) -> Subscription[Any]:
        """Status variable ``name``'s values: ``with client.bind(...) as values``.

        The current value comes first (when it has one), then every change. Entering
        raises the server's error if the bind is refused; leaving unbinds.
        """
        return Subscription(self, Binding(sys, mod, index, name))

    def debug(self, sys: str, module_id: str, *, index: int = 1) -> Subscription[DebugMessage]:
        """Module ``module_id``'s log lines (`DebugMessage`) while the block runs."""
        return Subscription(self, ModuleMeta(sys, module_id, index))


class Subscription(Generic[T]):
    """A binding's values or a debug stream's lines: enter it, then iterate.

    Items wait in a drop-oldest buffer of ``buffer_size`` (`dropped` counts what a
    slow consumer missed). Iteration ends with the server's error when it takes the
    subscription away, with `ConnectionLost` when the client is gone for good, and
    quietly when the block exits.
    """

    __slots__ = ("_client", "_entered", "_sub", "target")

    def __init__(self, client: PlaceOSConnection, target: Binding | ModuleMeta) -> None:
        self._client = client
        #: What it follows: a `Binding`, or a `ModuleMeta` for a debug stream.
        self.target = target
        self._sub: Listening | None = None
        self._entered = False

    def __enter__(self) -> Self:
        if self._entered:
            raise RuntimeError(ENTER_SUBSCRIPTION_ONCE)
        self._entered = True
        client = self._client
        driver, lock = client._driver, client._lock
        with lock:
            sub = driver.subscribe(self.target, time.monotonic())
        try:
            client._io.kick()
            _wait(lock, sub.reply, None)
            sub.reply.result()
        except BaseException:
            with lock:
                driver.unsubscribe(sub, time.monotonic())
            client._io.kick()
            raise
        self._sub = sub
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        sub = self._sub
        if sub is not None:
            self._sub = None
            client = self._client
            with client._lock:
                client._driver.unsubscribe(sub, time.monotonic())
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

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        item = self._next(None)
        if item is _END:
            raise StopIteration
        return item  # type: ignore[return-value]

    def get(self, timeout: float | None = None) -> T:
        """The next item; `TimeoutError` if none comes within ``timeout`` seconds."""
        item = self._next(timeout)
        if item is _END:
            raise self._client._driver.lost_error()
        return item  # type: ignore[return-value]

    def _next(self, timeout: float | None) -> object:
        sub = self._sub
        if sub is None:
            raise RuntimeError(SUBSCRIPTION_OUTSIDE)
        lock, feed = self._client._lock, sub.feed
        _wait(lock, feed, timeout)
        with lock:
            if feed.items:
                return feed.items.popleft()
            if not feed.closed:
                raise TimeoutError(f"no new item within {timeout:g} s")
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
    """A Mews Connector stream (see ``connect_mews``): an iterator of events."""

    _driver: MewsDriver

    def __len__(self) -> int:
        """How many events wait for the consumer."""
        return len(self._driver.feed)

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> MewsItem:
        item = self._next(None)
        if item is _END:
            raise StopIteration
        return item  # type: ignore[return-value]

    def get(self, timeout: float | None = None) -> MewsItem:
        """The next item; `TimeoutError` if none comes within ``timeout`` seconds."""
        item = self._next(timeout)
        if item is _END:
            raise self._driver.lost_error()
        return item  # type: ignore[return-value]

    def _next(self, timeout: float | None) -> object:
        driver, lock = self._driver, self._lock
        feed = driver.feed
        if not feed.items:
            _wait(lock, feed, timeout)
        with lock:
            if feed.items:
                return driver.take()
            if not feed.closed:
                raise TimeoutError(f"no new event within {timeout:g} s")
            error = feed.error
        if error is not None:
            raise error
        return _END


# -- servers ------------------------------------------------------------------------------


class _ServerHandle:
    """Listens at once; ``with`` or `close` says goodbye (1001) to every client."""

    _path = ""

    def __init__(
        self, driver: ServerDriver, secure: bool, start: Callable[[ServerDriver], BlockingServerIO]
    ) -> None:
        self._driver = driver
        self._secure = secure
        self._io: BlockingServerIO | None = start(driver)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Say goodbye (1001) to every client, wait up to ``close_timeout``, stop."""
        io, self._io = self._io, None
        if io is None:
            return
        try:
            io.stop_accepting()  # a client reconnecting now is refused, not served
            with io.lock:
                self._driver.close_all(time.monotonic())
            io.drain(self._driver.close_timeout + 1.0)
        finally:
            io.stop()

    def _running(self) -> BlockingServerIO:
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
        return server_url(io.host, io.port, self._secure, self._path)

    @property
    def connections(self) -> int:
        """How many connections are open right now (past the handshake)."""
        with self._running().lock:
            return self._driver.connections

    def drop_connections(self) -> int:
        """Abort every connection abruptly (no close frame): fault tests. How many."""
        with self._running().lock:
            return self._driver.drop(time.monotonic())

    def __repr__(self) -> str:
        where = self.url if self._io is not None else "(not running)"
        return f"<{type(self).__name__} {where}>"


class PlaceOSServerHandle(_ServerHandle):
    """A running fake PlaceOS engine (see ``serve_placeos``); its methods are thread-safe."""

    _path = PLACEOS_PATH

    def __init__(
        self,
        driver: ServerDriver,
        engine: MockEngine,
        secure: bool,
        start: Callable[[ServerDriver], BlockingServerIO],
    ) -> None:
        self._engine = engine
        super().__init__(driver, secure, start)

    @property
    def engine(self) -> MockEngine:
        """The engine: touch it only through `call` (the server's threads use it)."""
        return self._engine

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` under the server's lock (from any thread) and return its result."""
        with self._running().lock:
            return fn()

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
        with self._running().lock:
            return self._driver.publish(events)


def transport(
    start_client: Callable[[ClientDriver, ssl.SSLContext | None], BlockingClientIO],
    start_server: Callable[[ServerDriver, str, int, ssl.SSLContext | None], BlockingServerIO],
) -> Transport[PlaceOSConnection, MewsEvents, PlaceOSServerHandle, MewsServerHandle]:
    """The entry points, returning these classes on the runtime's threads."""
    return Transport(
        lambda driver, tls: PlaceOSConnection(driver, lambda d: start_client(d, tls)),
        lambda driver, tls: MewsEvents(driver, lambda d: start_client(d, tls)),
        lambda driver, engine, host, port, tls: PlaceOSServerHandle(
            driver, engine, tls is not None, lambda d: start_server(d, host, port, tls)
        ),
        lambda driver, host, port, tls: MewsServerHandle(
            driver, tls is not None, lambda d: start_server(d, host, port, tls)
        ),
    )
