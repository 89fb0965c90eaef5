"""Blocking-socket transport: the PlaceOS and Mews WebSockets with plain threads.

The same API as `transports.trio` and `transports.asyncio`, with context managers,
iterators and blocking calls::

    with connect_placeos(url, api_key=key) as client:
        value = client.exec(sys, "Display", "power", True)
        with client.bind(sys, "Display", "power") as values:
            for value in values: ...          # the current value first, if any
        with client.debug(sys, module_id) as lines:
            for line in lines: ...            # protocore.placeos.DebugMessage

    with connect_mews(url, client_token=t, access_token=a) as events:
        for event in events: ...              # Mews events, Reconnected, BadMessage

    with serve_placeos(engine, api_keys=[key]) as server:   # returns once listening
        server.set_status(sys, "Display", "power", True)

    with serve_mews(client_token=t, access_token=a) as server:
        server.publish([event, ...])          # to every client; how many got it

Threads. Each client connection has one I/O thread (a `selectors` loop over its
socket and a socketpair that application calls use to wake it); each server has
one thread serving its listening socket and every connection. Every touch of the
core (session, connection, router, engine) happens under one lock per client or
server; application threads block on conditions fed by the core's events. The
server handles' methods (`set_status`, `log`, `publish`, `drop_connections`) are
safe from any thread, the server's own included (for a method of the engine).
Leaving a ``with`` block (or `close`) closes the connection (a close frame, then up
to ``close_timeout`` for the answer) and joins the thread: nothing outlives it.
The threads are not daemons: a client or server must be closed. Both servers take
the same connection options as in the other adapters (``keepalive_interval``,
``keepalive_timeout``, ``handshake_timeout``, ``close_timeout``, ``max_message_size``):
a client that stops answering pings is dropped (1011), one that does not finish its
upgrade in time is hung up on.

Ctrl-C. Blocking calls wait in short slices, so a KeyboardInterrupt in the main
thread propagates from `exec`, from an iteration or from `connect_*` at once; the
``with`` exit then still closes the connection and joins its thread. A second
Ctrl-C during that close abandons the close handshake (the thread still ends).

Reconnecting. After a connection that worked drops (EOF, reset, keepalive or
heartbeat lost, a server close), the client reconnects with exponential backoff
and full jitter (`protocore.backoff.Backoff`), reusing the same session: PlaceOS
bindings and debug streams are restored by the session, Mews yields `Reconnected`.
Calls in flight when the link drops raise `protocore.ConnectionLost` at once; so do
calls made while disconnected (binds and debugs wait for the next connection). A
refused upgrade (`protocore.HandshakeFailed`) is never retried. The first
connection's failure raises from ``connect_*`` (OSError, ssl.SSLError, TimeoutError
or HandshakeFailed). With ``reconnect=False`` (or when a `Backoff` gives up) calls
raise ConnectionLost and iterators end with it.

Buffers. Binding values and debug lines wait in a `transports._common.Mailbox` of
``buffer_size`` items per subscription: when a consumer is slow the OLDEST items are
dropped (``values.dropped`` counts them), so a consumer catches up with the latest
values and memory stays bounded. Mews events are never dropped: once
``buffer_size`` events wait for the consumer, the client stops reading its socket
(TCP backpressure then slows the server) until the consumer takes one; the bound can
be exceeded by the events of one socket read. While reading is paused no keepalive
pong can be read either, so a consumer stalled for longer than
``keepalive_timeout`` looks like a dead link (the client reconnects: `Reconnected`).

Logging goes to ``logging.getLogger("protocore.transports.sync")``: connects,
reconnect delays, drop reasons. No token, key, cookie, header value or URL query is
ever logged or shown in a repr.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from types import TracebackType
from typing import Any, Generic, Literal, Self, TypeVar

from protocore.backoff import Backoff
from protocore.connection import DEFAULT_MAX_MESSAGE_SIZE, ServerConnection, parse_ws_url
from protocore.errors import ConnectionLost
from protocore.events import BadMessage, Event, LivenessLost
from protocore.mews import (
    Envelope,
    EventsReceived,
    MewsClient,
    MewsEvent,
    MewsServer,
    Reconnected,
    encode_envelope,
)
from protocore.placeos import (
    AuthPlacement,
    Binding,
    BindingLost,
    DebugMessage,
    Dialect,
    HandlerFailed,
    HeartbeatLost,
    MockEngine,
    ModuleMeta,
    PlaceOSClient,
    PlaceOSServer,
    UnexpectedResponse,
    ValueFormat,
)
from protocore.placeos.exceptions import PlaceOSError
from protocore.placeos.router import Router
from protocore.placeos.server import DEFAULT_PATH as PLACEOS_PATH

from ._common import Mailbox, client_ssl_context, reconnect_policy
from ._sync_io import SLICE, ClientLoop, ConnectionOptions, ServerLoop, wait_event

__all__ = [
    "connect_placeos",
    "connect_mews",
    "serve_placeos",
    "serve_mews",
    "PlaceOSConnection",
    "Subscription",
    "MewsEvents",
    "PlaceOSServerHandle",
    "MewsServerHandle",
]

log = logging.getLogger("protocore.transports.sync")

MEWS_PATH = "/ws/connector"

T = TypeVar("T")


class _Result:
    """One request's outcome, set by the I/O thread, awaited by the caller."""

    __slots__ = ("_done", "error", "value")

    def __init__(self) -> None:
        self._done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def set(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error
        self._done.set()

    def wait(self) -> None:
        wait_event(self._done)


def _lost(why: str, cause: BaseException | None) -> ConnectionLost:
    error = ConnectionLost(why)
    if cause is not None and cause is not error:
        error.__cause__ = cause
    return error


def _check_buffer_size(buffer_size: int) -> None:
    if isinstance(buffer_size, bool) or not isinstance(buffer_size, int) or buffer_size < 1:
        raise ValueError("buffer_size must be a positive int")


class _Connection(ClientLoop):
    """What both clients share: closing, and being their own context manager."""

    def close(self) -> None:
        """Close the connection (close frame, wait for the answer) and join the thread."""
        self._close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._close()


# -- PlaceOS client ------------------------------------------------------------------


class Subscription(Generic[T]):
    """A binding's values or a debug stream's lines: a context manager and an iterator.

    Entering sends the ``bind`` (or ``debug``) and waits for the server's answer
    (raising its error); iterating blocks for the next item; leaving sends the
    ``unbind`` (or ``ignore``). Survives reconnects; ends with the server's error
    when a re-bind after a reconnect is refused, and with `ConnectionLost` when the
    client gives up. ``dropped`` counts the items dropped for a slow consumer.
    """

    __slots__ = ("_active", "_client", "_key", "_mailbox", "_timeout", "_token")

    def __init__(
        self, client: PlaceOSConnection, key: Binding | ModuleMeta, timeout: float | None
    ) -> None:
        self._client = client
        self._key = key
        self._timeout = timeout
        self._mailbox: Mailbox[T] = Mailbox(client._buffer_size)
        self._token: int | None = None
        self._active = False

    @property
    def target(self) -> Binding | ModuleMeta:
        """What this subscribes to: a `Binding`, or a debug stream's `ModuleMeta`."""
        return self._key

    @property
    def dropped(self) -> int:
        """How many items were dropped (oldest first) because the consumer lagged."""
        return self._mailbox.dropped

    def __enter__(self) -> Subscription[T]:
        self._client._subscribe(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client._unsubscribe(self, wait=exc_type is None)

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item: T = self._client._next_item(self)
        return item

    def __repr__(self) -> str:
        return f"<Subscription {self._key!r} active={self._active} waiting={len(self._mailbox)}>"


class PlaceOSConnection(_Connection):
    """A PlaceOS real-time WebSocket client (see `connect_placeos`)."""

    def __init__(
        self,
        session: PlaceOSClient,
        url: str,
        *,
        buffer_size: int,
        ssl_context: ssl.SSLContext | None,
        reconnect: Backoff | None,
        connect_timeout: float,
        close_timeout: float,
        keepalive_interval: float | None,
        keepalive_timeout: float,
        max_message_size: int,
    ) -> None:
        _check_buffer_size(buffer_size)
        super().__init__(
            session,
            url,
            ssl_context=ssl_context,
            reconnect=reconnect,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            max_message_size=max_message_size,
            logger=log,
            thread_name="protocore-sync-placeos",
        )
        self._client = session
        self._buffer_size = buffer_size
        self._router = Router()
        self._waiters: dict[int, _Result] = {}
        self._subscriptions: set[Subscription[Any]] = set()
        self._changed = threading.Condition(self._lock)

    # -- the public API ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether a connection is open now (False while reconnecting or closing)."""
        with self._lock:
            return self._connected and self._client.connected

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

        Raises the `protocore.placeos.exceptions` class of the server's error,
        `RequestTimeout` (``timeout``, default ``exec_timeout``) or `ConnectionLost`.
        """
        client = self._client
        return self._request(
            lambda now: client.exec(sys, mod, method, *args, index=index, now=now, timeout=timeout)
        )

    def bind(
        self, sys: str, mod: str, name: str, *, index: int = 1, timeout: float | None = None
    ) -> Subscription[Any]:
        """Status variable ``name``'s values: ``with client.bind(...) as values: for v in
        values``. The first item is the current value, when the variable has one."""
        return Subscription(self, Binding(sys, mod, index, name), timeout)

    def debug(
        self, sys: str, module_id: str, *, index: int = 1, timeout: float | None = None
    ) -> Subscription[DebugMessage]:
        """Log lines of module ``module_id``, as `protocore.placeos.DebugMessage`."""
        return Subscription(self, ModuleMeta(sys, module_id, index), timeout)

    def __repr__(self) -> str:
        return (
            f"<PlaceOSConnection {self._where} connected={self._connected} "
            f"closed={self._dead or self._stopping}>"
        )

    # -- requests ----------------------------------------------------------------------

    def _start_request(self, send: Callable[[float], int]) -> tuple[int, _Result]:
        """Call the session (under the lock), register the waiter, wake the I/O thread."""
        result = _Result()
        with self._lock:
            self._check_usable()
            rid = send(time.monotonic())
            self._waiters[rid] = result
            self._router.expect(rid, partial(self._resolved, rid))
            self._dispatch(self._client.take_events())
        self._wake()
        return rid, result

    def _finish_request(self, rid: int, result: _Result) -> Any:
        try:
            result.wait()
        except BaseException:  # Ctrl-C: nobody waits for the answer any more
            with self._lock:
                self._router.forget(rid)
                self._waiters.pop(rid, None)
            raise
        if result.error is not None:
            raise result.error
        return result.value

    def _request(self, send: Callable[[float], int]) -> Any:
        rid, result = self._start_request(send)
        return self._finish_request(rid, result)

    def _resolved(self, rid: int, value: Any, error: BaseException | None) -> None:
        result = self._waiters.pop(rid, None)
        if result is not None:
            result.set(value, error)

    # -- subscriptions -----------------------------------------------------------------

    def _subscribe(self, sub: Subscription[Any]) -> None:
        if sub._active or sub._mailbox.closed:
            raise RuntimeError("a subscription can be entered only once")
        key = sub._key
        client = self._client

        def on_item(item: Any) -> None:
            sub._mailbox.put(item)
            self._changed.notify_all()

        def on_end(error: BaseException) -> None:
            sub._mailbox.close(error)
            sub._active = False
            self._subscriptions.discard(sub)
            self._changed.notify_all()

        def send(now: float) -> int:
            if isinstance(key, Binding):
                sub._token = self._router.listen(key, on_item, on_end)
                if client.has_value(key):  # already held: its value will not come again
                    sub._mailbox.put(client.value(key))
                rid = client.bind(
                    key.sys, key.mod, key.name, index=key.index, now=now, timeout=sub._timeout
                )
            else:
                sub._token = self._router.listen_debug(key.mod, on_item, on_end)
                rid = client.debug(key.sys, key.mod, index=key.index, now=now, timeout=sub._timeout)
            sub._active = True
            self._subscriptions.add(sub)
            return rid

        rid, result = self._start_request(send)
        try:
            result.wait()
        except BaseException:
            # Interrupted: the session still counts this reference; give it back.
            with self._lock:
                self._router.forget(rid)
                self._waiters.pop(rid, None)
                active, sub._active = sub._active, False
                self._drop_subscription(sub)
                if active and not (self._dead or self._stopping):
                    self._release(sub, time.monotonic())
                    self._dispatch(self._client.take_events())
            self._wake()
            raise
        if result.error is not None:
            # Refused, timed out or aborted: the session already let the binding go.
            with self._lock:
                sub._active = False
                self._drop_subscription(sub)
            raise result.error

    def _drop_subscription(self, sub: Subscription[Any]) -> None:
        if sub._token is not None:
            self._router.unlisten(sub._token)
            sub._token = None
        self._subscriptions.discard(sub)
        sub._mailbox.close()

    def _release(self, sub: Subscription[Any], now: float) -> int | None:
        """Undo the bind or debug in the session (under the lock)."""
        key = sub._key
        if not self._client.holds(key):
            return None
        if isinstance(key, Binding):
            rid = self._client.unbind(key.sys, key.mod, key.name, index=key.index, now=now)
        else:
            rid = self._client.ignore(key.sys, key.mod, index=key.index, now=now)
        return rid

    def _unsubscribe(self, sub: Subscription[Any], *, wait: bool) -> None:
        result: _Result | None = None
        with self._lock:
            was_active = sub._active
            sub._active = False
            self._drop_subscription(sub)
            if not was_active or self._dead or self._stopping:
                return
            rid = self._release(sub, time.monotonic())
            if rid is not None and wait:
                result = _Result()
                self._waiters[rid] = result
                self._router.expect(rid, partial(self._resolved, rid))
            self._dispatch(self._client.take_events())
        self._wake()
        if result is not None and rid is not None:
            try:
                self._finish_request(rid, result)
            except (PlaceOSError, ConnectionLost) as exc:
                log.debug("unbind/ignore failed: %s", type(exc).__name__)

    def _next_item(self, sub: Subscription[Any]) -> Any:
        with self._lock:
            mailbox = sub._mailbox
            while True:
                if len(mailbox):
                    return mailbox.get_nowait()
                if mailbox.closed:
                    error, mailbox.error = mailbox.error, None
                    if error is not None:
                        raise error
                    raise StopIteration
                if not sub._active:
                    raise RuntimeError("iterate over a subscription inside its with block")
                self._changed.wait(SLICE)

    # -- hooks from the I/O loop (under the lock) --------------------------------------

    def _route(self, events: list[Event]) -> None:
        self._dispatch(events)
        self._dispatch(self._client.take_events())

    def _dispatch(self, events: list[Event]) -> None:
        if not events:
            return
        for event in self._router.dispatch(events):
            cls = event.__class__
            if cls is BadMessage:
                assert isinstance(event, BadMessage)
                log.warning("undecodable message from the server: %s", event.error)
            elif cls is BindingLost:
                assert isinstance(event, BindingLost)
                log.warning("%r was not restored after a reconnect", event.target)
            elif cls is UnexpectedResponse:
                log.debug("response nobody waits for: %r", event)
            elif isinstance(event, HeartbeatLost):
                log.info("PlaceOS heartbeat lost (nothing for %.0f s)", event.timeout)

    def _on_death(self, error: BaseException | None) -> None:
        why = "the client was closed" if error is None else "the connection is lost"
        for rid, result in list(self._waiters.items()):
            self._router.forget(rid)
            result.set(None, _lost(why, error))
        self._waiters.clear()
        for sub in list(self._subscriptions):
            sub._mailbox.close(None if error is None else _lost(why, error))
            sub._active = False
        self._subscriptions.clear()
        self._changed.notify_all()


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
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    buffer_size: int = 1000,
    value_format: ValueFormat = ValueFormat.AUTO,
) -> PlaceOSConnection:
    """Connect to a PlaceOS real-time WebSocket; returns once connected.

    Use as ``with connect_placeos(url, api_key=key) as client:`` (or call
    ``close()``). Raises OSError, ssl.SSLError, TimeoutError (``connect_timeout``
    covers TCP, TLS and the WebSocket handshake) or `protocore.HandshakeFailed`
    when the first connection fails. See the module doc for the rest.
    """
    session = PlaceOSClient(
        api_key=api_key,
        bearer_token=bearer_token,
        auth=auth,
        exec_timeout=exec_timeout,
        bind_timeout=bind_timeout,
        heartbeat_interval=heartbeat_interval,
        heartbeat_timeout=heartbeat_timeout,
        value_format=value_format,
    )
    context = client_ssl_context(parse_ws_url(url).secure, ssl_context)
    client = PlaceOSConnection(
        session,
        url,
        buffer_size=buffer_size,
        ssl_context=context,
        reconnect=reconnect_policy(reconnect),
        connect_timeout=connect_timeout,
        close_timeout=close_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
        max_message_size=max_message_size,
    )
    client._start()
    return client


# -- Mews client ---------------------------------------------------------------------


class MewsEvents(_Connection):
    """The events a Mews Connector WebSocket pushes, as a blocking iterator.

    Yields each event of each message in order (`protocore.mews` models, an
    `InvalidEvent` in place of one that failed its schema), a `Reconnected` marker
    after every reconnect (resynchronise through the REST API: Mews does not replay)
    and `BadMessage` for a message that could not be decoded at all. Never drops an
    event: with ``buffer_size`` waiting, the socket is not read until one is taken.
    Iteration ends with `ConnectionLost` when the link is gone for good, and
    quietly (after the events already received) once the client is closed; another
    thread may iterate while this one closes.
    """

    def __init__(
        self,
        session: MewsClient,
        url: str,
        *,
        buffer_size: int,
        ssl_context: ssl.SSLContext | None,
        reconnect: Backoff | None,
        connect_timeout: float,
        close_timeout: float,
        keepalive_interval: float | None,
        keepalive_timeout: float,
        max_message_size: int,
    ) -> None:
        _check_buffer_size(buffer_size)
        super().__init__(
            session,
            url,
            ssl_context=ssl_context,
            reconnect=reconnect,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            max_message_size=max_message_size,
            logger=log,
            thread_name="protocore-sync-mews",
        )
        self._buffer_size = buffer_size
        self._queue: deque[Any] = deque()
        self._changed = threading.Condition(self._lock)
        self._ended = False
        self._error: BaseException | None = None

    @property
    def connected(self) -> bool:
        """Whether a connection is open now (False while reconnecting or closing)."""
        with self._lock:
            return self._connected

    def __len__(self) -> int:
        """How many events wait for the consumer."""
        with self._lock:
            return len(self._queue)

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        """The next event; blocks (Ctrl-C still gets through) until one comes."""
        queue = self._queue
        with self._lock:
            while True:
                if queue:
                    item = queue.popleft()
                    resume = len(queue) == self._buffer_size - 1  # reading was paused
                    break
                if self._ended:
                    error, self._error = self._error, None
                    if error is not None:
                        raise error
                    raise StopIteration
                self._changed.wait(SLICE)
        if resume:
            self._wake()
        return item

    def __repr__(self) -> str:
        return (
            f"<MewsEvents {self._where} connected={self._connected} "
            f"waiting={len(self._queue)} closed={self._dead or self._stopping}>"
        )

    # -- hooks from the I/O loop (under the lock) --------------------------------------

    def _may_read(self) -> bool:
        # The handshake and the close handshake are always read; events only while
        # the consumer keeps up.
        return not self._connected or len(self._queue) < self._buffer_size

    def _route(self, events: list[Event]) -> None:
        queue = self._queue
        before = len(queue)
        for event in events:
            if isinstance(event, EventsReceived):
                queue.extend(event.envelope.events)
            elif isinstance(event, Reconnected):
                queue.append(event)
            elif isinstance(event, BadMessage):
                log.warning("undecodable message from the server: %s", event.error)
                queue.append(event)
            elif isinstance(event, LivenessLost):
                log.info("server stopped answering: %s", type(event).__name__)
        if self._stopping:  # closed by the application: nobody asks for more
            while len(queue) > before:
                queue.pop()
        elif len(queue) != before:
            self._changed.notify_all()

    def _on_death(self, error: BaseException | None) -> None:
        self._ended = True
        if error is not None:
            self._error = (
                error if isinstance(error, ConnectionLost) else _lost("connection lost", error)
            )
        self._changed.notify_all()


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
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    buffer_size: int = 10000,
) -> MewsEvents:
    """Connect to a Mews Connector WebSocket (``wss://ws.mews.com/ws/connector``).

    The tokens go in a cookie (current API) or, with ``auth="query"``, in the query
    (the legacy endpoint). Returns once connected; use as ``with connect_mews(...) as
    events: for event in events``. Raises OSError, ssl.SSLError, TimeoutError or
    `protocore.HandshakeFailed` when the first connection fails. See `MewsEvents`.
    """
    session = MewsClient(client_token, access_token, auth=auth, max_message_size=max_message_size)
    context = client_ssl_context(parse_ws_url(url).secure, ssl_context)
    events = MewsEvents(
        session,
        url,
        buffer_size=buffer_size,
        ssl_context=context,
        reconnect=reconnect_policy(reconnect),
        connect_timeout=connect_timeout,
        close_timeout=close_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
        max_message_size=max_message_size,
    )
    events._start()
    return events


# -- servers -------------------------------------------------------------------------


def _listen(host: str, port: int) -> socket.socket:
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    return socket.create_server((host, port), family=family, backlog=128)


class _ServerHandle:
    """What both server handles share: the listening socket, the thread, the lock."""

    _path: str

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None,
        options: ConnectionOptions,
        thread_name: str,
    ) -> None:
        # Bad settings (the session's or the connection's) raise here, not in the thread.
        ServerConnection(self._new_session(lambda: None), **options)
        self._lock = threading.RLock()
        self._secure = ssl_context is not None
        listener = _listen(host, port)
        address = listener.getsockname()
        self._host: str = address[0]
        self._port: int = address[1]
        try:
            self._loop = ServerLoop(
                listener,
                ssl_context=ssl_context,
                new_session=self._new_session,
                on_events=self._on_events,
                lock=self._lock,
                options=options,
                logger=log,
                thread_name=thread_name,
            )
            self._loop.start()
        except BaseException:
            listener.close()
            raise

    def _new_session(self, wakeup: Callable[[], None]) -> Any:
        raise NotImplementedError

    def _on_events(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, HandlerFailed):
                log.warning("request handler failed: %s", type(event.error).__name__)
            elif isinstance(event, BadMessage):
                log.debug("bad message from a client: %s", event.error)

    @property
    def host(self) -> str:
        """The address the server listens on."""
        return self._host

    @property
    def port(self) -> int:
        """The port the server listens on (the ephemeral one when given 0)."""
        return self._port

    @property
    def url(self) -> str:
        """The WebSocket URL clients connect to."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{'wss' if self._secure else 'ws'}://{host}:{self._port}{self._path}"

    @property
    def connections(self) -> int:
        """How many WebSocket connections are open now."""
        return self._loop.open_connections

    def drop_connections(self) -> None:
        """Abort every connection abruptly (no close frame), for fault tests."""
        self._loop.drop_connections()

    def close(self) -> None:
        """Stop listening, close every connection (1001), join the server thread."""
        self._loop.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url} connections={self.connections}>"


class PlaceOSServerHandle(_ServerHandle):
    """A PlaceOS real-time WebSocket server serving a `MockEngine` (see `serve_placeos`)."""

    _path = PLACEOS_PATH

    def __init__(
        self,
        engine: MockEngine,
        host: str,
        port: int,
        *,
        api_keys: tuple[str, ...],
        bearer_tokens: tuple[str, ...],
        allow_anonymous: bool,
        ssl_context: ssl.SSLContext | None,
        bad_requests: Literal["reply", "drop"],
        dialect: Dialect,
        options: ConnectionOptions,
    ) -> None:
        self._engine = engine
        self._api_keys = api_keys
        self._bearer_tokens = bearer_tokens
        self._allow_anonymous = allow_anonymous
        self._bad_requests = bad_requests
        self._dialect = dialect
        super().__init__(
            host,
            port,
            ssl_context=ssl_context,
            options=options,
            thread_name="protocore-sync-placeos-server",
        )

    def _new_session(self, wakeup: Callable[[], None]) -> PlaceOSServer:
        # Built by hand rather than by engine.new_session, which has no
        # allow_anonymous; the engine attaches it at its first request.
        return PlaceOSServer(
            api_keys=self._api_keys,
            bearer_tokens=self._bearer_tokens,
            allow_anonymous=self._allow_anonymous,
            handler=self._engine,
            bad_requests=self._bad_requests,
            dialect=self._dialect,
            wakeup=wakeup,
        )

    @property
    def engine(self) -> MockEngine:
        """The engine; touch it only through this handle's methods or under ``with
        handle.lock`` (the server thread uses it)."""
        return self._engine

    @property
    def lock(self) -> threading.RLock:
        """The lock the server thread holds while it uses the engine."""
        return self._lock

    def set_status(self, sys: str, mod: str, name: str, value: Any, *, index: int = 1) -> int:
        """Set a status variable and notify every bound client; how many got it."""
        with self._lock:
            return self._engine.set_status(sys, mod, name, value, index=index)

    def log(self, sys: str, mod: str, message: str, *, level: str = "debug", index: int = 1) -> int:
        """A module's log line, to every client debugging it; how many got it."""
        with self._lock:
            return self._engine.log(sys, mod, message, level=level, index=index)


def serve_placeos(
    engine: MockEngine,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    api_keys: tuple[str, ...] | list[str] = (),
    bearer_tokens: tuple[str, ...] | list[str] = (),
    allow_anonymous: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    bad_requests: Literal["reply", "drop"] = "reply",
    dialect: Dialect = Dialect.CURRENT,
    keepalive_interval: float | None = 20.0,
    keepalive_timeout: float = 20.0,
    handshake_timeout: float = 10.0,
    close_timeout: float = 10.0,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> PlaceOSServerHandle:
    """Serve ``engine`` over the PlaceOS real-time WebSocket in a background thread.

    Returns once listening; use as ``with serve_placeos(engine, api_keys=[k]) as
    server:``. ``ssl_context`` is a server-side context (``wss://``).

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
        api_keys=tuple(api_keys),
        bearer_tokens=tuple(bearer_tokens),
        allow_anonymous=allow_anonymous,
        ssl_context=ssl_context,
        bad_requests=bad_requests,
        dialect=dialect,
        options=ConnectionOptions(
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
        ),
    )


class MewsServerHandle(_ServerHandle):
    """A Mews-like server pushing what `publish` is given (see `serve_mews`)."""

    _path = MEWS_PATH

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_token: str,
        access_token: str,
        ssl_context: ssl.SSLContext | None,
        options: ConnectionOptions,
    ) -> None:
        self._client_token = client_token
        self._access_token = access_token
        super().__init__(
            host,
            port,
            ssl_context=ssl_context,
            options=options,
            thread_name="protocore-sync-mews-server",
        )

    def _new_session(self, wakeup: Callable[[], None]) -> MewsServer:
        # Mews sessions only send what publish queues, and publish wakes the thread.
        return MewsServer(self._client_token, self._access_token, path=MEWS_PATH)

    def publish(self, events: Envelope | Iterable[MewsEvent]) -> int:
        """Push one message (an `Envelope`, or events to wrap in one) to every
        connected client; how many got it. Safe from any thread.

        Raises `protocore.EncodeError` for events that cannot go on the wire (even
        with no client connected).
        """
        if isinstance(events, Envelope):
            envelope = events
        elif isinstance(events, Iterable) and not isinstance(events, str | bytes):
            envelope = Envelope(tuple(events))
        else:
            raise TypeError(
                f"publish takes an Envelope or an iterable of Mews events, "
                f"not {type(events).__name__}"
            )
        encode_envelope(envelope)  # a bad event fails here, for every caller alike
        with self._lock:
            sessions = self._loop.open_sessions()
            for session in sessions:
                assert isinstance(session, MewsServer)
                session.push(envelope)
        if sessions:
            self._loop.wake()
        return len(sessions)


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
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> MewsServerHandle:
    """A Mews-like server at ``/ws/connector`` (tests, demos) in a background thread.

    Returns once listening; use as ``with serve_mews(client_token=t, access_token=a)
    as server: server.publish(events)``. Accepts the tokens as cookies or, as the
    legacy endpoint does, in the query; anything else gets a 401 before the upgrade.

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
        options=ConnectionOptions(
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
        ),
    )
