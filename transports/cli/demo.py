"""`protocore demo`: both protocols end to end, on fake servers bound to 127.0.0.1.

One script for every transport (through `transports.cli.runtime`): a fake Mews
Connector server pushes the documented example messages (`protocore.samples`) and a
client decodes them, a
fake PlaceOS engine answers binds, execs and debug requests, and both servers drop
their connections once to show the clients reconnecting (the PlaceOS binding comes
back by itself). Every wait is bounded; the whole run takes a few seconds.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any, Final

from protocore.backoff import Backoff
from protocore.mews import Envelope, Reconnected, decode_envelope
from protocore.placeos import MockEngine
from protocore.placeos.exceptions import ServerError
from protocore.samples import MEWS_MESSAGES

from .output import describe_log_line, describe_mews_event, json_line
from .runtime import MewsServer, PlaceOSClient, PlaceOSServer, Runtime
from .systems import DEMO_DISPLAY_ID, DEMO_SYSTEM, DEMO_SYSTEMS

__all__ = ["run_demo"]

HOST: Final = "127.0.0.1"
STEP: Final = 10.0
"""Seconds any one step may take: far more than it needs, so only a bug hits it."""
RECONNECT_DELAY: Final = 0.3
"""A fixed, short first reconnect delay (no jitter) so the drop is seen, then healed."""

SYS: Final = DEMO_SYSTEM
DISPLAY: Final = "Display"


def _backoff() -> Backoff:
    return Backoff(base=RECONNECT_DELAY, jitter=False, max_attempts=20)


class _Report:
    """Prints the demo's lines and counts what happened, for the summary."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self.counts: Counter[str] = Counter()

    def line(self, text: str = "") -> None:
        self._write(text)


async def _next(items: AsyncIterator[Any]) -> Any:
    try:
        return await anext(items)
    except StopAsyncIteration:
        raise RuntimeError("the stream ended early") from None


async def _until(values: AsyncIterator[Any], expected: Any) -> Any:
    """Read values until ``expected`` comes (a re-bind may repeat an older one first)."""
    while True:
        value = await _next(values)
        if value == expected:
            return value


async def _mews(rt: Runtime, report: _Report) -> None:
    client_token, access_token = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    server: MewsServer
    async with rt.serve_mews(
        HOST, 0, client_token=client_token, access_token=access_token
    ) as server:
        report.line(f"Mews: fake Connector server on {server.url}")
        async with rt.connect_mews(
            server.url, client_token=client_token, access_token=access_token, reconnect=_backoff()
        ) as events:
            for sample in MEWS_MESSAGES:
                label = sample.label
                envelope = decode_envelope(sample.text)
                async with rt.deadline(STEP, f"Mews: {label}"):
                    server.publish(envelope)
                    report.line(f"  {label}:")
                    for _ in envelope.events:
                        event = await _next(events)
                        report.line(f"    {describe_mews_event(event)}")
                        report.counts["mews events"] += 1
                report.counts["mews messages"] += 1
            async with rt.deadline(STEP, "Mews: the reconnect"):
                server.drop_connections()
                marker = await _next(events)
                if not isinstance(marker, Reconnected):
                    raise RuntimeError(f"expected a Reconnected marker, got {marker!r}")
                report.counts["reconnects"] += 1
                report.line(
                    "  the server dropped the connection -> the client reconnected "
                    "(Reconnected: resynchronise through the REST API)"
                )
                server.publish(Envelope(decode_envelope(MEWS_MESSAGES[-1].text).events[:1]))
                event = await _next(events)
                report.counts["mews events"] += 1
                report.counts["mews messages"] += 1
                report.line(f"  live again: {describe_mews_event(event)}")


async def _placeos(rt: Runtime, report: _Report) -> None:
    engine = MockEngine.from_config(DEMO_SYSTEMS)
    api_key = secrets.token_urlsafe(16)
    server: PlaceOSServer
    async with rt.serve_placeos(engine, HOST, 0, api_keys=(api_key,)) as server:
        modules = ", ".join(f"{name} ({mod_id})" for name, _, mod_id in engine.modules(SYS))
        report.line(f"PlaceOS: fake engine on {server.url}")
        report.line(f"  system {SYS}: {modules}")
        client: PlaceOSClient
        async with (
            rt.connect_placeos(server.url, api_key=api_key, reconnect=_backoff()) as client,
            client.bind(SYS, DISPLAY, "power") as power,
        ):
            await _bind_and_exec(rt, report, server, client, power)
            await _kill_and_reconnect(rt, report, server, client, power)


