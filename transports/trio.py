"""The trio transport: PlaceOS and Mews clients and servers over real sockets.

A thin loop around `protocore`'s sans-IO connections (see `transports._trio_io`):
bytes in, bytes out, timers at ``next_deadline()``. No protocol logic lives here.

Clients::

    async with connect_placeos(url, api_key=...) as client:
        value = await client.exec("sys-1", "Display", "power", True)
        async with client.bind("sys-1", "Display", "power") as values:
            async for value in values: ...

    async with connect_mews(url, client_token=..., access_token=...) as events:
        async for event in events: ...

Servers (for tests and demos)::

    async with serve_placeos(engine, api_keys=["k"]) as server:
        server.set_status("sys-1", "Display", "power", True)

Reconnecting. Once a connection has worked, a drop (EOF, reset, a lost keepalive or
heartbeat, a close from the server) starts a reconnect after a `Backoff` delay
(exponential, full jitter; reset after each successful connection). The same
session object is reused: PlaceOS bindings and debug streams are re-sent by the
session itself, and a Mews client sees a ``Reconnected`` event. Requests in flight
fail with `ConnectionLost` at once; iterators carry on. A refused upgrade
(`HandshakeFailed` with an HTTP status) is never retried. With ``reconnect=False``
the first drop ends everything: calls raise `ConnectionLost`, iterators end with it.

Cancellation. Every background task runs in a nursery owned by the ``async with``
block, so nothing outlives it. Cancelling a call (a cancel scope around ``exec`` or
an ``async for``) raises `trio.Cancelled` as usual and forgets the request. Leaving
the block normally sends a close frame (1000) and waits up to ``close_timeout``
for the answer; leaving it by cancellation sends the close frame without waiting.
Errors from the internal nursery are unwrapped: you see the one real exception,
never an ExceptionGroup.

Bounded buffers. Bind values and debug lines wait in a drop-oldest mailbox of
``buffer_size`` items per subscription: a slow consumer gets the latest values and
memory stays bounded (``values.dropped`` counts what was dropped). Mews events are
never dropped: when ``buffer_size`` events are waiting, the client stops reading the
socket until the consumer catches up, and TCP backpressure slows the server down.
A consumer stalled for longer than ``keepalive_timeout`` loses the connection
(the keepalive pong cannot be read either) and the client reconnects.

Server handles (``serve_placeos`` / ``serve_mews``): their methods and properties
are plain functions, safe to call from the server's own trio task or from any other
thread (they run in the server's loop and wait for it). Both servers take the same
connection options as in the other adapters (``keepalive_interval``,
``keepalive_timeout``, ``handshake_timeout``, ``close_timeout``, ``max_message_size``):
a client that stops answering pings is dropped (1011), one that does not finish its
upgrade in time is hung up on, and leaving the block waits up to ``close_timeout``
for the clients' close answers.

Logging goes to ``protocore.transports.trio``: connects, drops, reconnect delays.
Tokens, keys, cookies and URL queries are never logged.
"""

from __future__ import annotations

import logging
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any, Generic, Literal, TypedDict, TypeVar

import trio

from protocore.backoff import Backoff
from protocore.connection import ClientConnection, ServerConnection, parse_ws_url
from protocore.errors import ConnectionLost, HandshakeFailed
from protocore.events import BadMessage, ConnectionClosed, Event, LivenessLost
from protocore.mews import (
    Envelope,
    EventsReceived,
    MewsClient,
    MewsEvent,
    MewsServer,
    Reconnected,
)
from protocore.placeos import (
    AuthPlacement,
    BindingLost,
    DebugMessage,
    Dialect,
    HandlerFailed,
    MockEngine,
    PlaceOSClient,
    PlaceOSServer,
    UnexpectedResponse,
    ValueFormat,
)
from protocore.placeos.exceptions import PlaceOSError
from protocore.placeos.models import Binding
from protocore.placeos.router import Router
from protocore.placeos.server import DEFAULT_PATH as PLACEOS_PATH

