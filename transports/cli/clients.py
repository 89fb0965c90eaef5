"""``protocore mews listen`` and ``protocore placeos exec|bind|debug``: the clients.

Each is a coroutine the `Runtime` runs, the same on every transport. Output for
scripts goes to stdout, one JSON line per thing; notes for the person watching go to
stderr. The transports log connects, drops and reconnects themselves (shown with
``-v``), so the notes here never repeat them. Credentials are never written
anywhere; URLs are shown without their query.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Final, Literal, TypeVar

from protocore import BadMessage
from protocore.mews import Reconnected

from .credentials import MewsTokens
from .output import describe_log_line, emit, json_line, note, safe_url
from .runtime import Runtime

__all__ = ["mews_listen", "placeos_exec", "placeos_bind", "placeos_debug", "NO_VALUE_AFTER"]

T = TypeVar("T")

NO_VALUE_AFTER: Final = 1.0
"""Seconds after a bind without a value before saying so: a server sends the current
value straight after accepting the bind, and nothing at all when there is none."""


@contextlib.contextmanager
def _unless_done_within(seconds: float, then: Callable[[], None]) -> Iterator[Callable[[], None]]:
    """Call ``then`` (from a timer thread) if the block has not called ``done`` within
    ``seconds``; the same on every transport, since it only tells the person watching."""
    lock = threading.Lock()
    finished = False

    def done() -> None:
        nonlocal finished
        with lock:
            finished = True

    def ring() -> None:
        with lock:
            if not finished:
                then()

    timer = threading.Timer(seconds, ring)
    timer.daemon = True
    timer.start()
    try:
        yield done
    finally:
        done()
        timer.cancel()


async def mews_listen(
    rt: Runtime,
    url: str,
    tokens: MewsTokens,
    *,
    auth: Literal["cookie", "query"],
    count: int | None,
) -> None:
    """Print each event as a JSON line (``count`` of them, or until interrupted)."""
    async with rt.connect_mews(
        url, client_token=tokens.client_token, access_token=tokens.access_token, auth=auth
    ) as events:
        demo = " (with Mews' published demo tokens)" if tokens.demo else ""
        note(f"waiting for events from {safe_url(url)}{demo}")
        await _print_each(events, _event_line, count)


def _event_line(event: Any) -> str | None:
    """An event's JSON line; None (and a note) for a reconnect or an undecodable message."""
    if isinstance(event, Reconnected):
        note(
            "the connection was lost and is back: events sent meanwhile are lost; "
            "resynchronise through the REST API"
        )
        return None
    if isinstance(event, BadMessage):
        note(f"undecodable message skipped: {event.error}")
        return None
    return json_line(event)


async def placeos_exec(
    rt: Runtime,
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
    async with rt.connect_placeos(url, api_key=api_key, reconnect=False) as client:
        emit(json_line(await client.exec(sys, mod, name, *args, index=index, timeout=timeout)))


async def _print_each(
    items: AsyncIterator[T], show: Callable[[T], str | None], count: int | None
) -> None:
    """Print ``show(item)`` for each item: ``count`` of them, or until the stream ends
    (an item ``show`` gives None for is not printed, nor counted)."""
    if count == 0:
        return
    seen = 0
    async for item in items:
        line = show(item)
        if line is None:
            continue
        emit(line)
        seen += 1
        if count is not None and seen >= count:
            return


async def placeos_bind(
    rt: Runtime,
    url: str,
    api_key: str,
    target: tuple[str, str, str],
    *,
    index: int,
    count: int | None,
) -> None:
    """Print the variable's value, then each new one, as JSON lines."""
    sys, mod, name = target
    variable = f"{sys} {mod}_{index}.{name}"
    async with (
        rt.connect_placeos(url, api_key=api_key) as client,
        client.bind(sys, mod, name, index=index) as values,
    ):
        note(f"bound to {variable} at {safe_url(url)}")
        if count == 0:
            return
        waiting = f"{variable} has no value yet; waiting for one"
        with _unless_done_within(NO_VALUE_AFTER, lambda: note(waiting)) as got_one:
            try:
                first = await anext(values)
            except StopAsyncIteration:
                return
            got_one()
        emit(json_line(first))
        await _print_each(values, json_line, None if count is None else count - 1)


async def placeos_debug(
    rt: Runtime,
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
        rt.connect_placeos(url, api_key=api_key) as client,
        client.debug(sys, module_id, index=index) as lines,
    ):
        note(f"following the logs of {sys} {module_id} at {safe_url(url)}")
        await _print_each(lines, json_line if as_json else describe_log_line, count)
