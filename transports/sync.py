"""The blocking-socket transport: PlaceOS and Mews clients and servers on threads.

The API is `transports._blocking`'s, the sync spelling of the async one. This module
supplies what blocking sockets force on it: each client has one I/O thread, each
server an accepting thread and one thread per connection. A `_Channel` is the
core's loop over one non-blocking socket (TLS included): write what the driver
says, wait in ``select`` on the socket and a socketpair `_Waker` until the next
deadline, feed what arrives. Application threads touch the driver under the
owner's lock and wake the I/O thread to write. The threads are not daemons:
leaving a ``with`` block joins them, and a Ctrl-C in the main thread propagates
from any blocking call (they wait in short slices) with the block still cleaning up.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import selectors
import socket
import ssl
import threading
import time

from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.driver import READ_SIZE, ClientDriver, Peer, Phase, ServerDriver
from protocore.tunnel import Tunnel

from . import _blocking
from ._blocking import MewsEvents as MewsEvents
from ._blocking import MewsServerHandle as MewsServerHandle
from ._blocking import PlaceOSConnection as PlaceOSConnection
from ._blocking import PlaceOSServerHandle as PlaceOSServerHandle
from ._blocking import Subscription as Subscription
from ._blocking import wait_event
from ._transport import PUBLIC

__all__ = PUBLIC

logger = logging.getLogger("protocore.transports")

_READ_BUDGET = 4 * READ_SIZE  # per turn, so one busy peer cannot starve the timers
_HIGH_WATER = 64 * 1024  # unsent bytes above which we stop reading the peer
_FINAL_FLUSH = 1.0  # seconds to get the last bytes (a close frame) out
_JOIN = 5.0
_CLOSED = ConnectionState.CLOSED
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_IN_PROGRESS = frozenset({errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY})
_WANT = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError)


class _Stopped(Exception):
    """Internal: the owner stopped the thread while it waited."""


class _Waker:
    """A socketpair a selector watches: `wake` interrupts its select, from any thread."""

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)
        self.stopping = False

    def fileno(self) -> int:
        return self._r.fileno()

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # full: a wake is pending; closed: nobody waits
            self._w.send(b"\0")

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while self._r.recv(4096):
                pass

    def close(self) -> None:
        self._r.close()
        self._w.close()


def _select(sock: socket.socket | None, mask: int, waker: _Waker, deadline: float | None) -> int:
    """Wait for ``mask`` on ``sock`` or a wake, until ``deadline``; which of ``mask`` is ready."""
    with selectors.DefaultSelector() as selector:
        selector.register(waker, _READ)
        if sock is not None and mask:
            selector.register(sock, mask)
        return _ready(selector, waker, deadline)


def _ready(selector: selectors.BaseSelector, waker: _Waker, deadline: float | None) -> int:
    """Wait in ``selector`` (which watches ``waker``) until ``deadline``; what is ready."""
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    ready = 0
    for key, events in selector.select(timeout):
        if key.fileobj is waker:
            waker.drain()
        else:
            ready |= events
    if waker.stopping:
        raise _Stopped
    return ready


def _until(sock: socket.socket, mask: int, waker: _Waker, deadline: float | None) -> None:
    while not _select(sock, mask, waker, deadline):
        if deadline is not None and time.monotonic() >= deadline:
            raise TimeoutError


def _tls_handshake(sock: ssl.SSLSocket, waker: _Waker, deadline: float | None) -> None:
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            _until(sock, _READ, waker, deadline)
        except ssl.SSLWantWriteError:
            _until(sock, _WRITE, waker, deadline)


def _run_tunnel(sock: socket.socket, tunnel: Tunnel, waker: _Waker, deadline: float | None) -> None:
    """A proxy's handshake on ``sock``: see `protocore.proxy`."""
    while True:
        out = memoryview(tunnel.data_to_send())
        while out:
            try:
                out = out[sock.send(out) :]
            except BlockingIOError:
                _until(sock, _WRITE, waker, deadline)
        if tunnel.established:
            return
        _until(sock, _READ, waker, deadline)
        data = sock.recv(READ_SIZE)
        if data:
            tunnel.receive_data(data)
        else:
            tunnel.receive_eof()


def _open(
    driver: ClientDriver, tls: ssl.SSLContext | None, waker: _Waker, deadline: float | None
) -> socket.socket:
    """TCP (each address in turn), a proxy's tunnel, then TLS, not blocking past ``deadline``."""
    failure: OSError = OSError(errno.ECONNREFUSED, "no address")
    host, port = driver.address
    for family, kind, proto, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            code = sock.connect_ex(address)
            if code in _IN_PROGRESS:
                _until(sock, _WRITE, waker, deadline)
                code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                failure = OSError(code, os.strerror(code))
                sock.close()
                continue
            if driver.tunnel is not None:
                _run_tunnel(sock, driver.tunnel, waker, deadline)
            if tls is not None:
                sock = tls.wrap_socket(
                    sock, server_hostname=driver.url.host, do_handshake_on_connect=False
                )
                _tls_handshake(sock, waker, deadline)
            return sock
        except BaseException:
            sock.close()
            raise
    raise failure


