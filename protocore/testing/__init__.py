"""Hypothesis strategies for protocore's models and wire formats, to test and fuzz with.

Install the ``testing`` extra (``pip install 'protocore-ws[testing]'``): this package
imports hypothesis, and ``import protocore`` never imports this package.

- `protocore.testing.mews`: Mews events and envelopes, wire messages in the current
  and legacy dialects, near misses and garbage.
- `protocore.testing.placeos`: PlaceOS requests and responses, wire messages in both
  dialects (`protocore.placeos.Dialect`), look-alikes and garbage.
- `protocore.testing.wire`: raw WebSocket frames (valid, and each way of breaking
  RFC 6455), byte mutations and socket chunkings.
- `protocore.testing.values`: JSON values the two JSON backends agree on.

The most used strategies are re-exported here. Fuzz your own handler with them::

    from hypothesis import given, strategies as st
    from protocore.mews import MewsClient
    from protocore.events import BadMessage
    from protocore.mews import EventsReceived
    from protocore.testing import garbage_mews_messages, mews_messages, mutations

    @given(st.one_of(mews_messages(), garbage_mews_messages(),
                     mews_messages().flatmap(mutations)))
    def test_my_handler_survives_anything(data: bytes) -> None:
        client = MewsClient("client-token", "access-token")
        client.connection_made(0.0)
        for event in client.receive_message(data, 1.0):
            assert isinstance(event, EventsReceived | BadMessage)
            my_handler(event)          # yours: must not raise either

Every strategy is a function returning a ``SearchStrategy``, as in hypothesis itself.
"""

from __future__ import annotations

from . import mews, placeos, values, wire
from .mews import (
    envelopes,
    garbage_mews_messages,
    mews_events,
    mews_messages,
    near_mews_messages,
)
from .placeos import (
    garbage_messages,
    lookalikes,
    request_messages,
    requests,
    response_messages,
    responses,
)
from .values import json_values
from .wire import chunkings, encode_frame, frame_streams, frames, mutations

__all__ = [
    "mews",
    "placeos",
    "values",
    "wire",
    "json_values",
    # Mews
    "mews_events",
    "envelopes",
    "mews_messages",
    "near_mews_messages",
    "garbage_mews_messages",
    # PlaceOS
    "requests",
    "responses",
    "request_messages",
    "response_messages",
    "lookalikes",
    "garbage_messages",
    # WebSocket bytes
    "encode_frame",
    "frames",
    "frame_streams",
    "mutations",
    "chunkings",
]
