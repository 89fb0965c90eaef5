"""The Mews Connector API WebSocket: models, codec and sessions.

Mews pushes ``{"Events": [...]}`` messages and expects nothing back. Decode them with
`decode_envelope` (strict) or ``decode_envelope(data, lenient=True)`` (bad events
become `InvalidEvent` in place), encode with `encode_envelope`; `MewsClient` and
`MewsServer` are the sessions a `protocore.connection` drives.

Every message version since 2017 decodes: legacy ``Space`` events arrive as
`ResourceEvent` (``legacy_space=True``), legacy field names fill the current fields.
We emit the current dialect for values the application sets, and reproduce the
original spelling for everything that was decoded and not changed.
"""

from .codec import decode_envelope, encode_envelope
from .models import (
    CommandState,
    DeviceCommandEvent,
    Envelope,
    InvalidEvent,
    MewsEvent,
    PriceUpdateEvent,
    ReservationEvent,
    ReservationState,
    ResourceEvent,
    ResourceState,
    UnknownEvent,
)
from .session import (
    DEMO_URL,
    PRODUCTION_URL,
    EventsReceived,
    MewsClient,
    MewsServer,
    Reconnected,
    SessionState,
    legacy_url,
)

__all__ = [
    "decode_envelope",
    "encode_envelope",
    "Envelope",
    "MewsEvent",
    "DeviceCommandEvent",
    "ReservationEvent",
    "ResourceEvent",
    "PriceUpdateEvent",
    "UnknownEvent",
    "InvalidEvent",
    "CommandState",
    "ReservationState",
    "ResourceState",
    "MewsClient",
    "MewsServer",
    "EventsReceived",
    "Reconnected",
    "SessionState",
    "DEMO_URL",
    "PRODUCTION_URL",
    "legacy_url",
]
