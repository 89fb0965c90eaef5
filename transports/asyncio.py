"""The asyncio transport: PlaceOS and Mews clients and servers as asyncio protocols.

The API is `transports._aio`'s (the same classes as `transports.trio`): this module
supplies only what asyncio forces on it. Each socket is an `asyncio.BufferedProtocol`
(`_Link`) that feeds the driver as bytes arrive, at most `READ_SIZE` at a time (see
`protocore.driver.reads`: asyncio's own reads are 256 KiB), writes what it answers in one
``write``, and keeps one ``call_at`` timer on its next deadline; no task runs per
connection or per message. The timer is re-armed only when the deadline moves
earlier (one that fires early is harmless: the core ignores early calls), so a
deadline that moves with every message costs nothing. A client owns a task only
while it dials. Reading pauses while a Mews consumer is behind and while the
transport's write buffer is over its high-water mark. Server handles are
thread-safe: off the loop their calls go through ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

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

_CLOSED = ConnectionState.CLOSED


class _ReadBuffer(threading.local):
    """Where reads land: one buffer per thread, not per socket (an idle connection
    would pay 64 KiB). asyncio fills it and hands it over in one synchronous step, and
    `_Link.buffer_updated` copies the bytes out before returning."""

    def __init__(self) -> None:
        self.view = memoryview(bytearray(READ_SIZE))


_BUFFER = _ReadBuffer()


class _Link(asyncio.BufferedProtocol):
    """One socket driving a client driver or a server peer."""

    __slots__ = (
        "_consumer_ok",
        "_flush_handle",
        "_loop",
        "_on_done",
        "_on_made",
        "_reading",
        "_timer",
        "_timer_at",
        "_writes_ok",
        "conn",
        "lost",
        "target",
        "transport",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        target: ClientDriver | Peer | None,
        conn: ClientConnection | ServerConnection | None,
        on_made: Callable[[_Link], None] | None = None,
        on_done: Callable[[_Link], None] | None = None,
    ) -> None:
        self._loop = loop
        self.target = target
        self.conn = conn
        self._on_made = on_made
        self._on_done = on_done
        self.transport: asyncio.Transport | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._flush_handle: asyncio.Handle | None = None
        self._consumer_ok = True  # the Mews consumer keeps up
        self._writes_ok = True  # the peer reads what we send
        self._reading = True

    # -- asyncio.Protocol ----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        if self._on_made is not None:
            self._on_made(self)  # a server: the peer is made now
        self._pump()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _BUFFER.view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(bytes(_BUFFER.view[:nbytes]))

    def data_received(self, data: bytes) -> None:
        conn, target = self.conn, self.target
        if conn is None or target is None or conn.state is _CLOSED:
            return  # a TLS transport still hands over what it reads while it shuts down
        target.receive_data(data, self._loop.time())
        self._pump()
        if not target.wants_read and self._consumer_ok:
            target.on_resume = self._resume
            self.pause_reading(True)

    def eof_received(self) -> bool:
        self._end()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end()
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self._writes_ok = False
        self._update_reading()

    def resume_writing(self) -> None:
        self._writes_ok = True
        self._update_reading()

    # -- for the owner -------------------------------------------------------------------

    def flush_soon(self) -> None:
        """Write what an application call queued, on the next loop turn (calls in a
        row go out in one write)."""
        if self._flush_handle is None and self.transport is not None:
            self._flush_handle = self._loop.call_soon(self._flush)

    def abort(self) -> None:
        transport = self.transport
        if transport is not None:
            transport.abort()

    def pause_reading(self, paused: bool) -> None:
        """The consumer is behind (True) or has caught up (False)."""
        self._consumer_ok = not paused
        self._update_reading()

    # -- internals -----------------------------------------------------------------------

    def _resume(self) -> None:
        self.pause_reading(False)

    def _update_reading(self) -> None:
        reading = self._consumer_ok and self._writes_ok
        transport = self.transport
        if reading is self._reading or transport is None or transport.is_closing():
            return
        self._reading = reading
        if reading:
            transport.resume_reading()
        else:
            transport.pause_reading()

    def _flush(self) -> None:
        self._flush_handle = None
        self._pump()

    def _end(self) -> None:
        target, conn = self.target, self.conn
        if target is not None and conn is not None and conn.state is not _CLOSED:
            target.receive_eof(self._loop.time())
        self._pump()

    def _pump(self) -> None:
        target, conn, transport = self.target, self.conn, self.transport
        if target is None or conn is None or transport is None:
            return
        out = target.data_to_send()
        if out and not transport.is_closing():
            transport.write(out)
        if conn.state is _CLOSED:
            self._finish()
            return
        deadline = target.next_deadline()
        if deadline is not None:
            armed = self._timer_at
            if armed is None or deadline < armed:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer_at = deadline
                self._timer = self._loop.call_at(deadline, self._fire)

    def _fire(self) -> None:
        due, self._timer, self._timer_at = self._timer_at, None, None
        target, conn = self.target, self.conn
        if target is None or conn is None or conn.state is _CLOSED:
            return
        # asyncio may run a timer a clock tick early: it is due all the same.
        target.handle_timer(max(self._loop.time(), due or 0.0))
        self._pump()

    def _finish(self) -> None:
        for handle in (self._timer, self._flush_handle):
            if handle is not None:
                handle.cancel()
        self._timer = self._timer_at = self._flush_handle = None
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.close()  # the last bytes (a close frame) go first
        if self.conn is not None and self._on_done is not None:
            self.conn = None
            self._on_done(self)


class _Client:
    """A client's I/O: a dialing task when the driver wants a socket, timers between."""

    __slots__ = ("_dialing", "_driver", "_link", "_loop", "_ssl", "_timer")

    def __init__(self, driver: ClientDriver, ssl_context: ssl.SSLContext | None) -> None:
        self._driver = driver
        self._ssl = ssl_context
        self._loop = asyncio.get_running_loop()
        self._link: _Link | None = None
        self._dialing: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def kick(self) -> None:
        link = self._link
        if link is not None:
            link.flush_soon()
        else:
            self._loop.call_soon(self._step)

    async def shutdown(self, polite: bool) -> None:
        # Polite even on the way out of a cancelled task: asyncio lets it wait again.
        driver, link = self._driver, self._link
        if link is not None:
            link._pump()
            link._resume()  # the close answer may wait behind unread events
        await _Runtime.wait(driver.finished, driver.close_timeout + 1.0)
        driver.abort(self._loop.time())
        if link is not None and not link.lost.done():  # the socket (TLS: its shutdown)
            await asyncio.wait((link.lost,), timeout=driver.close_timeout)

    async def __aenter__(self) -> _Client:
        self._step()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._timer is not None:
            self._timer.cancel()
        dialing = self._dialing
        if dialing is not None:
            dialing.cancel()
            await asyncio.wait((dialing,))
        link = self._link
        if link is not None:
            link.abort()
            await asyncio.wait((link.lost,), timeout=1.0)  # asyncio closes it a turn later

    def link_done(self, link: _Link) -> None:
        if link is self._link:
            self._link = None
            self._step()

    def _step(self) -> None:
        """Do what the driver's phase asks: dial, or wait for its deadline."""
        driver = self._driver
        if self._link is not None or self._dialing is not None:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if driver.phase is Phase.DIAL:
            self._dialing = self._loop.create_task(self._dial(driver.dial(self._loop.time())))
        elif driver.phase is not Phase.CLOSED:
            deadline = driver.next_deadline()
            if deadline is not None:
                self._timer = self._loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._driver.handle_timer(self._loop.time())
        self._step()

    async def _dial(self, conn: ClientConnection) -> None:
        driver, url, loop = self._driver, conn.url, self._loop
        link = _Link(loop, driver, conn, on_done=self.link_done)
        deadline = driver.next_deadline()
        tls_timeout = None if self._ssl is None else driver.connect_timeout
        try:
            async with asyncio.timeout_at(deadline):
                if driver.tunnel is None:
                    await loop.create_connection(
                        lambda: link,
                        url.host,
                        url.port,
                        ssl=self._ssl,
                        server_hostname=url.host if self._ssl is not None else None,
                        ssl_handshake_timeout=tls_timeout,
                    )
                else:
                    await self._tunnel(link, driver.tunnel, url.host)
        except TimeoutError:
            driver.handle_timer(loop.time() if deadline is None else max(loop.time(), deadline))
        except OSError as exc:
            driver.dial_failed(exc, loop.time())
        else:
            driver.socket_ready(loop.time())
            if conn.state is not _CLOSED:
                self._link = link
        finally:
            self._dialing = None
        if self._link is None:
            link.abort()
            self._step()

    async def _tunnel(self, link: _Link, tunnel: Tunnel, host: str) -> None:
        """TCP to the proxy, its handshake, then TLS to ``host`` inside the tunnel."""
        helper = _TunnelProtocol(tunnel, self._loop.create_future())
        transport, _ = await self._loop.create_connection(lambda: helper, *self._driver.address)
        try:
            await helper.done
            transport.set_protocol(link)
            if self._ssl is not None:
                tls = await self._loop.start_tls(transport, link, self._ssl, server_hostname=host)
                assert tls is not None
                link.connection_made(tls)
            else:
                link.connection_made(transport)
                transport.resume_reading()
        except BaseException:
            transport.abort()
            raise


