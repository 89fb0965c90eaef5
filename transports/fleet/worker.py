"""A fleet worker: takes leases on connection specs, holds those connections.

One loop decides, and runs again on every change it watches (specs, leases, live
workers) and every third of the lease TTL: renew what it holds (a lease someone else
wrote is dropped at once, its connection closed), hand back what the spec list no
longer wants or what is above its fair share, and take free leases up to it. On
stop (SIGTERM) it leaves the live set first, closes its connections and hands every
lease back, so the others take over without waiting for the TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import socket
import uuid

from nats.errors import Error as NATSError

from .exec import ExecRouter
from .holders import Holder, PlaceOSHolder, make_holder
from .jetstream import connect, ensure_streams, lease_buckets, specs_bucket
from .leases import LeaseLost, Leases, Mirror, fair_share
from .specs import ConnectionSpec, SpecError, decode_spec

__all__ = ["Worker", "default_worker_id"]

log = logging.getLogger("protocore.fleet")


def default_worker_id() -> str:
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"{host[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class _Held:
    __slots__ = ("holder", "renewed_at", "revision")

    def __init__(self, holder: Holder, revision: int, renewed_at: float) -> None:
        self.holder = holder
        self.revision = revision
        self.renewed_at = renewed_at


class Worker:
    """Run with ``await Worker(servers).run(stop)``; set ``stop`` to leave gracefully.

    ``lease_ttl`` and ``replicas`` apply when this worker creates the buckets and
    streams; existing ones are used as they are.
    """

    def __init__(
        self,
        servers: str | list[str],
        *,
        worker_id: str | None = None,
        lease_ttl: float = 10.0,
        replicas: int = 1,
    ) -> None:
        self.worker_id = worker_id or default_worker_id()
        self._servers = servers
        self._requested_ttl = lease_ttl
        self._replicas = replicas
        self._held: dict[str, _Held] = {}
        self._kick = asyncio.Event()
        self._specs: dict[str, ConnectionSpec] = {}
        self._resync = False
        self._closing: set[asyncio.Task[None]] = set()

    # -- what the others see ------------------------------------------------------------

    @property
    def held(self) -> list[str]:
        return sorted(self._held)

    def _local_client(self, name: str) -> object | None:
        held = self._held.get(name)
        if held is not None and isinstance(held.holder, PlaceOSHolder):
            client: object | None = held.holder.client
            return client
        return None

    def _known_placeos(self, name: str) -> bool:
        spec = self._specs.get(name)
        return spec is not None and spec.protocol == "placeos"

    # -- the loop -------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        async def reconnected() -> None:
            log.info("NATS connection back")
            self._resync = True
            self._kick.set()

        # The first connection is tried until it works, or until asked to stop.
        loop = asyncio.get_running_loop()
        connecting = loop.create_task(
            connect(self._servers, name=self.worker_id, reconnected=reconnected)
        )
        stopping = loop.create_task(stop.wait())
        await asyncio.wait((connecting, stopping), return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not connecting.done():
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
            return
        nc = self._nc = connecting.result()
        try:
            js = self._js = nc.jetstream(timeout=5.0)
            specs_kv = await specs_bucket(js, self._replicas)
            leases_kv, workers_kv, ttl = await lease_buckets(
                js, self._requested_ttl, self._replicas
            )
            self._ttl = ttl
            await ensure_streams(js, self._replicas)
            self._leases = Leases(leases_kv, self.worker_id, js)
            self._workers_kv = workers_kv
            await self._announce()
            self._mirrors = [
                Mirror(specs_kv, lambda key, value: self._kick.set()),
                Mirror(leases_kv, self._lease_changed),
                Mirror(workers_kv, lambda key, value: self._kick.set()),
            ]
            self._spec_mirror, self._lease_mirror, self._worker_mirror = self._mirrors
            for mirror in self._mirrors:
                await mirror.start()
            router = ExecRouter(nc, local=self._local_client, known=self._known_placeos)
            await router.start()
            log.info("worker %s up (lease TTL %.3g s)", self.worker_id, ttl)
            try:
                await self._loop(stop)
            finally:
                await router.stop()
                await self._leave()
                for mirror in self._mirrors:
                    await mirror.stop()
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.drain(), 5.0)
            if not nc.is_closed:
                await nc.close()

    async def _loop(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        period = self._ttl / 3
        next_renewal = loop.time() + period
        stopping = loop.create_task(stop.wait())
        try:
            while not stop.is_set():
                timeout = max(0.0, next_renewal - loop.time())
                kicked = loop.create_task(self._kick.wait())
                await asyncio.wait(
                    (kicked, stopping), timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                kicked.cancel()
                if stop.is_set():
                    break
                self._kick.clear()
                if self._resync:
                    await self._restart_mirrors()
                if loop.time() >= next_renewal:
                    next_renewal = loop.time() + period
                    await self._renew()
                try:
                    await self._balance()
                except (NATSError, TimeoutError) as exc:
                    log.info("balancing failed (%s); next round", type(exc).__name__)
        finally:
            stopping.cancel()

    async def _restart_mirrors(self) -> None:
        """After a NATS reconnect the watches may have missed changes: read again."""
        self._resync = False
        for mirror in self._mirrors:
            try:
                await mirror.restart()
            except (NATSError, TimeoutError) as exc:  # JetStream not back yet
                log.info("re-reading the buckets failed (%s); again soon", type(exc).__name__)
                self._resync = True
                asyncio.get_running_loop().call_later(0.5, self._kick.set)
                return

    async def _announce(self) -> None:
        info = {"pid": os.getpid(), "host": socket.gethostname()}
        await self._workers_kv.put(self.worker_id, json.dumps(info).encode())

    async def _renew(self) -> None:
        """Renew every lease held (at once: a NATS outage must not stall the loop)."""
        try:
            await self._announce()
        except (NATSError, TimeoutError) as exc:
            log.info("announcing failed (%s)", type(exc).__name__)
        await asyncio.gather(*(self._renew_one(name, held) for name, held in self._held.items()))

    async def _renew_one(self, name: str, held: _Held) -> None:
        loop = asyncio.get_running_loop()
        try:
            revision = await self._leases.renew(name, held.revision)
        except LeaseLost:
            log.warning("%s: lease taken by another worker; closing", name)
            await self._drop(name, release=False)
            return
        except (NATSError, TimeoutError) as exc:
            if loop.time() - held.renewed_at >= self._ttl:
                log.warning(
                    "%s: could not renew within the TTL (%s); closing", name, type(exc).__name__
                )
                await self._drop(name, release=False)
            return
        if self._held.get(name) is held:
            held.revision = revision
            held.renewed_at = loop.time()

    def _lease_changed(self, name: str, value: bytes | None) -> None:
        held = self._held.get(name)
        if held is not None and value is not None and value != self.worker_id.encode():
            log.warning(
                "%s: lease taken by %s; closing at once", name, value.decode(errors="replace")
            )
            self._held.pop(name, None)
            # close now, in the background: no renewal or handback for it any more
            task = asyncio.get_running_loop().create_task(held.holder.stop())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        self._kick.set()

    def _current_specs(self) -> dict[str, ConnectionSpec]:
        specs = {}
        for key, (data, _rev) in self._spec_mirror.entries.items():
            try:
                specs[key] = decode_spec(data)
            except SpecError as exc:
                log.warning("spec %s is unusable: %s", key, exc)
        self._specs = specs
        return specs

    async def _balance(self) -> None:
        specs = self._current_specs()
        live = len(self._worker_mirror.entries.keys() | {self.worker_id})
        fair = fair_share(len(specs), live)
        for name in list(self._held):
            if specs.get(name) != self._held[name].holder.spec:  # removed or changed
                self._drop_soon(name, drain=False)
        extra = len(self._held) - fair
        if extra > 0:
            for name in sorted(self._held, key=lambda n: -self._held[n].revision)[:extra]:
                log.info("%s: above the fair share (%d); handing it back", name, fair)
                self._drop_soon(name, drain=True)
        if len(self._held) >= fair:
            return
        owners = self._lease_mirror.entries
        free = [name for name in specs if name not in owners and name not in self._held]
        random.shuffle(free)
        loop = asyncio.get_running_loop()
        for name in free:
            if len(self._held) >= fair:
                break
            revision = await self._leases.acquire(name)
            if revision is None:
                continue
            holder = make_holder(specs[name], self._nc, self._js, self.worker_id, revision)
            self._held[name] = _Held(holder, revision, loop.time())
            holder.start()
            log.info("%s: taken (lease revision %d)", name, revision)

    def _drop_soon(self, name: str, *, drain: bool) -> None:
        """Close and hand back in the background: a drain must not hold up renewals."""
        task = asyncio.get_running_loop().create_task(self._drop(name, release=True, drain=drain))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _drop(self, name: str, *, release: bool, drain: bool = False) -> None:
        held = self._held.pop(name, None)
        if held is None:
            return
        await held.holder.stop(drain=drain)
        if release:
            await self._leases.release(name, held.revision)

    async def _leave(self) -> None:
        """Graceful stop: out of the live set, connections closed, leases handed back."""
        with contextlib.suppress(NATSError, TimeoutError):
            await self._workers_kv.delete(self.worker_id)
        names = list(self._held)
        await asyncio.gather(*(self._drop(name, release=True, drain=True) for name in names))
        if self._closing:
            await asyncio.wait(self._closing)
        log.info("worker %s stopped; handed back %d leases", self.worker_id, len(names))
