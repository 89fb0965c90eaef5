"""The CLI's network commands, written once against `transports._cli_adapters.Adapter`.

Each is a coroutine the adapter runs: the fake servers (``serve placeos``, ``serve
mews``) and the clients (``mews listen``, ``placeos exec|bind|debug``). Output for
scripts goes to stdout, one line per thing; what a person watching wants to know
(where we listen, progress, reconnects) goes to stderr. Credentials are never
written anywhere; URLs are shown without their query.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Literal, TypeVar

import attrs

from protocore.connection import parse_ws_url
from protocore.events import BadMessage
from protocore.mews import Envelope, Reconnected
from protocore.placeos import MockEngine

from ._cli_adapters import Adapter
from ._cli_output import describe_log_line, emit, json_line, note

__all__ = [
    "MewsTokens",
    "serve_placeos",
    "serve_mews",
    "mews_listen",
    "placeos_exec",
    "placeos_bind",
    "placeos_debug",
    "safe_url",
]

T = TypeVar("T")

PROGRESS_EVERY = 5.0
"""Seconds between progress lines of a long replay."""


@attrs.frozen(repr=False)
class MewsTokens:
    """The two Mews tokens; a repr that shows neither."""

    client_token: str
    access_token: str

    def __repr__(self) -> str:
        return "MewsTokens(<hidden>)"


def safe_url(url: str) -> str:
    """``url`` without its query (where legacy Mews URLs carry the tokens)."""
    parsed = parse_ws_url(url)
    return f"{parsed.scheme}://{parsed.host_header}{parsed.path}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# -- servers -----------------------------------------------------------------------------


async def serve_placeos(
    ad: Adapter, engine: MockEngine, host: str, port: int, api_key: str | None
) -> None:
    """Serve ``engine`` until interrupted."""
    keys = (api_key,) if api_key else ()
    async with ad.serve_placeos(engine, host, port, api_keys=keys) as server:
        emit(f"listening on {server.url}")
        systems = engine.system_ids
        modules = sum(len(engine.modules(sys_id)) for sys_id in systems)
        note(
            f"PlaceOS engine: {_plural(len(systems), 'system')}, {_plural(modules, 'module')} "
            f"({', '.join(systems)})"
        )
        if not keys:
            note("no API key given (--api-key or PLACEOS_API_KEY): every client is accepted")
        note("serving until Ctrl-C")
        await ad.sleep_forever()


async def serve_mews(
    ad: Adapter,
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
    async with ad.serve_mews(
        host, port, client_token=tokens.client_token, access_token=tokens.access_token
    ) as server:
        emit(f"listening on {server.url}")
        interval = 1.0 / rate
        sent = events = 0
        last_progress = time.monotonic()
        for envelope in messages:
            if server.connections == 0:
                note("waiting for a client to connect")
                await ad.wait_for(lambda: server.connections > 0, timeout=float("inf"))
            server.publish(envelope)
            sent += 1
            events += len(envelope.events)
            now = time.monotonic()
            if now - last_progress >= PROGRESS_EVERY:
                last_progress = now
                progress = f"{sent}/{total}" if total is not None else str(sent)
                note(f"sent {progress} messages ({events} events)")
            await ad.sleep(interval)
        note(f"sent all {sent} messages ({events} events); serving until Ctrl-C")
        await ad.sleep_forever()


# -- clients -----------------------------------------------------------------------------


async def mews_listen(
    ad: Adapter,
    url: str,
    tokens: MewsTokens,
    *,
    auth: Literal["cookie", "query"],
    count: int | None,
) -> None:
    """Print each event as a JSON line (``count`` of them, or until interrupted)."""
    where = safe_url(url)
    async with ad.connect_mews(
        url, client_token=tokens.client_token, access_token=tokens.access_token, auth=auth
    ) as events:
        note(f"connected to {where}; waiting for events")
        seen = 0
        if count == 0:
            return
        async for event in events:
            if isinstance(event, Reconnected):
                note(
                    "reconnected: events sent while disconnected are lost; "
                    "resynchronise through the REST API"
                )
                continue
            if isinstance(event, BadMessage):
                note(f"undecodable message skipped: {event.error}")
                continue
            emit(json_line(event))
            seen += 1
            if count is not None and seen >= count:
                return


async def placeos_exec(
    ad: Adapter,
    url: str,
    api_key: str,
    target: tuple[str, str, str],
    args: list[Any],
    *,
    index: int,
    timeout: float,
) -> None:
    """Print the method's result as JSON."""
    sys, mod, name = target
    async with ad.connect_placeos(url, api_key=api_key, reconnect=False) as client:
        emit(json_line(await client.exec(sys, mod, name, *args, index=index, timeout=timeout)))


async def _print_each(items: AsyncIterator[T], show: Callable[[T], str], count: int | None) -> None:
    """Print ``show(item)`` for each item: ``count`` of them, or until the stream ends."""
    if count == 0:
        return
    seen = 0
    async for item in items:
        emit(show(item))
        seen += 1
        if count is not None and seen >= count:
            return


async def placeos_bind(
    ad: Adapter,
    url: str,
    api_key: str,
    target: tuple[str, str, str],
    *,
    index: int,
    count: int | None,
) -> None:
    """Print the variable's value, then each new one, as JSON lines."""
    sys, mod, name = target
    async with (
        ad.connect_placeos(url, api_key=api_key) as client,
        client.bind(sys, mod, name, index=index) as values,
    ):
        note(f"bound to {sys} {mod}_{index}.{name} at {safe_url(url)}")
        await _print_each(values, json_line, count)


async def placeos_debug(
    ad: Adapter,
    url: str,
    api_key: str,
    target: tuple[str, str],
    *,
    index: int,
    count: int | None,
    as_json: bool,
) -> None:
    """Print a module's log lines (text, or JSON lines)."""
    sys, module_id = target
    async with (
        ad.connect_placeos(url, api_key=api_key) as client,
        client.debug(sys, module_id, index=index) as lines,
    ):
        note(f"following the logs of {sys} {module_id} at {safe_url(url)}")
        await _print_each(lines, json_line if as_json else describe_log_line, count)
