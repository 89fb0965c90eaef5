"""asyncio transport: PlaceOS and Mews clients and servers over real sockets.

The same API as `transports.trio` and `transports.sync`::

    async with connect_placeos(url, api_key=...) as client:
        value = await client.exec("sys-1", "Display", "power", True)
        async with client.bind("sys-1", "Display", "power") as values:
            async for value in values: ...

    async with connect_mews(url, client_token=..., access_token=...) as events:
        async for event in events: ...

    async with serve_placeos(engine, port=0, api_keys=["key"]) as server:
        server.set_status("sys-1", "Display", "power", True)

    async with serve_mews(client_token=..., access_token=...) as server:
        server.publish([ResourceEvent(...)])

Each socket is an `asyncio.Protocol` (`transports._asyncio_link.Link`) that feeds
the sans-IO connection as bytes arrive and writes what it answers; no task runs per
connection or per message. A client owns one task only while it is reconnecting.

Reconnecting. Once a connection has worked, a drop (EOF, reset, a lost keepalive or
heartbeat, the server closing) starts a reconnection with exponential backoff and
full jitter (`protocore.backoff.Backoff`, reset after each success); the same session
object is reused, so PlaceOS bindings and debug streams are re-sent by the core and
the Mews stream yields a ``Reconnected`` marker. Calls in flight when the link drops
raise `protocore.ConnectionLost` at once, as do calls made while it is down. A
refused upgrade (HTTP 401...) is never retried. With ``reconnect=False``, or when
the backoff gives up, iterators end with `ConnectionLost` after their last item and
calls raise it. The first connection attempt is not retried: its error (OSError,
ssl.SSLError, TimeoutError, `protocore.HandshakeFailed`) comes out of ``connect_*``.

Buffers. Bind values and debug lines wait in a `transports._common.Mailbox` of
``buffer_size`` items per iterator: when it is full the *oldest* is dropped, so a
slow consumer sees the latest values and memory stays bounded. Mews events are
never dropped: when ``buffer_size`` events wait (give or take one read's worth),
the client pauses its transport's reading until the consumer has taken half of
them, so TCP flow control slows the server down (a new connection after a drop
starts paused if the consumer is still behind). A consumer that stops for longer
than the keepalive timeout loses the connection (pongs are not read either) and
gets a ``Reconnected`` marker after the events it had. Servers stop reading a
connection whose peer does not read what they send (asyncio's write-buffer
high-water mark).

Cancellation. Cancelling a task blocked in ``await client.exec(...)`` or in an
``async for`` raises `asyncio.CancelledError` there and forgets the waiter (the
request's late answer is dropped). Leaving a context sends a close frame (1000 for
clients, 1001 for servers), waits for the answer up to ``close_timeout``, closes the
socket and cancels and awaits the reconnection task if any: nothing keeps running.
PlaceOS subscriptions of a closed client end with `ConnectionLost`; a closed Mews
stream yields the events it already holds, then ends quietly (StopAsyncIteration);
a paused one reads again to finish the close handshake, and what it reads then
is not kept.

Server handles (`PlaceOSServerHandle`, `MewsServerHandle`): ``set_status``, ``log``,
``publish``, ``drop_connections`` and the properties may be called from any thread;
off the server's loop they run on it through ``loop.call_soon_threadsafe`` and wait
for the result. Both servers take the same connection options as in the other
adapters (``keepalive_interval``, ``keepalive_timeout``, ``handshake_timeout``,
``close_timeout``, ``max_message_size``): a client that stops answering pings is
dropped (1011), one that does not finish its upgrade in time is hung up on, and
leaving the block waits up to ``close_timeout`` for the clients' close answers.

Secrets never reach a log line, a repr or an exception message of this module.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import ssl
import threading
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Generic, Literal, ParamSpec, Self, TypedDict, TypeVar

from protocore.backoff import Backoff
from protocore.connection import (
    ClientConnection,
    ConnectionState,
    ServerConnection,
    parse_ws_url,
)
from protocore.errors import ConnectionLost, HandshakeFailed
from protocore.events import BadMessage, Connected, ConnectionClosed, Event, LivenessLost
from protocore.mews import Envelope, EventsReceived, MewsClient, MewsEvent, MewsServer, Reconnected
from protocore.placeos.client import AuthPlacement, PlaceOSClient
from protocore.placeos.engine import MockEngine
from protocore.placeos.events import BindingLost, UnexpectedResponse
from protocore.placeos.models import Binding, DebugMessage, Dialect, LogLevel, ValueFormat
from protocore.placeos.router import Router
from protocore.placeos.server import DEFAULT_PATH, HandlerFailed, PlaceOSServer
from protocore.session import ClientSession, ServerSession

from ._asyncio_link import Link
from ._common import Mailbox, client_ssl_context, reconnect_policy

__all__ = [
    "connect_placeos",
    "connect_mews",
    "serve_placeos",
    "serve_mews",
    "AsyncPlaceOSClient",
    "Subscription",
    "MewsEvents",
    "PlaceOSServerHandle",
    "MewsServerHandle",
]

log = logging.getLogger("protocore.transports.asyncio")

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

MEWS_PATH = "/ws/connector"
_OPEN = ConnectionState.OPEN


def _where(secure: bool, host_header: str, path: str) -> str:
    """A URL for log lines: scheme, host and path, never the query."""
    return f"{'wss' if secure else 'ws'}://{host_header}{path}"


async def _wait(future: asyncio.Future[Any], timeout: float | None) -> bool:
    """Wait for ``future`` without cancelling it on timeout; whether it is done."""
    if not future.done():
        await asyncio.wait((future,), timeout=timeout)
    return future.done()


# -- clients --------------------------------------------------------------------------


class _Client:
    """What both clients share: opening, watching and re-opening the connection."""

    _session: ClientSession

    def __init__(
        self,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None,
        reconnect: bool | Backoff,
        connect_timeout: float,
        close_timeout: float,
        keepalive_interval: float | None,
        keepalive_timeout: float,
        max_message_size: int,
    ) -> None:
        self._url = url
        parsed = parse_ws_url(url)
        self._where = _where(parsed.secure, parsed.host_header, parsed.path)
        self._ssl = client_ssl_context(parsed.secure, ssl_context)
        self._backoff = reconnect_policy(reconnect)
        self._connect_timeout = float(connect_timeout)
        self._close_timeout = float(close_timeout)
        self._keepalive_interval = keepalive_interval
        self._keepalive_timeout = keepalive_timeout
        self._max_message_size = max_message_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._link: Link | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._entered = False
        self._closing = False
        self._ended: BaseException | None = None  # why calls fail from now on

    # -- hooks for the subclasses -------------------------------------------------------

    def _on_events(self, events: list[Event]) -> None:
        raise NotImplementedError

    def _end(self, error: BaseException) -> None:
        """No connection will come back: end iterators and waiters with ``error``."""
        raise NotImplementedError

    def _installed(self, link: Link) -> None:
        """A new connection is in place (the Mews client re-applies backpressure)."""

    # -- the context ---------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _enter(self) -> None:
        if self._entered:
            raise RuntimeError("a client can be entered only once")
        self._entered = True
        self._loop = asyncio.get_running_loop()
        link = await self._open()
        self._install(link)

    async def aclose(self) -> None:
        """Close politely (close frame, wait up to ``close_timeout``), stop reconnecting."""
        if self._closing:
            return
        self._closing = True
        link = self._link
        try:
            reconnector = self._reconnector
            if reconnector is not None:
                reconnector.cancel()
                await asyncio.wait((reconnector,))
                link = self._link
            if link is not None and link.transport is not None:
                # Backpressure ends here: the server's answer may wait behind
                # events, and a server whose writes are stuck reads nothing either.
                link.pause_reading(False)
                link.close(1000)
                await _wait(link.lost, self._close_timeout)
        finally:
            if link is not None and not link.lost.done():
                link.abort()
            self._link = None
            if self._ended is None:
                self._ended = ConnectionLost("the client was closed")
                self._end(self._ended)

    # -- connecting ----------------------------------------------------------------------

    async def _open(self) -> Link:
        """One connection attempt: TCP, TLS and the WebSocket handshake, bounded."""
        loop = self._loop
        assert loop is not None
        conn = ClientConnection(
            self._session,
            self._url,
            max_message_size=self._max_message_size,
            keepalive_interval=self._keepalive_interval,
            keepalive_timeout=self._keepalive_timeout,
            close_timeout=self._close_timeout,
            # The outer timeout below is the one that counts (and says TimeoutError).
            handshake_timeout=self._connect_timeout + 1.0,
        )
        link = Link(conn, loop, self._on_events, self._on_link_closed)
        url = conn.url
        bound = asyncio.timeout(self._connect_timeout)
        try:
            async with bound:
                await loop.create_connection(
                    lambda: link,
                    url.host,
                    url.port,
                    ssl=self._ssl,
                    server_hostname=url.host if self._ssl is not None else None,
                )
                await asyncio.shield(link.opened)
        except BaseException as exc:
            link.abort()
            if isinstance(exc, TimeoutError) and bound.expired():
                raise TimeoutError(
                    f"connecting to {self._where} timed out after {self._connect_timeout:g}s"
                ) from None
            raise
        log.info("connected to %s", self._where)
        return link

    def _install(self, link: Link) -> None:
        if link.finished:  # dropped between the handshake and now
            self._link = None
            self._dropped(link)
            return
        self._link = link
        self._installed(link)

    def _on_link_closed(self, link: Link) -> None:
        if link is self._link:
            self._link = None
            self._dropped(link)

    def _dropped(self, link: Link) -> None:
        if self._closing:
            return
        event = link.close_event
        why = f"code {event.code}: {event.reason}" if event is not None else "connection lost"
        if self._backoff is None:
            log.info("connection to %s lost (%s); not reconnecting", self._where, why)
            self._ended = ConnectionLost(f"connection lost ({why})")
            self._end(self._ended)
            return
        log.info("connection to %s lost (%s)", self._where, why)
        loop = self._loop
        assert loop is not None
        self._reconnector = loop.create_task(self._reconnect())

    async def _reconnect(self) -> None:
        backoff = self._backoff
        assert backoff is not None
        try:
            while True:
                delay = backoff.next_delay()
                if delay is None:
                    self._ended = ConnectionLost(
                        f"gave up reconnecting after {backoff.attempts} attempts"
                    )
                    break
                log.info(
                    "reconnecting to %s in %.2f s (attempt %d)",
                    self._where,
                    delay,
                    backoff.attempts,
                )
                await asyncio.sleep(delay)
                try:
                    link = await self._open()
                except HandshakeFailed as exc:
                    if exc.status_code is None:
                        log.info("reconnection to %s failed: %s", self._where, exc)
                        continue
                    log.warning("reconnection to %s refused: %s", self._where, exc)
                    error = ConnectionLost(f"reconnection refused with HTTP {exc.status_code}")
                    error.__cause__ = exc
                    self._ended = error
                    break
                except (OSError, ConnectionLost) as exc:  # refused, TLS, DNS, timeout
                    log.info("reconnection to %s failed: %s", self._where, type(exc).__name__)
                    continue
                backoff.reset()
                self._reconnector = None
                self._install(link)
                return
        except Exception as exc:  # a bug: never lose it silently, never hang the waiters
            log.exception("reconnection to %s crashed", self._where)
            self._ended = ConnectionLost("reconnection failed unexpectedly")
            self._ended.__cause__ = exc
        self._reconnector = None
        self._end(self._ended)

    # -- state ---------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now (False while reconnecting)."""
        link = self._link
        return link is not None and not link.finished

    @property
    def _state(self) -> str:
        """One word for reprs."""
        return "connected" if self.connected else "closed" if self._closing else "disconnected"

    def _check_usable(self) -> None:
        if self._ended is not None:
            raise ConnectionLost(str(self._ended)) from self._ended
        if self._loop is None:
            raise RuntimeError("use the client inside its 'async with' block")


