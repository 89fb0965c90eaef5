"""PlaceOS through the fleet: values on subjects, exec over NATS request/reply.

Two worker processes hold five fake PlaceOS sites; a plain nats-py client sends the
exec requests. Bindings and exec must come back after the owner is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any

from fleet_harness import (
    NatsServer,
    WorkerProcess,
    add_specs,
    fleet_client,
    free_port,
    wait_for,
)
from nats.aio.client import Client as NATS
from nats.js.errors import NotFoundError

from protocore.placeos import MockEngine
from transports.asyncio import serve_placeos
from transports.fleet import BindingSpec, ConnectionSpec, Leases
from transports.fleet.jetstream import PLACEOS_STREAM, lease_buckets

SITES = 5
TTL = 2.0


def _engine(i: int) -> MockEngine:
    engine = MockEngine()
    sys_id = f"sys-{i}"
    engine.add_system(sys_id)

    def fail() -> None:
        raise RuntimeError("the projector is on fire")

    engine.add_module(
        sys_id,
        "Display",
        status={"power": False},
        methods={"echo": lambda *args: [i, *args], "fail": fail},
    )
    return engine


def _spec(i: int, url: str) -> ConnectionSpec:
    return ConnectionSpec(
        f"site-{i}",
        "placeos",
        url,
        {"api_key": f"env:FLEET_SITE_KEY_{i}"},
        (BindingSpec(f"sys-{i}", "Display", "power"),),
    )


async def _exec(nc: NATS, site: str, **request: Any) -> Any:
    reply = await nc.request(f"placeos.{site}.exec", json.dumps(request).encode(), timeout=15)
    return json.loads(reply.data)


async def _value(nc: NATS, site: str, sys_id: str) -> Any:
    subject = f"placeos.{site}.value.{sys_id}.Display.1.power"
    try:
        msg = await nc.jetstream().get_last_msg(PLACEOS_STREAM, subject)
    except NotFoundError:
        return None
    return json.loads(msg.data or b"null")


def test_values_and_exec_survive_a_kill_9(nats_server: NatsServer, tmp_path: Path) -> None:
    procs: list[WorkerProcess] = []
    env = {f"FLEET_SITE_KEY_{i}": f"key-{i}" for i in range(SITES)}

    async def run() -> None:
        async with fleet_client(nats_server.url, TTL) as (nc, view):
            # The test holds site-4's lease itself, as a worker that serves nothing would.
            leases_kv, _, _ = await lease_buckets(nc.jetstream(), TTL)
            ghost = Leases(leases_kv, "ghost", nc.jetstream())
            ghost_rev = await ghost.acquire("site-4")
            assert ghost_rev is not None
            letting_go = asyncio.Event()

            async def haunt() -> int:
                """Renew the ghost's lease (it must not expire) until told to let go."""
                revision = ghost_rev
                while not letting_go.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(letting_go.wait(), TTL / 4)
                    if not letting_go.is_set():
                        revision = await ghost.renew("site-4", revision)
                return revision

            haunting = asyncio.get_running_loop().create_task(haunt())
            async with contextlib.AsyncExitStack() as stack:
                servers = [
                    await stack.enter_async_context(
                        serve_placeos(_engine(i), api_keys=[f"key-{i}"])
                    )
                    for i in range(SITES)
                ]
                for i in range(2):
                    procs.append(
                        WorkerProcess(nats_server.url, f"p{i}", tmp_path, ttl=TTL, env=env)
                    )
                ids = {p.id for p in procs}
                await wait_for(lambda: ids <= view.live(), timeout=30, what="2 live workers")
                await add_specs(nc, [_spec(i, servers[i].url) for i in range(SITES)])

                def held(among: set[str], sites: range) -> dict[str, str] | None:
                    now = view.owners()
                    if not all(now.get(f"site-{i}") in among for i in sites):
                        return None
                    if any(servers[i].connections != 1 for i in sites):
                        return None
                    return now

                first = await wait_for(
                    lambda: held(ids, range(SITES - 1)), timeout=60, what="4 sites held"
                )
                for i in range(SITES - 1):  # the current value comes first
                    got = await wait_for(
                        lambda i=i: _is(_value(nc, f"site-{i}", f"sys-{i}"), False),
                        timeout=30,
                        what=f"site-{i}'s first value",
                    )
                    assert got
                servers[1].set_status("sys-1", "Display", "power", True)
                assert await wait_for(
                    lambda: _is(_value(nc, "site-1", "sys-1"), True), timeout=30, what="a new value"
                )

                # exec: values, PlaceOS error numbers, fleet errors
                assert await _exec(
                    nc, "site-2", sys="sys-2", mod="Display", method="echo", args=[1, "a"]
                ) == {"value": [2, 1, "a"]}
                failed = await _exec(nc, "site-2", sys="sys-2", mod="Display", method="fail")
                assert failed["error"]["code"] == 3
                assert "on fire" in failed["error"]["message"]
                missing = await _exec(nc, "site-2", sys="sys-2", mod="Projector", method="on")
                assert missing["error"]["code"] == 6
                no_sys = await _exec(nc, "site-2", sys="sys-9", mod="Display", method="echo")
                assert no_sys["error"]["code"] == 5
                bad = await _exec(nc, "site-2", sys="sys-2", mod="Display")
                assert bad["error"]["code"] == "bad_request"
                assert "'method'" in bad["error"]["message"]
                unknown = await _exec(nc, "nowhere", sys="s", mod="m", method="x")
                assert unknown["error"]["code"] == "unknown_connection"
                no_owner = await _exec(nc, "site-4", sys="sys-4", mod="Display", method="echo")
                assert no_owner["error"]["code"] == "no_owner"
                assert no_owner["error"]["message"]

                # A site that cannot be reached: its owner says so.
                down = ConnectionSpec(
                    "site-down",
                    "placeos",
                    f"ws://127.0.0.1:{free_port()}/api/engine/v2/systems/control",
                    {"api_key": "env:FLEET_SITE_KEY_0"},
                )
                await add_specs(nc, [down])
                lost = await wait_for(
                    lambda: _answer_code(nc, "site-down", "connection_lost"),
                    timeout=30,
                    what="site-down's owner",
                )
                assert "down" in lost["error"]["message"]

                # The ghost lets go: a worker takes site-4 and answers for it.
                letting_go.set()
                await ghost.release("site-4", await haunting)
                await wait_for(lambda: held(ids, range(SITES)), timeout=30, what="site-4 taken")
                assert await _exec(nc, "site-4", sys="sys-4", mod="Display", method="echo") == {
                    "value": [4]
                }

                # kill -9 the owner of site-0: the other worker binds again and answers.
                victim = next(p for p in procs if p.id == first["site-0"])
                victim.kill()
                survivor = ids - {victim.id}
                await wait_for(lambda: held(survivor, range(SITES)), timeout=40, what="takeover")
                servers[0].set_status("sys-0", "Display", "power", "after the takeover")
                assert await wait_for(
                    lambda: _is(_value(nc, "site-0", "sys-0"), "after the takeover"),
                    timeout=30,
                    what="the binding back",
                )
                assert await _exec(
                    nc, "site-0", sys="sys-0", mod="Display", method="echo", args=[True]
                ) == {"value": [0, True]}

    try:
        asyncio.run(asyncio.wait_for(run(), 150))
    finally:
        for proc in procs:
            proc.close()
    for proc in procs:
        assert "Traceback" not in proc.log(), proc.log()


async def _answer_code(nc: NATS, site: str, code: str) -> Any:
    reply = await _exec(nc, site, sys="s", mod="m", method="x")
    if reply.get("error", {}).get("code") == code:
        return reply
    # Until every worker has read the new spec, and its owner listens:
    assert reply.get("error", {}).get("code") in ("unknown_connection", "no_owner"), reply
    return None


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)