class _TunnelProtocol(asyncio.Protocol):
    """Runs a proxy tunnel's handshake on a fresh connection, then stops reading."""

    def __init__(self, tunnel: Tunnel, done: asyncio.Future[None]) -> None:
        self.tunnel = tunnel
        self.done = done
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._step(b"")

    def data_received(self, data: bytes) -> None:
        self._step(data)

    def eof_received(self) -> bool:
        self._step(None)
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._step(None)

    def _step(self, data: bytes | None) -> None:
        tunnel, transport = self.tunnel, self.transport
        if self.done.done() or transport is None:
            return
        try:
            if data is None:
                tunnel.receive_eof()
            elif data:
                tunnel.receive_data(data)
        except OSError as exc:
            self.done.set_exception(exc)
            return
        out = tunnel.data_to_send()
        if out:
            transport.write(out)
        if tunnel.established:
            transport.pause_reading()
            self.done.set_result(None)


def _thread_call(loop: asyncio.AbstractEventLoop, fn: Callable[[], T]) -> T:
    """Run ``fn`` on ``loop``: directly when already on it, else via the loop's thread."""
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        return fn()
    if loop.is_closed():
        raise RuntimeError("the server's loop has finished")
    return _aio.call_in_loop(loop.call_soon_threadsafe, fn)