class _Channel:
    """One non-blocking socket driving a client driver or a server peer."""

    def __init__(
        self,
        sock: socket.socket,
        target: ClientDriver | Peer,
        conn: ClientConnection | ServerConnection,
        lock: threading.RLock,
        waker: _Waker,
    ) -> None:
        self.sock = sock
        self.target = target
        self.conn = conn
        self.lock = lock
        self.waker = waker
        self.aborted = False
        self._selector: selectors.BaseSelector | None = None
        self._mask = 0

    def abort(self) -> None:
        """Drop the socket at once, with nothing more written (any thread)."""
        self.aborted = True
        self.waker.wake()

    def run(self) -> None:
        sock, target, conn, lock, waker = self.sock, self.target, self.conn, self.lock, self.waker
        out = bytearray()
        closed_at: float | None = None
        try:
            while not self.aborted:
                with lock:
                    out += target.data_to_send()
                    closed = conn.state is _CLOSED
                    deadline = None if closed else target.next_deadline()
                    reading = not closed and target.wants_read
                    if not reading and not closed:
                        target.on_resume = waker.wake
                if out:
                    out = self._send(out)
                if closed:
                    closed_at = closed_at or time.monotonic()
                    if not out or time.monotonic() > closed_at + _FINAL_FLUSH:
                        return
                    deadline = closed_at + _FINAL_FLUSH
                mask = (_READ if reading and len(out) < _HIGH_WATER else 0) | (_WRITE if out else 0)
                pending = isinstance(sock, ssl.SSLSocket) and mask & _READ and sock.pending()
                ready = _READ if pending else self._select(mask, deadline)
                if ready & _READ:
                    self._read()
                now = time.monotonic()
                if deadline is not None and now >= deadline and not closed:
                    with lock:
                        target.handle_timer(now)
        except _Stopped:
            pass
        finally:
            with lock:
                target.receive_eof(time.monotonic())
            if self._selector is not None:
                self._selector.close()
            sock.close()

    def _select(self, mask: int, deadline: float | None) -> int:
        """`_select` on this socket, with one selector for the channel's life: making
        one per turn cost a few system calls between every read and the next."""
        selector = self._selector
        if selector is None:
            self._selector = selector = selectors.DefaultSelector()
            selector.register(self.waker, _READ)
        if mask != self._mask:
            if not self._mask:
                selector.register(self.sock, mask)
            elif mask:
                selector.modify(self.sock, mask)
            else:
                selector.unregister(self.sock)
            self._mask = mask
        return _ready(selector, self.waker, deadline)

    def _send(self, out: bytearray) -> bytearray:
        try:
            sent = self.sock.send(out)
        except _WANT:
            return out
        except OSError:  # the peer is gone: the bytes are lost, the connection is over
            with self.lock:
                self.target.receive_eof(time.monotonic())
            return bytearray()
        del out[:sent]
        return out

    def _read(self) -> None:
        budget = _READ_BUDGET
        while budget > 0:
            try:
                data = self.sock.recv(READ_SIZE)
            except _WANT:
                return
            except OSError:
                data = b""
            with self.lock:
                if data:
                    self.target.receive_data(data, time.monotonic())
                else:
                    self.target.receive_eof(time.monotonic())
                behind = not self.target.wants_read
            if not data or behind:
                return
            budget -= len(data)


