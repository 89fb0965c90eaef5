"""Handing connections over: workers joining, a graceful stop, a stolen lease.

The leases here live 60 s, so any takeover seen within the waits below came from a
lease handed back, not from one that expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from pathlib import Path
from typing import Any

from fleet_harness import (
    MEWS_CLIENT,
    MewsPump,
    NatsServer,
    WorkerProcess,
    add_specs,
    all_streams,
    check_connection_stream,
    event_number,
    fleet_client,
    held_by,
    mews_env,
    mews_spec,
    stream_has,
    stream_messages,
    wait_for,
)

from transports.asyncio import serve_mews
from transports.fleet.jetstream import lease_buckets

HOTELS = 12
LONG_TTL = 60.0


def test_join_then_graceful_stop_hand_over_without_loss(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    names = [f"hotel-{i}" for i in range(HOTELS)]
    procs: list[WorkerProcess] = []

    def start(worker_id: str) -> WorkerProcess:
        proc = WorkerProcess(
            nats_server.url, worker_id, tmp_path, ttl=LONG_TTL, env=mews_env(names)
        )
        procs.append(proc)
        return proc

    async def run() -> None:
        async with (
            fleet_client(nats_server.url, LONG_TTL) as (nc, view),
            contextlib.AsyncExitStack() as stack,
        ):
            servers = {
                name: await stack.enter_async_context(
                    serve_mews(client_token=MEWS_CLIENT, access_token=f"token-{name}")
                )
                for name in names
            }
            start("g0")
            await wait_for(lambda: {"g0"} <= view.live(), timeout=30, what="the first worker")
            await add_specs(nc, [mews_spec(name, servers[name].url) for name in names])
            await wait_for(lambda: held_by(view, servers, {"g0"}), timeout=60, what="all on g0")

            # Two workers join: g0 hands back what is above its share.
            start("g1")
            start("g2")
            ids = {"g0", "g1", "g2"}
            cap = math.ceil(HOTELS / 3) + 1

            async def balanced() -> dict[str, str] | None:
                now = held_by(view, servers, ids)
                if now is None or max(Counter(now.values()).values()) > cap:
                    return None
                return now if set(now.values()) == ids else None

            held = await wait_for(balanced, timeout=60, what="the share after joining")

            stop = asyncio.Event()
            pump = MewsPump(servers)
            pumping = asyncio.get_running_loop().create_task(pump.run(stop))
            await wait_for(lambda: stream_has(nc, 100), timeout=60, what="events")
            victim = next(p for p in procs if p.id == "g1")
            assert victim.terminate() == 0
            moved = {name for name, owner in held.items() if owner == victim.id}
            assert moved
            survivors = ids - {victim.id}
            after = await wait_for(
                lambda: held_by(view, servers, survivors), timeout=30, what="the handover"
            )
            assert max(Counter(after.values()).values()) <= math.ceil(HOTELS / 2) + 1
            mark = pump.next
            await wait_for(lambda: pump.next >= mark + 20, timeout=30, what="events")
            stop.set()
            await pumping
            last = pump.next - 1

            streams = await all_streams(nc, names, last, timeout=60)
            started = pump_start(streams)
            for name in names:
                sent = pump.sent[name]
                gaps = check_connection_stream(name, streams[name], sent)
                numbers = {n for n in map(event_number, streams[name]) if n is not None}
                reached = {n for n, count in sent.items() if count and n >= started[name]}
                lost = reached - numbers
                markers = [m for m in streams[name] if event_number(m) is None]
                if name not in moved:
                    assert not gaps, f"{name} stayed put but lost {sorted(lost)}"
                    assert not lost, f"{name} stayed put but lost {sorted(lost)}"
                    continue
                # One handover, one gap at most: from the old owner's close frame (what
                # it received before is published) to the new owner's marker.
                assert len(gaps) <= 1, f"{name}: {len(gaps)} gaps"
                new_owner = max(i for i, m in enumerate(streams[name]) if event_number(m) is None)
                after_marker = {
                    n for n in map(event_number, streams[name][new_owner:]) if n is not None
                }
                assert all(n < min(after_marker) for n in lost), f"{name}: lost {sorted(lost)}"
                assert len(markers) >= 2, name

    try:
        asyncio.run(asyncio.wait_for(run(), 170))
    finally:
        for proc in procs:
            proc.close()
    log = next(p for p in procs if p.id == "g1").log()
    assert "handed back" in log
    for proc in procs:
        assert "Traceback" not in proc.log(), proc.log()


def pump_start(streams: dict[str, list[Any]]) -> dict[str, int]:
    """The first event number of each connection's stream (the pump started then)."""
    out = {}
    for name, msgs in streams.items():
        numbers = [n for n in map(event_number, msgs) if n is not None]
        out[name] = numbers[0]
    return out


def test_a_stolen_lease_closes_the_connection_at_once(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    names = ["hotel-0", "hotel-1"]
    procs: list[WorkerProcess] = []

    async def run() -> None:
        async with (
            fleet_client(nats_server.url, 3.0) as (nc, view),
            contextlib.AsyncExitStack() as stack,
        ):
            servers = {
                name: await stack.enter_async_context(
                    serve_mews(client_token=MEWS_CLIENT, access_token=f"token-{name}")
                )
                for name in names
            }
            procs.append(
                WorkerProcess(nats_server.url, "s0", tmp_path, ttl=3.0, env=mews_env(names))
            )
            await wait_for(lambda: {"s0"} <= view.live(), timeout=30, what="the worker")
            await add_specs(nc, [mews_spec(name, servers[name].url) for name in names])
            await wait_for(lambda: held_by(view, servers, {"s0"}), timeout=60, what="both held")
            leases, _, _ = await lease_buckets(nc.jetstream(), 3.0)
            await leases.put("hotel-0", b"thief")
            await wait_for(
                lambda: servers["hotel-0"].connections == 0,
                timeout=20,
                what="the old owner to close",
            )
            assert servers["hotel-1"].connections == 1
            # The thief never renews: the lease expires and s0 takes it back.
            await wait_for(lambda: held_by(view, servers, {"s0"}), timeout=30, what="taken back")

            # ... and marks the new ownership (published just after connecting).
            async def markers() -> int:
                return len(await stream_messages(nc, "mews.hotel-0.reconnected"))

            await wait_for(lambda: _at_least(markers(), 2), timeout=30, what="a second marker")
            assert await markers() == 2

    try:
        asyncio.run(asyncio.wait_for(run(), 100))
    finally:
        for proc in procs:
            proc.close()
    log = procs[0].log()
    assert "lease taken by thief" in log
    assert "Traceback" not in log


async def _at_least(count: Any, wanted: int) -> bool:
    return bool(await count >= wanted)
