"""What a proxy handshake looks like to a runtime, and the part every one shares.

A runtime drives any tunnel (`protocore.proxy.HTTPTunnel`, `protocore.socks.SocksTunnel`)
with the same few lines: send `data_to_send`, feed what arrives to `receive_data`
(or `receive_eof`), until `established`; then `leftover` belongs to the next layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from protocore.errors import ProxyError

if TYPE_CHECKING:
    from protocore.proxy import Proxy

__all__ = ["Tunnel", "TunnelHandshake"]


class Tunnel(Protocol):
    """A proxy handshake, as a runtime drives it: see the module doc."""

    @property
    def established(self) -> bool: ...

    @property
    def leftover(self) -> bytes: ...

    def data_to_send(self) -> bytes: ...

    def receive_data(self, data: bytes | bytearray) -> None: ...

    def receive_eof(self) -> None: ...


class TunnelHandshake:
    """The output buffer, the bytes after the answer and the errors of a tunnel."""

    def __init__(self, proxy: Proxy, *, tls_next: bool) -> None:
        self._proxy = proxy
        self._tls_next = tls_next
        self._out = b""
        self.established = False
        self.leftover = b""

    def data_to_send(self) -> bytes:
        out, self._out = self._out, b""
        return out

    def _established(self, leftover: bytes) -> None:
        """The proxy said yes; ``leftover`` came after its answer."""
        self.established = True
        self.leftover = leftover
        if leftover and self._tls_next:  # a TLS server never speaks first
            raise self._error("sent bytes after its answer, before TLS began")

    def _error(self, what: str, status: int | None = None) -> ProxyError:
        return ProxyError(f"proxy {self._proxy.name} {what}", self._proxy.name, status)
