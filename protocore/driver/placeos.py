"""The PlaceOS client driver: calls, bindings and debug streams over reconnects.

`PlaceOSClient` (the session) owns request ids, re-binding and the heartbeat;
`Router` knows who listens to what. This adds what an application call needs
around them, once for every transport: a `Call` per request, a `Feed` per binding
or debug stream with its drop-oldest buffer, and the rules for letting go (a
subscription the server took away is not released again; one whose bind never
succeeded was never held).
"""

from __future__ import annotations

import logging
from typing import Any, Unpack

from protocore.events import BadMessage, Event, LivenessLost
from protocore.placeos.client import PlaceOSClient
from protocore.placeos.events import BindingLost, UnexpectedResponse
from protocore.placeos.exceptions import PlaceOSError
from protocore.placeos.models import Binding, ModuleMeta
from protocore.placeos.router import Router

from .client import ClientDriver, DriverOptions, Phase
from .stats import Stats
from .waiters import Call, Feed

__all__ = ["Listening", "PlaceOSDriver"]

logger = logging.getLogger("protocore.transports")


class Listening:
    """One application subscription: its target, its `Feed`, the bind's `Call`."""

    __slots__ = ("feed", "held", "reply", "target", "token")

    def __init__(self, target: Binding | ModuleMeta, feed: Feed[Any], reply: Call) -> None:
        self.target = target
        self.feed = feed
        self.reply = reply
        self.token = 0
        self.held = True  # the session holds a reference for us (until refused or let go)


def describe(target: Binding | ModuleMeta) -> str:
    if isinstance(target, Binding):
        return f"binding {target.sys}/{target.mod}_{target.index}.{target.name}"
    return f"debug stream {target.sys}/{target.mod}_{target.index}"


class PlaceOSDriver(ClientDriver):
    """`ClientDriver` for a `PlaceOSClient`: `exec`, `subscribe`, `unsubscribe`."""

    __slots__ = ("_calls", "_just_bound", "_listening", "buffer_size", "router")

    session: PlaceOSClient

    def __init__(
        self,
        session: PlaceOSClient,
        url: str,
        *,
        buffer_size: int = 1000,
        **options: Unpack[DriverOptions],
    ) -> None:
        super().__init__(session, url, **options)
        Feed(buffer_size)  # a bad size raises here
        self.buffer_size = buffer_size
        self.router = Router()
        self._calls: dict[int, Call] = {}
        self._listening: dict[Listening, None] = {}
        self._just_bound: list[Listening] = []

    @property
    def connected(self) -> bool:
        return self.phase is Phase.OPEN and self.session.connected

    # -- the application's calls ---------------------------------------------------------

    def exec(
        self,
        sys: str,
        mod: str,
        method: str,
        args: tuple[Any, ...],
        *,
        index: int,
        timeout: float | None,
        now: float,
    ) -> Call:
        """Send an exec; the `Call` settles with its result or its error."""
        self.check_usable()
        rid = self.session.exec(sys, mod, method, *args, index=index, now=now, timeout=timeout)
        call = Call(rid)
        self._expect(call)
        self._flush()
        return call

    def subscribe(self, target: Binding | ModuleMeta, now: float) -> Listening:
        """Bind (a `Binding`) or debug (a `ModuleMeta`); ``reply`` settles with the answer."""
        self.check_usable()
        session = self.session
        feed: Feed[Any] = Feed(self.buffer_size)
        if isinstance(target, Binding):
            token = self.router.listen(target, feed.put, feed.close)
            try:
                rid = session.bind(target.sys, target.mod, target.name, index=target.index, now=now)
            except BaseException:
                self.router.unlisten(token)
                raise
        else:
            token = self.router.listen_debug(target.mod, feed.put, feed.close)
            try:
                rid = session.debug(target.sys, target.mod, index=target.index, now=now)
            except BaseException:
                self.router.unlisten(token)
                raise
        sub = Listening(target, feed, Call(rid))
        sub.token = token
        self._listening[sub] = None
        self.router.expect(rid, lambda value, error: self._answered(sub, value, error))
        self._calls[rid] = sub.reply
        self._flush()
        return sub

    def unsubscribe(self, sub: Listening, now: float) -> None:
        """The application let go: stop routing, and unbind (or ignore) if still held."""
        if sub not in self._listening:
            return
        del self._listening[sub]
        self._stats.dropped += sub.feed.dropped
        self.router.unlisten(sub.token)
        reply = sub.reply
        if not reply.done:
            self.forget(reply)
        if (
            sub.held
            and self.phase is not Phase.CLOSED
            and not isinstance(sub.feed.error, PlaceOSError)
        ):
            target = sub.target
            session = self.session
            if isinstance(target, Binding):
                session.unbind(target.sys, target.mod, target.name, index=target.index, now=now)
            else:
                session.ignore(target.sys, target.mod, index=target.index, now=now)
            self._flush()
        sub.feed.close(None)

    def _live_stats(self, snapshot: Stats) -> None:
        for sub in self._listening:
            snapshot.dropped += sub.feed.dropped

    def forget(self, call: Call) -> None:
        """Nobody waits for ``call`` any more (cancelled): its late answer is dropped."""
        self.router.forget(call.request_id)
        self._calls.pop(call.request_id, None)

    # -- internals -----------------------------------------------------------------------

    def _expect(self, call: Call) -> None:
        rid = call.request_id
        self._calls[rid] = call

        def settle(value: Any, error: BaseException | None) -> None:
            self._calls.pop(rid, None)
            call.settle(value, error)

        self.router.expect(rid, settle)

    def _answered(self, sub: Listening, value: Any, error: BaseException | None) -> None:
        self._calls.pop(sub.reply.request_id, None)
        if error is not None:
            sub.held = False  # refused, timed out or aborted: the session let it go
            sub.reply.settle(value, error)
        else:
            self._just_bound.append(sub)  # settled after the rest of this batch

    def _settle_binds(self) -> None:
        """Bound already (another subscription holds it): no notify will come, so the
        cached value goes first. Checked once the whole batch is routed, since a notify
        in the same batch as the success is the value itself."""
        subs, self._just_bound = self._just_bound, []
        session = self.session
        for sub in subs:
            target, feed = sub.target, sub.feed
            fresh = not feed.items and not feed.dropped
            if isinstance(target, Binding) and fresh and session.has_value(target):
                feed.put(session.value(target))
            sub.reply.settle(None)

    def _flush(self) -> None:
        """Route what the session decided inside an application call."""
        events = self.session.take_events()
        if events:
            self._dispatch(events)

    def _route(self, events: list[Event]) -> None:
        pending = self.session.take_events()
        self._dispatch(pending + events if pending else events)

    def _dispatch(self, events: list[Event]) -> None:
        unrouted = self.router.dispatch(events)
        if self._just_bound:
            self._settle_binds()
        for event in unrouted:
            if isinstance(event, BindingLost):
                logger.info("the server did not restore a subscription: %s", describe(event.target))
            elif isinstance(event, BadMessage):
                self._stats.bad_messages += 1
                logger.warning("undecodable message from the server: %s", event.error)
            elif isinstance(event, UnexpectedResponse):
                logger.debug("an answer to no pending request (id %r)", event.response.id)
            elif isinstance(event, LivenessLost):
                logger.info("the server stopped answering (%s)", type(event).__name__)

    def _ended(self) -> None:
        lost = self.lost_error()
        for call in list(self._calls.values()):
            self.router.forget(call.request_id)
            call.settle(None, lost)
        self._calls.clear()
        for sub in list(self._listening):
            sub.feed.close(lost)
