"""One held connection each: open it, keep it open, pour what it says into NATS.

A holder runs as one task for as long as its worker holds the lease; cancelling the
task closes the connection (close frame, bounded wait). It reconnects on its own
(the transport's backoff, then this module's around a failed first connection) and
marks every new connection on ``mews.<name>.reconnected``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NATSError
from nats.js import JetStreamContext

from protocore.backoff import Backoff
from protocore.errors import ConnectionLost, HandshakeFailed
from protocore.events import BadMessage
from protocore.mews import MewsEvent, Reconnected
from protocore.placeos.exceptions import PlaceOSError
from transports.asyncio import connect_mews, connect_placeos

from .exec import BadExecRequest, decode_request, error_reply, run_exec
from .publish import (
    Message,
    MessageIds,
    Publisher,
    json_payload,
    mews_payload,
    mews_subject,
    owner_exec_subject,
    reconnected_subject,
    value_subject,
)
from .specs import BindingSpec, ConnectionSpec, CredentialError, resolve_credentials

__all__ = ["Holder", "MewsHolder", "PlaceOSHolder", "make_holder"]

log = logging.getLogger("protocore.fleet")

#: Connection failures worth trying again (a refused upgrade, HTTP 401, is too:
#: the credentials may be fixed on the site while we hold the lease).
_RETRY = (OSError, HandshakeFailed, ConnectionLost, TimeoutError, CredentialError)
_BATCH = 256
DRAIN_TIMEOUT = 10.0


def _backoff() -> Backoff:
    return Backoff(base=0.2, factor=2.0, cap=5.0)


class Holder:
    """What the worker keeps per held connection."""

    def __init__(
        self, spec: ConnectionSpec, nc: NATS, js: JetStreamContext, worker_id: str, epoch: int
    ) -> None:
        self.spec = spec
        self.name = spec.name
        self._nc = nc
        self._js = js
        self._worker_id = worker_id
        self._epoch = epoch  # the lease revision this ownership began with
        self.task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self._draining = False

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._guarded(), name=self.name)

    async def stop(self, *, drain: bool = False) -> None:
        """Close the connection now (cancels the task, waits for its close handshake).

        With ``drain``, close it first and publish what it had received (a graceful
        handover), within ``DRAIN_TIMEOUT``.
        """
        task = self.task
        if task is None or task.done():
            return
        if drain:
            self._draining = True
            await self._close()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(task), DRAIN_TIMEOUT)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _close(self) -> None:
        """Close the connection so that the task ends after what it holds (drain)."""
        task = self.task
        if task is not None:
            task.cancel()

    async def _guarded(self) -> None:
        backoff = _backoff()
        while not self._draining:
            try:
                await self.run(backoff)
            except _RETRY as exc:
                if self._draining:
                    return
                self.connected.clear()
                delay = backoff.next_delay() or 1.0
                level = logging.ERROR if isinstance(exc, CredentialError) else logging.INFO
                log.log(level, "%s: %s; trying again in %.2f s", self.name, _why(exc), delay)
                await asyncio.sleep(delay)  # backoff between attempts
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s: holder crashed; starting it again", self.name)
                await asyncio.sleep(backoff.next_delay() or 1.0)

    async def run(self, backoff: Backoff) -> None:
        raise NotImplementedError


def _why(exc: BaseException) -> str:
    if isinstance(exc, CredentialError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


class MewsHolder(Holder):
    """Mews: every event to ``mews.<name>.<EventType>``, a marker per new connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ids = MessageIds(self.name)
        self._publisher = Publisher(self._js)
        self._markers = 0
        self._events: Any = None

    async def _close(self) -> None:
        events = self._events
        if events is None:
            await super()._close()
        else:
            await events.close()  # the iterator then yields what it holds, and ends

    def _marker(self, reason: str) -> Message:
        self._markers += 1
        doc = {"worker": self._worker_id, "lease": self._epoch, "reason": reason}
        msg_id = f"{self.name}:reconnected:{self._worker_id}:{self._epoch}:{self._markers}"
        return Message(reconnected_subject(self.name), json_payload(doc), msg_id)

    async def run(self, backoff: Backoff) -> None:
        secrets = resolve_credentials(self.spec)
        async with connect_mews(
            self.spec.url,
            client_token=secrets["client_token"],
            access_token=secrets["access_token"],
            reconnect=_backoff(),
            connect_timeout=5.0,
            close_timeout=2.0,
        ) as events:
            backoff.reset()
            reason = "owned" if self._markers == 0 else "reconnected"
            await self._publisher.publish([self._marker(reason)])
            self.connected.set()
            self._events = events
            try:
                await self._pour(events)
            finally:
                self._events = None

    async def _pour(self, events: Any) -> None:
        """Publish what the connection yields until it ends (closed: connect again)."""
        loop = asyncio.get_running_loop()
        it = aiter(events)
        while True:
            try:
                first = await anext(it)
            except StopAsyncIteration:
                return
            batch = [first]
            while len(events) and len(batch) < _BATCH:
                batch.append(await anext(it))
            now = loop.time()
            out = []
            for item in batch:
                if isinstance(item, MewsEvent):
                    payload = mews_payload(item)
                    msg_id = self._ids.next(payload, now)
                    out.append(Message(mews_subject(self.name, item), payload, msg_id))
                elif isinstance(item, Reconnected):
                    out.append(self._marker("reconnected"))
                elif isinstance(item, BadMessage):
                    log.warning("%s: an undecodable message from Mews was skipped", self.name)
            await self._publisher.publish(out)


