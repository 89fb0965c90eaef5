"""Drivers: the sans-IO logic above one connection that every transport shares.

A connection (`protocore.connection`) lives for one socket. A driver lives for
what the application sees: reconnects and backoff (`ClientDriver`), calls and
subscriptions (`PlaceOSDriver`), an event stream with backpressure
(`MewsDriver`), a fake server's peers (`ServerDriver`). An adapter polls it and
wakes whoever waits on a `Call` or a `Feed`; nothing here does I/O.
"""

from .client import ClientDriver, ClientState, DriverOptions, Phase, reconnect_policy
from .mews import MewsDriver, MewsItem
from .placeos import Listening, PlaceOSDriver, describe
from .reads import READ_SIZE
from .server import ConnectionOptions, Peer, ServerDriver
from .stats import Stats
from .waiters import Call, Feed, Waitable

__all__ = [
    "ClientDriver",
    "ClientState",
    "DriverOptions",
    "Phase",
    "reconnect_policy",
    "PlaceOSDriver",
    "Listening",
    "describe",
    "MewsDriver",
    "MewsItem",
    "ServerDriver",
    "Peer",
    "ConnectionOptions",
    "Stats",
    "Call",
    "Feed",
    "Waitable",
    "READ_SIZE",
]
