"""Exceptions for the blocking and async APIs: one class per PlaceOS error number.

The sans-IO client reports outcomes as events; the transports' ``await client.exec(...)``
raises instead, and callers want ``except ModuleNotFound`` rather than comparing codes.
`exception_for` turns an outcome event into its exception, so every transport raises
exactly the same thing for the same answer.
"""

from __future__ import annotations

from protocore.errors import ConnectionLost

from .events import AbortReason, RequestAborted, RequestFailed, RequestTimedOut
from .models import ErrorCode

__all__ = [
    "PlaceOSError",
    "ServerError",
    "ParseError",
    "BadRequest",
    "AccessDenied",
    "RequestFailedError",
    "UnknownCommand",
    "SystemNotFound",
    "ModuleNotFound",
    "UnexpectedFailure",
    "RequestTimeout",
    "exception_for",
]


class PlaceOSError(Exception):
    """A PlaceOS request did not succeed (the server refused it, or no answer came)."""


class ServerError(PlaceOSError):
    """The server answered with an error; ``code`` is its number, ``message`` its text."""

    code: ErrorCode | int = ErrorCode.UNEXPECTED_FAILURE

    def __init__(self, message: str = "", code: ErrorCode | int | None = None) -> None:
        if code is not None:
            self.code = code
        self.message = message
        super().__init__(message or f"error {int(self.code)}")

    def __str__(self) -> str:
        name = self.code.name.lower().replace("_", " ") if isinstance(self.code, ErrorCode) else ""
        label = f"{int(self.code)} ({name})" if name else str(int(self.code))
        return (
            f"PlaceOS error {label}: {self.message}" if self.message else f"PlaceOS error {label}"
        )


class ParseError(ServerError):
    """0: the server could not parse the request as JSON."""

    code = ErrorCode.PARSE_ERROR


class BadRequest(ServerError):
    """1: a field was missing or of the wrong type, or the method does not exist."""

    code = ErrorCode.BAD_REQUEST


class AccessDenied(ServerError):
    """2: no permission for this system or module (the attempt is logged)."""

    code = ErrorCode.ACCESS_DENIED


class RequestFailedError(ServerError):
    """3: the driver raised an error or rejected a promise while handling the request."""

    code = ErrorCode.REQUEST_FAILED


class UnknownCommand(ServerError):
    """4: the ``cmd`` is not one the server knows."""

    code = ErrorCode.UNKNOWN_COMMAND


class SystemNotFound(ServerError):
    """5: no such system."""

    code = ErrorCode.SYSTEM_NOT_FOUND


class ModuleNotFound(ServerError):
    """6: no such module in the system."""

    code = ErrorCode.MODULE_NOT_FOUND


class UnexpectedFailure(ServerError):
    """7: a framework-level failure on the server."""

    code = ErrorCode.UNEXPECTED_FAILURE


class RequestTimeout(PlaceOSError, TimeoutError):
    """No answer before the request's deadline (the server drops requests it cannot read)."""


_BY_CODE: dict[int, type[ServerError]] = {
    cls.code: cls
    for cls in (
        ParseError,
        BadRequest,
        AccessDenied,
        RequestFailedError,
        UnknownCommand,
        SystemNotFound,
        ModuleNotFound,
        UnexpectedFailure,
    )
}


def exception_for(event: RequestFailed | RequestTimedOut | RequestAborted) -> Exception:
    """The exception a blocking or async API raises for a request's unhappy ending."""
    if isinstance(event, RequestFailed):
        cls = _BY_CODE.get(int(event.code), ServerError)
        return cls(event.message, event.code)
    if isinstance(event, RequestTimedOut):
        return RequestTimeout(f"request {event.request_id} got no answer in time")
    if event.reason is AbortReason.CONNECTION_LOST:
        return ConnectionLost(f"connection lost before request {event.request_id} was answered")
    return ConnectionLost(f"request {event.request_id} aborted: {event.reason.value}")