from ._common import Mailbox, client_ssl_context, reconnect_policy
from ._trio_io import Link, LoopCaller, open_client_link, single_exception

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

logger = logging.getLogger("protocore.transports.trio")

T = TypeVar("T")

MEWS_PATH = "/ws/connector"


# -- subscriptions ----------------------------------------------------------------------


_SCHEDULE_EVERY = 32
"""Iterators hand out an item that was already waiting after a cancellation point
(`trio.lowlevel.checkpoint_if_cancelled`) and, every this many items, a full
checkpoint: a trip through trio's scheduler per item cost more than decoding it on a
busy Mews stream, while cancellation is still honoured at every item and other tasks
run at least every `_SCHEDULE_EVERY` items."""
_checkpoint = trio.lowlevel.checkpoint
_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled


class Subscription(Generic[T]):
    """An async iterator over a binding's values or a debug stream's lines.

    Items wait in a drop-oldest `Mailbox` of ``buffer_size``; `dropped` counts the
    items a slow consumer missed. It ends (raising the error, if any) when the
    server takes the subscription away (`BindingLost`), or the connection is gone
    for good (`ConnectionLost`); it ends quietly when its ``async with`` block exits.
    """

    __slots__ = ("_box", "_ready", "_served")

    def __init__(self, buffer_size: int) -> None:
        self._box: Mailbox[T] = Mailbox(buffer_size)
        self._ready = trio.Event()
        self._served = 0

    @property
    def dropped(self) -> int:
        """How many items were dropped because the consumer was behind."""
        return self._box.dropped

    def __len__(self) -> int:
        return len(self._box)

    def _put(self, item: T) -> None:
        self._box.put(item)
        self._ready.set()

    def _end(self, error: BaseException | None) -> None:
        self._box.close(error)
        self._ready.set()

    @property
    def _ended_by(self) -> BaseException | None:
        """Why it ended (None: not ended, or ended quietly). A subscription the
        server took away (`BindingLost`: a `PlaceOSError`) must not be released again."""
        return self._box.error if self._box.closed else None

    def __aiter__(self) -> Subscription[T]:
        return self

    async def __anext__(self) -> T:
        box = self._box
        while True:
            if len(box):
                self._served = served = self._served + 1
                await (_checkpoint_if_cancelled() if served % _SCHEDULE_EVERY else _checkpoint())
                return box.get_nowait()
            if box.closed:
                await trio.lowlevel.checkpoint()
                if box.error is not None:
                    raise box.error
                raise StopAsyncIteration
            self._ready = trio.Event()
            await self._ready.wait()


