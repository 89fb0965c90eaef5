"""Into JetStream: subjects, message ids, and publishing in order until acknowledged.

Mews gives events no sequence number, so an event's message id is derived from what
every connection to the same hotel sees alike: the connection's name, a hash of the
event's wire JSON, and how many identical events came before it within the stream's
duplicate window. Two owners that briefly overlap (a stalled worker whose lease was
taken) publish the same event under the same id, and a worker that re-sends a batch
after a NATS failure re-sends the same ids: JetStream drops both. See docs/fleet.md
for what this does not cover.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, NamedTuple

from nats.errors import Error as NATSError
from nats.js import JetStreamContext
from nats.js.api import PubAck

from protocore.mews import Envelope, InvalidEvent, MewsEvent, UnknownEvent, encode_envelope

from .jetstream import DUPLICATE_WINDOW

__all__ = [
    "Message",
    "MessageIds",
    "Publisher",
    "mews_subject",
    "mews_payload",
    "reconnected_subject",
    "value_subject",
    "exec_subject",
    "owner_exec_subject",
]

log = logging.getLogger("protocore.fleet")

_TOKEN_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
MSG_ID = "Nats-Msg-Id"


def mews_subject(name: str, event: MewsEvent) -> str:
    """``mews.<name>.<EventType>`` (``Unknown`` when the type is not a plain word)."""
    kind: str | None = event.TYPE
    if isinstance(event, UnknownEvent | InvalidEvent):
        kind = event.type
    if not kind or _TOKEN_UNSAFE.search(kind):
        kind = "Unknown"
    return f"mews.{name}.{kind}"


def reconnected_subject(name: str) -> str:
    return f"mews.{name}.reconnected"


def value_subject(name: str, tail: str) -> str:
    """``placeos.<name>.value.<sys>.<mod>.<index>.<name>``."""
    return f"placeos.{name}.value.{tail}"


def exec_subject(name: str) -> str:
    """Where anyone sends a PlaceOS exec request for site ``name``."""
    return f"placeos.{name}.exec"


def owner_exec_subject(name: str) -> str:
    """Where the owner of ``name`` (and only it) listens for forwarded requests."""
    return f"fleet.owner.{name}.exec"


def mews_payload(event: MewsEvent) -> bytes:
    """The event as a one-event Mews message (``protocore.mews.decode_envelope`` reads it)."""
    return encode_envelope(Envelope((event,)))


class Message(NamedTuple):
    subject: str
    payload: bytes
    msg_id: str


class MessageIds:
    """Message ids for one connection's events (see the module docstring)."""

    def __init__(
        self, name: str, window: float = DUPLICATE_WINDOW, max_entries: int = 65536
    ) -> None:
        self._name = name
        self._window = window
        self._max = max_entries  # memory bound for a connection that floods
        # digest -> (occurrences, time of the last one); oldest first
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def next(self, payload: bytes, now: float) -> str:
        seen = self._seen
        while seen:  # forget what JetStream has forgotten too (and beyond the bound)
            oldest, (_, at) = next(iter(seen.items()))
            if now - at <= self._window and len(seen) < self._max:
                break
            del seen[oldest]
        digest = hashlib.sha256(payload).hexdigest()[:32]
        count = seen.pop(digest, (0, now))[0]
        seen[digest] = (count + 1, now)
        return f"{self._name}:{digest}:{count}"

    def __len__(self) -> int:
        return len(self._seen)


class Publisher:
    """Publishes batches to JetStream in order and waits for every acknowledgement.

    A batch whose acknowledgements do not all come (NATS down, a timeout) is sent
    again whole, in order, with the same message ids, until it is acknowledged:
    what was stored already is dropped as a duplicate. Cancel the task to stop.
    """

    def __init__(self, js: JetStreamContext, *, ack_timeout: float = 5.0) -> None:
        self._js = js
        self._ack_timeout = ack_timeout
        self.published = 0
        self.retries = 0

    async def publish(self, batch: Sequence[Message]) -> None:
        delay = 0.05
        while True:
            try:
                await self._attempt(batch)
            except (NATSError, TimeoutError, OSError) as exc:
                self.retries += 1
                log.info("publishing %d messages failed (%s); again", len(batch), exc)
                await asyncio.sleep(delay)  # a retry pause: nothing to await instead
                delay = min(delay * 2, 1.0)
                continue
            self.published += len(batch)
            return

    async def _attempt(self, batch: Sequence[Message]) -> None:
        futures: list[asyncio.Future[PubAck]] = []
        try:
            for message in batch:
                futures.append(
                    await self._js.publish_async(
                        message.subject,
                        message.payload,
                        # No stall timeout: it costs a timer per message, and the
                        # slots come back as other batches are acknowledged or time out.
                        wait_stall=None,
                        headers={MSG_ID: message.msg_id},
                    )
                )
            done, pending = await asyncio.wait(futures, timeout=self._ack_timeout)
            if pending:
                raise TimeoutError(f"{len(pending)} acknowledgements did not come")
            for future in done:
                future.result()  # an API error (no stream...) raises here
        finally:
            for future in futures:
                if not future.done():
                    future.cancel()  # gives the pending slot back


def json_payload(value: Any) -> bytes:
    """A JSON document for a value or a reply (values are JSON already)."""
    return json.dumps(value, separators=(",", ":")).encode()
