"""The exceptions protocore raises, shaped after h11's.

Who is at fault decides the class: `LocalProtocolError` means the caller used the
API wrongly (and can fix their code), `RemoteProtocolError` means the peer sent
something wrong (and the caller can only report it). Nothing else escapes the core:
raw ``KeyError``/``TypeError``/``json.JSONDecodeError`` are translated here.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "DecodeError",
    "EncodeError",
    "ConnectionLost",
    "HandshakeFailed",
    "describe_value",
]

_MAX_SHOWN = 60


def describe_value(value: Any) -> str:
    """A short, bounded repr for error messages: a 50 MB string must not become one."""
    text = repr(value)
    if len(text) > _MAX_SHOWN:
        return f"{text[: _MAX_SHOWN - 3]}... ({type(value).__name__} of length {_length(value)})"
    return text


def _length(value: Any) -> str:
    try:
        return str(len(value))
    except TypeError:
        return "?"


class ProtocolError(Exception):
    """Base class of every protocol error protocore raises."""


class LocalProtocolError(ProtocolError):
    """The caller misused the API: sent in the wrong state, passed an invalid value."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow."""


class EncodeError(LocalProtocolError):
    """A value given to an encoder cannot be put on the wire (NaN, a set, a lone surrogate)."""


class DecodeError(RemoteProtocolError):
    """A message could not be decoded.

    ``path`` names where in the message the problem is, in the wire's own spelling
    (``Events[2].StartUtc``; empty for the message as a whole), and ``reason`` says
    what was expected there. ``str(error)`` joins the two.
    """

    path: str
    reason: str

    def __init__(self, reason: str, path: str = "") -> None:
        super().__init__(reason, path)
        self.reason = reason
        self.path = path

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason

    def __repr__(self) -> str:
        return f"DecodeError({self.reason!r}, path={self.path!r})"

    def under(self, prefix: str) -> DecodeError:
        """The same error, located inside ``prefix`` (``Events[2]`` + ``StartUtc``)."""
        if not self.path:
            path = prefix
        elif self.path.startswith("["):
            path = prefix + self.path
        else:
            path = f"{prefix}.{self.path}" if prefix else self.path
        return DecodeError(self.reason, path)


class ConnectionLost(Exception):
    """The connection went away before an answer came, and was not restored in time.

    Raised by the blocking and async APIs (never by the sans-IO core, which reports
    the same thing as events) so that nothing waits forever on a dead link.
    """


class HandshakeFailed(RemoteProtocolError):
    """The server refused the WebSocket upgrade (401, 403, 404...) or broke it.

    ``status_code`` is the HTTP status (None when the handshake broke without one);
    ``body`` the start of the refusal's body. Raised by the transports when a
    connection cannot be made; a refused handshake is never retried, since trying
    the same credentials again cannot help.
    """

    def __init__(self, reason: str, status_code: int | None = None, body: bytes = b"") -> None:
        super().__init__(reason)
        self.reason = reason
        self.status_code = status_code
        self.body = body[:1024]

    def __str__(self) -> str:
        if self.status_code is None:
            return self.reason
        return f"{self.reason} (HTTP {self.status_code})"
