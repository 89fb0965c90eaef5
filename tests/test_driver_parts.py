"""What the three transports share below their I/O: feeds, TLS defaults, reconnect policy."""

from __future__ import annotations

import ssl

import pytest

from protocore import HandshakeFailed
from protocore.backoff import Backoff
from protocore.driver import Feed, reconnect_policy
from transports._transport import client_ssl_context


def test_a_bounded_feed_drops_the_oldest_and_counts() -> None:
    box: Feed[int] = Feed(3)
    for i in range(5):
        box.put(i)
    assert len(box) == 3
    assert box.dropped == 2
    assert [box.items.popleft() for _ in range(3)] == [2, 3, 4]
    with pytest.raises(IndexError):
        box.items.popleft()


def test_an_unbounded_feed_keeps_everything() -> None:
    box: Feed[int] = Feed()
    for i in range(5000):
        box.put(i)
    assert (len(box), box.dropped) == (5000, 0)


def test_feed_close_keeps_items_and_error_and_refuses_more() -> None:
    box: Feed[str] = Feed(2)
    box.put("a")
    error = RuntimeError("gone")
    box.close(error)
    box.close(None)  # the first close wins
    box.put("b")
    assert box.closed
    assert box.error is error
    assert box.items.popleft() == "a"
    assert len(box) == 0


def test_feed_wakes_its_waiter_once() -> None:
    box: Feed[int] = Feed()
    woken: list[int] = []
    box.waker = lambda: woken.append(1)
    box.put(1)
    box.put(2)  # the waker is spent: whoever waits sets a new one
    assert woken == [1]
    assert box.waker is None


def test_feed_needs_room() -> None:
    with pytest.raises(ValueError, match="buffer_size"):
        Feed(0)


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
    assert str(error) == "unauthorized (HTTP 401)"
    assert len(error.body) == 1024
    assert str(HandshakeFailed("broke the upgrade")) == "broke the upgrade"
