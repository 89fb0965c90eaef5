"""How connection failures read: one wording for every transport.

Each runtime raises its own exception for the same fault (trio's "all attempts to
connect ... failed", asyncio's "Connect call failed", a bare "Connection refused").
The driver hands the adapter's exception here and raises what comes back: the same
class (so ``except ConnectionRefusedError`` or ``except ssl.SSLError`` still work),
with one message that names the URL without its query (which may hold secrets).
"""

from __future__ import annotations

import os

from protocore.errors import HandshakeFailed
from protocore.events import ConnectionClosed, HandshakeRejected

__all__ = ["connect_failure", "handshake_failure", "timeout_failure"]


def _root(error: BaseException) -> BaseException:
    """The OSError that says what happened (trio wraps the per-address errors)."""
    while isinstance(error, OSError) and error.errno is None:
        cause = error.__cause__
        if isinstance(cause, BaseExceptionGroup):
            cause = cause.exceptions[0]
        if not isinstance(cause, OSError):
            break
        error = cause
    return error


def connect_failure(error: BaseException, where: str) -> BaseException:
    """A socket or TLS failure before the WebSocket handshake, in our words."""
    root = _root(error)
    if not isinstance(root, OSError):
        return error
    verify = getattr(root, "verify_message", None)
    library = getattr(root, "library", None)
    if verify or library:  # ssl.SSLError and its subclasses
        detail = verify or getattr(root, "reason", None) or root.strerror or "failed"
        message = f"TLS with {where} failed: {detail}"
    elif root.errno is not None and root.errno > 0:
        message = f"could not connect to {where}: {os.strerror(root.errno).lower()}"
    elif root.errno is not None:  # getaddrinfo's negative EAI_* codes
        message = f"could not connect to {where}: unknown host ({root.strerror})"
    else:
        message = f"could not connect to {where}: {root.strerror or root}"
    try:
        translated = type(root)(root.errno, message)
    except TypeError:  # an OSError subclass with its own constructor
        return root
    translated.__dict__.update(vars(root))  # ssl's reason, verify_code, ...
    translated.__cause__ = root
    return translated


def timeout_failure(where: str, seconds: float, handshaking: bool) -> TimeoutError:
    """The connect deadline passed: before the socket opened, or in the upgrade."""
    stage = "waiting for the WebSocket handshake" if handshaking else "opening the connection"
    return TimeoutError(f"connecting to {where} timed out after {seconds:g} s ({stage})")


def handshake_failure(
    where: str,
    credential: str,
    rejected: HandshakeRejected | None,
    closed: ConnectionClosed | None,
) -> HandshakeFailed:
    """A refused upgrade names what was refused once: ``refused the API key (HTTP 401)``."""
    if rejected is None:
        reason = closed.reason if closed is not None else "connection closed"
        return HandshakeFailed(f"{where} broke the upgrade: {reason}")
    status = rejected.status_code
    if status in (401, 403):
        what = f"{where} refused the {credential}"
    elif status == 404:
        what = f"{where} has no WebSocket endpoint there"
    else:
        what = f"{where} refused the upgrade"
    return HandshakeFailed(what, status, rejected.body)
