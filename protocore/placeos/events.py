"""What `PlaceOSClient` tells the application, as small frozen events.

Every request id the client hands out ends in exactly one of `RequestSucceeded`,
`RequestFailed`, `RequestTimedOut` or `RequestAborted`. Everything else the server
says arrives as `ValueChanged` (a bound status variable), `DebugLog` (a module's
log line), `UnexpectedResponse` (an answer nobody waits for any more) or
`protocore.events.BadMessage` (a message that could not be decoded).
`BindingLost` and `HeartbeatLost` report state the application held going away.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import attrs

from protocore.events import Event, LivenessLost

from .models import (
    Binding,
    DebugMessage,
    ErrorCode,
    ErrorResponse,
    ModuleMeta,
    Notification,
    SuccessResponse,
)

__all__ = [
    "AbortReason",
    "RequestSucceeded",
    "RequestFailed",
    "RequestTimedOut",
    "RequestAborted",
    "ValueChanged",
    "DebugLog",
    "BindingLost",
    "HeartbeatLost",
    "UnexpectedResponse",
]


class AbortReason(enum.Enum):
    """Why a request ended without an answer and without timing out."""

    CONNECTION_LOST = "connection lost"
    """The connection dropped while the request was in flight."""
    NOT_CONNECTED = "not connected"
    """The request needs the server now (an exec) and there is no connection."""
    CANCELLED = "cancelled"
    """A bind (or debug) still waiting for a connection was undone by an unbind
    (or ignore) before it could be sent."""


@attrs.frozen(slots=True)
class RequestSucceeded(Event):
    """Request ``request_id`` succeeded.

    ``value`` is the answer's value (an exec's result; None for the other commands).
    ``response`` is the server's answer, or None when the client answered locally
    (a second bind of a binding already confirmed, an unbind that only dropped one
    of several references, an unbind while disconnected).
    """

    request_id: int
    value: Any = None
    response: SuccessResponse | None = None


@attrs.frozen(slots=True)
class RequestFailed(Event):
    """The server answered request ``request_id`` with an error."""

    request_id: int
    code: ErrorCode | int
    message: str
    response: ErrorResponse


@attrs.frozen(slots=True)
class RequestTimedOut(Event):
    """No answer to request ``request_id`` before its deadline.

    The reference server silently drops requests it cannot read, so this is the
    only end some requests get. An answer arriving later is `UnexpectedResponse`.
    """

    request_id: int


@attrs.frozen(slots=True)
class RequestAborted(Event):
    """Request ``request_id`` ended without an answer; ``reason`` says why."""

    request_id: int
    reason: AbortReason


@attrs.frozen(slots=True)
class ValueChanged(Event):
    """A bound status variable has a new value (possibly before the bind's success).

    ``binding`` and ``value`` are the ``notification``'s, repeated for convenience.
    """

    binding: Binding
    value: Any
    notification: Notification


def _slot_setter(name: str) -> Callable[[Any, Any], None]:
    setter: Callable[[Any, Any], None] = vars(ValueChanged)[name].__set__
    return setter


_set_binding = _slot_setter("binding")
_set_value = _slot_setter("value")
_set_notification = _slot_setter("notification")
_new = object.__new__


def _value_changed(notification: Notification) -> ValueChanged:
    """``ValueChanged(n.binding, n.value, n)`` without the frozen ``__init__``.

    A frozen init sets each field through ``object.__setattr__``; setting the slots
    directly costs about half. The client inlines these lines on its hot path (one
    per notify); a test checks that both build equal events.
    """
    event: ValueChanged = _new(ValueChanged)
    _set_binding(event, notification.binding)
    _set_value(event, notification.value)
    _set_notification(event, notification)
    return event


@attrs.frozen(slots=True)
class DebugLog(Event):
    """A log line from a module being debugged (see `PlaceOSClient.debug`)."""

    message: DebugMessage


@attrs.frozen(slots=True)
class BindingLost(Event):
    """A binding or debug stream the application held is gone.

    It happens when re-sending it after a reconnect fails: ``error`` is the
    server's refusal, or None when the re-send timed out. ``target`` is the
    `Binding`, or for a debug stream its `ModuleMeta` (sys, module id, index).
    The client forgets it (and its cached value): bind again to get it back.
    """

    target: Binding | ModuleMeta
    error: ErrorResponse | None = None


@attrs.frozen(slots=True)
class HeartbeatLost(LivenessLost):
    """Nothing at all (not even a ``pong``) arrived for ``timeout`` seconds.

    A `LivenessLost`: the connection drops the link when it sees this.
    """

    timeout: float


@attrs.frozen(slots=True)
class UnexpectedResponse(Event):
    """A well-formed answer whose id matches no pending request.

    Typically an answer that came after its request timed out, or one the server
    sent with an id it could not read (an error with a null id). Kept, not dropped,
    so nothing the server says is lost.
    """

    response: SuccessResponse | ErrorResponse
