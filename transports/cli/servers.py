"""``protocore serve placeos|mews``: the fake servers, written once for every transport.

Each is a coroutine the `Runtime` runs. ``listening on URL`` goes to stdout first (for
scripts); what a person watching wants to know (what is served, which credentials are
accepted, progress) goes to stderr, never a credential's value.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from protocore.mews import Envelope
from protocore.placeos import MockEngine

from .credentials import MEWS_ACCESS_ENV, MEWS_CLIENT_ENV, MewsTokens
from .output import emit, note, plural
from .runtime import Runtime

__all__ = ["serve_placeos", "serve_mews", "PROGRESS_EVERY"]

PROGRESS_EVERY = 5.0
"""Seconds between progress lines of a long replay."""


async def serve_placeos(
    rt: Runtime, engine: MockEngine, host: str, port: int, api_key: str | None
) -> None:
    """Serve ``engine`` until interrupted: to clients with ``api_key``, or (None) to all."""
    keys = (api_key,) if api_key else ()
    async with rt.serve_placeos(
        engine, host, port, api_keys=keys, allow_anonymous=not keys
    ) as server:
        emit(f"listening on {server.url}")
        systems = engine.system_ids
        modules = sum(len(engine.modules(sys_id)) for sys_id in systems)
        note(
            f"PlaceOS engine: {plural(len(systems), 'system')}, {plural(modules, 'module')} "
            f"({', '.join(systems)})"
        )
        if keys:
            note("accepting clients that send the API key given (--api-key or PLACEOS_API_KEY)")
        else:
            note("--allow-anonymous: every client is accepted, with or without a key")
        note("serving until Ctrl-C")
        await rt.sleep_forever()


async def serve_mews(
    rt: Runtime,
    host: str,
    port: int,
    tokens: MewsTokens,
    messages: Iterable[Envelope],
    *,
    rate: float,
    total: int | None,
) -> None:
    """Push ``messages`` (``rate`` a second) to every client; serve on until interrupted.

    Nothing is sent while no client is connected: the replay waits for the first one.
    """
    async with rt.serve_mews(
        host, port, client_token=tokens.client_token, access_token=tokens.access_token
    ) as server:
        emit(f"listening on {server.url}")
        if tokens.demo:
            note("accepting Mews' published demo tokens (none given: see --help)")
        else:
            note(
                "accepting the tokens given (--client-token and --access-token, "
                f"or {MEWS_CLIENT_ENV} and {MEWS_ACCESS_ENV})"
            )
        interval = 1.0 / rate
        sent = events = 0
        last_progress = time.monotonic()
        for envelope in messages:
            if server.connections == 0:
                note("waiting for a client to connect")
                await rt.wait_for(lambda: server.connections > 0, timeout=float("inf"))
            server.publish(envelope)
            sent += 1
            events += len(envelope.events)
            now = time.monotonic()
            if now - last_progress >= PROGRESS_EVERY:
                last_progress = now
                progress = f"{sent}/{total}" if total is not None else str(sent)
                note(f"sent {progress} messages ({events} events)")
            await rt.sleep(interval)
        note(f"sent all {sent} messages ({events} events); serving until Ctrl-C")
        await rt.sleep_forever()
