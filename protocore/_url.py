"""``ws://`` and ``wss://`` URLs: what a transport needs to open the socket.

A URL may carry secrets in its query (the deprecated Mews form puts the tokens
there), so nothing here ever repeats the URL, or any part of it, in an exception
message, and `WebSocketURL`'s repr leaves the query out.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import attrs

from .errors import LocalProtocolError

__all__ = ["WebSocketURL", "parse_ws_url"]

_DEFAULT_PORTS = {"ws": 80, "wss": 443}

# Characters that may stay as they are in a request target (RFC 3986 pchar, "/",
# "?" and existing percent-escapes); everything else is percent-encoded.
_SAFE_PATH = "/:@!$&'()*+,;=%-._~"
_SAFE_QUERY = _SAFE_PATH + "?"


@attrs.frozen(slots=True, repr=False)
class WebSocketURL:
    """A parsed WebSocket URL.

    ``host`` is what to connect to (an IPv6 literal without its brackets), ``port``
    the explicit or default port (80 for ws, 443 for wss), ``secure`` whether to
    wrap the socket in TLS, and ``target`` the request target: path and query,
    ASCII, always starting with ``/``.
    """

    secure: bool
    host: str
    port: int
    target: str

    @property
    def scheme(self) -> str:
        return "wss" if self.secure else "ws"

    @property
    def host_header(self) -> str:
        """The ``Host`` header value: brackets around IPv6, port only when not the default."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        if self.port != _DEFAULT_PORTS[self.scheme]:
            return f"{host}:{self.port}"
        return host

    @property
    def path(self) -> str:
        """The target without its query (the query may hold credentials)."""
        return self.target.partition("?")[0]

    def __repr__(self) -> str:
        query = "?..." if "?" in self.target else ""
        return (
            f"WebSocketURL(secure={self.secure!r}, host={self.host!r}, port={self.port!r}, "
            f"target={self.path + query!r})"
        )


def parse_ws_url(url: str) -> WebSocketURL:
    """Parse a ``ws://`` or ``wss://`` URL; `LocalProtocolError` for anything else.

    User info and fragments are refused (RFC 6455 section 3 allows neither), and so
    are whitespace and control characters. Non-ASCII characters in the path or
    query are percent-encoded; existing percent-escapes are kept as they are.
    """
    if not isinstance(url, str):
        raise LocalProtocolError("a WebSocket URL must be a str")
    if any(ch <= " " or ch == "\x7f" for ch in url):
        raise LocalProtocolError(
            "a WebSocket URL must not contain whitespace or control characters"
        )
    try:
        parts = urlsplit(url)
    except ValueError:  # "Invalid IPv6 URL": the message names no part of the URL
        parts = None
    if parts is None:
        raise LocalProtocolError("a WebSocket URL has an unbalanced IPv6 bracket")
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise LocalProtocolError("a WebSocket URL must start with ws:// or wss://")
    if parts.fragment or url.endswith("#"):
        raise LocalProtocolError("a WebSocket URL must not have a fragment")
    if "@" in parts.netloc:
        raise LocalProtocolError("a WebSocket URL must not carry user info")
    host = parts.hostname
    if not host:
        raise LocalProtocolError("a WebSocket URL must name a host")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if port is None:
        if parts.netloc.endswith(":"):
            raise LocalProtocolError("the WebSocket URL's port is empty")
        port = _DEFAULT_PORTS[scheme]
    elif not 0 < port < 65536:
        raise LocalProtocolError("the WebSocket URL's port is not a number from 1 to 65535")
    if parts.netloc.startswith("["):
        if ":" not in host:
            raise LocalProtocolError("brackets in a WebSocket URL are for IPv6 addresses only")
    elif ":" in host:
        raise LocalProtocolError("an IPv6 address in a WebSocket URL needs brackets")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise LocalProtocolError("the WebSocket URL's host is not a valid IDNA name") from None
    target = quote(parts.path, safe=_SAFE_PATH) or "/"
    if parts.query or url.endswith("?"):
        target += "?" + quote(parts.query, safe=_SAFE_QUERY)
    return WebSocketURL(secure=scheme == "wss", host=host, port=port, target=target)


def add_query(target: str, query: tuple[tuple[str, str], ...]) -> str:
    """``target`` with the (name, value) pairs appended to its query, percent-encoded."""
    if not query:
        return target
    extra = "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in query)
    if "?" not in target:
        return f"{target}?{extra}"
    if target.endswith(("?", "&")):
        return target + extra
    return f"{target}&{extra}"
