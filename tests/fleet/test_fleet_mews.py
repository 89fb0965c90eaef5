"""Mews through the fleet: 3 worker processes, 30 fake hotels, one kill -9.

The stream is the judge: every event a fake hotel sent while a worker held its
connection is there exactly once and in order, and every event missing lies just
before a ``reconnected`` marker (the gap consumers resynchronise over).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import Counter
from pathlib import Path

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
    mews_env,
    mews_spec,
    stream_has,
    wait_for,
)

from transports.asyncio import serve_mews

HOTELS = 30
WORKERS = 3
TTL = 2.0


def test_kill_9_takeover_loses_nothing_unmarked(nats_server: NatsServer, tmp_path: Path) -> None:
    names = [f"hotel-{i}" for i in range(HOTELS)]
    procs: list[WorkerProcess] = []

    async def run() -> None:
        async with (
            fleet_client(nats_server.url, TTL) as (nc, view),
            contextlib.AsyncExitStack() as stack,
        ):
            servers = {}
            for name in names:
                servers[name] = await stack.enter_async_context(
                    serve_mews(client_token=MEWS_CLIENT, access_token=f"token-{name}")
                )
            for i in range(WORKERS):
                procs.append(
                    WorkerProcess(nats_server.url, f"w{i}", tmp_path, ttl=TTL, env=mews_env(names))
                )
            ids = {p.id for p in procs}
            await wait_for(lambda: ids <= view.live(), timeout=30, what="3 live workers")
            await add_specs(nc, [mews_spec(name, servers[name].url) for name in names])

            def all_held(among: set[str]) -> dict[str, str] | None:
                held = view.owners()
                if set(held) != set(names) or not set(held.values()) <= among:
                    return None
                if any(servers[name].connections != 1 for name in names):
                    return None
                return held

            held = await wait_for(lambda: all_held(ids), timeout=60, what="every hotel held")
            fair = math.ceil(HOTELS / WORKERS) + 1
            assert max(Counter(held.values()).values()) <= fair

            stop = asyncio.Event()
            pump = MewsPump(servers)
            pumping = asyncio.get_running_loop().create_task(pump.run(stop))
            await wait_for(lambda: stream_has(nc, 200), timeout=60, what="events in the stream")
            victim = procs[0]
            victim.kill()
            moved = {name for name, owner in held.items() if owner == victim.id}
            survivors = ids - {victim.id}
            after = await wait_for(
                lambda: all_held(survivors), timeout=30 + 3 * TTL, what="takeover"
            )
            assert set(after) == set(names)
            assert max(Counter(after.values()).values()) <= math.ceil(HOTELS / (WORKERS - 1)) + 1
            first_after = pump.next  # every event from here on reaches its new owner
            await wait_for(
                lambda: pump.next >= first_after + 20,
                timeout=30,
                what="more events",
            )
            stop.set()
            await pumping
            last = pump.next - 1

            streams = await all_streams(nc, names, last, timeout=60)
            for name in names:
                sent = pump.sent[name]
                gaps = check_connection_stream(name, streams[name], sent)
                numbers = {n for n in map(event_number, streams[name]) if n is not None}
                assert set(range(first_after, last + 1)) <= numbers, name
                if name not in moved:
                    assert gaps == [], f"{name} was never moved but lost events"
                    reached = {n for n, count in sent.items() if count}
                    assert reached <= numbers, name
                else:
                    markers = [m for m in streams[name] if event_number(m) is None]
                    assert len(markers) >= 2, f"{name}: the takeover is not marked"

    try:
        asyncio.run(asyncio.wait_for(run(), 150))
    finally:
        for proc in procs:
            proc.close()
    for proc in procs[1:]:
        assert "Traceback" not in proc.log(), proc.log()
