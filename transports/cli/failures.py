"""How a command's failures reach the user: one line (``protocore: error: ...``), status 1.

A command raises `CliError` for what it expects; `reported` turns whatever else a
block meets (network errors, refusals, bad values) into one, worded for the command
line: a refused upgrade says which credential was refused and the HTTP status, once;
a URL is named once; the library's parameter names become the flags that set them.
Never a traceback.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Final

from protocore import ConnectionLost, HandshakeFailed, ProtocolError
from protocore.placeos.exceptions import PlaceOSError

from .credentials import MissingSecret
from .runtime import TransportMissing

__all__ = ["CliError", "EXPECTED", "describe", "reported"]


class CliError(Exception):
    """A failure to report as one line (no traceback), with exit status 1."""


EXPECTED: Final = (CliError, TransportMissing, MissingSecret)
"""What the commands raise on purpose: reported as they are."""

FLAGS: Final[Mapping[str, str]] = {
    "client_token": "--client-token",
    "access_token": "--access-token",
    "api_keys": "--api-key",
    "api_key": "--api-key",
}
"""Library parameter names and the flags that set them."""

_PARAMETER = re.compile(r"\b(" + "|".join(sorted(FLAGS, key=len, reverse=True)) + r")\b")


def _flags(text: str) -> str:
    return _PARAMETER.sub(lambda match: FLAGS[match.group(1)], text)


def describe(exc: BaseException, credential: str | None = None) -> str:
    """One line for an exception a command can meet; ``credential`` names what a 401
    refused (``the API key``), and the library's parameter names become flags."""
    return _flags(_describe(exc, credential))


def _describe(exc: BaseException, credential: str | None) -> str:
    if isinstance(exc, HandshakeFailed):
        if exc.status_code in {401, 403} and credential is not None:
            return f"the server refused {credential} (HTTP {exc.status_code})"
        if exc.status_code is not None:
            return f"the server refused the WebSocket upgrade (HTTP {exc.status_code})"
        return f"the WebSocket handshake failed: {exc.reason}"
    if isinstance(exc, TimeoutError):  # before OSError, its base class
        return str(exc) or "timed out"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    if isinstance(exc, PlaceOSError | ConnectionLost | ProtocolError):
        return str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _line(doing: str, why: str) -> str:
    """``doing: why``, naming a URL once: ``PlaceOS at URL`` drops its URL when ``why``
    already holds it (``could not connect to URL: connection refused``)."""
    head, at, where = doing.partition(" at ")
    if at and where in why:
        return f"{head}: {why}"
    return f"{doing}: {why}"


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@contextmanager
def reported(doing: str, credential: str | None = None) -> Iterator[None]:
    """Failures inside become `CliError` (``doing: why``); Ctrl-C stays a KeyboardInterrupt."""
    try:
        yield
    except BaseExceptionGroup as group:  # trio may group what several tasks raised
        if group.subgroup(KeyboardInterrupt) is not None:
            raise KeyboardInterrupt from None
        leaf = _first_leaf(group)
        if isinstance(leaf, EXPECTED):
            raise leaf from None
        raise CliError(_line(doing, describe(leaf, credential))) from None
    except EXPECTED:
        raise
    except Exception as exc:
        raise CliError(_line(doing, describe(exc, credential))) from None
