"""The HTTP/1.1 upgrade (RFC 6455 section 4), built on h11, for both sides.

The connection layer uses h11 for the opening handshake and wsproto's frame-level
`Connection` afterwards. Doing the upgrade here rather than through wsproto's
``H11Handshake`` gives the connection three things it needs: the bytes that
arrive right behind the request are kept (wsproto's server handshake drops them),
the size of the handshake is capped explicitly, and no error text ever carries a
header value or the query (the handshake is where credentials travel).

Everything here is private; `ClientConnection` and `ServerConnection` are the API.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from collections.abc import Iterable, Sequence
from http import HTTPStatus

import h11

from ._url import WebSocketURL, add_query
from .errors import LocalProtocolError
from .session import ClientHandshake, Rejection

__all__: list[str] = []

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# RFC 9110 token (header names, subprotocols) and field-value (as h11 checks it).
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(
    rb"(?:[\x21-\x7e\x80-\xff](?:[\t\x20-\x7e\x80-\xff]*[\x21-\x7e\x80-\xff])?)?"
)

# Headers the handshake writes itself: a caller or a session may not set them.
_RESERVED = frozenset(
    {
        b"host",
        b"upgrade",
        b"connection",
        b"content-length",
        b"transfer-encoding",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-protocol",
        b"sec-websocket-extensions",
        b"sec-websocket-accept",
    }
)

Headers = list[tuple[bytes, bytes]]


class HandshakeFailure(Exception):
    """The peer's side of the handshake is not a valid WebSocket upgrade."""

    def __init__(self, reason: str, status: int = 400, headers: Headers | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.headers = headers or []


def new_key() -> bytes:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16))


def accept_token(key: bytes) -> bytes:
    """The ``Sec-WebSocket-Accept`` a server answers to ``key``."""
    return base64.b64encode(hashlib.sha1(key + _GUID).digest())  # noqa: S324 - RFC 6455


def encode_headers(pairs: Iterable[tuple[str, str]], what: str) -> Headers:
    """Validate and encode (name, value) pairs; errors name the header, never the value."""
    encoded: Headers = []
    for pair in pairs:
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise LocalProtocolError(f"{what} must be (name, value) pairs of str")
        name, value = pair
        if not (isinstance(name, str) and isinstance(value, str)):
            raise LocalProtocolError(f"{what} must be (name, value) pairs of str")
        raw_name = name.encode("ascii", "replace")
        if not _TOKEN.fullmatch(raw_name):
            raise LocalProtocolError(f"{what}: {describe_name(name)} is not a valid header name")
        raw_name = raw_name.lower()
        if raw_name in _RESERVED:
            raise LocalProtocolError(
                f"{what}: {describe_name(name)} is set by the WebSocket handshake itself"
            )
        raw_value = value.encode("utf-8") if _encodable(value) else b"\x00"
        if not _FIELD_VALUE.fullmatch(raw_value):
            raise LocalProtocolError(
                f"{what}: the value of {describe_name(name)} contains characters that "
                "cannot go in an HTTP header (control characters, surrogates, or "
                "leading/trailing whitespace)"
            )
        encoded.append((raw_name, raw_value))
    return encoded


def describe_name(name: str) -> str:
    """A header name for an error message, bounded."""
    return repr(name[:40] + "...") if len(name) > 40 else repr(name)


def encode_subprotocols(subprotocols: Sequence[str]) -> tuple[str, ...]:
    result = tuple(subprotocols)
    for sub in result:
        if not (isinstance(sub, str) and _TOKEN.fullmatch(sub.encode("ascii", "replace"))):
            raise LocalProtocolError("subprotocols must be HTTP tokens (str)")
    return result


# -- client side --------------------------------------------------------------------


def client_request(
    url: WebSocketURL,
    key: bytes,
    subprotocols: tuple[str, ...],
    extra_headers: Headers,
    auth: ClientHandshake,
) -> h11.Request:
    """The upgrade request: ``url``'s target plus the session's auth headers and query."""
    if not isinstance(auth, ClientHandshake):
        raise LocalProtocolError("session.handshake() must return a ClientHandshake")
    headers: Headers = [
        (b"host", url.host_header.encode("ascii")),
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-key", key),
        (b"sec-websocket-version", b"13"),
    ]
    if subprotocols:
        headers.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode("ascii")))
    headers += extra_headers
    headers += encode_headers(auth.headers, "the session's handshake headers")
    target = add_query(url.target, _query_pairs(auth.query))
    return h11.Request(method=b"GET", target=target.encode("ascii"), headers=headers)


