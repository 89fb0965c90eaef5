"""Helpers of the fleet tests: waiting, reading the stream and the buckets, fake traffic.

The nats-server and the worker processes come from `transports.fleet.local`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.js.api import DeliverPolicy

from protocore.mews import ResourceEvent, decode_envelope
from transports.fleet import ConnectionSpec, admin
from transports.fleet.jetstream import MEWS_STREAM, lease_buckets
from transports.fleet.leases import Mirror
from transports.fleet.local import NatsServer, WorkerProcess, free_port

__all__ = ["NatsServer", "WorkerProcess", "free_port"]

MEWS_CLIENT = "fleet-client-token"


async def connect(url: str) -> NATS:
    return await nats.connect(url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)


async def wait_for(
    condition: Callable[[], Any], *, timeout: float, what: str, every: float = 0.1
) -> Any:
    """Poll ``condition`` until it is truthy (nothing to await instead), bounded."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(every)


class FleetView:
    """Who holds what and who is alive, kept current by KV watches (polling with a
    fresh watch each time would leave a consumer behind per look)."""

    def __init__(self, leases: Mirror, workers: Mirror) -> None:
        self._leases = leases
        self._workers = workers

    @classmethod
    async def start(cls, nc: NATS, ttl: float) -> FleetView:
        """Creates the buckets with the workers' TTL if they do not exist yet."""
        leases_kv, workers_kv, _ = await lease_buckets(nc.jetstream(), ttl)
        view = cls(Mirror(leases_kv, _ignore), Mirror(workers_kv, _ignore))
        await view._leases.start()
        await view._workers.start()
        return view

    async def stop(self) -> None:
        await self._leases.stop()
        await self._workers.stop()

    def owners(self) -> dict[str, str]:
        """Connection name -> worker id."""
        return {k: v.decode() for k, (v, _rev) in self._leases.entries.items()}

    def live(self) -> set[str]:
        return set(self._workers.entries)


def _ignore(key: str, value: bytes | None) -> None:
    return None


@contextlib.asynccontextmanager
async def fleet_client(url: str, ttl: float) -> AsyncIterator[tuple[NATS, FleetView]]:
    """A test's own NATS connection and view of the fleet, closed even when it fails."""
    nc = await connect(url)
    try:
        view = await FleetView.start(nc, ttl)
        try:
            yield nc, view
        finally:
            await view.stop()
    finally:
        await nc.close()


async def stream_messages(nc: NATS, subject: str, stream: str = MEWS_STREAM) -> list[Any]:
    """Every message of ``stream`` on ``subject`` (wildcards allowed), in stream order."""
    js = nc.jetstream()
    info = await js.stream_info(stream, subjects_filter=subject)
    count = sum((info.state.subjects or {}).values())
    if not count:
        return []
    sub = await js.subscribe(
        subject, stream=stream, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    out = []
    try:
        while len(out) < count:
            out.append(await sub.next_msg(timeout=10))
    finally:
        await sub.unsubscribe()
    return out


async def all_streams(
    nc: NATS, names: list[str], last: int, *, timeout: float
) -> dict[str, list[Any]]:
    """Each connection's messages, once every stream ends with event ``last``."""
    behind: dict[str, int | None] = {}

    async def complete() -> dict[str, list[Any]] | None:
        out = {}
        behind.clear()
        for name in names:
            msgs = await stream_messages(nc, f"mews.{name}.>")
            numbers = [n for n in map(event_number, msgs) if n is not None]
            if not numbers or numbers[-1] != last:
                behind[name] = numbers[-1] if numbers else None
            out[name] = msgs
        return None if behind else out

    try:
        result: dict[str, list[Any]] = await wait_for(complete, timeout=timeout, what="events")
    except AssertionError:
        raise AssertionError(f"the streams lack the last event {last}: {behind}") from None
    return result


def event_number(msg: Any) -> int | None:
    """The fake event's number (its resource id is ``<name>-<n>``), None for a marker."""
    if msg.subject.endswith(".reconnected"):
        return None
    (event,) = decode_envelope(msg.data).events
    assert isinstance(event, ResourceEvent)
    return int(event.id.rsplit("-", 1)[1])


def check_connection_stream(name: str, messages: list[Any], sent: dict[int, int]) -> list[int]:
    """Check one connection's messages: starts with a marker, every event once and in
    order, and every event missing from the run (reached a client, or not) lies just
    before a ``reconnected`` marker. Returns the numbers of the markers' positions."""
    assert messages, f"{name}: nothing in the stream"
    assert messages[0].subject == f"mews.{name}.reconnected", f"{name}: no first marker"
    last: int | None = None
    marker_since_last = True
    gaps = []
    for msg in messages:
        number = event_number(msg)
        if number is None:
            marker_since_last = True
            json.loads(msg.data)  # a marker is a JSON document
            continue
        assert number in sent, f"{name}: event {number} was never sent"
        if last is not None:
            assert number > last, f"{name}: event {number} after {last} (duplicate or reorder)"
            if number != last + 1:
                assert marker_since_last, f"{name}: events {last + 1}..{number - 1} lost, unmarked"
                gaps.append(number)
        marker_since_last = False
        last = number
    return gaps


def mews_env(names: list[str]) -> dict[str, str]:
    """The environment the workers read the fake hotels' tokens from."""
    env = {"FLEET_MEWS_CLIENT": MEWS_CLIENT}
    env.update({f"FLEET_TOKEN_{name.replace('-', '_')}": f"token-{name}" for name in names})
    return env


def mews_spec(name: str, url: str) -> ConnectionSpec:
    """A fake hotel's spec, its tokens by reference to `mews_env`'s variables."""
    return ConnectionSpec(
        name,
        "mews",
        url,
        {
            "client_token": "env:FLEET_MEWS_CLIENT",
            "access_token": f"env:FLEET_TOKEN_{name.replace('-', '_')}",
        },
    )


def held_by(view: FleetView, servers: dict[str, Any], among: set[str]) -> dict[str, str] | None:
    """The owners, once every server's connection is held by one of ``among`` and open."""
    now = view.owners()
    if set(now) != set(servers) or not set(now.values()) <= among:
        return None
    if any(server.connections != 1 for server in servers.values()):
        return None
    return now


async def stream_has(nc: NATS, count: int) -> bool:
    """Whether the Mews stream holds at least ``count`` messages."""
    try:
        info = await nc.jetstream().stream_info(MEWS_STREAM)
    except Exception:
        return False
    return bool(info.state.messages >= count)


async def add_specs(nc: NATS, specs: list[Any]) -> None:
    for spec in specs:
        await admin.put_spec(nc.jetstream(), spec, replace=True)


class MewsPump:
    """Publishes numbered events to fake Mews servers and remembers who got each."""

    def __init__(self, servers: dict[str, Any]) -> None:
        self.servers = servers
        self.sent: dict[str, dict[int, int]] = {name: {} for name in servers}
        self.next = 0

    def round(self) -> None:
        from protocore.mews import ResourceState

        n = self.next
        self.next += 1
        for name, server in self.servers.items():
            event = ResourceEvent(f"{name}-{n}", ResourceState.DIRTY)
            self.sent[name][n] = server.publish([event])

    async def run(self, stop: asyncio.Event, every: float = 0.05) -> None:
        while not stop.is_set():
            self.round()
            await asyncio.sleep(every)  # pacing the fake traffic, not waiting for anything
