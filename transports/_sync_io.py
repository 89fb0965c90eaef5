"""Socket plumbing for `transports.sync`: non-blocking streams, a waker, the I/O loops.

Everything here runs the loop the core prescribes (`protocore.connection`): read
bytes and feed the connection, write what it gives back, route its events, fire
its timer at `next_deadline`. There is no protocol logic: the protocol-specific
parts (routing events to waiters, when to stop reading) are hooks the public
classes in `transports.sync` fill in.

Threads. A client connection has one I/O thread; a server has one thread running
a selector over its listening socket and every connection. Only that thread
touches the sockets. Every call into the core (session, connection, router,
engine) happens under the owner's lock, from the I/O thread or from application
threads; after an application call the I/O thread is woken through a socketpair
(`Waker`) so it writes what the call queued and re-reads the deadlines.

Sockets are non-blocking, TLS included: `ssl.SSLWantReadError` /
`ssl.SSLWantWriteError` decide which readiness to wait for, and bytes OpenSSL has
already decrypted (`SSLSocket.pending`) are read without waiting for the socket.
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
from collections.abc import Callable
from typing import Final, TypedDict

from protocore.backoff import Backoff
from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.errors import ConnectionLost, HandshakeFailed
from protocore.events import Connected, ConnectionClosed, Event, HandshakeRejected
from protocore.session import ClientSession, ServerSession

__all__ = [
    "SLICE",
    "ClientLoop",
    "ConnectionOptions",
    "ServerLoop",
    "Stopped",
    "Stream",
    "Waker",
    "join_thread",
    "wait_event",
]

SLICE: Final = 0.05
"""Longest an application thread blocks in one go: a Ctrl-C (a signal handled
between two slices, or `_thread.interrupt_main`) is seen within this time."""

_READ_SIZE = 65536
_READ_BUDGET = 4 * _READ_SIZE  # per loop turn, so one busy peer cannot starve timers
_WRITE_CHUNK = 256 * 1024
_HIGH_WATER = 64 * 1024  # unsent bytes above which a client stops reading its peer
_FINAL_FLUSH = 1.0  # seconds to get a last close frame out before closing the socket

_READ = selectors.EVENT_READ
_WRITE = selectors.EVENT_WRITE
_OPEN = ConnectionState.OPEN
_CONNECTING = ConnectionState.CONNECTING
_CLOSED = ConnectionState.CLOSED
_IN_PROGRESS = frozenset({errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN, errno.EALREADY})


class Stopped(Exception):
    """Internal: the owner asked the I/O thread to stop."""


def wait_event(event: threading.Event, timeout: float | None = None) -> bool:
    """Block until ``event`` is set (True) or ``timeout`` passes (False), in slices.

    `threading.Event.wait` without a timeout does not return for a pending
    `_thread.interrupt_main`; waking every `SLICE` lets the main thread run its
    signal handlers, so a KeyboardInterrupt propagates promptly.
    """
    if timeout is None:
        while not event.wait(SLICE):
            pass
        return True
    deadline = time.monotonic() + timeout
    while not event.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        event.wait(min(remaining, SLICE))
    return True


def join_thread(thread: threading.Thread, timeout: float | None = None) -> bool:
    """`Thread.join` in slices (see `wait_event`); True when the thread has ended."""
    if thread.ident is None:
        return True  # never started
    deadline = None if timeout is None else time.monotonic() + timeout
    while thread.is_alive():
        if deadline is None:
            thread.join(SLICE)
            continue
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        thread.join(min(remaining, SLICE))
    return True


class Waker:
    """A socketpair whose read end a selector watches: `wake` interrupts its select.

    Safe from any thread, and after `close` (then it does nothing).
    """

    __slots__ = ("_r", "_w")

    def __init__(self) -> None:
        self._r, self._w = socket.socketpair()
        self._r.setblocking(False)
        self._w.setblocking(False)

    def fileno(self) -> int:
        return self._r.fileno()

    def wake(self) -> None:
        # A full pipe already holds a wake-up; a closed one has nobody to wake.
        with contextlib.suppress(OSError):
            self._w.send(b"\0")

    def drain(self) -> None:
        with contextlib.suppress(OSError):
            while self._r.recv(4096):
                pass

    def close(self) -> None:
        self._r.close()
        self._w.close()


class Stream:
    """A non-blocking socket (TLS or not) with an output buffer.

    `recv` returns bytes, None (nothing yet) or b"" (EOF; errors count as EOF and
    are kept in `failure` for the log). `flush` writes what it can. The
    ``*_wants_*`` flags record TLS asking for the other readiness.
    """

    __slots__ = ("failure", "out", "read_wants_write", "sock", "tls", "write_wants_read")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.tls = isinstance(sock, ssl.SSLSocket)
        self.out = bytearray()
        self.read_wants_write = False
        self.write_wants_read = False
        self.failure: str | None = None

    def recv(self) -> bytes | None:
        self.read_wants_write = False
        try:
            return self.sock.recv(_READ_SIZE)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError):
            return None
        except ssl.SSLWantWriteError:
            self.read_wants_write = True
            return None
        except OSError as exc:  # reset, TLS alert, unexpected EOF...
            self.failure = type(exc).__name__
            return b""

    def flush(self) -> bool:
        """Write as much as the socket takes; True when the buffer is empty."""
        self.write_wants_read = False
        out = self.out
        while out:
            # Never a shorter retry than the last attempt: OpenSSL wants a write it
            # refused with WANT_* repeated with at least the same bytes.
            try:
                sent = self.sock.send(out[:_WRITE_CHUNK])
            except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError):
                return False
            except ssl.SSLWantReadError:
                self.write_wants_read = True
                return False
            except OSError as exc:
                self.failure = type(exc).__name__
                out.clear()
                return True
            del out[:sent]
        return True

    def pending(self) -> bool:
        """Whether TLS holds decrypted bytes the selector cannot see."""
        sock = self.sock
        if not isinstance(sock, ssl.SSLSocket):
            return False
        try:
            return sock.pending() > 0
        except (OSError, ValueError):
            return False

    def interest(self, want_read: bool) -> int:
        mask = 0
        if want_read or self.write_wants_read:
            mask |= _READ
        if self.out or self.read_wants_write:
            mask |= _WRITE
        return mask

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def _readable(stream: Stream) -> bool:
    """Backpressure: a peer with `_HIGH_WATER` bytes of ours unsent (it does not read
    our pongs and answers) is not read either, so it cannot grow them without bound."""
    return len(stream.out) < _HIGH_WATER


class _Registration:
    """Keeps a selector's registration of one socket in step with what it waits for."""

    __slots__ = ("_mask", "_selector", "_sock")

    def __init__(self, selector: selectors.BaseSelector, sock: socket.socket) -> None:
        self._selector = selector
        self._sock = sock
        self._mask = 0

    def set(self, mask: int) -> None:
        if mask == self._mask:
            return
        if self._mask == 0:
            self._selector.register(self._sock, mask)
        elif mask == 0:
            self._selector.unregister(self._sock)
        else:
            self._selector.modify(self._sock, mask)
        self._mask = mask

    def clear(self) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.set(0)


