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
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, Protocol, Self, TypeVar

from protocore.driver import (
    Call,
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
    ENTER_CLIENT_ONCE,
    ENTER_SUBSCRIPTION_ONCE,
    NOT_RUNNING,
    OTHER_WAITER,
    STREAM_OUTSIDE,
    SUBSCRIPTION_OUTSIDE,
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

    @property
    def read_ahead(self) -> int | None:
        """How many Mews events a reader may decode ahead of its consumer (None: up
        to ``buffer_size``): see `MewsDriver.pace`."""

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


class _Items(Generic[T]):
    """Async iteration and `get` around the class's `_next` (an item, or `END`)."""

    __slots__ = ()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        item = await self._next(None)
        if item is END:
            raise StopAsyncIteration
        return item  # type: ignore[return-value]

    async def get(self, timeout: float | None = None) -> T:
        """The next item; `TimeoutError` if none comes within ``timeout`` seconds."""
        item = await self._next(timeout)
        if item is END:
            raise self._lost()
        return item  # type: ignore[return-value]

    async def _next(self, timeout: float | None) -> object:
        raise NotImplementedError

    def _lost(self) -> Exception:
        raise NotImplementedError


class _Client(ClientView):
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

    async def ping(self) -> float:
        """Send a WebSocket ping; its round trip in seconds."""
        call = self._driver.ping(self._rt.now())
        self._kick()
        await _wait(self._rt, call, None)
        return float(call.result())


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


class Subscription(SubscriptionView, _Items[T]):
    """A binding's values or a debug stream's lines: enter it, then iterate.

    Items wait in a drop-oldest buffer of ``buffer_size`` (`dropped` counts what a
    slow consumer missed). Iteration ends with the server's error when it takes the
    subscription away (`BindingLost`), with `ConnectionLost` when the client is gone
    for good, and quietly when the block exits.
    """

    __slots__ = ("_client",)

    def __init__(self, client: PlaceOSConnection, target: Binding | ModuleMeta) -> None:
        super().__init__(target)
        self._client = client

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
            self._release(sub)
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
            self._release(sub)

    def _release(self, sub: Listening) -> None:
        """Unbind (or stop debugging), and let the client write it."""
        client = self._client
        client._driver.unsubscribe(sub, client._rt.now())
        if client._io is not None:
            client._io.kick()

    def _lost(self) -> Exception:
        return self._client._driver.lost_error()

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
        return END


class MewsEvents(_Client, _Items[MewsItem]):
    """A Mews Connector stream (see ``connect_mews``): an async iterator of events."""

    __slots__ = ()

    _driver: MewsDriver

    def __len__(self) -> int:
        """How many events wait for the consumer."""
        return len(self._driver.feed)

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
            if driver.on_resume is not None:
                driver.resume_if_drained()
            return first
        return await super().__anext__()

    def _lost(self) -> Exception:
        return self._driver.lost_error()

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
        return END


# -- servers ------------------------------------------------------------------------------


class _ServerHandle(ServerView):
    """Entering listens, leaving says goodbye (1001) to every client."""

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
        self._secure = ssl_context is not None
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

    def _call(self, fn: Callable[[], T]) -> T:
        return self._running().call(fn)

    def _now(self) -> float:
        return self._rt.now()


class PlaceOSServerHandle(_ServerHandle, PlaceOSServerView):
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


class MewsServerHandle(_ServerHandle, MewsServerView):
    """A running fake Mews server (see ``serve_mews``); its methods are thread-safe."""

    _path = MEWS_PATH


def _paced(driver: MewsDriver, read_ahead: int | None) -> MewsDriver:
    if read_ahead is not None:
        driver.pace(read_ahead)
    return driver


def transport(
    runtime: AsyncRuntime,
) -> Transport[PlaceOSConnection, MewsEvents, PlaceOSServerHandle, MewsServerHandle]:
    """The entry points, returning these classes bound to ``runtime``."""
    return Transport(
        lambda driver, tls: PlaceOSConnection(driver, tls, runtime),
        lambda driver, tls: MewsEvents(_paced(driver, runtime.read_ahead), tls, runtime),
        lambda driver, engine, host, port, tls: PlaceOSServerHandle(
            driver, engine, host, port, tls, runtime
        ),
        lambda driver, host, port, tls: MewsServerHandle(driver, host, port, tls, runtime),
    )
