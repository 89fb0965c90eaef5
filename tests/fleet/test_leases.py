"""Leases, the bucket mirror and the spec commands against a real nats-server."""

from __future__ import annotations

import asyncio

import pytest
from fleet_harness import NatsServer, connect, wait_for

from transports.fleet import LeaseLost, Leases
from transports.fleet.cli import main
from transports.fleet.jetstream import lease_buckets, specs_bucket
from transports.fleet.leases import Mirror
from transports.fleet.specs import decode_spec


def test_a_lease_has_one_owner_until_released_or_expired(nats_server: NatsServer) -> None:
    async def run() -> None:
        nc = await connect(nats_server.url)
        js = nc.jetstream()
        kv, _workers, ttl = await lease_buckets(js, 1.5)
        assert ttl == pytest.approx(1.5)
        a, b = Leases(kv, "worker-a", js), Leases(kv, "worker-b", js)
        rev = await a.acquire("hotel-1")
        assert rev is not None
        assert await b.acquire("hotel-1") is None
        rev = await a.renew("hotel-1", rev)
        with pytest.raises(LeaseLost):
            await b.renew("hotel-1", rev - 1)  # not the last revision: b never held it
        await a.release("hotel-1", rev)
        rev_b = await b.acquire("hotel-1")  # handed back: free at once
        assert rev_b is not None
        with pytest.raises(LeaseLost):
            await a.renew("hotel-1", rev)  # a's old revision is stale
        # b stops renewing: the lease expires with the TTL, watchers see it go, and a
        # can take it at once (the server's expiry marker does not stand in the way).
        gone = asyncio.Event()
        mirror = Mirror(kv, lambda key, value: gone.set() if value is None else None)
        await mirror.start()
        await asyncio.wait_for(gone.wait(), 15)
        assert await a.acquire("hotel-1") is not None
        await mirror.stop()
        await nc.close()

    asyncio.run(asyncio.wait_for(run(), 40))


def test_the_mirror_follows_the_bucket(nats_server: NatsServer) -> None:
    async def run() -> None:
        nc = await connect(nats_server.url)
        kv, _workers, _ttl = await lease_buckets(nc.jetstream(), 30)
        await kv.put("before", b"x")
        changes: list[tuple[str, bytes | None]] = []
        mirror = Mirror(kv, lambda key, value: changes.append((key, value)))
        await mirror.start()
        assert set(mirror.entries) == {"before"}
        await kv.put("after", b"y")
        await kv.delete("before")
        await wait_for(lambda: asyncio.sleep(0, len(changes) >= 3), timeout=10, what="the watch")
        assert changes == [("before", b"x"), ("after", b"y"), ("before", None)]
        assert set(mirror.entries) == {"after"}
        await mirror.stop()
        await nc.close()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_add_list_remove(nats_server: NatsServer, capsys: pytest.CaptureFixture[str]) -> None:
    nats = ["--nats", nats_server.url]
    url = "ws://127.0.0.1:9/api/engine/v2/systems/control"
    argv = [
        "add",
        "site-1",
        "--protocol",
        "placeos",
        "--url",
        url,
        "--credential",
        "api_key=env:SITE_KEY",
        "--bind",
        "sys-1/Display_1.power",
        *nats,
    ]
    assert main(argv) == 0
    assert main(argv) == 1  # exists already
    assert "exists already (use --replace)" in capsys.readouterr().err
    assert main([*argv, "--replace"]) == 0
    assert main(["add", "h", "--protocol", "mews", "--url", "ws://h/", *nats]) == 1
    assert "lack access_token, client_token" in capsys.readouterr().err
    assert main(["list", *nats]) == 0
    assert f"site-1\tplaceos\t{url}\t-" in capsys.readouterr().out

    async def stored() -> list[str]:
        nc = await connect(nats_server.url)
        kv = await specs_bucket(nc.jetstream())
        spec = decode_spec((await kv.get("site-1")).value)
        await nc.close()
        return [b.subject_tail for b in spec.bindings]

    assert asyncio.run(stored()) == ["sys-1.Display.1.power"]
    assert main(["remove", "site-1", *nats]) == 0
    assert main(["remove", "site-1", *nats]) == 1
    assert "no spec named 'site-1'" in capsys.readouterr().err
    assert main(["list", *nats]) == 0
    assert "site-1" not in capsys.readouterr().out


def test_an_unreachable_nats_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from fleet_harness import free_port

    assert main(["list", "--nats", f"nats://127.0.0.1:{free_port()}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("protocore fleet: error:")
    assert "Traceback" not in err


def test_register_adds_fleet_to_a_parser(
    nats_server: NatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from transports.fleet.cli import register

    parser = argparse.ArgumentParser(prog="protocore")
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["fleet", "list", "--nats", nats_server.url])
    assert args.fleet_handler(args) == 0
    args = parser.parse_args(["fleet", "worker", "--id", "a.b", "--nats", nats_server.url])
    assert args.fleet_handler(args) == 1
    assert "--id must be" in capsys.readouterr().err
