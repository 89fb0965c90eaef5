"""The I/O half of the trio transport: streams, the per-connection loop, thread calls.

Nothing here knows PlaceOS or Mews. A `Link` moves bytes between one trio stream and
one `protocore.connection` object: one reader task feeds `receive_data`, one driver
task writes `data_to_send`, routes `events()` and sleeps until `next_deadline()`.
Only the driver writes, so the byte order on the wire is the order the connection
produced it in; everyone else (the reader, the application after calling a session
method) just calls `Link.wake`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import ssl
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import trio

from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.errors import HandshakeFailed
from protocore.events import ConnectionClosed, Event, HandshakeRejected

__all__ = [
    "Link",
    "LoopCaller",
    "open_client_link",
    "single_exception",
]

T = TypeVar("T")

_READ_SIZE = 65536
_HIGH_WATER = 65536  # framed bytes waiting behind a blocked send: stop reading the peer
_CONNECTING = ConnectionState.CONNECTING
_OPEN = ConnectionState.OPEN
_CLOSED = ConnectionState.CLOSED

# What a dead or reset socket raises from a trio stream: each is the end of the bytes.
_STREAM_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)

Connection = ClientConnection | ServerConnection


def _leaves(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        found: list[BaseException] = []
        for inner in error.exceptions:
            found.extend(_leaves(inner))
        return found
    return [error]


def _pick(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception a user should see from an adapter's internal nursery.

    Anything but `trio.Cancelled` wins (the cancellations are the echo of it); when
    every leaf is a cancellation, the first one goes on, so cancel scopes still catch it.
    """
    leaves = _leaves(group)
    real = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    if not real:
        return leaves[0]
    chosen = real[0]
    for other in real[1:]:
        chosen.add_note(f"also raised in the same transport: {other!r}")
    return chosen


@asynccontextmanager
async def single_exception() -> AsyncIterator[None]:
    """Unwrap the ExceptionGroup a trio nursery raises, so callers see one exception."""
    try:
        yield
    except BaseExceptionGroup as group:
        raise _pick(group) from None


