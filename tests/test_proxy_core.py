"""The proxy core without sockets: URLs, the environment, HTTP CONNECT and SOCKS bytes."""

from __future__ import annotations

import re

import pytest

from protocore import LocalProtocolError, Proxy, ProxyError
from protocore.proxy import proxy_for, resolve_proxy

SECRET = "pw-Ff6-secret"


def test_a_proxy_url_keeps_its_credentials_out_of_sight() -> None:
    proxy = Proxy.parse(f"http://us%40er:{SECRET}@Proxy.Example:3128")
    assert (proxy.host, proxy.port, proxy.username, proxy.password) == (
        "proxy.example",
        3128,
        "us@er",
        SECRET,
    )
    assert proxy.name == "http://proxy.example:3128"
    tunnel = proxy.tunnel("example.com", 443, tls_next=True)
    assert SECRET not in f"{proxy!r} {proxy.name} {tunnel!r}"


@pytest.mark.parametrize(
    ("url", "port"),
    [("http://p", 80), ("https://p", 443), ("socks5://p", 1080), ("socks4a://p:9", 9)],
)
def test_default_ports(url: str, port: int) -> None:
    assert Proxy.parse(url).port == port


@pytest.mark.parametrize("url", ["ftp://p:1", "p:3128x", "http://", "http://p:99999"])
def test_a_bad_proxy_url_is_a_clear_error(url: str) -> None:
    with pytest.raises(LocalProtocolError, match="proxy"):
        Proxy.parse(url)


def test_connect_request_and_established_tunnel() -> None:
    tunnel = Proxy.parse("http://u:p@proxy:1").tunnel("example.com", 443, tls_next=False)
    assert tunnel.data_to_send() == (
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n"
        b"Proxy-Authorization: Basic dTpw\r\n\r\n"
    )
    assert tunnel.data_to_send() == b""
    tunnel.receive_data(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r")
    assert not tunnel.established
    tunnel.receive_data(b"\n\r\nHTTP/1.1 101 early")
    assert tunnel.established
    assert tunnel.leftover == b"HTTP/1.1 101 early"  # for the next layer


def test_bytes_before_tls_are_refused() -> None:
    tunnel = Proxy.parse("http://proxy:1").tunnel("example.com", 443, tls_next=True)
    with pytest.raises(ProxyError, match="before TLS"):
        tunnel.receive_data(b"HTTP/1.1 200 OK\r\n\r\n\x16\x03")


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"SSH-2.0-OpenSSH\r\n\r\n", "is not HTTP"),
        (b"HTTP/1.1 407 Auth\r\n\r\n", "wants credentials (none in the proxy URL) (HTTP 407 Auth)"),
        (b"HTTP/1.1 503 \r\n\r\n", "refused the tunnel to h:1 (HTTP 503)"),
    ],
)
def test_http_refusals(answer: bytes, message: str) -> None:
    tunnel = Proxy.parse("http://proxy:1").tunnel("h", 1, tls_next=False)
    with pytest.raises(ProxyError, match=re.escape(message)):
        tunnel.receive_data(answer)


def test_eof_mid_handshake() -> None:
    tunnel = Proxy.parse("socks5://proxy").tunnel("h", 1, tls_next=False)
    with pytest.raises(ProxyError, match="closed the connection during the SOCKS handshake"):
        tunnel.receive_eof()


def test_socks5_with_a_password_then_a_refusal() -> None:
    tunnel = Proxy.parse("socks5://ann:pw@proxy").tunnel("example.com", 443, tls_next=True)
    assert tunnel.data_to_send() == b"\x05\x02\x00\x02"
    tunnel.receive_data(b"\x05\x02")
    assert tunnel.data_to_send() == b"\x01\x03ann\x02pw"
    tunnel.receive_data(b"\x01\x00")
    assert tunnel.data_to_send() == b"\x05\x01\x00\x03\x0bexample.com\x01\xbb"
    with pytest.raises(
        ProxyError, match=r"refused the tunnel to example.com:443 \(host unreachable\)"
    ):
        tunnel.receive_data(b"\x05\x04\x00\x01")


def test_socks5_ipv6_reply_in_pieces_then_leftover() -> None:
    tunnel = Proxy.parse("socks5://proxy").tunnel("::1", 80, tls_next=False)
    assert tunnel.data_to_send() == b"\x05\x01\x00"
    tunnel.receive_data(b"\x05\x00")
    assert tunnel.data_to_send() == b"\x05\x01\x00\x04" + b"\0" * 15 + b"\x01\x00\x50"
    reply = b"\x05\x00\x00\x04" + b"\0" * 16 + b"\x00\x50"
    tunnel.receive_data(reply[:7])
    assert not tunnel.established
    tunnel.receive_data(reply[7:] + b"hi")
    assert tunnel.established
    assert tunnel.leftover == b"hi"


def test_socks4a() -> None:
    tunnel = Proxy.parse("socks4a://bob@proxy").tunnel("example.com", 80, tls_next=False)
    assert tunnel.data_to_send() == b"\x04\x01\x00\x50\x00\x00\x00\x01bob\x00example.com\x00"
    tunnel.receive_data(b"\x00\x5a\x00\x00\x00\x00\x00\x00")
    assert tunnel.established
    refused = Proxy.parse("socks4a://proxy").tunnel("example.com", 80, tls_next=False)
    with pytest.raises(ProxyError, match="request rejected or failed"):
        refused.receive_data(b"\x00\x5b\x00\x00\x00\x00\x00\x00")


ENV = {
    "https_proxy": "http://lower:1",
    "HTTPS_PROXY": "http://upper:1",
    "HTTP_PROXY": "plain:3128",
    "NO_PROXY": "localhost, .corp.example, 10.0.0.1:8443, [::1]",
}


@pytest.mark.parametrize(
    ("scheme", "host", "port", "expected"),
    [
        ("wss", "a.com", 443, "http://lower:1"),  # lowercase first
        ("ws", "a.com", 80, "http://plain:3128"),  # a bare host:port is http://
        ("wss", "localhost", 443, None),
        ("wss", "x.corp.example", 443, None),  # suffix
        ("wss", "corp.example", 443, None),  # the domain itself
        ("wss", "notcorp.example", 443, "http://lower:1"),
        ("wss", "10.0.0.1", 8443, None),  # host:port
        ("wss", "10.0.0.1", 443, "http://lower:1"),
        ("wss", "::1", 443, None),
    ],
)
def test_environment(scheme: str, host: str, port: int, expected: str | None) -> None:
    assert proxy_for(scheme, host, port, ENV) == expected


def test_all_proxy_and_star() -> None:
    assert proxy_for("wss", "a.com", 443, {"ALL_PROXY": "socks5://s:1"}) == "socks5://s:1"
    assert proxy_for("wss", "a.com", 443, {"ALL_PROXY": "socks5://s:1", "no_proxy": "*"}) is None
    assert resolve_proxy(None, "wss", "a.com", 443, {"ALL_PROXY": "socks5://s:1"}) is None
    assert resolve_proxy("auto", "wss", "a.com", 443, {}) is None
    explicit = resolve_proxy("socks4a://s", "wss", "a.com", 443, {})
    assert explicit == Proxy("socks4a", "s", 1080)