class _Waiter:
    """One request's caller: woken once with its value or its exception."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    def resolve(self, value: Any, error: BaseException | None) -> None:
        if not self.done.is_set():
            self.value = value
            self.error = error
            self.done.set()


# -- the client machinery shared by both protocols --------------------------------------


class _Client:
    """Owns the current link, reconnects, and says when the client is dead for good."""

    def __init__(
        self,
        url: str,
        make_conn: Callable[[], ClientConnection],
        *,
        ssl_context: ssl.SSLContext | None,
        reconnect: bool | Backoff,
        connect_timeout: float,
        close_timeout: float,
    ) -> None:
        parsed = parse_ws_url(url)
        self._where = f"{parsed.scheme}://{parsed.host_header}{parsed.path}"
        self._make_conn = make_conn
        self._ssl_context = client_ssl_context(parsed.secure, ssl_context)
        self._policy = reconnect_policy(reconnect)
        self._connect_timeout = connect_timeout
        self._close_timeout = close_timeout
        self._link: Link | None = None
        self._closing = False
        self.dead: BaseException | None = None

    # Subclasses route events, and end their waiters and iterators.
    def _on_events(self, events: list[Event]) -> None:
        raise NotImplementedError

    def _on_dead(self, error: BaseException) -> None:
        raise NotImplementedError

    async def _may_read(self) -> None:
        await trio.lowlevel.checkpoint()

    _reads_gated = False

    @property
    def link(self) -> Link | None:
        return self._link

    async def _open(self) -> Link:
        conn = self._make_conn()
        return await open_client_link(
            conn,
            self._ssl_context,
            self._connect_timeout,
            self._on_events,
            may_read=self._may_read if self._reads_gated else None,
        )

    def _die(self, error: BaseException) -> None:
        if self.dead is None:
            self.dead = error
            self._on_dead(error)

    def check_alive(self) -> None:
        """Raise `ConnectionLost` when no connection will ever come back."""
        if self.dead is not None:
            raise ConnectionLost(str(self.dead) or type(self.dead).__name__)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Connect (raising if the first attempt fails), keep connected, close on exit."""
        first = self._link = await self._open()
        logger.info("connected to %s", self._where)
        async with single_exception(), trio.open_nursery() as nursery:
            nursery.start_soon(self._supervise, first)
            try:
                yield
            except BaseException as exc:
                await self._shutdown(polite=isinstance(exc, Exception))
                raise
            else:
                await self._shutdown(polite=True)
            finally:
                nursery.cancel_scope.cancel()

    async def _shutdown(self, *, polite: bool) -> None:
        self._closing = True
        link = self._link
        if link is not None:
            if polite:
                link.close(1000)
                # The connection's own close timer ends the wait; this is a backstop.
                with trio.move_on_after(self._close_timeout + 1.0):
                    await link.done.wait()
            else:
                await link.send_close_now(1000, self._close_timeout)
        self._die(ConnectionLost("the client was closed"))

    async def _supervise(self, link: Link) -> None:
        policy = self._policy
        while True:
            self._link = link
            await link.run()
            self._link = None
            if self._closing:
                return
            closed = link.closed
            why = f"{closed.code} {closed.reason}" if closed is not None else "unknown"
            if policy is None:
                logger.info("connection to %s lost (%s); reconnect is off", self._where, why)
                self._die(ConnectionLost(f"connection to {self._where} lost ({why})"))
                return
            logger.info("connection to %s lost (%s)", self._where, why)
            next_link = await self._reconnect(policy)
            if next_link is None:
                return
            link = next_link

    async def _reconnect(self, policy: Backoff) -> Link | None:
        while True:
            delay = policy.next_delay()
            if delay is None:
                self._die(ConnectionLost(f"gave up reconnecting to {self._where}"))
                return None
            logger.info("reconnecting to %s in %.2fs", self._where, delay)
            await trio.sleep(delay)
            try:
                link = await self._open()
            except HandshakeFailed as exc:
                if exc.status_code is not None:
                    logger.warning("%s refused to reconnect: %s", self._where, exc)
                    self._die(exc)
                    return None
                logger.info("reconnecting to %s failed: %s", self._where, exc)
            except (OSError, TimeoutError) as exc:
                logger.info("reconnecting to %s failed: %s", self._where, type(exc).__name__)
            else:
                policy.reset()
                logger.info("reconnected to %s", self._where)
                return link


# -- PlaceOS client ---------------------------------------------------------------------


