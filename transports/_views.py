"""What the public classes show, written once for the async and the sync spelling.

A client's state, a subscription's buffer and a server's address are read from the
driver the same way whether the caller awaits or blocks; only the waiting differs,
and that stays in `_aio` and `_blocking`. Each public class there derives from the
matching view here, so the two spellings cannot drift in what they report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

from protocore.driver import ClientDriver, ClientState, Listening, ServerDriver, Stats, describe
from protocore.mews import Envelope, MewsEvent
from protocore.placeos import Binding, MockEngine, ModuleMeta

from ._wording import server_url

__all__ = [
    "END",
    "ClientView",
    "MewsServerView",
    "PlaceOSServerView",
    "ServerView",
    "SubscriptionView",
]

T = TypeVar("T")

_UNLOCKED: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()


class ClientView:
    """A client's driver, read: `connected`, `stats`, `latency`, `state`, `url`."""

    __slots__ = ()

    _driver: ClientDriver
    #: Held while reading what the I/O thread writes (the sync spelling's lock).
    _lock: contextlib.AbstractContextManager[Any] = _UNLOCKED

    @property
    def connected(self) -> bool:
        """Whether a connection is open right now (False while reconnecting)."""
        return self._driver.connected

    @property
    def stats(self) -> Stats:
        """Counters since the start: bytes, messages, reconnects, dropped, bad messages."""
        with self._lock:
            return self._driver.stats

    @property
    def latency(self) -> float | None:
        """The last keepalive round trip in seconds (None before the first pong)."""
        return self._driver.latency

    @property
    def state(self) -> ClientState:
        """Connecting, open, reconnecting (attempt, delay), closing or closed."""
        return self._driver.state

    @property
    def url(self) -> str:
        """Where it connects: scheme, host and path (never the query)."""
        return self._driver.where

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._driver.where} {self._driver.phase.value}>"


class SubscriptionView:
    """A subscription's target and buffer; entering and iterating are the spelling's."""

    __slots__ = ("_entered", "_sub", "target")

    def __init__(self, target: Binding | ModuleMeta) -> None:
        #: What it follows: a `Binding`, or a `ModuleMeta` for a debug stream.
        self.target = target
        self._sub: Listening | None = None
        self._entered = False

    @property
    def dropped(self) -> int:
        """How many items were dropped (oldest first) because the consumer was behind."""
        sub = self._sub
        return 0 if sub is None else sub.feed.dropped

    def __len__(self) -> int:
        """How many items wait for the consumer."""
        sub = self._sub
        return 0 if sub is None else len(sub.feed)

    def __repr__(self) -> str:
        return f"<Subscription {describe(self.target)} waiting={len(self)} dropped={self.dropped}>"


class _Address(Protocol):
    host: str
    port: int


class ServerView:
    """A server's address and connections, read or changed where its state lives."""

    _path = ""
    _driver: ServerDriver
    _secure: bool

    def _running(self) -> _Address:
        """The running server's I/O; `RuntimeError` (`NOT_RUNNING`) once it has stopped."""
        raise NotImplementedError

    def _call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` where the server's state lives (its loop, or under its lock)."""
        raise NotImplementedError

    def _now(self) -> float:
        raise NotImplementedError

    @property
    def host(self) -> str:
        return self._running().host

    @property
    def port(self) -> int:
        return self._running().port

    @property
    def url(self) -> str:
        """``ws://host:port/path`` (``wss://`` with TLS) to give the clients."""
        io = self._running()
        return server_url(io.host, io.port, self._secure, self._path)

    @property
    def connections(self) -> int:
        """How many connections are open right now (past the handshake)."""
        return self._call(lambda: self._driver.connections)

    def drop_connections(self) -> int:
        """Abort every connection abruptly (no close frame): fault tests. How many."""
        return self._call(lambda: self._driver.drop(self._now()))

    def __repr__(self) -> str:
        try:
            where = self.url
        except RuntimeError:
            where = "(not running)"
        return f"<{type(self).__name__} {where}>"


class PlaceOSServerView(ServerView):
    """A fake PlaceOS engine's handle: its engine, status variables and log lines."""

    _engine: MockEngine

    @property
    def engine(self) -> MockEngine:
        """The engine: touch it only through `call` (the server's loop or threads use it)."""
        return self._engine

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` where the server's state lives (from any thread); its result."""
        return self._call(fn)

    def set_status(self, sys: str, mod: str, name: str, value: Any, *, index: int = 1) -> int:
        """Set a status variable and notify every bound client; how many were notified."""
        return self._call(lambda: self._engine.set_status(sys, mod, name, value, index=index))

    def log(self, sys: str, mod: str, message: str, *, level: str = "debug", index: int = 1) -> int:
        """Send a module's log line to every client debugging it; how many got it."""
        return self._call(lambda: self._engine.log(sys, mod, message, level=level, index=index))


class MewsServerView(ServerView):
    """A fake Mews server's handle: `publish`."""

    def publish(self, events: Envelope | Iterable[MewsEvent]) -> int:
        """Push one message (an `Envelope`, or events to wrap in one) to every client;
        how many got it."""
        return self._call(lambda: self._driver.publish(events))


#: What an iterator's ``_next`` returns at a quiet end (the block exited, or closed).
END = object()
