"""The trio transport: PlaceOS and Mews clients and servers over trio streams.

The API is `transports._aio`'s (the same classes as `transports.asyncio`): this
module supplies only what trio forces on it. Per socket, a `_Link` runs a reader
task (feeding the driver) and a writer loop (writing what the driver says,
sleeping until its next deadline); only the writer writes, so bytes go out in the
order the core produced them. Every task lives in a nursery owned by the
``async with`` block, so nothing outlives it, and its errors come out as the one
real exception, never an ExceptionGroup. Iterators pass a cancellation point on
every item and a full checkpoint every 32 (a scheduler trip per Mews event cost
more than decoding it). Server handles are thread-safe: their calls run in the
server's trio loop (`_LoopCaller`).
"""

from __future__ import annotations

import math
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio

from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.driver import READ_SIZE, ClientDriver, Peer, Phase, ServerDriver, Waitable
from protocore.tunnel import Tunnel

from . import _aio
from ._aio import MewsEvents as MewsEvents
from ._aio import MewsServerHandle as MewsServerHandle
from ._aio import PlaceOSConnection as PlaceOSConnection
from ._aio import PlaceOSServerHandle as PlaceOSServerHandle
from ._aio import Subscription as Subscription
from ._transport import PUBLIC

__all__ = PUBLIC

T = TypeVar("T")

_HIGH_WATER = 65536  # framed bytes behind a blocked send: stop reading the peer
_SCHEDULE_EVERY = 32
_READ_AHEAD = 256  # Mews events decoded ahead of the consumer: see MewsDriver.pace
_CLOSED = ConnectionState.CLOSED
_GONE = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
_checkpoint = trio.lowlevel.checkpoint
_checkpoint_if_cancelled = trio.lowlevel.checkpoint_if_cancelled


def _pick(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The exception a user should see: anything but the `trio.Cancelled` echoes."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        error = stack.pop(0)
        if isinstance(error, BaseExceptionGroup):
            stack[:0] = list(error.exceptions)
        else:
            leaves.append(error)
    real = [leaf for leaf in leaves if not isinstance(leaf, trio.Cancelled)]
    return real[0] if real else leaves[0]


@asynccontextmanager
async def _nursery() -> AsyncIterator[trio.Nursery]:
    """A nursery whose errors come out unwrapped, cancelled on the way out."""
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield nursery
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise _pick(group) from None


class _Link:
    """One socket: a reader task and a writer loop around a driver or a peer."""

    __slots__ = (
        "_room",
        "_scope",
        "_sending",
        "_sent",
        "_until",
        "_wakeup",
        "conn",
        "done",
        "stream",
        "target",
    )

    def __init__(
        self,
        stream: trio.abc.Stream,
        target: ClientDriver | Peer,
        conn: ClientConnection | ServerConnection,
    ) -> None:
        self.stream = stream
        self.target = target
        self.conn = conn
        self._wakeup = trio.Event()
        self._room = trio.Event()
        self._sent = trio.Event()
        self._sending = False
        self._until = math.inf  # the deadline the writer sleeps to (while it waits)
        self._scope = trio.CancelScope()
        self.done = trio.Event()

    def wake(self) -> None:
        self._wakeup.set()

    def abort(self) -> None:
        self.target.receive_eof(trio.current_time())
        self._scope.cancel()

    async def run(self) -> None:
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read)
                    await self._write()
                    nursery.cancel_scope.cancel()
        finally:
            self.target.receive_eof(trio.current_time())
            await trio.aclose_forcefully(self.stream)
            self.done.set()

    async def send_close_now(self, timeout: float) -> None:
        """On a cancelled way out: put the close frame on the wire if no write is half done."""
        data = self.target.data_to_send()
        if data and not self._sending:
            with trio.CancelScope(shield=True), trio.move_on_after(timeout):
                try:
                    await self.stream.send_all(data)
                except (*_GONE, trio.BusyResourceError):
                    pass

    async def _write(self) -> None:
        target, conn = self.target, self.conn
        while True:
            self._wakeup = trio.Event()  # re-armed first: a wake from here on is seen
            data = target.data_to_send()
            if data:
                self._sending = True
                try:
                    await self.stream.send_all(data)
                except _GONE:
                    target.receive_eof(trio.current_time())
                finally:
                    self._sending = False
                    self._sent.set()
                continue
            if conn.state is _CLOSED:
                return
            deadline = target.next_deadline()
            self._until = until = math.inf if deadline is None else deadline
            with trio.move_on_at(until):
                await self._wakeup.wait()
            if deadline is not None:
                now = trio.current_time()
                if now >= deadline:
                    target.handle_timer(now)

    async def _read(self) -> None:
        target, conn, stream = self.target, self.conn, self.stream
        while conn.state is not _CLOSED:
            if not target.wants_read:  # the consumer is behind: TCP slows the server
                self._room = trio.Event()
                target.on_resume = self._room.set
                await self._room.wait()
            if self._sending and target.pending_output >= _HIGH_WATER:
                # The peer does not take our bytes: do not read what would make more.
                self._sent = trio.Event()
                await self._sent.wait()
            try:
                data = await stream.receive_some(READ_SIZE)
            except _GONE:
                data = b""
            if conn.state is _CLOSED:
                return
            if not data:
                target.receive_eof(trio.current_time())
                self._wakeup.set()
                return
            target.receive_data(data, trio.current_time())
            if target.pending_output or conn.state is _CLOSED or self._sooner():
                self._wakeup.set()

    def _sooner(self) -> bool:
        """Whether a timer is now due before the writer's wake-up (mostly a read only
        pushes timers back, and the writer waking early is harmless): waking it for
        nothing to do cost a scheduler trip per read, ahead of the consumer half the
        time (trio runs a batch of woken tasks in either order)."""
        deadline = self.target.next_deadline()
        return deadline is not None and deadline < self._until