class PlaceOSConnection(_Client):
    """A PlaceOS real-time client: `exec`, `bind`, `debug` (see `connect_placeos`)."""

    def __init__(
        self,
        url: str,
        session: PlaceOSClient,
        *,
        buffer_size: int,
        ssl_context: ssl.SSLContext | None,
        reconnect: bool | Backoff,
        connect_timeout: float,
        close_timeout: float,
        keepalive_interval: float | None,
        keepalive_timeout: float,
        max_message_size: int,
    ) -> None:
        def make_conn() -> ClientConnection:
            return ClientConnection(
                session,
                url,
                max_message_size=max_message_size,
                keepalive_interval=keepalive_interval,
                keepalive_timeout=keepalive_timeout,
                close_timeout=close_timeout,
                handshake_timeout=connect_timeout,
            )

        super().__init__(
            url,
            make_conn,
            ssl_context=ssl_context,
            reconnect=reconnect,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
        )
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self._session = session
        self._router = Router()
        self._buffer_size = buffer_size
        self._waiting: dict[int, _Waiter] = {}
        self._subscriptions: set[Subscription[Any]] = set()

    def __repr__(self) -> str:
        return f"<PlaceOSConnection {self._where} connected={self.connected}>"

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now (False while reconnecting)."""
        link = self.link
        return link is not None and link.is_open and self._session.connected

    @property
    def session(self) -> PlaceOSClient:
        """The sans-IO session (for its read-only state: bindings, cached values)."""
        return self._session

    # -- the application's calls ----------------------------------------------------------

    async def exec(
        self,
        sys: str,
        mod: str,
        method: str,
        *args: Any,
        index: int = 1,
        timeout: float | None = None,
    ) -> Any:
        """Call ``method`` of module ``mod`` (``index``) in ``sys``; return its result.

        Raises the `protocore.placeos.exceptions` class of the server's error
        number, `RequestTimeout` when no answer comes within ``timeout`` (default
        ``exec_timeout``), `ConnectionLost` when the connection is or goes down.
        """
        self.check_alive()
        rid = self._session.exec(
            sys, mod, method, *args, index=index, now=trio.current_time(), timeout=timeout
        )
        return await self._wait(rid)

    @asynccontextmanager
    async def bind(
        self, sys: str, mod: str, name: str, *, index: int = 1
    ) -> AsyncIterator[Subscription[Any]]:
        """Subscribe to status variable ``name``: an async iterator of its values.

        The first item is the current value (when the variable has one). Raises the
        server's error (`ModuleNotFound`...) if the bind is refused. Survives
        reconnects; unbinds when the block exits.
        """
        self.check_alive()
        session = self._session
        binding = Binding(sys, mod, index, name)
        values: Subscription[Any] = Subscription(self._buffer_size)
        token = self._router.listen(binding, values._put, values._end)
        self._subscriptions.add(values)
        held = False
        try:
            cached = session.is_bound(binding) and session.has_value(binding)
            rid = session.bind(sys, mod, name, index=index, now=trio.current_time())
            held = True
            if cached:
                values._put(session.value(binding))
            try:
                await self._wait(rid)
            except Exception:
                held = False  # refused, timed out or aborted: the session let it go
                raise
            yield values
        finally:
            self._router.unlisten(token)
            self._subscriptions.discard(values)
            if held and not isinstance(values._ended_by, PlaceOSError):
                session.unbind(sys, mod, name, index=index, now=trio.current_time())
                self._flush_session()
            values._end(None)

    @asynccontextmanager
    async def debug(
        self, sys: str, module_id: str, *, index: int = 1
    ) -> AsyncIterator[Subscription[DebugMessage]]:
        """Receive module ``module_id``'s log lines (`DebugMessage`) until the block exits."""
        self.check_alive()
        session = self._session
        lines: Subscription[DebugMessage] = Subscription(self._buffer_size)
        token = self._router.listen_debug(module_id, lines._put, lines._end)
        self._subscriptions.add(lines)
        held = False
        try:
            rid = session.debug(sys, module_id, index=index, now=trio.current_time())
            held = True
            try:
                await self._wait(rid)
            except Exception:
                held = False
                raise
            yield lines
        finally:
            self._router.unlisten(token)
            self._subscriptions.discard(lines)
            if held and not isinstance(lines._ended_by, PlaceOSError):
                session.ignore(sys, module_id, index=index, now=trio.current_time())
                self._flush_session()
            lines._end(None)

    # -- plumbing ---------------------------------------------------------------------

    def _flush_session(self) -> None:
        """Route what the session decided during the call, and wake the writer."""
        self._dispatch(self._session.take_events())
        link = self.link
        if link is not None:
            link.wake()

    async def _wait(self, rid: int) -> Any:
        waiter = _Waiter()
        self._waiting[rid] = waiter
        self._router.expect(rid, waiter.resolve)
        try:
            self._flush_session()
            if self.dead is not None and not waiter.done.is_set():
                waiter.resolve(None, ConnectionLost(str(self.dead)))
            await waiter.done.wait()
        except BaseException:
            self._router.forget(rid)
            raise
        finally:
            self._waiting.pop(rid, None)
        if waiter.error is not None:
            raise waiter.error
        return waiter.value

    def _on_events(self, events: list[Event]) -> None:
        self._dispatch(self._session.take_events() + events)

    def _dispatch(self, events: list[Event]) -> None:
        if not events:
            return
        for event in self._router.dispatch(events):
            if isinstance(event, BindingLost):
                logger.info(
                    "server did not restore a subscription: %s", type(event.target).__name__
                )
            elif isinstance(event, BadMessage):
                logger.warning("undecodable message from the server: %s", event.error)
            elif isinstance(event, UnexpectedResponse):
                logger.debug("answer to no pending request (id %r)", event.response.id)
            elif isinstance(event, LivenessLost):
                logger.info("server stopped answering: %s", type(event).__name__)

    def _on_dead(self, error: BaseException) -> None:
        lost = ConnectionLost(str(error) or type(error).__name__)
        for rid, waiter in list(self._waiting.items()):
            self._router.forget(rid)
            waiter.resolve(None, lost)
        for subscription in list(self._subscriptions):
            subscription._end(lost)