class PlaceOSHolder(Holder):
    """PlaceOS: the spec's bindings to ``placeos.<name>.value...``; exec for the owner."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client: Any = None  # the open connection, for the exec service
        self._answers: set[asyncio.Task[None]] = set()

    async def _guarded(self) -> None:
        # The owner answers its forwarded execs for as long as it holds the lease
        # (``connection_lost`` while the site is unreachable), not only when connected.
        sub = await self._nc.subscribe(owner_exec_subject(self.name), cb=self._on_exec)
        try:
            await super()._guarded()
        finally:
            with contextlib.suppress(NATSError, TimeoutError):
                await sub.unsubscribe()

    async def run(self, backoff: Backoff) -> None:
        secrets = resolve_credentials(self.spec)
        async with connect_placeos(
            self.spec.url,
            api_key=secrets.get("api_key"),
            bearer_token=secrets.get("bearer_token"),
            reconnect=_backoff(),
            connect_timeout=5.0,
            close_timeout=2.0,
        ) as client:
            backoff.reset()
            self.client = client
            self.connected.set()
            try:
                async with asyncio.TaskGroup() as group:
                    for binding in self.spec.bindings:
                        group.create_task(self._hold(client, binding))
                    group.create_task(_forever())
            except* ConnectionLost as lost:  # the client gave up: open a new one
                raise ConnectionLost("the PlaceOS connection was lost") from lost
            finally:
                self.client = None

    async def _hold(self, client: Any, binding: BindingSpec) -> None:
        subject = value_subject(self.name, binding.subject_tail)
        try:
            async with client.bind(
                binding.sys, binding.mod, binding.name, index=binding.index
            ) as values:
                async for value in values:
                    await self._publish_value(subject, value)
        except PlaceOSError as exc:  # refused (no such system...) or lost for good
            log.warning("%s: binding %s not held: %s", self.name, binding.subject_tail, exc)

    async def _publish_value(self, subject: str, value: Any) -> None:
        try:
            payload = json_payload(value)
        except (TypeError, ValueError):
            payload = json.dumps(repr(value)).encode()
        delay = 0.05
        while True:
            try:
                await self._js.publish(subject, payload, timeout=5.0)
                return
            except (NATSError, TimeoutError) as exc:
                log.info("%s: publishing a value failed (%s); again", self.name, exc)
                await asyncio.sleep(delay)  # retry pause
                delay = min(delay * 2, 1.0)

    async def _on_exec(self, msg: Msg) -> None:
        if not msg.reply:
            return
        task = asyncio.get_running_loop().create_task(self._answer(msg))
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)

    async def _answer(self, msg: Msg) -> None:
        try:
            await msg.respond(await self._reply(msg))
        except (NATSError, TimeoutError) as exc:
            log.info("%s: an exec reply was not sent (%s)", self.name, type(exc).__name__)

    async def _reply(self, msg: Msg) -> bytes:
        try:
            request = decode_request(msg.data)
        except BadExecRequest as exc:
            return error_reply("bad_request", str(exc))
        client = self.client
        if client is None:
            return error_reply("connection_lost")
        return await run_exec(client, request)


async def _forever() -> None:
    await asyncio.Event().wait()


def make_holder(
    spec: ConnectionSpec, nc: NATS, js: JetStreamContext, worker_id: str, epoch: int
) -> Holder:
    cls = MewsHolder if spec.protocol == "mews" else PlaceOSHolder
    return cls(spec, nc, js, worker_id, epoch)