async def _bind_and_exec(
    rt: Runtime,
    report: _Report,
    server: PlaceOSServer,
    client: PlaceOSClient,
    power: AsyncIterator[Any],
) -> None:
    async with rt.deadline(STEP, "PlaceOS: bind"):
        report.line(f"  bind {DISPLAY}.power: {json_line(await _next(power))}")
        server.set_status(SYS, DISPLAY, "power", True)
        report.line(f"    the engine sets power = true -> {json_line(await _next(power))}")
        report.counts["values"] += 2
    async with rt.deadline(STEP, "PlaceOS: exec"):
        result = await client.exec(SYS, DISPLAY, "power", False, timeout=STEP)
        report.line(f"  exec {DISPLAY}.power(false) -> {json_line(result)}")
        report.line(f"    and the bound value follows -> {json_line(await _until(power, False))}")
        report.counts["exec results"] += 1
        report.counts["values"] += 1
    async with rt.deadline(STEP, "PlaceOS: debug"), client.debug(SYS, DEMO_DISPLAY_ID) as logs:
        report.line(f"  debug {DEMO_DISPLAY_ID}:")
        result = await client.exec(SYS, DISPLAY, "switch_to", "hdmi2", timeout=STEP)
        report.line(f"    log: {describe_log_line(await _next(logs))}")
        report.line(f'  exec {DISPLAY}.switch_to("hdmi2") -> {json_line(result)}')
        report.counts["exec results"] += 1
        report.counts["log lines"] += 1
        refusal = await _refused(client, (DISPLAY, "firmware_update"))
        report.line(f"    log: {describe_log_line(await _next(logs))}")
        report.line(f"  exec {DISPLAY}.firmware_update() -> {refusal}")
        report.counts["error replies"] += 1
        report.counts["log lines"] += 1
    async with rt.deadline(STEP, "PlaceOS: error reply"):
        refusal = await _refused(client, ("Projector", "power"), True)
        report.line(f"  exec Projector.power(true) -> {refusal}")
        report.counts["error replies"] += 1


async def _refused(client: PlaceOSClient, method: tuple[str, str], *args: Any) -> ServerError:
    """The error reply an exec must get (a RuntimeError if it succeeds)."""
    mod, name = method
    try:
        await client.exec(SYS, mod, name, *args, timeout=STEP)
    except ServerError as exc:
        return exc
    raise RuntimeError(f"{mod}.{name} should have been refused")


async def _kill_and_reconnect(
    rt: Runtime,
    report: _Report,
    server: PlaceOSServer,
    client: PlaceOSClient,
    power: AsyncIterator[Any],
) -> None:
    async with rt.deadline(STEP, "PlaceOS: the reconnect"):
        server.drop_connections()
        if not await rt.wait_for(lambda: not client.connected, timeout=STEP):
            raise RuntimeError("the client did not see its connection drop")
        report.line("  kill: the server dropped the connection; the client is reconnecting")
        server.set_status(SYS, DISPLAY, "power", True)
        report.line("    the engine sets power = true while the client is away")
        value = await _until(power, True)
        report.line(f"    reconnected, binding restored by itself -> {json_line(value)}")
        server.set_status(SYS, DISPLAY, "power", False)
        value = await _until(power, False)
        report.line(f"    live again: the engine sets power = false -> {json_line(value)}")
        report.counts["values"] += 2
        report.counts["reconnects"] += 1


def _summary(counts: Counter[str], seconds: float) -> str:
    parts = [
        f"{counts['mews events']} Mews events decoded from {counts['mews messages']} messages",
        f"{counts['values']} PlaceOS values",
        f"{counts['exec results']} exec results",
        f"{counts['error replies']} error replies",
        f"{counts['log lines']} debug lines",
        f"{counts['reconnects']} reconnects",
    ]
    return f"Done in {seconds:.1f} s: " + ", ".join(parts) + "."


def run_demo(rt: Runtime, write: Callable[[str], None]) -> None:
    """Run the demo on ``rt``'s transport, writing readable lines with ``write``."""
    report = _Report(write)
    started = time.monotonic()

    async def main() -> None:
        report.line(f"protocore demo over the {rt.name} transport (127.0.0.1 only)")
        report.line()
        await _mews(rt, report)
        report.line()
        await _placeos(rt, report)
        report.line()

    rt.run(main)
    report.line(_summary(report.counts, time.monotonic() - started))