@asynccontextmanager
async def connect_placeos(
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
) -> AsyncIterator[PlaceOSConnection]:
    """Connect to a PlaceOS real-time WebSocket (``wss://<domain>/api/engine/v2/systems/control``).

    Exactly one of ``api_key`` and ``bearer_token``, sent where ``auth`` says.
    Raises from the ``async with`` if the first connection fails (OSError,
    ssl.SSLError, TimeoutError, `HandshakeFailed`); see the module doc for the rest.
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
    client = PlaceOSConnection(
        url,
        session,
        buffer_size=buffer_size,
        ssl_context=ssl_context,
        reconnect=reconnect,
        connect_timeout=connect_timeout,
        close_timeout=close_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
        max_message_size=max_message_size,
    )
    async with client.running():
        yield client


# -- Mews client ------------------------------------------------------------------------


class MewsEvents(_Client):
    """The events a Mews Connector WebSocket pushes, as an async iterator.

    Yields each event of each message in order (`protocore.mews` models, an
    `InvalidEvent` in place of one that failed its schema), a `Reconnected` marker
    after every reconnect (resynchronise through the REST API: Mews does not replay),
    and `BadMessage` for a message that could not be decoded at all. Never drops an
    event: with ``buffer_size`` waiting, the socket is not read until one is taken.
    """

    _reads_gated = True

    def __init__(
        self,
        url: str,
        session: MewsClient,
        *,
        buffer_size: int,
        ssl_context: ssl.SSLContext | None,
        reconnect: bool | Backoff,
        connect_timeout: float,
        close_timeout: float,
        keepalive_interval: float | None,
        keepalive_timeout: float,
        max_message_size: int,
    ) -> None:
        def make_conn() -> ClientConnection:
            return ClientConnection(
                session,
                url,
                max_message_size=max_message_size,
                keepalive_interval=keepalive_interval,
                keepalive_timeout=keepalive_timeout,
                close_timeout=close_timeout,
                handshake_timeout=connect_timeout,
            )

        super().__init__(
            url,
            make_conn,
            ssl_context=ssl_context,
            reconnect=reconnect,
            connect_timeout=connect_timeout,
            close_timeout=close_timeout,
        )
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self._session = session
        self._buffer_size = buffer_size
        self._queue: deque[Any] = deque()
        self._ready = trio.Event()  # set when an item or the end arrives
        self._room = trio.Event()  # set when the queue drops below buffer_size
        self._ended = False
        self._error: BaseException | None = None
        self._served = 0

    def __repr__(self) -> str:
        return f"<MewsEvents {self._where} waiting={len(self._queue)}>"

    def __len__(self) -> int:
        """How many events wait for the consumer."""
        return len(self._queue)

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now (False while reconnecting)."""
        link = self.link
        return link is not None and link.is_open

    def __aiter__(self) -> MewsEvents:
        return self

    async def __anext__(self) -> Any:
        queue = self._queue
        while True:
            if queue:
                self._served = served = self._served + 1
                await (_checkpoint_if_cancelled() if served % _SCHEDULE_EVERY else _checkpoint())
                item = queue.popleft()
                if len(queue) < self._buffer_size:
                    self._room.set()
                return item
            if self._ended:
                await trio.lowlevel.checkpoint()
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._ready = trio.Event()
            await self._ready.wait()

    async def _may_read(self) -> None:
        while len(self._queue) >= self._buffer_size:
            self._room = trio.Event()
            await self._room.wait()
        await trio.lowlevel.checkpoint()

    def _on_events(self, events: list[Event]) -> None:
        queue = self._queue
        before = len(queue)
        for event in events:
            if isinstance(event, EventsReceived):
                queue.extend(event.envelope.events)
            elif isinstance(event, Reconnected | BadMessage):
                queue.append(event)
            elif isinstance(event, LivenessLost):
                logger.info("server stopped answering: %s", type(event).__name__)
        if len(queue) != before:
            self._ready.set()

    def _on_dead(self, error: BaseException) -> None:
        self._ended = True
        if not self._closing:
            self._error = ConnectionLost(str(error) or type(error).__name__)
        self._ready.set()