class _Client:
    """A client's I/O thread: dial when the driver says so, pump, sleep between."""

    def __init__(self, driver: ClientDriver, tls: ssl.SSLContext | None) -> None:
        self._driver = driver
        self._tls = tls
        self.lock = threading.RLock()
        self._waker = _Waker()
        self._channel: _Channel | None = None
        self._thread = threading.Thread(target=self._run, name="protocore-client")

    def start(self) -> _Client:
        try:
            self._thread.start()
        except BaseException:  # a Ctrl-C inside start(): the thread may be running
            self._stop()
            raise
        return self

    def kick(self) -> None:
        self._waker.wake()

    def shutdown(self, polite: bool) -> None:
        driver = self._driver
        try:
            with self.lock:
                driver.close(time.monotonic())
            self._waker.wake()
            if polite:
                finished = threading.Event()
                with self.lock:
                    if driver.finished.ready:
                        finished.set()
                    else:
                        driver.finished.waker = finished.set
                wait_event(finished, driver.close_timeout + 1.0)
        finally:
            self._stop()

    def _stop(self) -> None:
        with self.lock:
            self._driver.abort(time.monotonic())
        channel = self._channel
        if channel is not None:
            channel.abort()
        self._waker.stopping = True
        self._waker.wake()
        if self._thread.ident is not None:
            while self._thread.is_alive():  # in slices: a second Ctrl-C still gets through
                self._thread.join(_JOIN)

    def _run(self) -> None:
        driver, lock, waker = self._driver, self.lock, self._waker
        try:
            while True:
                with lock:
                    phase = driver.phase
                    conn = driver.dial(time.monotonic()) if phase is Phase.DIAL else None
                    deadline = driver.next_deadline()
                if phase is Phase.CLOSED:
                    return
                if conn is None:
                    _select(None, 0, waker, deadline)
                    with lock:
                        driver.handle_timer(time.monotonic())
                    continue
                try:
                    sock = _open(driver, self._tls, waker, deadline)
                except TimeoutError:
                    with lock:
                        driver.handle_timer(max(time.monotonic(), deadline or 0.0))
                    continue
                except OSError as exc:
                    with lock:
                        driver.dial_failed(exc, time.monotonic())
                    continue
                with lock:
                    driver.socket_ready(time.monotonic())
                self._channel = channel = _Channel(sock, driver, conn, lock, waker)
                channel.run()
                self._channel = None
        except _Stopped:
            pass
        except BaseException:  # a bug: never leave the application waiting forever
            logger.exception("the I/O thread of %s failed", driver.where)
        finally:
            with lock:
                driver.abort(time.monotonic())
            waker.close()


class _Server:
    """A server's threads: one accepting, one per connection."""

    def __init__(
        self, driver: ServerDriver, host: str, port: int, tls: ssl.SSLContext | None
    ) -> None:
        self._driver = driver
        self._tls = tls
        self.lock = threading.RLock()
        self._listener = socket.create_server((host, port), family=_family(host))
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._waker = _Waker()
        self._channels: dict[Peer, _Channel] = {}
        self._handshaking: set[_Waker] = set()  # TLS handshakes under way: stop() ends them
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="protocore-server")
        self._acceptor.start()

    def drain(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))

    def stop_accepting(self) -> None:
        self._waker.stopping = True
        self._waker.wake()
        self._acceptor.join()
        self._listener.close()

    def stop(self) -> None:
        self.stop_accepting()
        with self.lock:
            for channel in list(self._channels.values()):
                channel.abort()
            for waker in self._handshaking:
                waker.stopping = True
                waker.wake()
        for thread in list(self._threads):
            thread.join()
        self._waker.close()

    def _accept(self) -> None:
        try:
            while True:
                _select(self._listener, _READ, self._waker, None)
                try:
                    sock, _ = self._listener.accept()
                except _WANT:
                    continue
                except OSError as exc:
                    logger.warning("accept failed: %s", type(exc).__name__)
                    continue
                thread = threading.Thread(target=self._serve, args=(sock,), name="protocore-peer")
                self._threads = [t for t in self._threads if t.is_alive()] + [thread]
                thread.start()
        except _Stopped:
            pass

    def _serve(self, sock: socket.socket) -> None:
        waker = _Waker()
        try:
            try:
                sock = self._prepare(sock, waker)
            except (OSError, TimeoutError, _Stopped) as exc:
                # A client that resets at once, or fails its TLS handshake: its socket only.
                logger.info("a client failed before its upgrade: %s", type(exc).__name__)
                sock.close()
                return
            with self.lock:
                peer = self._driver.accept(time.monotonic())
                channel = self._channels[peer] = _Channel(sock, peer, peer.conn, self.lock, waker)
                peer.on_output = waker.wake
                peer.on_abort = channel.abort
            try:
                channel.run()
            finally:
                with self.lock:
                    del self._channels[peer]
                    self._driver.forget(peer)
        finally:
            waker.close()

    def _prepare(self, sock: socket.socket, waker: _Waker) -> socket.socket:
        """Non-blocking, no Nagle, and TLS when serving ``wss://`` (closed if that fails)."""
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is None:
                return sock
            sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            handshake = time.monotonic() + self._driver.options["handshake_timeout"]
            with self.lock:
                self._handshaking.add(waker)
            try:
                _tls_handshake(sock, waker, handshake)
            finally:
                with self.lock:
                    self._handshaking.discard(waker)
            return sock
        except BaseException:
            sock.close()
            raise


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


_transport = _blocking.transport(lambda d, tls: _Client(d, tls).start(), _Server)
connect_placeos = _transport.connect_placeos
connect_mews = _transport.connect_mews
serve_placeos = _transport.serve_placeos
serve_mews = _transport.serve_mews