class _Server:
    """A listening server's I/O: one `_Link` per accepted socket."""

    def __init__(self, driver: ServerDriver) -> None:
        self._driver = driver
        self._loop = asyncio.get_running_loop()
        self._links: dict[Peer, _Link] = {}
        self.listening: asyncio.Server | None = None
        self.host = ""
        self.port = 0

    def stop_accepting(self) -> None:
        if self.listening is not None:
            self.listening.close()

    def protocol(self) -> _Link:
        return _Link(self._loop, None, None, self._made)

    def _made(self, link: _Link) -> None:
        peer = self._driver.accept(self._loop.time())
        link.target, link.conn = peer, peer.conn
        peer.on_output = link.flush_soon
        peer.on_abort = link.abort
        self._links[peer] = link

        def gone(_: object) -> None:
            self._links.pop(peer, None)
            self._driver.forget(peer)

        link.lost.add_done_callback(gone)

    def call(self, fn: Callable[[], T]) -> T:
        return _thread_call(self._loop, fn)

    async def drain(self, timeout: float) -> None:
        pending = [link.lost for link in self._links.values() if not link.lost.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)


class _Runtime:
    """asyncio's part of the shared async API."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    @staticmethod
    async def wait(waitable: Waitable, timeout: float | None) -> None:
        if waitable.ready:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        waitable.waker = wake
        try:
            if timeout is None:
                await future
            else:
                await asyncio.wait((future,), timeout=timeout)
        finally:
            if waitable.waker is wake:
                waitable.waker = None

    checkpoints: _aio.Checkpoints | None = (
        None  # an asyncio iterator with items waiting returns them at once
    )
    # so it drains the feed before the loop reads again: paced by the loop itself
    read_ahead: int | None = None

    def run_client(self, driver: ClientDriver, ssl_context: ssl.SSLContext | None) -> _Client:
        # The client is its own context manager: a generator frame per idle
        # connection would cost more memory than the rest of it.
        return _Client(driver, ssl_context)

    @asynccontextmanager
    async def run_server(
        self, driver: ServerDriver, host: str, port: int, ssl_context: ssl.SSLContext | None
    ) -> AsyncIterator[_aio.ServerIO]:
        server = _Server(driver)
        listening = await server._loop.create_server(server.protocol, host, port, ssl=ssl_context)
        server.listening = listening
        server.host, server.port = listening.sockets[0].getsockname()[:2]
        try:
            yield server
        finally:
            listening.close()
            for link in list(server._links.values()):
                link.abort()
            await listening.wait_closed()


_transport = _aio.transport(_Runtime())
connect_placeos = _transport.connect_placeos
connect_mews = _transport.connect_mews
serve_placeos = _transport.serve_placeos
serve_mews = _transport.serve_mews