@asynccontextmanager
async def connect_mews(
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
) -> AsyncIterator[MewsEvents]:
    """Connect to a Mews Connector WebSocket (``wss://ws.mews.com/ws/connector``).

    The tokens go in a cookie (current API) or, with ``auth="query"``, in the query
    (the legacy endpoint). Raises from the ``async with`` if the first connection
    fails; see `MewsEvents` and the module doc for the rest.
    """
    session = MewsClient(client_token, access_token, auth=auth, max_message_size=max_message_size)
    events = MewsEvents(
        url,
        session,
        buffer_size=buffer_size,
        ssl_context=ssl_context,
        reconnect=reconnect,
        connect_timeout=connect_timeout,
        close_timeout=close_timeout,
        keepalive_interval=keepalive_interval,
        keepalive_timeout=keepalive_timeout,
        max_message_size=max_message_size,
    )
    async with events.running():
        yield events


# -- servers ------------------------------------------------------------------------------


class _ConnectionOptions(TypedDict):
    """What `serve_placeos` and `serve_mews` pass to each `ServerConnection`."""

    keepalive_interval: float | None
    keepalive_timeout: float
    handshake_timeout: float
    close_timeout: float
    max_message_size: int


class _Server:
    """Accepts connections and runs one `Link` each; knows them all for fan-out."""

    def __init__(
        self,
        kind: str,
        make_session: Callable[[], Any],
        *,
        ssl_context: ssl.SSLContext | None,
        options: _ConnectionOptions,
        on_events: Callable[[Any, list[Event]], None],
    ) -> None:
        # Bad settings (the session's or the connection's) raise here, not per connection.
        ServerConnection(make_session(), **options)
        self._kind = kind
        self._make_session = make_session
        self._ssl_context = ssl_context
        self._options = options
        self._on_events = on_events
        self.links: dict[Link, Any] = {}  # link -> its session, in accept order
        self.call = LoopCaller()
        self.host = ""
        self.port = 0

    @property
    def open_links(self) -> list[Link]:
        return [link for link in self.links if link.is_open]

    async def handle(self, stream: trio.abc.Stream) -> None:
        session = self._make_session()
        conn = ServerConnection(session, **self._options)

        def on_events(events: list[Event]) -> None:
            self._on_events(session, events)

        link = Link(stream, conn, on_events)
        if hasattr(session, "wakeup"):
            session.wakeup = link.wake  # PlaceOS: notifies queued by the engine
        self.links[link] = session
        try:
            conn.start(trio.current_time())
            await link.run()
        except Exception:  # one broken connection must not take the server down
            logger.exception("%s server connection failed", self._kind)
        finally:
            del self.links[link]

    def drop_connections(self) -> int:
        links = list(self.links)
        for link in links:
            link.abort()
        return len(links)

    @asynccontextmanager
    async def running(self, host: str, port: int) -> AsyncIterator[None]:
        listeners: list[trio.abc.Listener[Any]] = list(
            await trio.open_tcp_listeners(port, host=host)
        )
        first = listeners[0]
        assert isinstance(first, trio.SocketListener)
        self.host, self.port = first.socket.getsockname()[:2]
        if self._ssl_context is not None:
            listeners = [
                trio.SSLListener(listener, self._ssl_context, https_compatible=True)
                for listener in listeners
            ]
        logger.info("%s server listening on %s port %d", self._kind, self.host, self.port)
        accepting = trio.CancelScope()
        async with single_exception(), trio.open_nursery() as nursery:

            async def accept() -> None:
                with accepting:
                    await trio.serve_listeners(self.handle, listeners, handler_nursery=nursery)

            nursery.start_soon(accept)
            try:
                yield
            except BaseException as exc:
                accepting.cancel()
                if isinstance(exc, Exception):
                    await self._close_all()
                raise
            else:
                accepting.cancel()
                await self._close_all()
            finally:
                nursery.cancel_scope.cancel()

    async def _close_all(self) -> None:
        """Say goodbye (1001) to every client, and wait up to ``close_timeout`` for the
        answers (each connection's own close timer ends it; this is a backstop)."""
        links = list(self.links)
        for link in links:
            link.close(1001, "server shutting down")
        with trio.move_on_after(self._options["close_timeout"] + 1.0):
            for link in links:
                await link.done.wait()