class AsyncPlaceOSClient(_Client):
    """A PlaceOS real-time WebSocket client (see `connect_placeos`).

    Requests go through one `protocore.placeos.PlaceOSClient` session, kept across
    reconnections; a `protocore.placeos.Router` delivers answers to the waiting
    calls and values to the open subscriptions.
    """

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        bearer_token: str | None,
        auth: AuthPlacement,
        ssl_context: ssl.SSLContext | None,
        reconnect: bool | Backoff,
        connect_timeout: float,
        close_timeout: float,
        keepalive_interval: float | None,
        keepalive_timeout: float,
        heartbeat_interval: float | None,
        heartbeat_timeout: float | None,
        exec_timeout: float,
        bind_timeout: float,
        max_message_size: int,
        buffer_size: int,
        value_format: ValueFormat,
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self._placeos = PlaceOSClient(
            api_key=api_key,
            bearer_token=bearer_token,
            auth=auth,
            exec_timeout=exec_timeout,
            bind_timeout=bind_timeout,
            heartbeat_interval=heartbeat_interval,
            heartbeat_timeout=heartbeat_timeout,
            value_format=value_format,
        )
        self._session = self._placeos
        super().__init__(
            url,
            ssl_context=ssl_context,
            reconnect=reconnect,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            max_message_size=max_message_size,
        )
        self._router = Router()
        self._buffer_size = buffer_size
        self._waiters: set[asyncio.Future[Any]] = set()
        self._subscriptions: set[Subscription[Any]] = set()

    def __repr__(self) -> str:
        return f"<AsyncPlaceOSClient {self._where} {self._state} {self._placeos!r}>"

    # -- requests ------------------------------------------------------------------------

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

        Raises the `protocore.placeos.exceptions` class for the server's error number,
        `RequestTimeout` when no answer comes in time, `ConnectionLost` when the
        connection drops first (or is down).
        """
        self._check_usable()
        loop = self._loop
        assert loop is not None
        rid = self._placeos.exec(
            sys, mod, method, *args, index=index, now=loop.time(), timeout=timeout
        )
        return await self._result(rid)

    def bind(self, sys: str, mod: str, name: str, *, index: int = 1) -> Subscription[Any]:
        """Subscribe to status variable ``name``: an async context manager whose value
        is an async iterator of the variable's values, the current one first (if any)."""
        binding = Binding(sys, mod, index, name)
        return Subscription(self, binding, None, self._buffer_size)

    def debug(self, sys: str, module_id: str, *, index: int = 1) -> Subscription[DebugMessage]:
        """Follow module ``module_id``'s log lines: an async context manager whose value
        is an async iterator of `protocore.placeos.DebugMessage`."""
        return Subscription(self, None, (sys, module_id, index), self._buffer_size)

    # -- plumbing for requests and subscriptions ----------------------------------------

    async def _result(self, rid: int) -> Any:
        loop = self._loop
        assert loop is not None
        future: asyncio.Future[Any] = loop.create_future()

        def settle(value: Any, error: BaseException | None) -> None:
            if not future.done():
                if error is None:
                    future.set_result(value)
                else:
                    future.set_exception(error)

        self._router.expect(rid, settle)
        self._waiters.add(future)
        try:
            self._after_call()
            return await future
        except asyncio.CancelledError:
            self._router.forget(rid)
            raise
        finally:
            self._waiters.discard(future)

    def _after_call(self) -> None:
        """The application called the session: route what it decided, send what it queued."""
        events = self._placeos.take_events()
        if events:
            self._on_events(events)
        link = self._link
        if link is not None:
            link.flush_soon()

    def _on_events(self, events: list[Event]) -> None:
        rest = self._router.dispatch(events)
        if rest:
            for event in rest:
                cls = event.__class__
                if cls is BindingLost:
                    log.warning("a subscription was not restored after a reconnect")
                elif cls is BadMessage:
                    log.warning("undecodable message from the server")
                elif cls is UnexpectedResponse:
                    log.debug("late or unknown answer from the server")

    def _end(self, error: BaseException) -> None:
        for future in list(self._waiters):
            if not future.done():
                future.set_exception(error)
                future.exception()  # the caller may be gone: do not warn about it
        for subscription in list(self._subscriptions):
            subscription._close(error)