def _wait_ready(
    sock: socket.socket,
    mask: int,
    *,
    deadline: float,
    waker: Waker,
    stopping: Callable[[], bool],
    what: str,
) -> None:
    """Wait for ``sock`` to be ready (`Stopped` when asked to stop, TimeoutError at
    ``deadline``); used while connecting, before a connection exists."""
    with selectors.DefaultSelector() as selector:
        selector.register(sock, mask)
        selector.register(waker, _READ)
        while True:
            if stopping():
                raise Stopped
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out during {what}")
            for key, _ in selector.select(remaining):
                if key.fileobj is waker:
                    waker.drain()
                else:
                    return


def open_stream(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None,
    deadline: float,
    waker: Waker,
    stopping: Callable[[], bool],
) -> Stream:
    """TCP connect (each address in turn) and TLS handshake, by ``deadline``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    last_error: OSError | None = None
    sock: socket.socket | None = None
    for family, kind, proto, _, address in infos:
        candidate = socket.socket(family, kind, proto)
        try:
            candidate.setblocking(False)
            err = candidate.connect_ex(address)
            if err in _IN_PROGRESS:
                _wait_ready(
                    candidate,
                    _WRITE,
                    deadline=deadline,
                    waker=waker,
                    stopping=stopping,
                    what="TCP connect",
                )
                err = candidate.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
        except (TimeoutError, Stopped):
            candidate.close()
            raise
        except OSError as exc:
            candidate.close()
            last_error = exc
            continue
        sock = candidate
        break
    if sock is None:
        raise last_error if last_error is not None else OSError(f"no address for {host!r}")
    try:
        if family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if ssl_context is None:
            return Stream(sock)
        tls = ssl_context.wrap_socket(sock, server_hostname=host, do_handshake_on_connect=False)
    except BaseException:
        sock.close()
        raise
    try:
        while True:
            try:
                tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                _wait_ready(
                    tls,
                    _READ,
                    deadline=deadline,
                    waker=waker,
                    stopping=stopping,
                    what="TLS handshake",
                )
            except ssl.SSLWantWriteError:
                _wait_ready(
                    tls,
                    _WRITE,
                    deadline=deadline,
                    waker=waker,
                    stopping=stopping,
                    what="TLS handshake",
                )
    except BaseException:
        tls.close()
        raise
    return Stream(tls)


def _final_flush(stream: Stream, waker: Waker, aborting: Callable[[], bool]) -> None:
    """Get a last close frame out, briefly: the socket closes right after."""
    deadline = time.monotonic() + _FINAL_FLUSH
    while not stream.flush():
        mask = _READ if stream.write_wants_read else _WRITE
        try:
            _wait_ready(
                stream.sock, mask, deadline=deadline, waker=waker, stopping=aborting, what="closing"
            )
        except (TimeoutError, Stopped, OSError, ValueError):
            return


# -- the client ----------------------------------------------------------------------


class _Attempt:
    """One connection attempt: what its events said so far."""

    __slots__ = ("closed", "conn", "opened", "rejected", "stream")

    def __init__(self, conn: ClientConnection, stream: Stream) -> None:
        self.conn = conn
        self.stream = stream
        self.opened = False
        self.rejected: HandshakeRejected | None = None
        self.closed: ConnectionClosed | None = None


class ClientLoop:
    """A client connection to one URL, reconnecting, driven by one I/O thread.

    Subclasses route events (`_route`), may pause reading (`_may_read`), and fail
    what is left when the loop ends for good (`_on_death`); these run under
    `_lock`. The same session object serves every connection.
    """

    def __init__(
        self,
        session: ClientSession,
        url: str,
        *,
        ssl_context: ssl.SSLContext | None,
        reconnect: Backoff | None,
        connect_timeout: float,
        close_timeout: float,
        keepalive_interval: float | None,
        keepalive_timeout: float,
        max_message_size: int,
        logger: logging.Logger,
        thread_name: str,
    ) -> None:
        if isinstance(connect_timeout, bool) or not connect_timeout > 0:
            raise ValueError("connect_timeout must be a positive number of seconds")
        # Build one connection now: it checks the URL and every limit before any
        # thread starts (its errors never quote the URL).
        probe = ClientConnection(
            session,
            url,
            max_message_size=max_message_size,
            keepalive_interval=keepalive_interval,
            keepalive_timeout=keepalive_timeout,
            close_timeout=close_timeout,
        )
        self._url_text = url
        self._url = probe.url
        self._where = f"{probe.url.scheme}://{probe.url.host_header}{probe.url.path}"
        self._session = session
        self._ssl_context = ssl_context
        self._backoff = reconnect
        self._connect_timeout = float(connect_timeout)
        self._close_timeout = close_timeout
        self._keepalive_interval = keepalive_interval
        self._keepalive_timeout = keepalive_timeout
        self._max_message_size = max_message_size
        self._log = logger

        self._lock = threading.Lock()
        self._waker = Waker()
        self._stopping = False
        self._aborting = False
        self._dead = False
        self._death: BaseException | None = None
        self._ever_open = False
        self._conn: ClientConnection | None = None
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name=thread_name)

    # -- hooks (called under _lock) --------------------------------------------------

    def _route(self, events: list[Event]) -> None:
        """Deliver the core's events to whoever waits on them."""

    def _may_read(self) -> bool:
        """False to stop reading the socket for now (backpressure)."""
        return True

    def _on_death(self, error: BaseException | None) -> None:
        """The loop is over for good (``error`` None: closed by the application)."""

    # -- for the owner -----------------------------------------------------------------

    def _start(self) -> None:
        """Start the I/O thread and wait for the first connection (or its failure)."""
        try:
            # start() itself runs Python code after the thread is running: a Ctrl-C
            # landing there (the thread may already be connecting) must abort it too.
            self._thread.start()
            wait_event(self._started)
        except BaseException:
            self._abort()
            raise
        with self._lock:
            failed = not self._ever_open
            error = self._death
        if failed:
            join_thread(self._thread)
            self._waker.close()
            raise error if error is not None else ConnectionLost("could not connect")

    def _wake(self) -> None:
        self._waker.wake()

    def _close(self) -> None:
        """Close politely (close frame, wait up to close_timeout), join the thread."""
        with self._lock:
            self._stopping = True
        self._waker.wake()
        try:
            join_thread(self._thread)
        except BaseException:
            self._abort()
            raise
        self._waker.close()

    def _abort(self) -> None:
        """Stop at once (no close handshake): a second Ctrl-C, a failed start."""
        with self._lock:
            self._stopping = self._aborting = True
        self._waker.wake()
        # The loop checks the flag every turn and never blocks for long: this
        # join is short, and done in full so no thread outlives its owner.
        if self._thread.ident is not None:  # a Ctrl-C may beat the thread's start
            self._thread.join()
        self._waker.close()

    @property
    def _connected(self) -> bool:
        conn = self._conn
        return conn is not None and conn.state is _OPEN

    def _check_usable(self) -> None:
        """Raise ConnectionLost when the loop is over (called under _lock)."""
        if self._dead or self._stopping:
            error = ConnectionLost("the connection is closed")
            if self._death is not None:
                raise error from self._death
            raise error

    # -- the I/O thread ----------------------------------------------------------------

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            error = self._connect_loop()
        except BaseException as exc:  # a bug: still fail every waiter, never hang them
            self._log.exception("I/O thread failed")
            error = exc
        finally:
            with self._lock:
                self._dead = True
                self._death = error
                self._conn = None
                try:
                    self._on_death(error)
                finally:
                    self._started.set()

    def _connect_loop(self) -> BaseException | None:
        while True:
            try:
                self._attempt()
            except Stopped:
                return None
            except HandshakeFailed as exc:
                if exc.status_code is not None or not self._ever_open:
                    if self._ever_open:
                        self._log.warning("reconnect refused by the server: %s", exc)
                    return exc  # a refusal is never retried
                self._log.warning("reconnect failed: %s", exc)
            except Exception as exc:
                if not self._ever_open:
                    return exc
                self._log.warning("reconnect failed: %s", type(exc).__name__)
            if self._stopping:
                return None
            backoff = self._backoff
            if backoff is None:
                return ConnectionLost("connection lost (reconnect is off)")
            delay = backoff.next_delay()
            if delay is None:
                self._log.warning("giving up reconnecting to %s", self._where)
                return ConnectionLost("connection lost: gave up reconnecting")
            self._log.info("reconnecting to %s in %.2f s", self._where, delay)
            try:
                self._sleep(delay)
            except Stopped:  # closed while waiting to reconnect: a normal end
                return None

    def _sleep(self, delay: float) -> None:
        deadline = time.monotonic() + delay
        with selectors.DefaultSelector() as selector:
            selector.register(self._waker, _READ)
            while True:
                if self._stopping:
                    raise Stopped
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                if selector.select(remaining):
                    self._waker.drain()

    def _attempt(self) -> None:
        """One connection: returns when one that opened has ended, raises otherwise."""
        start = time.monotonic()
        deadline = start + self._connect_timeout
        url = self._url
        stream = open_stream(
            url.host,
            url.port,
            ssl_context=self._ssl_context,
            deadline=deadline,
            waker=self._waker,
            stopping=lambda: self._stopping,
        )
        try:
            budget = deadline - time.monotonic()
            if budget <= 0:
                raise TimeoutError("timed out before the WebSocket handshake")
            with self._lock:
                if self._stopping:
                    raise Stopped
                conn = ClientConnection(
                    self._session,
                    self._url_text,
                    max_message_size=self._max_message_size,
                    keepalive_interval=self._keepalive_interval,
                    keepalive_timeout=self._keepalive_timeout,
                    close_timeout=self._close_timeout,
                    handshake_timeout=budget,
                )
                self._conn = conn
                conn.start(time.monotonic())
            attempt = _Attempt(conn, stream)
            self._serve(attempt)
        finally:
            stream.close()
        if attempt.opened:
            if self._stopping:
                raise Stopped
            closed = attempt.closed
            self._log.info(
                "connection to %s lost (%s)",
                self._where,
                f"{closed.code} {closed.reason}" if closed else "?",
            )
            return
        if self._stopping:
            raise Stopped
        rejected = attempt.rejected
        if rejected is not None:
            body = rejected.body.decode("ascii", "replace").strip()[:200]
            raise HandshakeFailed(body or "refused", rejected.status_code, rejected.body)
        if time.monotonic() >= deadline:
            raise TimeoutError("timed out during the WebSocket handshake")
        reason = attempt.closed.reason if attempt.closed is not None else "connection closed"
        raise HandshakeFailed(reason)

    def _pump(self, attempt: _Attempt) -> None:
        """Collect the connection's output and route its events (under _lock)."""
        conn = attempt.conn
        attempt.stream.out += conn.data_to_send()
        events = conn.events()
        if not events:
            return
        for event in events:
            cls = event.__class__
            if cls is Connected:
                attempt.opened = True
                if self._backoff is not None:
                    self._backoff.reset()
                self._log.info(
                    "%s to %s", "reconnected" if self._ever_open else "connected", self._where
                )
                self._ever_open = True
                self._started.set()
            elif cls is HandshakeRejected:
                assert isinstance(event, HandshakeRejected)
                attempt.rejected = event
            elif cls is ConnectionClosed:
                assert isinstance(event, ConnectionClosed)
                attempt.closed = event
        self._route(events)
        attempt.stream.out += conn.data_to_send()  # what routing may have queued

    def _serve(self, attempt: _Attempt) -> None:
        conn, stream = attempt.conn, attempt.stream
        lock, waker = self._lock, self._waker
        with selectors.DefaultSelector() as selector:
            selector.register(waker, _READ)
            registration = _Registration(selector, stream.sock)
            while True:
                with lock:
                    now = time.monotonic()
                    if self._aborting:
                        conn.receive_eof(now)  # ends the connection without a word
                        self._pump(attempt)
                        stream.out.clear()
                        raise Stopped
                    if self._stopping and conn.state in (_OPEN, _CONNECTING):
                        stream.out += conn.data_to_send()  # what was queued goes first
                        conn.close(1000, now=now)
                    self._pump(attempt)
                    due = conn.next_deadline()
                    want_read = self._may_read()
                    state = conn.state
                if stream.out:
                    stream.flush()
                    # Backpressure: a peer that does not read our bytes (pongs,
                    # answers) is not read either, so a ping flood from a peer that
                    # never reads cannot grow ``out`` without bound.
                    if len(stream.out) >= _HIGH_WATER:
                        want_read = False
                if state is _CLOSED:
                    registration.clear()
                    _final_flush(stream, waker, lambda: self._aborting)
                    return
                if stream.failure is not None:
                    with lock:
                        conn.receive_eof(time.monotonic())
                    continue
                registration.set(stream.interest(want_read))
                if want_read and stream.pending():
                    timeout: float | None = 0.0
                else:
                    timeout = None if due is None else max(0.0, due - time.monotonic())
                readable = writable = False
                for key, mask in selector.select(timeout):
                    if key.fileobj is waker:
                        waker.drain()
                    else:
                        readable = bool(mask & _READ)
                        writable = bool(mask & _WRITE)
                if want_read and (
                    readable or stream.pending() or (stream.read_wants_write and writable)
                ):
                    self._read(attempt)
                if due is not None and time.monotonic() >= due:
                    with lock:
                        conn.handle_timer(time.monotonic())

    def _read(self, attempt: _Attempt) -> None:
        conn, stream = attempt.conn, attempt.stream
        budget = _READ_BUDGET
        while budget > 0:
            data = stream.recv()
            if data is None:
                return
            with self._lock:
                if data:
                    conn.receive_data(data, time.monotonic())
                else:
                    if stream.failure is not None:
                        self._log.info("connection to %s failed: %s", self._where, stream.failure)
                    conn.receive_eof(time.monotonic())
                self._pump(attempt)
                if not data or conn.state is _CLOSED or not self._may_read():
                    return
            budget -= len(data)