class _ServerHandle:
    """What both server handles share: address, connection count, drops."""

    _scheme_path = ""

    def __init__(self, server: _Server, secure: bool) -> None:
        self._server = server
        self._secure = secure

    @property
    def host(self) -> str:
        return self._server.host

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "wss" if self._secure else "ws"
        return f"{scheme}://{host}:{self.port}{self._scheme_path}"

    @property
    def connections(self) -> int:
        """How many connections are open right now (past the handshake)."""
        return self._server.call(lambda: len(self._server.open_links))

    def drop_connections(self) -> int:
        """Abort every connection abruptly: no close frame, the sockets just close.

        For fault tests: clients see the drop and reconnect. Returns how many.
        """
        return self._server.call(self._server.drop_connections)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.url}>"


class PlaceOSServerHandle(_ServerHandle):
    """A running PlaceOS server (see `serve_placeos`). Thread-safe methods."""

    _scheme_path = PLACEOS_PATH

    def __init__(self, server: _Server, secure: bool, engine: MockEngine) -> None:
        super().__init__(server, secure)
        self._engine = engine

    @property
    def engine(self) -> MockEngine:
        """The engine; touch it only from the server's loop (or via the methods here)."""
        return self._engine

    def set_status(self, sys: str, mod: str, name: str, value: Any, *, index: int = 1) -> int:
        """Set a status variable and notify every bound client; returns how many."""
        return self._server.call(
            lambda: self._engine.set_status(sys, mod, name, value, index=index)
        )

    def log(self, sys: str, mod: str, message: str, *, level: str = "debug", index: int = 1) -> int:
        """Send a module's log line to every client debugging it; returns how many."""
        return self._server.call(
            lambda: self._engine.log(sys, mod, message, level=level, index=index)
        )