class _Client:
    """A client's I/O: dial when the driver says so, pump the link, sleep between."""

    def __init__(self, driver: ClientDriver, ssl_context: ssl.SSLContext | None) -> None:
        self._driver = driver
        self._ssl = ssl_context
        self._link: _Link | None = None
        self._idle = trio.Event()

    def kick(self) -> None:
        link = self._link
        if link is not None:
            link.wake()
        self._idle.set()

    async def shutdown(self, polite: bool) -> None:
        driver = self._driver
        if polite:
            with trio.move_on_after(driver.close_timeout + 1.0):
                await _Runtime.wait(driver.finished, None)
        elif self._link is not None:
            await self._link.send_close_now(driver.close_timeout)
        driver.abort(trio.current_time())

    async def run(self) -> None:
        driver = self._driver
        while True:
            phase = driver.phase
            if phase is Phase.CLOSED:
                return
            if phase is Phase.DIAL:
                conn = driver.dial(trio.current_time())
                stream = await self._open(conn)
                if stream is not None:
                    self._link = link = _Link(stream, driver, conn)
                    try:
                        await link.run()
                    finally:
                        self._link = None
                continue
            self._idle = trio.Event()
            deadline = driver.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._idle.wait()
            driver.handle_timer(trio.current_time())

    async def _open(self, conn: ClientConnection) -> trio.abc.Stream | None:
        driver, url = self._driver, conn.url
        deadline = driver.next_deadline()
        stream: trio.abc.Stream | None = None
        try:
            with trio.move_on_at(math.inf if deadline is None else deadline):
                tcp = await trio.open_tcp_stream(*driver.address)
                try:
                    if driver.tunnel is not None:
                        await _run_tunnel(tcp, driver.tunnel)
                    if self._ssl is not None:
                        tls = trio.SSLStream(
                            tcp, self._ssl, server_hostname=url.host, https_compatible=True
                        )
                        await tls.do_handshake()
                        stream = tls
                    else:
                        stream = tcp
                finally:
                    if stream is None:
                        await trio.aclose_forcefully(tcp)
        except trio.BrokenResourceError as exc:  # TLS: the cause says what
            driver.dial_failed(exc.__cause__ or exc, trio.current_time())
            return None
        except OSError as exc:
            driver.dial_failed(exc, trio.current_time())
            return None
        if stream is None:
            driver.handle_timer(trio.current_time())  # the connect deadline passed
            return None
        driver.socket_ready(trio.current_time())
        return stream