# -- the server ----------------------------------------------------------------------


class _Peer:
    """One accepted connection of a server; ``handshaking`` is the readiness its TLS
    handshake waits for (0 once done, or without TLS)."""

    __slots__ = ("conn", "handshaking", "registration", "stream")

    def __init__(
        self, conn: ServerConnection, stream: Stream, registration: _Registration, tls: bool
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.registration = registration
        self.handshaking = _READ if tls else 0


class ConnectionOptions(TypedDict):
    """What `ServerLoop` passes to each accepted socket's `ServerConnection`."""

    keepalive_interval: float | None
    keepalive_timeout: float
    handshake_timeout: float
    close_timeout: float
    max_message_size: int


class ServerLoop:
    """A listening socket and its connections, served by one selector thread.

    ``new_session(wakeup)`` makes the session of each accepted connection (under
    the lock); ``wakeup`` is what the session calls when the application queued a
    message for it. ``on_events`` sees each connection's events (under the lock).
    """

    def __init__(
        self,
        listener: socket.socket,
        *,
        ssl_context: ssl.SSLContext | None,
        new_session: Callable[[Callable[[], None]], ServerSession],
        on_events: Callable[[list[Event]], None],
        lock: threading.RLock,
        options: ConnectionOptions,
        logger: logging.Logger,
        thread_name: str,
    ) -> None:
        self._listener = listener
        self._ssl_context = ssl_context
        self._new_session = new_session
        self._on_events = on_events
        self._lock = lock
        self._options = options
        self._close_timeout = options["close_timeout"]
        self._log = logger
        self._waker = Waker()
        self._peers: dict[int, _Peer] = {}
        self._stopping = False
        self._aborting = False
        self._drops = 0  # drop requests made
        self._dropped = 0  # drop requests served
        self._dropped_event = threading.Condition(lock)
        self._thread = threading.Thread(target=self._run, name=thread_name)

    # -- for the owner (any thread) ----------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return sum(1 for peer in self._peers.values() if peer.conn.state is _OPEN)

    def open_sessions(self) -> list[ServerSession]:
        """The sessions of the connections open now (past the upgrade), oldest first.

        Call under the lock and `wake` after queueing messages on them."""
        return [peer.conn.session for peer in self._peers.values() if peer.conn.state is _OPEN]

    def wake(self) -> None:
        """Make the server thread collect what was queued on the sessions (any thread)."""
        self._waker.wake()

    def drop_connections(self) -> None:
        """Abort every connection (no close frame); returns once done, unless called
        from the server's own thread (then it happens right after the current call)."""
        with self._lock:
            self._drops += 1
            wanted = self._drops
            self._waker.wake()
            if threading.current_thread() is self._thread or not self._thread.is_alive():
                return
            while self._dropped < wanted and self._thread.is_alive():
                self._dropped_event.wait(SLICE)

    def close(self) -> None:
        """Stop accepting, close every connection (1001), join the thread."""
        with self._lock:
            self._stopping = True
        self._waker.wake()
        try:
            join_thread(self._thread)
        except BaseException:
            with self._lock:
                self._aborting = True
            self._waker.wake()
            self._thread.join()
            raise
        finally:
            if not self._thread.is_alive():
                self._waker.close()

    # -- the server thread -------------------------------------------------------------

    def _run(self) -> None:
        selector = selectors.DefaultSelector()
        listener: socket.socket | None = self._listener
        try:
            self._listener.setblocking(False)
            selector.register(self._listener, _READ)
            selector.register(self._waker, _READ)
            stop_due: float | None = None
            while True:
                with self._lock:
                    now = time.monotonic()
                    # One reading of the flags per turn: `close` may set them at any
                    # moment, and the turn must not stop before it said goodbye.
                    stopping, aborting = self._stopping, self._aborting
                    if aborting:
                        for peer in self._peers.values():
                            peer.conn.receive_eof(now)
                            self._pump(peer)
                            peer.stream.out.clear()
                    elif stopping and stop_due is None:
                        stop_due = now + self._close_timeout + _FINAL_FLUSH
                        for peer in self._peers.values():
                            if peer.conn.state in (_OPEN, _CONNECTING):
                                self._pump(peer)
                                peer.conn.close(1001, "server shutting down", now=now)
                    if self._drops > self._dropped:
                        for peer in self._peers.values():
                            peer.registration.clear()
                            peer.stream.close()  # abruptly: no close frame
                            peer.conn.receive_eof(now)
                            self._pump(peer)
                            peer.stream.out.clear()
                        self._dropped = self._drops
                        self._dropped_event.notify_all()
                    due: float | None = None
                    for peer in self._peers.values():
                        self._pump(peer)
                        peer_due = peer.conn.next_deadline()
                        if peer_due is not None and (due is None or peer_due < due):
                            due = peer_due
                if stopping and listener is not None:
                    selector.unregister(listener)
                    listener.close()
                    listener = None
                for fd, peer in list(self._peers.items()):
                    if peer.stream.out and not peer.handshaking:
                        peer.stream.flush()
                    if peer.conn.state is _CLOSED:
                        self._forget(fd, peer)
                    elif peer.stream.failure is not None:
                        with self._lock:
                            peer.conn.receive_eof(time.monotonic())
                        due = time.monotonic()  # pump it next turn
                    else:
                        peer.registration.set(
                            peer.handshaking or peer.stream.interest(_readable(peer.stream))
                        )
                if stopping and (
                    not self._peers or aborting or time.monotonic() >= (stop_due or 0.0)
                ):
                    break
                timeout = None if due is None else max(0.0, due - time.monotonic())
                if any(p.stream.pending() and _readable(p.stream) for p in self._peers.values()):
                    timeout = 0.0
                ready = selector.select(timeout)
                for key, _ in ready:
                    if key.fileobj is self._waker:
                        self._waker.drain()
                    elif key.fileobj is listener:
                        self._accept(listener, selector)
                for fd, peer in list(self._peers.items()):
                    if any(k.fd == fd for k, _ in ready) or peer.stream.pending():
                        self._service(peer)
                now = time.monotonic()
                with self._lock:
                    for peer in self._peers.values():
                        peer_due = peer.conn.next_deadline()
                        if peer_due is not None and now >= peer_due:
                            peer.conn.handle_timer(now)
        except BaseException:
            self._log.exception("server thread failed")
            raise
        finally:
            with self._lock:
                now = time.monotonic()
                for fd, peer in list(self._peers.items()):
                    peer.conn.receive_eof(now)  # a no-op for those already closed
                    self._pump(peer)
                    self._forget(fd, peer)
                self._dropped = self._drops
                self._dropped_event.notify_all()
            if listener is not None:
                listener.close()
            selector.close()

    def _pump(self, peer: _Peer) -> None:
        peer.stream.out += peer.conn.data_to_send()
        events = peer.conn.events()
        if events:
            self._on_events(events)
            peer.stream.out += peer.conn.data_to_send()

    def _forget(self, fd: int, peer: _Peer) -> None:
        peer.registration.clear()
        if peer.stream.out and peer.stream.failure is None and not self._aborting:
            _final_flush(peer.stream, self._waker, lambda: self._aborting)
        peer.stream.close()
        self._peers.pop(fd, None)

    def _accept(self, listener: socket.socket, selector: selectors.BaseSelector) -> None:
        while True:
            try:
                sock, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, a connection reset in the backlog...
                self._log.warning("accept failed: %s", type(exc).__name__)
                return
            try:
                sock.setblocking(False)
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                tls = self._ssl_context is not None
                if self._ssl_context is not None:
                    sock = self._ssl_context.wrap_socket(
                        sock, server_side=True, do_handshake_on_connect=False
                    )
            except OSError:
                sock.close()
                continue
            stream = Stream(sock)
            fd = sock.fileno()
            with self._lock:
                session = self._new_session(self._waker.wake)
                conn = ServerConnection(session, **self._options)
                conn.start(time.monotonic())
                peer = _Peer(conn, stream, _Registration(selector, sock), tls)
                self._peers[fd] = peer

    def _service(self, peer: _Peer) -> None:
        stream = peer.stream
        if peer.conn.state is _CLOSED or stream.failure is not None:
            return
        if peer.handshaking:
            try:
                stream.sock.do_handshake()  # type: ignore[attr-defined]
            except ssl.SSLWantReadError:
                peer.handshaking = _READ
                return
            except ssl.SSLWantWriteError:
                peer.handshaking = _WRITE
                return
            except OSError as exc:  # a client that refused our certificate, or not TLS
                self._log.info("TLS handshake failed: %s", type(exc).__name__)
                stream.failure = type(exc).__name__
                return
            peer.handshaking = 0
        budget = _READ_BUDGET
        while budget > 0 and _readable(stream):
            data = stream.recv()
            if data is None:
                return
            with self._lock:
                if data:
                    peer.conn.receive_data(data, time.monotonic())
                else:
                    peer.conn.receive_eof(time.monotonic())
                self._pump(peer)
                if not data or peer.conn.state is _CLOSED:
                    return
            budget -= len(data)
