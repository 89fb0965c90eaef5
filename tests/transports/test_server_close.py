"""Closing a server refuses newcomers on every transport, even while it still drains.

A server's close says goodbye (1001) to its clients and waits up to ``close_timeout``
for their answers. A client that answered at once and reconnects in that window must
be refused, not served again: here a second, silent client keeps the server draining
while the first one reconnects, so the window is seconds wide, not a race.
"""

from __future__ import annotations

import contextlib
import socket

import pytest
from harness import ACCESS_TOKEN, CLIENT_TOKEN, KINDS, running_server

from protocore import ConnectionLost
from protocore.backoff import Backoff
from protocore.mews import ResourceEvent, ResourceState
from transports.sync import connect_mews

pytestmark = pytest.mark.timeout(30)

TOKENS = {"client_token": CLIENT_TOKEN, "access_token": ACCESS_TOKEN}
UPGRADE = (
    "GET /ws/connector HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    f"Sec-WebSocket-Version: 13\r\nCookie: ClientToken={CLIENT_TOKEN}; "
    f"AccessToken={ACCESS_TOKEN}\r\n\r\n"
)


def silent_client(port: int) -> socket.socket:
    """Upgrades, then never answers anything: the server's close waits for it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(UPGRADE.encode())
    reply = b""
    while b"\r\n\r\n" not in reply:
        chunk = sock.recv(4096)
        assert chunk, "the server hung up during the upgrade"
        reply += chunk
    assert reply.startswith(b"HTTP/1.1 101")
    return sock


@pytest.mark.parametrize("kind", KINDS)
def test_a_client_reconnecting_while_the_server_drains_is_refused(kind: str) -> None:
    backoff = Backoff(base=0.01, max_attempts=3)
    with contextlib.ExitStack() as stack:
        with running_server(kind, "mews", close_timeout=2.0, **TOKENS) as server:
            silent = stack.enter_context(silent_client(server.port))
            events = stack.enter_context(connect_mews(server.url, reconnect=backoff, **TOKENS))
            assert server.publish([ResourceEvent("room-1", ResourceState.DIRTY)]) == 2
            assert events.get(timeout=10) == ResourceEvent("room-1", ResourceState.DIRTY)
        # The server answered 1001 at once but drained for the silent client; every
        # reconnect in that time was refused, so the stream ends instead of going on.
        with pytest.raises(ConnectionLost, match="gave up"):
            events.get(timeout=10)
        received = b""
        while chunk := silent.recv(4096):  # the server hangs up once it has drained
            received += chunk
        assert b"\x88\x16\x03\xe9server shutting down" in received  # its goodbye too