def _query_pairs(query: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    pairs = tuple(query)
    for pair in pairs:
        if not (
            isinstance(pair, tuple)
            and len(pair) == 2
            and isinstance(pair[0], str)
            and isinstance(pair[1], str)
        ):
            raise LocalProtocolError(
                "the session's handshake query must be (name, value) str pairs"
            )
        # quote() would raise UnicodeEncodeError, whose text shows the offending value.
        if not _encodable(pair[0]) or not _encodable(pair[1]):
            raise LocalProtocolError(
                "a query parameter of the session's handshake contains a lone surrogate"
            )
    return pairs


def _encodable(text: str) -> bool:
    """Whether ``text`` encodes to UTF-8 (no lone surrogates), without raising.

    The UnicodeEncodeError is dropped here on purpose: its text and its ``object``
    carry the whole value, and the value is a credential.
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_accept(
    response: h11.InformationalResponse, key: bytes, subprotocols: tuple[str, ...]
) -> str | None:
    """Validate a 101 response to our request; the negotiated subprotocol, if any."""
    fields = _fields(response.headers)
    if b"websocket" not in _tokens(fields.get(b"upgrade")):
        raise HandshakeFailure("the 101 response has no 'Upgrade: websocket'")
    if b"upgrade" not in _tokens(fields.get(b"connection")):
        raise HandshakeFailure("the 101 response has no 'Connection: Upgrade'")
    if fields.get(b"sec-websocket-accept") != accept_token(key):
        raise HandshakeFailure("the 101 response has a wrong Sec-WebSocket-Accept")
    if fields.get(b"sec-websocket-extensions"):
        raise HandshakeFailure("the server enabled an extension that was not offered")
    chosen = fields.get(b"sec-websocket-protocol")
    if chosen is None:
        return None
    name = chosen.decode("latin-1")
    if name not in subprotocols:
        raise HandshakeFailure("the server chose a subprotocol that was not offered")
    return name


def decode_headers(headers: Iterable[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    """h11's headers (names already lower-case) as str pairs."""
    return tuple((name.decode("latin-1"), value.decode("latin-1")) for name, value in headers)


# -- server side --------------------------------------------------------------------


def check_upgrade_request(request: h11.Request) -> tuple[bytes, list[str]]:
    """Validate an upgrade request: its Sec-WebSocket-Key and the offered subprotocols."""
    if request.method != b"GET":
        raise HandshakeFailure("a WebSocket upgrade must be a GET", 405, [(b"allow", b"GET")])
    if request.http_version != b"1.1":
        raise HandshakeFailure("a WebSocket upgrade needs HTTP/1.1", 505)
    fields = _fields(request.headers)
    if b"websocket" not in _tokens(fields.get(b"upgrade")):
        raise HandshakeFailure("not a WebSocket request: no 'Upgrade: websocket'")
    if b"upgrade" not in _tokens(fields.get(b"connection")):
        raise HandshakeFailure("not a WebSocket request: no 'Connection: Upgrade'")
    if fields.get(b"sec-websocket-version") != b"13":
        raise HandshakeFailure(
            "unsupported WebSocket version (13 is supported)",
            426,
            [(b"sec-websocket-version", b"13")],
        )
    key = fields.get(b"sec-websocket-key", b"")
    try:
        valid_key = len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        valid_key = False
    if not valid_key:
        raise HandshakeFailure("missing or malformed Sec-WebSocket-Key")
    offered = [
        token.decode("latin-1") for token in _tokens(fields.get(b"sec-websocket-protocol"), False)
    ]
    return key, offered


def accept_response(key: bytes, subprotocol: str | None) -> h11.InformationalResponse:
    headers: Headers = [
        (b"upgrade", b"websocket"),
        (b"connection", b"Upgrade"),
        (b"sec-websocket-accept", accept_token(key)),
    ]
    if subprotocol is not None:
        headers.append((b"sec-websocket-protocol", subprotocol.encode("ascii")))
    return h11.InformationalResponse(
        status_code=101, headers=headers, reason=b"Switching Protocols"
    )


def refusal_response(status: int, body: bytes, headers: Headers) -> h11.Response:
    """A plain HTTP refusal, closing the connection; the caller sends ``body`` after it."""
    all_headers: Headers = [(b"content-length", str(len(body)).encode("ascii"))]
    if body and not any(name == b"content-type" for name, _ in headers):
        all_headers.append((b"content-type", b"text/plain; charset=utf-8"))
    all_headers += headers
    all_headers.append((b"connection", b"close"))
    try:
        phrase = HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        phrase = b""
    return h11.Response(status_code=status, headers=all_headers, reason=phrase)


def encode_rejection(rejection: Rejection) -> tuple[int, bytes, Headers]:
    """Check a session's `Rejection` and encode its headers."""
    if not isinstance(rejection, Rejection):
        raise LocalProtocolError("session.authorize() must return a Rejection or None")
    status = rejection.status_code
    if not (isinstance(status, int) and 200 <= status <= 599):
        raise LocalProtocolError("a Rejection's status_code must be an HTTP status from 200 to 599")
    if not isinstance(rejection.body, bytes):
        raise LocalProtocolError("a Rejection's body must be bytes")
    headers = encode_headers(rejection.headers, "the Rejection's headers")
    return status, rejection.body, headers


# -- shared -------------------------------------------------------------------------


def _fields(headers: Iterable[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Header names to values, repeated headers joined with commas (RFC 9110 5.3)."""
    fields: dict[bytes, bytes] = {}
    for name, value in headers:
        fields[name] = fields[name] + b", " + value if name in fields else bytes(value)
    return fields


def _tokens(value: bytes | None, lower: bool = True) -> list[bytes]:
    if not value:
        return []
    tokens = [token.strip() for token in value.split(b",")]
    return [token.lower() if lower else token for token in tokens if token]
