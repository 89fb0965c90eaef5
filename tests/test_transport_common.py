"""Adapter plumbing shared by the three transports: mailboxes, TLS defaults, reconnect."""

from __future__ import annotations

import ssl

import pytest

from protocore import HandshakeFailed
from protocore.backoff import Backoff
from transports._common import Mailbox, client_ssl_context, reconnect_policy


def test_mailbox_drops_the_oldest_and_counts() -> None:
    box: Mailbox[int] = Mailbox(3)
    for i in range(5):
        box.put(i)
    assert len(box) == 3
    assert box.dropped == 2
    assert [box.get_nowait() for _ in range(3)] == [2, 3, 4]
    with pytest.raises(IndexError):
        box.get_nowait()


def test_mailbox_close_keeps_items_and_error_and_refuses_more() -> None:
    box: Mailbox[str] = Mailbox(2)
    box.put("a")
    error = RuntimeError("gone")
    box.close(error)
    box.close(None)  # the first close wins
    box.put("b")
    assert box.closed
    assert box.error is error
    assert box.get_nowait() == "a"
    assert len(box) == 0


def test_mailbox_needs_room() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        Mailbox(0)


def test_tls_is_verified_by_default_for_wss() -> None:
    context = client_ssl_context(True, None)
    assert context is not None
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
    own = ssl.create_default_context()
    assert client_ssl_context(True, own) is own
    assert client_ssl_context(False, None) is None
    with pytest.raises(ValueError, match="wss"):
        client_ssl_context(False, own)


def test_reconnect_policy() -> None:
    assert isinstance(reconnect_policy(True), Backoff)
    assert reconnect_policy(False) is None
    mine = Backoff(base=1.0)
    assert reconnect_policy(mine) is mine
    with pytest.raises(TypeError):
        reconnect_policy(3)  # type: ignore[arg-type]


def test_handshake_failed_says_the_status_and_bounds_the_body() -> None:
    error = HandshakeFailed("unauthorized", 401, b"x" * 5000)
    assert "401" in str(error)
    assert len(error.body) == 1024
    assert "failed" in str(HandshakeFailed("connection closed during the handshake"))