class Link:
    """One WebSocket connection's I/O loop (see the module doc).

    ``on_events`` receives the connection's events as they come, in order, from
    whichever task produced them. ``may_read`` (optional) is awaited before every
    read: a consumer that is behind makes it wait, and TCP backpressure does the rest.
    """

    __slots__ = (
        "_may_read",
        "_on_events",
        "_scope",
        "_sending",
        "_sent",
        "_wakeup",
        "aborted",
        "closed",
        "conn",
        "done",
        "stream",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        conn: Connection,
        on_events: Callable[[list[Event]], None],
        *,
        may_read: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.stream = stream
        self.conn = conn
        self._on_events = on_events
        self._may_read = may_read
        self._wakeup = trio.Event()
        self._scope = trio.CancelScope()
        self._sending = False
        self._sent = trio.Event()
        self.aborted = False
        self.closed: ConnectionClosed | None = None
        self.done = trio.Event()

    @property
    def is_open(self) -> bool:
        return self.conn.state is _OPEN

    def wake(self) -> None:
        """Something may have changed (a session call, bytes read): write and re-time."""
        self._wakeup.set()

    def deliver(self) -> None:
        """Hand the connection's pending events to ``on_events``."""
        events = self.conn.events()
        if events:
            last = events[-1]
            if isinstance(last, ConnectionClosed):
                self.closed = last
            self._on_events(events)

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the close handshake; the loop ends when it completes or times out."""
        if self.conn.state is _OPEN:
            self.conn.close(code, reason, now=trio.current_time())
            self.deliver()
            self.wake()

    def abort(self) -> None:
        """End now: no close frame, the socket is shut. The session hears of it at once."""
        self.aborted = True
        self._finish()
        self._scope.cancel()

    async def send_close_now(self, code: int, timeout: float) -> None:
        """Best effort on the way out of a cancelled context: put a close frame on the
        wire if no write is half done, without waiting for the answer."""
        if self.conn.state is not _OPEN or self._sending or self.aborted:
            return
        self.conn.close(code, now=trio.current_time())
        data = self.conn.data_to_send()
        with trio.CancelScope(shield=True), trio.move_on_after(timeout):
            try:
                await self.stream.send_all(data)
            except (*_STREAM_GONE, trio.BusyResourceError):
                pass

    def _finish(self) -> None:
        conn = self.conn
        if conn.state is not _CLOSED:
            conn.receive_eof(trio.current_time())
        self.deliver()

    async def run(self) -> None:
        """Drive the connection until it is CLOSED (or aborted/cancelled), then shut
        the socket. The session always hears the end (`connection_lost`)."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read)
                    await self._drive()
                    nursery.cancel_scope.cancel()
        finally:
            self._finish()
            # The close handshake (if any) is over: nothing more to say, so the
            # socket goes at once, even under cancellation.
            await trio.aclose_forcefully(self.stream)
            self.done.set()

    async def _drive(self) -> None:
        conn = self.conn
        while True:
            # Re-arm first: a wake from here on, even during the send below, is seen.
            self._wakeup = trio.Event()
            self.deliver()
            data = conn.data_to_send()
            if data:
                await self._send(data)
                continue
            if conn.state is _CLOSED:
                return
            deadline = conn.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._wakeup.wait()
            if deadline is not None:
                now = trio.current_time()
                if now >= deadline:
                    conn.handle_timer(now)

    async def _send(self, data: bytes) -> None:
        self._sending = True
        try:
            await self.stream.send_all(data)
        except _STREAM_GONE:
            # The peer is gone: the bytes are lost, the connection is over.
            self.conn.receive_eof(trio.current_time())
        finally:
            self._sending = False
            self._sent.set()

    async def _read(self) -> None:
        conn = self.conn
        stream = self.stream
        may_read = self._may_read
        while conn.state is not _CLOSED:
            if may_read is not None:
                await may_read()
            if self._sending and conn.pending_output >= _HIGH_WATER:
                # Backpressure: while the peer does not take our bytes (answers,
                # pongs) and more are piling up, it is not read either, so a peer
                # that floods pings and never reads cannot grow our output without
                # bound. Below the mark reading goes on, so two peers that both
                # send a lot at once do not wait on each other.
                self._sent = trio.Event()
                await self._sent.wait()
            try:
                data = await stream.receive_some(_READ_SIZE)
            except _STREAM_GONE:
                data = b""
            if conn.state is _CLOSED:
                return
            now = trio.current_time()
            if data:
                conn.receive_data(data, now)
            else:
                conn.receive_eof(now)
            self.deliver()
            self.wake()
            if not data:
                return


def _where(conn: ClientConnection) -> str:
    url = conn.url
    return f"{url.scheme}://{url.host_header}{url.path}"  # never the query: it may hold secrets


async def _open_stream(
    conn: ClientConnection, ssl_context: ssl.SSLContext | None
) -> trio.abc.Stream:
    url = conn.url
    tcp = await trio.open_tcp_stream(url.host, url.port)
    if ssl_context is None:
        return tcp
    stream = trio.SSLStream(tcp, ssl_context, server_hostname=url.host, https_compatible=True)
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        await trio.aclose_forcefully(tcp)
        cause = exc.__cause__
        if isinstance(cause, OSError):  # ssl.SSLCertVerificationError and friends
            raise cause from None
        raise ConnectionError(f"TLS handshake with {_where(conn)} failed") from exc
    except BaseException:
        await trio.aclose_forcefully(tcp)
        raise
    return stream


async def _opening_handshake(stream: trio.abc.Stream, conn: ClientConnection) -> None:
    """Drive ``conn`` inline until it leaves CONNECTING (the caller bounds the time)."""
    while conn.state is _CONNECTING:
        data = conn.data_to_send()
        if data:
            try:
                await stream.send_all(data)
            except _STREAM_GONE:
                conn.receive_eof(trio.current_time())
                return
        deadline = conn.next_deadline()
        chunk: bytes | bytearray | None = None
        with trio.move_on_at(math.inf if deadline is None else deadline):
            try:
                chunk = await stream.receive_some(_READ_SIZE)
            except _STREAM_GONE:
                chunk = b""
        now = trio.current_time()
        if chunk is None:
            conn.handle_timer(now)
        elif chunk:
            conn.receive_data(chunk, now)
        else:
            conn.receive_eof(now)


async def open_client_link(
    conn: ClientConnection,
    ssl_context: ssl.SSLContext | None,
    connect_timeout: float,
    on_events: Callable[[list[Event]], None],
    *,
    may_read: Callable[[], Awaitable[None]] | None = None,
) -> Link:
    """Connect ``conn`` (TCP, TLS, WebSocket handshake within ``connect_timeout``).

    Returns an OPEN link whose first events are delivered; its `Link.run` is the
    caller's to start. Raises OSError / ssl.SSLError (socket, TLS), TimeoutError, or
    `HandshakeFailed` (refused or broken upgrade), and leaves no socket open.
    """
    where = _where(conn)
    deadline = trio.current_time() + connect_timeout
    conn.start(trio.current_time())
    stream: trio.abc.Stream | None = None
    with trio.move_on_at(deadline):
        stream = await _open_stream(conn, ssl_context)
        try:
            await _opening_handshake(stream, conn)
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
    if conn.state is _CONNECTING:
        # Our deadline passed first: end the connection so the session hears it.
        conn.receive_eof(trio.current_time())
    if conn.state is not _CLOSED:
        assert stream is not None
        link = Link(stream, conn, on_events, may_read=may_read)
        link.deliver()
        return link
    if stream is not None:
        await trio.aclose_forcefully(stream)
    events = conn.events()
    rejected = next((e for e in events if isinstance(e, HandshakeRejected)), None)
    if rejected is not None:
        raise HandshakeFailed(f"{where} refused the upgrade", rejected.status_code, rejected.body)
    if trio.current_time() >= deadline:
        raise TimeoutError(f"connecting to {where} timed out after {connect_timeout:g}s")
    closed = next((e for e in events if isinstance(e, ConnectionClosed)), None)
    raise HandshakeFailed(closed.reason if closed is not None else "connection closed")


class LoopCaller:
    """Runs a plain function in the trio thread that made it, from any thread.

    Server handles promise thread safety (tests drive a server in a background
    thread); the sessions and the mock engine are not thread-safe, so every call
    goes to the loop that owns them and waits there for its result.
    """

    __slots__ = ("_thread", "_token")

    def __init__(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.get_ident()

    def __call__(self, fn: Callable[[], T]) -> T:
        if threading.get_ident() == self._thread:
            return fn()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the calling thread
                future.set_exception(exc)

        try:
            self._token.run_sync_soon(run)
        except trio.RunFinishedError:
            raise RuntimeError("the server's trio loop has finished") from None
        return future.result()


logger = logging.getLogger("protocore.transports.trio")
