"""SOCKS5 (RFC 1928, with RFC 1929 passwords) and SOCKS4a handshakes, sans-IO.

The same `protocore.proxy.Tunnel` shape as the HTTP ``CONNECT`` one, so every
runtime drives it with the same few lines. Host names go to the proxy as names
(the proxy resolves them, as ``socks5h`` and SOCKS4a do): a client behind a
proxy often cannot resolve outside names itself.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import TYPE_CHECKING

from protocore.errors import LocalProtocolError
from protocore.tunnel import TunnelHandshake

if TYPE_CHECKING:
    from protocore.proxy import Proxy

__all__ = ["SocksTunnel"]

_SOCKS5_REPLIES = {
    1: "general failure",
    2: "connection not allowed by its rules",
    3: "network unreachable",
    4: "host unreachable",
    5: "connection refused by the destination",
    6: "TTL expired",
    7: "command not supported",
    8: "address type not supported",
}
_SOCKS4_REPLIES = {
    0x5B: "request rejected or failed",
    0x5C: "identd unreachable",
    0x5D: "identd refused the user id",
}


def _text(value: str, what: str) -> bytes:
    data = value.encode()
    if not 0 < len(data) < 256:
        raise LocalProtocolError(f"a SOCKS {what} must be 1 to 255 bytes")
    return bytes([len(data)]) + data


class SocksTunnel(TunnelHandshake):
    """A SOCKS5 or SOCKS4a ``CONNECT`` to ``host:port``: see `protocore.proxy`."""

    def __init__(self, proxy: Proxy, host: str, port: int, *, tls_next: bool) -> None:
        super().__init__(proxy, tls_next=tls_next)
        self._host = host
        self._port = port
        self._buffer = bytearray()
        if proxy.scheme == "socks4a":
            user = (proxy.username or "").encode()
            self._out = struct.pack("!BBH", 4, 1, port) + b"\0\0\0\1" + user + b"\0"
            self._out += host.encode("idna") + b"\0"
            self._step = "socks4"
        else:
            methods = b"\0\2" if proxy.username is not None else b"\0"
            self._out = bytes([5, len(methods)]) + methods
            self._step = "method"

    def __repr__(self) -> str:
        state = "established" if self.established else self._step
        return f"<SocksTunnel via {self._proxy.name} to {self._host}:{self._port} {state}>"

    def receive_data(self, data: bytes | bytearray) -> None:
        if self.established:
            self.leftover += bytes(data)
            return
        self._buffer += data
        while not self.established and self._advance():
            pass

    def receive_eof(self) -> None:
        if not self.established:
            raise self._error("closed the connection during the SOCKS handshake")

    # -- the steps: each takes what it needs from the buffer, or returns False ----------

    def _take(self, size: int) -> bytes | None:
        if len(self._buffer) < size:
            return None
        chunk = bytes(self._buffer[:size])
        del self._buffer[:size]
        return chunk

    def _advance(self) -> bool:
        if self._step == "socks4":
            reply = self._take(8)
            if reply is None:
                return False
            if reply[1] != 0x5A:
                why = _SOCKS4_REPLIES.get(reply[1], f"reply {reply[1]:#x}")
                raise self._error(f"refused the tunnel to {self._host}:{self._port} ({why})")
            self._established(bytes(self._buffer))
            return True
        if self._step == "method":
            reply = self._take(2)
            if reply is None:
                return False
            self._check_version(reply[0], 5)
            if reply[1] == 2 and self._proxy.username is not None:
                self._out += (
                    b"\1"
                    + _text(self._proxy.username, "user name")
                    + _text(self._proxy.password or "", "password")
                )
                self._step = "auth"
            elif reply[1] == 0:
                self._connect()
            else:
                raise self._error("accepts none of our authentication methods")
            return True
        if self._step == "auth":
            reply = self._take(2)
            if reply is None:
                return False
            if reply[1] != 0:
                raise self._error("refused the credentials")
            self._connect()
            return True
        return self._connected()

    def _connect(self) -> None:
        try:
            address = ipaddress.ip_address(self._host)
        except ValueError:
            target = b"\3" + _text(self._host, "host name")
        else:
            target = (b"\1" if address.version == 4 else b"\4") + address.packed
        self._out += b"\5\1\0" + target + struct.pack("!H", self._port)
        self._step = "connect"

    def _connected(self) -> bool:
        head = bytes(self._buffer[:5])
        if len(head) < 2:
            return False
        self._check_version(head[0], 5)
        if head[1] != 0:
            why = _SOCKS5_REPLIES.get(head[1], f"reply {head[1]}")
            raise self._error(f"refused the tunnel to {self._host}:{self._port} ({why})")
        if len(head) < 5:
            return False
        sizes = {1: 4, 4: 16, 3: 1 + head[4]}
        if head[3] not in sizes:
            raise self._error("answered with an unknown address type")
        if self._take(4 + sizes[head[3]] + 2) is None:
            return False
        self._established(bytes(self._buffer))
        return True

    def _check_version(self, version: int, expected: int) -> None:
        if version != expected:
            raise self._error(f"does not speak SOCKS{expected}")
