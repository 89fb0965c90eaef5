"""The Mews client driver: every event in order, none dropped, backpressure instead.

Mews does not replay, so a client must not drop an event to save memory. When
``buffer_size`` events wait for the consumer the driver says `wants_read` is
False and the adapter stops reading the socket (TCP slows the server down); once
the consumer has taken half of them, `take` calls ``on_resume`` so the adapter
reads again. Half, not one: resuming for every event taken would flip reading
on and off once per event.

An adapter whose reader takes turns with the consumer on one thread may `pace` it
lower. Reading further ahead gains such a consumer nothing, and waiting events are
objects the garbage collector tracks: a trio reader that ran up to 10,000 events
ahead made the collector go over (and promote) the whole backlog again and again.
What is not read yet waits in TCP's buffers, at no cost to the heap.
"""

from __future__ import annotations

import logging
from typing import Unpack

from protocore.events import BadMessage, Event, LivenessLost
from protocore.mews.models import MewsEvent
from protocore.mews.session import EventsReceived, MewsClient, Reconnected

from .client import ClientDriver, DriverOptions
from .waiters import Feed

__all__ = ["MewsDriver", "MewsItem"]

logger = logging.getLogger("protocore.transports")

MewsItem = MewsEvent | Reconnected | BadMessage
"""What a Mews stream yields: an event, a reconnect marker, or an undecodable message."""


class MewsDriver(ClientDriver):
    """`ClientDriver` for a `MewsClient`: `feed` holds the events; `take` one."""

    __slots__ = ("buffer_size", "feed", "read_ahead", "resume_at")

    session: MewsClient

    def __init__(
        self,
        session: MewsClient,
        url: str,
        *,
        buffer_size: int = 10000,
        **options: Unpack[DriverOptions],
    ) -> None:
        options.setdefault("credential", "client and access tokens")
        super().__init__(session, url, **options)
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.buffer_size = buffer_size
        self.feed: Feed[MewsItem] = Feed()
        #: Reading stops once this many events wait (``buffer_size``, or less: `pace`).
        self.read_ahead: int
        #: With reading stopped, `resume` once the consumer is down to this many.
        self.resume_at: int
        self.pace(buffer_size)

    def pace(self, events: int) -> None:
        """Stop reading once ``events`` wait (at most ``buffer_size``); resume at half."""
        if events < 1:
            raise ValueError("a reader must be let at least 1 event ahead")
        self.read_ahead = min(events, self.buffer_size)
        self.resume_at = self.read_ahead // 2

    @property
    def wants_read(self) -> bool:
        return len(self.feed.items) < self.read_ahead or self._closing

    def take(self) -> MewsItem:
        """The oldest waiting item (check ``feed.items`` first)."""
        item = self.feed.items.popleft()
        if self.on_resume is not None:
            self.resume_if_drained()
        return item

    def resume_if_drained(self) -> None:
        """`resume` once no more than `resume_at` events wait.

        `take` calls it; an adapter that pops ``feed.items`` itself (a hot path) calls
        it after, when ``on_resume`` is set (reading stopped)."""
        if len(self.feed.items) <= self.resume_at:
            self.resume()

    def close(self, now: float) -> None:
        super().close(now)
        self.resume()  # the close answer may wait behind events: read again

    def resume(self) -> None:
        """Tell the adapter to read again (once; a no-op when it never stopped)."""
        resume = self.on_resume
        if resume is not None:
            self.on_resume = None
            resume()

    def _route(self, events: list[Event]) -> None:
        if self._closing:
            return  # read only to finish the close handshake: not kept
        feed = self.feed
        items = feed.items
        before = len(items)
        for event in events:
            cls = event.__class__
            if cls is EventsReceived:
                assert isinstance(event, EventsReceived)
                items.extend(event.envelope.events)
            elif cls is Reconnected:
                items.append(event)  # type: ignore[arg-type]
            elif cls is BadMessage:
                assert isinstance(event, BadMessage)
                self._stats.bad_messages += 1
                logger.warning("undecodable message from the server: %s", event.error)
                items.append(event)
            elif isinstance(event, LivenessLost):
                logger.info("the server stopped answering (%s)", type(event).__name__)
        if len(items) != before:
            feed.wake()

    def _ended(self) -> None:
        self.feed.close(None if self.error is None else self.lost_error())
        self.resume()
