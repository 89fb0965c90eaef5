"""Tiny sessions for the connection tests: they record what happens and echo.

They implement the `protocore.session` protocols with the least logic that lets a
test see every call the connection makes: each call returns an event naming it,
so the order of events is the order of calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from protocore.events import Event, LivenessLost
from protocore.session import ClientHandshake, Rejection


@attrs.frozen
class Made(Event):
    """connection_made was called."""


@attrs.frozen
class Lost(Event):
    """connection_lost was called."""


@attrs.frozen
class Received(Event):
    """receive_message was called with ``data``."""

    data: str | bytes


@attrs.frozen
class TimerFired(Event):
    """The session's own timer fired."""


@attrs.frozen
class HeartbeatLost(LivenessLost):
    """The session's text heartbeat went unanswered (as PlaceOS's does)."""


class RecordingSession:
    """Records every call; sends what is put in ``outbox``; one optional timer.

    ``timer_at`` is the session's deadline; when it fires, ``timer_event`` is
    returned (a `HeartbeatLost` makes this a heartbeat session). ``heartbeat``
    (seconds) re-arms the timer ``heartbeat`` after connection_made.
    """

    def __init__(
        self,
        *,
        on_connect: Sequence[str] = (),
        echo: bool = False,
        timer_at: float | None = None,
        timer_event: Event | None = None,
        heartbeat: float | None = None,
    ) -> None:
        self.outbox: list[str] = []
        self.received: list[str | bytes] = []
        self.on_connect = list(on_connect)
        self.echo = echo
        self.timer_at = timer_at
        self.timer_event = timer_event if timer_event is not None else TimerFired()
        self.heartbeat = heartbeat
        self.made = 0
        self.lost = 0
        self.timer_calls: list[float] = []

    def send(self, text: str) -> None:
        self.outbox.append(text)

    def connection_made(self, now: float) -> list[Event]:
        self.made += 1
        self.outbox += self.on_connect
        if self.heartbeat is not None:
            self.timer_at = now + self.heartbeat
        return [Made()]

    def receive_message(self, data: str | bytes, now: float) -> list[Event]:
        self.received.append(data)
        if self.echo and isinstance(data, str):
            self.outbox.append(data)
        return [Received(data)]

    def messages_to_send(self) -> list[str]:
        out, self.outbox = self.outbox, []
        return out

    def next_deadline(self) -> float | None:
        return self.timer_at

    def handle_timer(self, now: float) -> list[Event]:
        self.timer_calls.append(now)
        if self.timer_at is not None and now >= self.timer_at:
            self.timer_at = None
            return [self.timer_event]
        return []

    def connection_lost(self, now: float) -> list[Event]:
        self.lost += 1
        return [Lost()]


class RecordingClientSession(RecordingSession):
    """A client session whose auth is whatever headers and query it is given."""

    def __init__(
        self,
        *,
        headers: Sequence[tuple[str, str]] = (),
        query: Sequence[tuple[str, str]] = (),
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.auth = ClientHandshake(headers=tuple(headers), query=tuple(query))
        self.handshakes = 0

    def handshake(self) -> ClientHandshake:
        self.handshakes += 1
        return self.auth


class EchoServerSession(RecordingSession):
    """A server session that echoes text and admits requests carrying ``api_key``.

    The key is accepted in the ``x-api-key`` header or the ``api-key`` query
    parameter (percent-encoded as the client sends it); ``api_key=None`` admits
    everyone. Every authorize call is recorded in ``requests``.
    """

    def __init__(self, *, api_key: str | None = None, **kwargs: object) -> None:
        kwargs.setdefault("echo", True)
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.api_key = api_key
        self.requests: list[tuple[str, tuple[tuple[str, str], ...]]] = []
        self.rejection = Rejection(401, b"bad api key\n")

    def authorize(self, target: str, headers: Sequence[tuple[str, str]]) -> Rejection | None:
        from urllib.parse import parse_qsl, urlsplit

        self.requests.append((target, tuple(headers)))
        if self.api_key is None:
            return None
        if dict(headers).get("x-api-key") == self.api_key:
            return None
        if dict(parse_qsl(urlsplit(target).query)).get("api-key") == self.api_key:
            return None
        return self.rejection