class Subscription(Generic[T]):
    """A binding's values or a debug stream's lines: ``async with`` it, then iterate.

    Items wait in a drop-oldest `Mailbox` of ``buffer_size``. The iterator ends with
    the exception the server gave when the subscription is lost (`BindingLost`:
    the re-bind after a reconnect was refused or timed out), or `ConnectionLost`
    when the client gives up or is closed. One task iterates at a time.
    """

    __slots__ = (
        "_binding",
        "_box",
        "_client",
        "_entered",
        "_got",
        "_stream",
        "_token",
        "_waiter",
    )

    def __init__(
        self,
        client: AsyncPlaceOSClient,
        binding: Binding | None,
        stream: tuple[str, str, int] | None,
        buffer_size: int,
    ) -> None:
        self._client = client
        self._binding = binding
        self._stream = stream
        self._box: Mailbox[T] = Mailbox(buffer_size)
        self._waiter: asyncio.Future[None] | None = None
        self._token: int | None = None
        self._got = False
        self._entered = False

    @property
    def dropped(self) -> int:
        """How many items were dropped (oldest first) because the consumer was behind."""
        return self._box.dropped

    def __repr__(self) -> str:
        if self._binding is not None:
            b = self._binding
            what = f"binding {b.sys}/{b.mod}_{b.index}.{b.name}"
        else:
            assert self._stream is not None
            what = f"debug {self._stream[0]}/{self._stream[1]}_{self._stream[2]}"
        return f"<Subscription {what} waiting={len(self._box)} dropped={self._box.dropped}>"

    async def __aenter__(self) -> Subscription[T]:
        if self._entered:
            raise RuntimeError("a subscription can be entered only once")
        self._entered = True
        client = self._client
        client._check_usable()
        loop = client._loop
        assert loop is not None
        session = client._placeos
        router = client._router
        binding = self._binding
        if binding is not None:
            self._token = router.listen(binding, self._put, self._close)
            rid = session.bind(
                binding.sys, binding.mod, binding.name, index=binding.index, now=loop.time()
            )
        else:
            assert self._stream is not None
            sys, module_id, index = self._stream
            self._token = router.listen_debug(module_id, self._put, self._close)
            rid = session.debug(sys, module_id, index=index, now=loop.time())
        client._subscriptions.add(self)
        try:
            await client._result(rid)
        except asyncio.CancelledError:
            self._release()  # the bind may still succeed: give its reference back
            self._forget()
            raise
        except BaseException:
            self._forget()  # failed, timed out or aborted: the session released it
            raise
        if binding is not None and not self._got and session.has_value(binding):
            # Already bound elsewhere in this client: no notify will come for it.
            self._put(session.value(binding))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._forget()
        if self._client._ended is None:
            self._release()
        self._close(None)

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        box = self._box
        while True:
            if len(box):
                return box.get_nowait()
            if box.closed:
                if box.error is not None:
                    raise box.error
                raise StopAsyncIteration
            if self._waiter is not None:
                raise RuntimeError("another task is already iterating this subscription")
            loop = self._client._loop
            assert loop is not None
            waiter = self._waiter = loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    # -- called by the router and the client --------------------------------------------

    def _put(self, item: T) -> None:
        self._got = True
        self._box.put(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _close(self, error: BaseException | None) -> None:
        self._box.close(error)
        self._client._subscriptions.discard(self)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _forget(self) -> None:
        if self._token is not None:
            self._client._router.unlisten(self._token)
            self._token = None
        self._client._subscriptions.discard(self)

    def _release(self) -> None:
        """Give the session's reference back (an unbind or ignore, when it is the last)."""
        client = self._client
        loop = client._loop
        assert loop is not None
        session = client._placeos
        if self._binding is not None:
            b = self._binding
            session.unbind(b.sys, b.mod, b.name, index=b.index, now=loop.time())
        else:
            assert self._stream is not None
            sys, module_id, index = self._stream
            session.ignore(sys, module_id, index=index, now=loop.time())
        # Nobody waits for the unbind's answer: route what the call decided, send it.
        client._after_call()


def connect_placeos(
    url: str,
    *,
    api_key: str | None = None,
    bearer_token: str | None = None,
    auth: AuthPlacement = "header",
    ssl_context: ssl.SSLContext | None = None,
    reconnect: bool | Backoff = True,
    connect_timeout: float = 10.0,
    close_timeout: float = 10.0,
    keepalive_interval: float | None = 20.0,
    keepalive_timeout: float = 20.0,
    heartbeat_interval: float | None = 15.0,
    heartbeat_timeout: float | None = 60.0,
    exec_timeout: float = 10.0,
    bind_timeout: float = 30.0,
    max_message_size: int = 1 << 20,
    buffer_size: int = 1000,
    value_format: ValueFormat = ValueFormat.AUTO,
) -> AsyncPlaceOSClient:
    """A PlaceOS client for ``url`` (``ws[s]://host/api/engine/v2/systems/control``).

    Use it as ``async with connect_placeos(...) as client``: the first connection is
    made on entry (its failure raises there), the close handshake on exit. Exactly
    one of ``api_key`` and ``bearer_token``, placed as ``auth`` says.
    """
    return AsyncPlaceOSClient(
        url,
        api_key=api_key,
        bearer_token=bearer_token,
        auth=auth,
        ssl_context=ssl_context,
        reconnect=reconnect,
        connect_timeout=connect_timeout,
        close_timeout=close_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
        heartbeat_interval=heartbeat_interval,
        heartbeat_timeout=heartbeat_timeout,
        exec_timeout=exec_timeout,
        bind_timeout=bind_timeout,
        max_message_size=max_message_size,
        buffer_size=buffer_size,
        value_format=value_format,
    )


class MewsEvents(_Client):
    """A Mews Connector stream (see `connect_mews`): an async iterator of events.

    Yields each event of each message in order (`protocore.mews` models; an event that
    failed its schema is an `InvalidEvent` in its place), a `Reconnected` marker after
    every reconnect (resynchronise through the REST API: Mews does not replay), and a
    `BadMessage` for a message that could not be decoded at all. Never drops an event:
    with ``buffer_size`` waiting, the socket is not read until the consumer has taken
    half of them. Ends with `ConnectionLost` when no connection will come back, and
    quietly once the ``async with`` block is left (after the events it holds; what
    arrives during the close handshake is not kept). One task iterates at a time.
    """

    def __init__(
        self,
        url: str,
        *,
        client_token: str,
        access_token: str,
        auth: Literal["cookie", "query"],
        ssl_context: ssl.SSLContext | None,
        reconnect: bool | Backoff,
        connect_timeout: float,
        close_timeout: float,
        keepalive_interval: float | None,
        keepalive_timeout: float,
        max_message_size: int,
        buffer_size: int,
    ) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self._session = MewsClient(
            client_token, access_token, auth=auth, max_message_size=max_message_size
        )
        super().__init__(
            url,
            ssl_context=ssl_context,
            reconnect=reconnect,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            max_message_size=max_message_size,
        )
        self._buffer_size = buffer_size
        self._resume_at = buffer_size // 2  # hysteresis: one pause per half buffer
        self._queue: deque[Any] = deque()
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None
        self._done = False
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        return f"<MewsEvents {self._where} {self._state} waiting={len(self._queue)}>"

    def __len__(self) -> int:
        """How many events wait for the consumer."""
        return len(self._queue)

    def __aiter__(self) -> MewsEvents:
        return self

    async def __anext__(self) -> Any:
        queue = self._queue
        while True:
            if queue:
                item = queue.popleft()
                if self._paused and len(queue) <= self._resume_at:
                    self._paused = False
                    link = self._link
                    if link is not None:
                        link.pause_reading(False)
                return item
            if self._done:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            loop = self._loop
            if loop is None:
                raise RuntimeError("iterate the events inside their 'async with' block")
            if self._waiter is not None:
                raise RuntimeError("another task is already iterating these events")
            waiter = self._waiter = loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None

    # -- called by the link and the client ----------------------------------------------

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _on_events(self, events: list[Event]) -> None:
        if self._closing:
            return  # sent after the block was left: nobody will take it
        queue = self._queue
        before = len(queue)
        for event in events:
            cls = event.__class__
            if cls is EventsReceived:
                assert isinstance(event, EventsReceived)
                queue.extend(event.envelope.events)
            elif cls is Reconnected:
                queue.append(event)
            elif cls is BadMessage:
                log.warning("undecodable message from the Mews server")
                queue.append(event)
            elif isinstance(event, LivenessLost):
                log.info("the Mews server stopped answering (%s)", cls.__name__)
        if len(queue) == before:
            return
        self._wake()
        if not self._paused and len(queue) >= self._buffer_size:
            # The consumer is behind: stop reading, so TCP slows the server down.
            self._paused = True
            link = self._link
            if link is not None:
                link.pause_reading(True)

    def _installed(self, link: Link) -> None:
        if self._paused:  # still behind: the new connection waits too
            link.pause_reading(True)

    def _end(self, error: BaseException) -> None:
        self._done = True
        if not self._closing:
            self._error = error
        self._wake()


def connect_mews(
    url: str,
    *,
    client_token: str,
    access_token: str,
    auth: Literal["cookie", "query"] = "cookie",
    ssl_context: ssl.SSLContext | None = None,
    reconnect: bool | Backoff = True,
    connect_timeout: float = 10.0,
    close_timeout: float = 10.0,
    keepalive_interval: float | None = 20.0,
    keepalive_timeout: float = 20.0,
    max_message_size: int = 1 << 20,
    buffer_size: int = 10000,
) -> MewsEvents:
    """A Mews Connector client for ``url`` (``wss://ws.mews.com/ws/connector``).

    Use it as ``async with connect_mews(...) as events: async for event in events``:
    the first connection is made on entry (its failure raises there), the close
    handshake on exit. The tokens go in a cookie (current API) or, with
    ``auth="query"``, in the query (the legacy endpoint). See `MewsEvents`.
    """
    return MewsEvents(
        url,
        client_token=client_token,
        access_token=access_token,
        auth=auth,
        ssl_context=ssl_context,
        reconnect=reconnect,
        connect_timeout=connect_timeout,
        close_timeout=close_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
        max_message_size=max_message_size,
        buffer_size=buffer_size,
    )


# -- servers --------------------------------------------------------------------------


class _ConnectionOptions(TypedDict):
    """What `serve_placeos` and `serve_mews` pass to each `ServerConnection`."""

    keepalive_interval: float | None
    keepalive_timeout: float
    handshake_timeout: float
    close_timeout: float
    max_message_size: int


class _Server:
    """What both servers share: listening, the connections, thread-safe calls."""

    _path: str

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        options: _ConnectionOptions,
    ) -> None:
        self._host = host
        self._requested_port = port
        self._ssl = ssl_context
        self._options = options
        self._close_timeout = float(options["close_timeout"])
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._port = 0
        self._links: set[Link] = set()
        self._open: set[Link] = set()
        self._calls: set[concurrent.futures.Future[Any]] = set()
        self._state_lock = threading.Lock()
        self._stopped = False

    # -- hooks ---------------------------------------------------------------------------

    def _new_session(self, wakeup: Callable[[], None]) -> ServerSession:
        """A session for a new connection; ``wakeup`` flushes that connection soon."""
        raise NotImplementedError

    def _on_events(self, link: Link, events: list[Event]) -> None:
        for event in events:
            cls = event.__class__
            if cls is Connected:
                self._open.add(link)
            elif cls is ConnectionClosed:
                self._open.discard(link)
            elif cls is BadMessage:
                log.info("undecodable message from a client")
            elif cls is HandlerFailed:
                assert isinstance(event, HandlerFailed)
                log.warning("request handler failed: %s", type(event.error).__name__)

    # -- lifecycle -----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self._start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _start(self) -> None:
        if self._loop is not None:
            raise RuntimeError("a server can be entered only once")
        self._loop = loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol, self._host, self._requested_port, ssl=self._ssl
        )
        sockets = self._server.sockets
        self._port = int(sockets[0].getsockname()[1])
        log.info("serving on %s", self.url)

    async def aclose(self) -> None:
        """Stop listening, close every connection (1001), wait up to ``close_timeout``."""
        server = self._server
        if server is None or self._stopped:
            return
        self._stopped = True
        links = list(self._links)
        try:
            server.close()
            for link in links:
                link.close(1001, "server shutting down")
            pending = [link.lost for link in links if not link.lost.done()]
            if pending:
                await asyncio.wait(pending, timeout=self._close_timeout)
        finally:
            for link in links:
                if not link.lost.done():
                    link.abort()
            with self._state_lock:
                calls = list(self._calls)
            for call in calls:
                if not call.done():
                    call.set_exception(RuntimeError("the server was closed"))
        await server.wait_closed()
        log.info("stopped serving on %s", self.url)

    def _protocol(self) -> Link:
        loop = self._loop
        assert loop is not None

        def wakeup() -> None:  # only ever called once ``link`` exists
            link.flush_soon()

        conn = ServerConnection(self._new_session(wakeup), **self._options)
        link = Link(conn, loop, lambda events: self._on_events(link, events))
        link.lost.add_done_callback(lambda _: self._links.discard(link))
        self._links.add(link)
        return link

    # -- the handle ----------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The port the server listens on (the one picked when 0 was asked for)."""
        return self._port

    @property
    def url(self) -> str:
        scheme = "wss" if self._ssl is not None else "ws"
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{scheme}://{host}:{self._port}{self._path}"

    @property
    def connections(self) -> int:
        """How many WebSocket connections are open now (handshake done, not closed).

        Counted on the server's loop, like the other properties: read directly from
        another thread, a client could already hold its 101 before it was counted.
        """
        if self._loop is None or self._stopped:
            return len(self._open)  # nothing but shutdown changes it now
        try:
            return self._call(len, self._open)
        except RuntimeError:  # the server stopped meanwhile
            return len(self._open)

    def drop_connections(self) -> int:
        """Abort every connection at once, without a close frame (for fault tests).

        Clients see the drop and reconnect. Returns how many were aborted.
        """
        return self._call(self._drop)

    def _drop(self) -> int:
        links = list(self._links)
        for link in links:
            link.abort()
        return len(links)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} connections={self.connections}>"

    def _call(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn`` on the server's loop: directly when already on it, else through
        ``call_soon_threadsafe``, waiting for its result (or exception)."""
        loop = self._loop
        if loop is None or self._stopped:
            raise RuntimeError("the server is not running")
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            return fn(*args, **kwargs)
        future: concurrent.futures.Future[R] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                future.set_exception(exc)

        with self._state_lock:
            self._calls.add(future)
        try:
            loop.call_soon_threadsafe(run)
            return future.result()
        finally:
            with self._state_lock:
                self._calls.discard(future)


class PlaceOSServerHandle(_Server):
    """A PlaceOS real-time WebSocket server backed by a `MockEngine` (see `serve_placeos`).

    Each connection gets its own `PlaceOSServer` session with the engine as handler.
    """

    _path = DEFAULT_PATH

    def __init__(
        self,
        engine: MockEngine,
        host: str,
        port: int,
        *,
        api_keys: Iterable[str],
        bearer_tokens: Iterable[str],
        allow_anonymous: bool,
        ssl_context: ssl.SSLContext | None,
        bad_requests: Literal["reply", "drop"],
        dialect: Dialect,
        options: _ConnectionOptions,
    ) -> None:
        super().__init__(host, port, ssl_context=ssl_context, options=options)
        self._engine = engine
        self._api_keys = tuple(api_keys)
        self._bearer_tokens = tuple(bearer_tokens)
        self._allow_anonymous = allow_anonymous
        self._bad_requests: Literal["reply", "drop"] = bad_requests
        self._dialect = dialect
        # Check the options now, not at the first connection.
        ServerConnection(self._make_session(), **options)

    def _make_session(self) -> PlaceOSServer:
        return PlaceOSServer(
            api_keys=self._api_keys,
            bearer_tokens=self._bearer_tokens,
            allow_anonymous=self._allow_anonymous,
            handler=self._engine,
            bad_requests=self._bad_requests,
            dialect=self._dialect,
        )

    def _new_session(self, wakeup: Callable[[], None]) -> ServerSession:
        session = self._make_session()
        session.wakeup = wakeup
        return session

    def set_status(self, sys: str, mod: str, name: str, value: Any, *, index: int = 1) -> int:
        """Set a status variable; every client bound to it gets a notify. Returns how
        many sessions were notified."""
        return self._call(self._engine.set_status, sys, mod, name, value, index=index)

    def log(
        self,
        sys: str,
        mod: str,
        message: str,
        *,
        level: LogLevel | str = "debug",
        index: int = 1,
    ) -> int:
        """A log line of module ``mod``, to every client debugging it; how many got it."""
        return self._call(self._engine.log, sys, mod, message, level=level, index=index)


def serve_placeos(
    engine: MockEngine,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api_keys: Iterable[str] = (),
    bearer_tokens: Iterable[str] = (),
    allow_anonymous: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    bad_requests: Literal["reply", "drop"] = "reply",
    dialect: Dialect = Dialect.CURRENT,
    keepalive_interval: float | None = 20.0,
    keepalive_timeout: float = 20.0,
    handshake_timeout: float = 10.0,
    close_timeout: float = 10.0,
    max_message_size: int = 1 << 20,
) -> PlaceOSServerHandle:
    """Serve ``engine``'s systems over the PlaceOS real-time WebSocket.

    Use it as ``async with serve_placeos(engine) as server``; ``server.url`` is where
    clients connect. A server with neither ``api_keys`` nor ``bearer_tokens`` refuses
    everyone unless ``allow_anonymous``.

    Every connection gets the same options (as in each adapter's ``serve_*``):

    - ``keepalive_interval``: seconds between pings to the client (None: no pings).
    - ``keepalive_timeout``: seconds to wait for the pong; then close 1011 and drop.
    - ``handshake_timeout``: seconds for the client to finish the upgrade; then drop.
    - ``close_timeout``: seconds to wait for a close answer, on server exit too.
    - ``max_message_size``: bytes per client message; a bigger one closes with 1009.
    """
    return PlaceOSServerHandle(
        engine,
        host,
        port,
        api_keys=api_keys,
        bearer_tokens=bearer_tokens,
        allow_anonymous=allow_anonymous,
        ssl_context=ssl_context,
        bad_requests=bad_requests,
        dialect=dialect,
        options=_ConnectionOptions(
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
        ),
    )


class MewsServerHandle(_Server):
    """A Mews-like server (see `serve_mews`): `publish` pushes events to every client.

    Each connection gets its own `protocore.mews.MewsServer` session, which checks
    the tokens (cookie or legacy query) and refuses other paths.
    """

    _path = MEWS_PATH

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_token: str,
        access_token: str,
        ssl_context: ssl.SSLContext | None,
        options: _ConnectionOptions,
    ) -> None:
        super().__init__(host, port, ssl_context=ssl_context, options=options)
        self._client_token = client_token
        self._access_token = access_token
        # Bad tokens or options raise now, not per connection.
        ServerConnection(self._new_session(lambda: None), **options)

    def _new_session(self, wakeup: Callable[[], None]) -> ServerSession:
        return MewsServer(self._client_token, self._access_token, path=MEWS_PATH)

    def publish(self, events: Envelope | Iterable[MewsEvent]) -> int:
        """Push one message (an `Envelope`, or events to wrap in one) to every
        connected client; returns how many got it."""
        envelope = events if isinstance(events, Envelope) else Envelope(tuple(events))
        return self._call(self._publish, envelope)

    def _publish(self, envelope: Envelope) -> int:
        reached = 0
        for link in list(self._open):
            session = link.conn.session
            if link.conn.state is _OPEN and isinstance(session, MewsServer):
                session.push(envelope)
                link.flush_soon()
                reached += 1
        return reached


def serve_mews(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    client_token: str,
    access_token: str,
    ssl_context: ssl.SSLContext | None = None,
    keepalive_interval: float | None = 20.0,
    keepalive_timeout: float = 20.0,
    handshake_timeout: float = 10.0,
    close_timeout: float = 10.0,
    max_message_size: int = 1 << 20,
) -> MewsServerHandle:
    """A Mews-like server at ``/ws/connector`` (tests, demos).

    Use it as ``async with serve_mews(client_token=..., access_token=...) as server``;
    ``server.url`` is where clients connect, `MewsServerHandle.publish` pushes events.
    Accepts the tokens as cookies or, as the legacy endpoint, in the query.

    Every connection gets the same options (as in each adapter's ``serve_*``):

    - ``keepalive_interval``: seconds between pings to the client (None: no pings).
    - ``keepalive_timeout``: seconds to wait for the pong; then close 1011 and drop.
    - ``handshake_timeout``: seconds for the client to finish the upgrade; then drop.
    - ``close_timeout``: seconds to wait for a close answer, on server exit too.
    - ``max_message_size``: bytes per client message; a bigger one closes with 1009.
    """
    return MewsServerHandle(
        host,
        port,
        client_token=client_token,
        access_token=access_token,
        ssl_context=ssl_context,
        options=_ConnectionOptions(
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
        ),
    )
