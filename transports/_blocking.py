"""The blocking API: the sync spelling of `transports._aio`, for `transports.sync`.

The same classes, members and messages as the async API, without ``async``: the
driver decides, the runtime (`transports.sync`'s I/O threads) moves bytes, and
these classes wait on a ``threading.Event`` that the driver's ``waker`` sets.
Every touch of a driver happens under the owner's lock, since the I/O thread
touches it too; the one exception is a Mews consumer taking a waiting event.
Unlike the async API, ``connect_*`` and ``serve_*`` connect (or listen) at once,
as blocking constructors do; ``with`` closes.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from protocore.driver import (
    ClientDriver,
    Listening,
    MewsDriver,
    MewsItem,
    PlaceOSDriver,
    ServerDriver,
    Waitable,
)
from protocore.placeos import Binding, DebugMessage, MockEngine, ModuleMeta

from ._transport import MEWS_PATH, PLACEOS_PATH, Transport
from ._views import (
    END,
    ClientView,
    MewsServerView,
    PlaceOSServerView,
    ServerView,
    SubscriptionView,
)
from ._wording import (
    ENTER_SUBSCRIPTION_ONCE,
    NOT_RUNNING,
    OTHER_WAITER,
    SUBSCRIPTION_OUTSIDE,
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


class _Items(Generic[T]):
    """Iteration and `get` around the class's `_next` (an item, or `END`)."""

    __slots__ = ()

    def __iter__(self) -> Self:
        return self

    def __next__(self) -> T:
        item = self._next(None)
        if item is END:
            raise StopIteration
        return item  # type: ignore[return-value]

    def get(self, timeout: float | None = None) -> T:
        """The next item; `TimeoutError` if none comes within ``timeout`` seconds."""
        item = self._next(timeout)
        if item is END:
            raise self._lost()
        return item  # type: ignore[return-value]

    def _next(self, timeout: float | None) -> object:
        raise NotImplementedError

    def _lost(self) -> Exception:
        raise NotImplementedError


class _Closing:
    """``with`` closes on the way out, a Ctrl-C too (a second one abandons the wait)."""

    __slots__ = ()

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
        raise NotImplementedError


class _Client(_Closing, ClientView):
    """Connects at once (raising the first failure); ``with`` or `close` closes."""

    _driver: ClientDriver
    _lock: threading.RLock

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

    def close(self) -> None:
        """Close politely (a close frame, its answer up to ``close_timeout``); no reconnects."""
        self._io.shutdown(polite=True)

    def ping(self) -> float:
        """Send a WebSocket ping; its round trip in seconds."""
        with self._lock:
            call = self._driver.ping(time.monotonic())
        self._io.kick()
        _wait(self._lock, call, None)
        return float(call.result())


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


class Subscription(SubscriptionView, _Items[T]):
    """A binding's values or a debug stream's lines: enter it, then iterate.

    Items wait in a drop-oldest buffer of ``buffer_size`` (`dropped` counts what a
    slow consumer missed). Iteration ends with the server's error when it takes the
    subscription away, with `ConnectionLost` when the client is gone for good, and
    quietly when the block exits.
    """

    __slots__ = ("_client",)

    def __init__(self, client: PlaceOSConnection, target: Binding | ModuleMeta) -> None:
        super().__init__(target)
        self._client = client

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
            self._release(sub)
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
            self._release(sub)

    def _release(self, sub: Listening) -> None:
        """Unbind (or stop debugging), and let the client's thread write it."""
        client = self._client
        with client._lock:
            client._driver.unsubscribe(sub, time.monotonic())
        client._io.kick()

    def _lost(self) -> Exception:
        return self._client._driver.lost_error()

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
        return END


class MewsEvents(_Client, _Items[MewsItem]):
    """A Mews Connector stream (see ``connect_mews``): an iterator of events."""

    _driver: MewsDriver

    def __len__(self) -> int:
        """How many events wait for the consumer."""
        return len(self._driver.feed)

    def _lost(self) -> Exception:
        return self._driver.lost_error()

    def _next(self, timeout: float | None) -> object:
        driver, lock = self._driver, self._lock
        feed = driver.feed
        # The common case takes no lock: a deque pops atomically, and contending for
        # the lock the I/O thread holds while it decodes a read cost a fifth of the
        # throughput. Only waking a paused reader needs it.
        try:
            item = feed.items.popleft()
        except IndexError:  # none waits (or another thread took the last one)
            pass
        else:
            if driver.on_resume is not None:
                with lock:
                    driver.resume_if_drained()
            return item
        # Drained without the lock, the feed may have emptied between the reader's
        # choice to stop and its ``on_resume``: wake it, under the lock, before waiting.
        with lock:
            driver.resume()
        _wait(lock, feed, timeout)
        with lock:
            if feed.items:
                return driver.take()
            if not feed.closed:
                raise TimeoutError(f"no new event within {timeout:g} s")
            error = feed.error
        if error is not None:
            raise error
        return END


# -- servers ------------------------------------------------------------------------------


class _ServerHandle(_Closing, ServerView):
    """Listens at once; ``with`` or `close` says goodbye (1001) to every client."""

    def __init__(
        self, driver: ServerDriver, secure: bool, start: Callable[[ServerDriver], BlockingServerIO]
    ) -> None:
        self._driver = driver
        self._secure = secure
        self._io: BlockingServerIO | None = start(driver)

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

    def _call(self, fn: Callable[[], T]) -> T:
        with self._running().lock:
            return fn()

    def _now(self) -> float:
        return time.monotonic()


class PlaceOSServerHandle(_ServerHandle, PlaceOSServerView):
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


class MewsServerHandle(_ServerHandle, MewsServerView):
    """A running fake Mews server (see ``serve_mews``); its methods are thread-safe."""

    _path = MEWS_PATH


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