def _log_server_events(session: Any, events: list[Event]) -> None:
    for event in events:
        if isinstance(event, HandlerFailed):
            logger.warning("request handler failed: %r", event.error)
        elif isinstance(event, BadMessage):
            logger.debug("bad request from a client: %s", event.error)
        elif isinstance(event, ConnectionClosed):
            logger.debug("client connection closed (%d %s)", event.code, event.reason)


@asynccontextmanager
async def serve_placeos(
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
) -> AsyncIterator[PlaceOSServerHandle]:
    """Serve ``engine``'s systems over the PlaceOS real-time WebSocket (tests, demos).

    Listens on ``host``:``port`` (0: an ephemeral port, see ``server.port``); with
    ``ssl_context`` (a server-side context) it speaks ``wss://``. Without keys or
    tokens everyone is refused unless ``allow_anonymous``. On exit every client gets
    a close frame (1001).
    Every connection gets the same options (as in each adapter's ``serve_*``):

    - ``keepalive_interval``: seconds between pings to the client (None: no pings).
    - ``keepalive_timeout``: seconds to wait for the pong; then close 1011 and drop.
    - ``handshake_timeout``: seconds for the client to finish the upgrade; then drop.
    - ``close_timeout``: seconds to wait for a close answer, on server exit too.
    - ``max_message_size``: bytes per client message; a bigger one closes with 1009.
    """
    keys = tuple(api_keys)
    tokens = tuple(bearer_tokens)

    def make_session() -> PlaceOSServer:
        return PlaceOSServer(
            api_keys=keys,
            bearer_tokens=tokens,
            allow_anonymous=allow_anonymous,
            handler=engine,
            bad_requests=bad_requests,
            dialect=dialect,
        )

    server = _Server(
        "PlaceOS",
        make_session,
        ssl_context=ssl_context,
        options=_ConnectionOptions(
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
        ),
        on_events=_log_server_events,
    )
    async with server.running(host, port):
        yield PlaceOSServerHandle(server, ssl_context is not None, engine)


class MewsServerHandle(_ServerHandle):
    """A running Mews server (see `serve_mews`). Thread-safe methods."""

    _scheme_path = MEWS_PATH

    def publish(self, events: Envelope | Iterable[MewsEvent]) -> int:
        """Push one message (an `Envelope`, or events to wrap in one) to every
        connected client; returns how many got it."""
        envelope = events if isinstance(events, Envelope) else Envelope(tuple(events))
        return self._server.call(lambda: self._publish(envelope))

    def _publish(self, envelope: Envelope) -> int:
        reached = 0
        for link, session in self._server.links.items():
            if link.is_open:
                session.push(envelope)
                link.wake()
                reached += 1
        return reached


@asynccontextmanager
async def serve_mews(
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
) -> AsyncIterator[MewsServerHandle]:
    """A Mews-like server at ``/ws/connector`` (tests, demos): `MewsServerHandle.publish`
    pushes events. Accepts the tokens as cookies or, as the legacy endpoint, in the query.

    Every connection gets the same options (as in each adapter's ``serve_*``):

    - ``keepalive_interval``: seconds between pings to the client (None: no pings).
    - ``keepalive_timeout``: seconds to wait for the pong; then close 1011 and drop.
    - ``handshake_timeout``: seconds for the client to finish the upgrade; then drop.
    - ``close_timeout``: seconds to wait for a close answer, on server exit too.
    - ``max_message_size``: bytes per client message; a bigger one closes with 1009.
    """

    def make_session() -> MewsServer:
        return MewsServer(client_token, access_token, path=MEWS_PATH)

    server = _Server(
        "Mews",
        make_session,
        ssl_context=ssl_context,
        options=_ConnectionOptions(
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            handshake_timeout=handshake_timeout,
            close_timeout=close_timeout,
            max_message_size=max_message_size,
        ),
        on_events=_log_server_events,
    )
    async with server.running(host, port):
        yield MewsServerHandle(server, ssl_context is not None)
