"""What a WebSocket connection needs from a protocol session.

A session speaks whole text messages and knows nothing of frames or sockets. The
connection (`protocore.connection`) wraps wsproto around any object with this shape,
so the PlaceOS and Mews sessions, client and server, share one connection class each.
Time is a parameter: every call that can start or check a timer takes ``now``,
monotonic seconds as a float, and `next_deadline` says when to call `handle_timer`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs

from .events import Event

__all__ = ["Session", "ClientSession", "ServerSession", "ClientHandshake", "Rejection"]


@attrs.frozen(slots=True)
class ClientHandshake:
    """What a client session adds to the upgrade request: its auth, in whatever form.

    Values here are secrets: nothing may log or repr them (hence ``repr=False``).
    """

    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), repr=False)
    query: tuple[tuple[str, str], ...] = attrs.field(default=(), repr=False)


@attrs.frozen(slots=True)
class Rejection:
    """A server session's refusal of an upgrade: sent as a plain HTTP response."""

    status_code: int = 401
    body: bytes = b"unauthorized\n"
    headers: tuple[tuple[str, str], ...] = ()


class Session(Protocol):
    """Either side of either protocol, seen from the connection."""

    def connection_made(self, now: float) -> list[Event]:
        """The handshake is done; queue what a fresh connection needs (re-binds...)."""

    def receive_message(self, data: str | bytes, now: float) -> list[Event]:
        """Take one whole text message from the peer; never raises on bad input."""

    def messages_to_send(self) -> list[str]:
        """Drain the text messages queued for the peer, oldest first."""

    def next_deadline(self) -> float | None:
        """When `handle_timer` must next be called, or None when no timer is running."""

    def handle_timer(self, now: float) -> list[Event]:
        """Fire every timer due at ``now`` (request timeouts, heartbeats)."""

    def connection_lost(self, now: float) -> list[Event]:
        """The connection is gone; fail what was waiting on it."""


# A session may also offer ``take_events() -> list[Event]``: events it decided during
# the application's own calls (no message or timer behind them, e.g. a PlaceOS bind
# answered from the cache). The connection's ``events()`` drains it when present.


class ClientSession(Session, Protocol):
    """A session that opens connections: it supplies the handshake's auth."""

    def handshake(self) -> ClientHandshake:
        """The headers and query parameters this session's auth needs."""


class ServerSession(Session, Protocol):
    """A session that accepts connections: it decides who may upgrade."""

    def authorize(self, target: str, headers: Sequence[tuple[str, str]]) -> Rejection | None:
        """None to accept the upgrade request, or how to refuse it (before upgrading).

        ``target`` is the request target (path and query); header names are lower-case.
        """
