"""Events shared by every session and connection.

Events are small frozen attrs classes, as in h11 and wsproto: a session or a
connection returns them, the application matches on their type. Protocol-specific
events live beside their session (`protocore.placeos`, `protocore.mews`).
"""

from __future__ import annotations

import attrs

from .errors import DecodeError, describe_value

__all__ = [
    "Event",
    "BadMessage",
    "LivenessLost",
    "Connected",
    "HandshakeRejected",
    "ConnectionClosed",
]


class Event:
    """Base class of every event protocore emits."""

    __slots__ = ()


def _short(value: object) -> str:
    return describe_value(value)


@attrs.frozen(slots=True)
class BadMessage(Event):
    """A message from the peer could not be decoded; the connection goes on.

    ``data`` is the message exactly as received, so nothing is lost;
    ``error`` says where and why it failed.
    """

    data: str | bytes = attrs.field(repr=_short)
    error: DecodeError


class LivenessLost(Event):
    """Base of events meaning "the peer stopped answering"; the connection is dropped."""

    __slots__ = ()


@attrs.frozen(slots=True)
class Connected(Event):
    """The WebSocket handshake succeeded (on either side)."""

    subprotocol: str | None = None


@attrs.frozen(slots=True)
class HandshakeRejected(Event):
    """The server refused the upgrade (401, 403, 404...) before any WebSocket frame."""

    status_code: int
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = attrs.field(default=b"", repr=_short)


@attrs.frozen(slots=True)
class ConnectionClosed(Event):
    """The connection is over; the transport should close its socket.

    ``code`` is the WebSocket close code (1006 when no close frame was exchanged),
    ``reason`` its text, ``local`` whether this side started the close.
    """

    code: int
    reason: str = ""
    local: bool = False
