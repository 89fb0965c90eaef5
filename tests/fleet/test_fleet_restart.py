"""nats-server restarted under a running fleet: nothing JetStream acknowledged is
lost, and the events that arrived meanwhile are published once it is back."""

from __future__ import annotations

import asyncio
import contextlib
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
    held_by,
    mews_env,
    mews_spec,
    stream_has,
    stream_messages,
    wait_for,
)

from transports.asyncio import serve_mews

HOTELS = 6
TTL = 15.0  # longer than the restart takes: the leases survive it


def test_workers_ride_out_a_nats_restart(nats_server: NatsServer, tmp_path: Path) -> None:
    names = [f"hotel-{i}" for i in range(HOTELS)]
    procs: list[WorkerProcess] = []

    async def run() -> None:
        async with (
            fleet_client(nats_server.url, TTL) as (nc, view),
            contextlib.AsyncExitStack() as stack,
        ):
            servers = {
                name: await stack.enter_async_context(
                    serve_mews(client_token=MEWS_CLIENT, access_token=f"token-{name}")
                )
                for name in names
            }
            for i in range(2):
                procs.append(
                    WorkerProcess(nats_server.url, f"r{i}", tmp_path, ttl=TTL, env=mews_env(names))
                )
            ids = {p.id for p in procs}
            await wait_for(lambda: ids <= view.live(), timeout=30, what="the workers")
            await add_specs(nc, [mews_spec(name, servers[name].url) for name in names])
            await wait_for(lambda: held_by(view, servers, ids), timeout=60, what="all held")

            stop = asyncio.Event()
            pump = MewsPump(servers)
            pumping = asyncio.get_running_loop().create_task(pump.run(stop))
            await wait_for(lambda: stream_has(nc, 60), timeout=60, what="events")
            before: dict[str, list[tuple[int, bytes]]] = {}
            for name in names:
                msgs = await stream_messages(nc, f"mews.{name}.>")
                before[name] = [(m.metadata.sequence.stream, m.data) for m in msgs]
            outage_from = pump.next
            # The pump goes on: the hotels keep sending while NATS is down.
            await asyncio.to_thread(nats_server.stop)
            await wait_for(
                lambda: pump.next >= outage_from + 40,
                timeout=30,
                what="events during the outage",
            )
            await asyncio.to_thread(nats_server.start)
            outage_to = pump.next
            await wait_for(
                lambda: pump.next >= outage_to + 20,
                timeout=30,
                what="events after the restart",
            )
            stop.set()
            await pumping
            last = pump.next - 1

            streams = await all_streams(nc, names, last, timeout=90)
            assert all(p.proc.poll() is None for p in procs)  # rode it out, still running
            for name in names:
                after = [(m.metadata.sequence.stream, m.data) for m in streams[name]]
                assert after[: len(before[name])] == before[name], f"{name}: acked data lost"
                sent = pump.sent[name]
                gaps = check_connection_stream(name, streams[name], sent)
                assert gaps == [], f"{name}: events lost across the restart"
                numbers = {n for n in map(event_number, streams[name]) if n is not None}
                first = min(numbers)
                reached = {n for n, count in sent.items() if count and n >= first}
                assert reached <= numbers, f"{name}: lost {sorted(reached - numbers)}"
                assert set(range(outage_from, outage_to)) <= numbers

    try:
        asyncio.run(asyncio.wait_for(run(), 170))
    finally:
        for proc in procs:
            proc.close()
    for proc in procs:
        log = proc.log()
        assert "NATS connection back" in log
        assert "Traceback" not in log, log
