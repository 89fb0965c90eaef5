"""Proxies, sans-IO: which one a URL goes through, and the tunnel's handshake.

A client behind a corporate proxy opens its TCP socket to the proxy, runs a short
handshake that asks it for a tunnel to the real server, then carries on as if
connected directly: TLS (for ``wss://``, verifying the server's certificate, not
the proxy's) and the WebSocket upgrade go through the tunnel. The handshake is
bytes in, bytes out, so it is written here once: `HTTPTunnel` speaks HTTP
``CONNECT`` (parsed with h11), `protocore.socks.SocksTunnel` SOCKS5 and SOCKS4a.
Every runtime drives a tunnel the same way::

    while not tunnel.established:
        send(tunnel.data_to_send())
        data = receive()
        tunnel.receive_data(data) if data else tunnel.receive_eof()

A refusal raises `ProxyError`, which names the proxy without its credentials.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import attrs
import h11

from protocore.errors import LocalProtocolError
from protocore.socks import SocksTunnel
from protocore.tunnel import Tunnel, TunnelHandshake

__all__ = ["HTTPTunnel", "Proxy", "Tunnel", "proxy_for", "resolve_proxy"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080, "socks4a": 1080}
_MAX_RESPONSE = 16 * 1024


@attrs.frozen
class Proxy:
    """A proxy to tunnel through: ``scheme://[user:password@]host[:port]``.

    The credentials are kept out of the repr and out of `name`, which is what
    messages and logs show.
    """

    scheme: str
    host: str
    port: int
    username: str | None = attrs.field(default=None, repr=False)
    password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """Read a proxy URL; a bad one raises `LocalProtocolError` (without the URL's secrets)."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            raise LocalProtocolError(
                "proxy must be a URL such as http://proxy.example:3128"
            ) from None
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS:
            raise LocalProtocolError(
                f"proxy scheme {scheme or '(none)'!r} is not supported:"
                " use http://, https://, socks5:// or socks4a://"
            )
        if not parts.hostname:
            raise LocalProtocolError(f"proxy URL has no host: {scheme}://...")
        return cls(
            scheme=scheme,
            host=parts.hostname,
            port=port if port is not None else _DEFAULT_PORTS[scheme],
            username=None if parts.username is None else unquote(parts.username),
            password=None if parts.password is None else unquote(parts.password),
        )

    @property
    def name(self) -> str:
        """``scheme://host:port``: the proxy as messages name it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def tls(self) -> bool:
        """Whether the client speaks TLS to the proxy itself (``https://``)."""
        return self.scheme == "https"

    def tunnel(self, host: str, port: int, *, tls_next: bool) -> Tunnel:
        """A fresh handshake asking for ``host:port`` (``tls_next``: TLS follows it)."""
        if self.scheme in ("http", "https"):
            return HTTPTunnel(self, host, port, tls_next=tls_next)
        return SocksTunnel(self, host, port, tls_next=tls_next)


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class HTTPTunnel(TunnelHandshake):
    """An HTTP ``CONNECT`` handshake: the request out, the answer parsed with h11."""

    def __init__(self, proxy: Proxy, host: str, port: int, *, tls_next: bool) -> None:
        super().__init__(proxy, tls_next=tls_next)
        self._target = _authority(host, port)
        self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_RESPONSE)
        headers = [("Host", self._target)]
        if proxy.username is not None or proxy.password is not None:
            secret = f"{proxy.username or ''}:{proxy.password or ''}".encode()
            headers.append(("Proxy-Authorization", "Basic " + base64.b64encode(secret).decode()))
        request = h11.Request(method="CONNECT", target=self._target, headers=headers)
        self._out = self._h11.send(request) + self._h11.send(h11.EndOfMessage())

    def __repr__(self) -> str:
        state = "established" if self.established else "handshaking"
        return f"<HTTPTunnel via {self._proxy.name} to {self._target} {state}>"

    def receive_data(self, data: bytes | bytearray) -> None:
        if self.established:
            self.leftover += bytes(data)
            return
        self._h11.receive_data(bytes(data))
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as exc:
                raise self._error(
                    f"answered the CONNECT with something that is not HTTP ({exc})"
                ) from None
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Response):  # a 1xx is an InformationalResponse: skip
                break
        if not 200 <= event.status_code < 300:
            reason = event.reason.decode("latin-1", "replace").strip()
            status = f"{event.status_code} {reason}".strip()
            if event.status_code != 407:
                what = f"refused the tunnel to {self._target}"
            elif self._proxy.username is None:
                what = "wants credentials (none in the proxy URL)"
            else:
                what = "refused the credentials"
            raise self._error(f"{what} (HTTP {status})", event.status_code)
        self._established(self._h11.trailing_data[0])

    def receive_eof(self) -> None:
        if not self.established:
            raise self._error("closed the connection during the CONNECT handshake")


def resolve_proxy(
    proxy: str | None, url_scheme: str, host: str, port: int, environ: Mapping[str, str]
) -> Proxy | None:
    """The proxy a connection to ``host:port`` takes: ``"auto"`` reads ``environ``."""
    if proxy is None:
        return None
    if proxy == "auto":
        found = proxy_for(url_scheme, host, port, environ)
        return None if found is None else Proxy.parse(found)
    if not isinstance(proxy, str):
        raise LocalProtocolError('proxy must be "auto", None or a proxy URL')
    return Proxy.parse(proxy)


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """A proxy variable, the lowercase spelling first, as curl and urllib read them."""
    value = environ.get(name) or environ.get(name.upper())
    return value.strip() if value and value.strip() else None


def proxy_for(url_scheme: str, host: str, port: int, environ: Mapping[str, str]) -> str | None:
    """The proxy URL the environment gives for a ``ws``/``wss`` URL, or None.

    ``https_proxy`` for ``wss://``, ``http_proxy`` for ``ws://``, else ``all_proxy``;
    ``no_proxy`` lists hosts, domain suffixes (``.example.com`` or ``example.com``),
    ``host:port`` pairs and ``*`` that go direct, as `urllib.request` reads it.
    """
    secure = url_scheme == "wss"
    found = _env(environ, "https_proxy" if secure else "http_proxy") or _env(environ, "all_proxy")
    if found is None or _bypassed(host, port, _env(environ, "no_proxy") or ""):
        return None
    return found if "://" in found else f"http://{found}"


def _bypassed(host: str, port: int, no_proxy: str) -> bool:
    host = host.lower().strip("[]")
    with_port = f"{host}:{port}"
    for entry in no_proxy.split(","):
        name = entry.strip().lower()
        if name == "*":
            return True
        name = name.lstrip(".")
        if not name:
            continue
        name_host, _, name_port = name.rpartition(":") if name.count(":") == 1 else (name, "", "")
        if name_port and name_port != str(port):
            continue
        name_host = (name_host if name_port else name).strip("[]")
        if host == name_host or host.endswith("." + name_host) or with_port == name:
            return True
    return False