async def _run_tunnel(stream: trio.abc.Stream, tunnel: Tunnel) -> None:
    """A proxy's handshake on ``stream``: see `protocore.proxy`."""
    while True:
        out = tunnel.data_to_send()
        if out:
            await stream.send_all(out)
        if tunnel.established:
            return
        data = await stream.receive_some(READ_SIZE)
        if data:
            tunnel.receive_data(data)
        else:
            tunnel.receive_eof()


class _LoopCaller:
    """Runs a plain function in the trio thread that made it, from any thread."""

    __slots__ = ("_thread", "_token")

    def __init__(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._thread = threading.get_ident()

    def __call__(self, fn: Callable[[], T]) -> T:
        if threading.get_ident() == self._thread:
            return fn()
        try:
            return _aio.call_in_loop(self._token.run_sync_soon, fn)
        except trio.RunFinishedError:
            raise RuntimeError("the server's trio loop has finished") from None


class _Server:
    """A listening server's I/O: one `_Link` per accepted stream."""

    def __init__(self, driver: ServerDriver) -> None:
        self._driver = driver
        self._links: dict[Peer, _Link] = {}
        self.call = _LoopCaller()
        self.accepting = trio.CancelScope()
        self.host = ""
        self.port = 0

    def stop_accepting(self) -> None:
        self.accepting.cancel()  # serve_listeners closes the listeners on its way out

    async def handle(self, stream: trio.abc.Stream) -> None:
        peer = self._driver.accept(trio.current_time())
        link = self._links[peer] = _Link(stream, peer, peer.conn)
        peer.on_output = link.wake
        peer.on_abort = link.abort
        try:
            await link.run()
        finally:
            del self._links[peer]
            self._driver.forget(peer)

    async def drain(self, timeout: float) -> None:
        with trio.move_on_after(timeout):
            for link in list(self._links.values()):
                await link.done.wait()


class _Runtime:
    """trio's part of the shared async API."""

    def now(self) -> float:
        return trio.current_time()

    @staticmethod
    async def wait(waitable: Waitable, timeout: float | None) -> None:
        if waitable.ready:
            await _checkpoint()
            return
        event = trio.Event()
        waitable.waker = event.set
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                await event.wait()
        finally:
            if waitable.waker == event.set:
                waitable.waker = None

    checkpoints: _aio.Checkpoints = (_checkpoint_if_cancelled, _checkpoint, _SCHEDULE_EVERY)
    # The consumer's full checkpoint every 32 events lets the reader in, and each read
    # brings some 400: unpaced, the backlog would grow to buffer_size.
    read_ahead: int | None = _READ_AHEAD

    @asynccontextmanager
    async def run_client(
        self, driver: ClientDriver, ssl_context: ssl.SSLContext | None
    ) -> AsyncIterator[_aio.ClientIO]:
        client = _Client(driver, ssl_context)
        async with _nursery() as nursery:
            nursery.start_soon(client.run)
            yield client

    @asynccontextmanager
    async def run_server(
        self, driver: ServerDriver, host: str, port: int, ssl_context: ssl.SSLContext | None
    ) -> AsyncIterator[_aio.ServerIO]:
        server = _Server(driver)
        listeners: list[Any] = list(await trio.open_tcp_listeners(port, host=host))
        server.host, server.port = listeners[0].socket.getsockname()[:2]
        if ssl_context is not None:
            listeners = [
                trio.SSLListener(lis, ssl_context, https_compatible=True) for lis in listeners
            ]
        async with _nursery() as nursery:

            async def accept() -> None:
                with server.accepting:
                    await trio.serve_listeners(server.handle, listeners, handler_nursery=nursery)

            nursery.start_soon(accept)
            try:
                yield server
            finally:
                server.stop_accepting()


_transport = _aio.transport(_Runtime())
connect_placeos = _transport.connect_placeos
connect_mews = _transport.connect_mews
serve_placeos = _transport.serve_placeos
serve_mews = _transport.serve_mews
