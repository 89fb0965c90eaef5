"""Messages the async and blocking APIs share, so a misuse reads the same everywhere."""

from __future__ import annotations

__all__ = [
    "ENTER_CLIENT_ONCE",
    "ENTER_SUBSCRIPTION_ONCE",
    "NOT_RUNNING",
    "OTHER_WAITER",
    "STREAM_OUTSIDE",
    "SUBSCRIPTION_OUTSIDE",
    "server_url",
]

ENTER_CLIENT_ONCE = "a client can be entered only once"
ENTER_SUBSCRIPTION_ONCE = "a subscription can be entered only once"
NOT_RUNNING = "not running: use it inside its 'with' (or 'async with') block"
OTHER_WAITER = "another task or thread is already waiting on this iterator"


SUBSCRIPTION_OUTSIDE = (
    "a subscription is iterated inside its block: (async) with client.bind(...) as values"
)
STREAM_OUTSIDE = (
    "a Mews stream is iterated inside its block: (async) with connect_mews(...) as events"
)


def server_url(host: str, port: int, secure: bool, path: str) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'wss' if secure else 'ws'}://{shown}:{port}{path}"
