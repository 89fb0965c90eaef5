"""Ownership by lease: JetStream KV does the hard part.

A lease is a key of the leases bucket whose value is the owner's worker id. Taking
one is a KV *create* (it fails if someone holds it), renewing is an *update* on the
revision last written (it fails if someone else wrote since), and a lease that is not
renewed expires with the bucket's TTL, leaving a marker every watcher sees. Nothing
here decides who wins a race: the server's compare-and-set does.

`Mirror` keeps a local copy of a bucket through a KV watch; `fair_share` is the
most connections a worker should hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable

from nats.errors import Error as NATSError
from nats.js import JetStreamContext
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KV_DEL, KV_PURGE, KeyValue

from .jetstream import LEASES_BUCKET

__all__ = ["LeaseLost", "Leases", "Mirror", "fair_share"]

log = logging.getLogger("protocore.fleet")


def fair_share(specs: int, live_workers: int) -> int:
    """How many connections one worker takes: ``ceil(specs / live workers)``.

    Workers stop acquiring at this number and hand back what is above it, so none
    holds more than this plus the one it may be about to hand back.
    """
    return math.ceil(specs / max(live_workers, 1))


class LeaseLost(Exception):
    """Someone else wrote the lease since our last renewal (it expired and was taken)."""


class Leases:
    """Create, renew and hand back leases for one worker."""

    def __init__(self, kv: KeyValue, worker_id: str, js: JetStreamContext) -> None:
        self._kv = kv
        self._js = js
        self.worker_id = worker_id

    async def acquire(self, name: str) -> int | None:
        """Take the lease on ``name``: its revision, or None when another worker holds it."""
        value = self.worker_id.encode()
        try:
            return await self._kv.create(name, value)
        except KeyWrongLastSequenceError:
            pass
        # nats-py's create recognises a delete or purge it wrote, not the marker the
        # server leaves when an entry expires (Nats-Marker-Reason): without this, an
        # expired lease could not be taken until its marker expired too.
        try:
            last = await self._js.get_msg(
                f"KV_{LEASES_BUCKET}", subject=f"$KV.{LEASES_BUCKET}.{name}"
            )
        except NotFoundError:
            return None
        headers = last.headers or {}
        if "Nats-Marker-Reason" in headers or headers.get("KV-Operation") in (KV_DEL, KV_PURGE):
            try:
                return await self._kv.update(name, value, last=last.seq)
            except KeyWrongLastSequenceError:
                return None
        return None

    async def renew(self, name: str, revision: int) -> int:
        """Renew a lease we hold at ``revision``; the new revision. `LeaseLost` if it
        was taken; NATS errors (server unreachable) pass through: try again."""
        try:
            return await self._kv.update(name, self.worker_id.encode(), last=revision)
        except KeyWrongLastSequenceError:
            raise LeaseLost(name) from None

    async def release(self, name: str, revision: int) -> None:
        """Hand a lease back (a delete marker: watchers take it over at once).

        Only if it is still ours at ``revision``; a failure is logged, the TTL then
        frees it anyway.
        """
        try:
            await self._kv.delete(name, last=revision)
        except KeyWrongLastSequenceError:
            pass  # someone else holds it already
        except (NATSError, TimeoutError) as exc:
            log.info("handing back %s failed (%s); it expires with its TTL", name, exc)


class Mirror:
    """A live local copy of a KV bucket: key -> (value, revision).

    ``on_change(key, value_or_None)`` runs for every change after the first snapshot;
    ``ready`` is set once the snapshot is in. `restart` re-reads the bucket (after a
    NATS reconnect, when the watch may have missed updates).
    """

    def __init__(self, kv: KeyValue, on_change: Callable[[str, bytes | None], None]) -> None:
        self._kv = kv
        self._on_change = on_change
        self.entries: dict[str, tuple[bytes, int]] = {}
        self.ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Watch the bucket; returns once the current contents are in."""
        self._task = asyncio.get_running_loop().create_task(self._run())
        ready = asyncio.get_running_loop().create_task(self.ready.wait())
        await asyncio.wait((ready, self._task), return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            ready.cancel()
            self._task.result()

    async def restart(self) -> None:
        await self.stop()
        self.ready.clear()
        await self.start()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        watcher = await self._kv.watchall()
        seen: dict[str, tuple[bytes, int]] = {}
        snapshot = True
        try:
            async for entry in watcher:
                if entry is None:  # end of the initial contents
                    if snapshot:
                        self._settle(seen)
                        snapshot = False
                    continue
                target = seen if snapshot else self.entries
                if entry.operation in (KV_DEL, KV_PURGE):
                    target.pop(entry.key, None)
                    value = None
                else:
                    target[entry.key] = (entry.value or b"", entry.revision or 0)
                    value = entry.value or b""
                if snapshot:
                    if not entry.delta:  # nothing pending: the snapshot is complete
                        self._settle(seen)
                        snapshot = False
                else:
                    self._on_change(entry.key, value)
        finally:
            with contextlib.suppress(Exception):
                await watcher.stop()  # type: ignore[no-untyped-call]

    def _settle(self, seen: dict[str, tuple[bytes, int]]) -> None:
        """Swap the fresh snapshot in, reporting what changed since the last one."""
        before = self.entries
        self.entries = dict(seen)
        for key in before.keys() | seen.keys():
            old, new = before.get(key), seen.get(key)
            if old != new:
                self._on_change(key, None if new is None else new[0])
        self.ready.set()
