"""Case 3: wire bytes of N frames to typed events, all in memory (no sockets).

Four ways to turn the same server bytes (N text frames, each a 4-event Mews envelope)
into something the application can use:

- ``protocore``: `ClientConnection` around a `MewsClient` (framing, UTF-8 check,
  reassembly, limits and decoding in one object), then ``events()``.
- ``wsproto + codec``: wsproto's ``WSConnection`` for the frames, then
  `decode_envelope` on each message, as the session would call it: what the connection
  class costs over composing the two parts by hand.
- ``websockets + msgspec``: websockets' sans-IO ``ClientProtocol`` and msgspec's typed
  decoder (the Structs of `codec_cases`): what a user would hand-roll, typed.
- ``websockets + json``: the same with ``json.loads``, untyped.
"""

from __future__ import annotations

import json

import msgspec
from websockets.client import ClientProtocol
from websockets.protocol import State
from websockets.uri import parse_uri
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage
from wsproto.frame_protocol import FrameProtocol

from protocore import ClientConnection
from protocore.mews import MewsClient, decode_envelope
from protocore.mews.session import EventsReceived

from .codec_cases import MsEnvelope
from .harness import Contender
from .inputs import MEWS

__all__ = ["FRAMES", "pipeline_contenders"]

FRAMES = 64
_URL = "ws://127.0.0.1:8080/ws/connector"


def _accept(request: bytes) -> bytes:
    """A server's answer to an opening handshake, from wsproto's server side."""
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(request)
    for event in server.events():
        if isinstance(event, Request):
            return server.send(AcceptConnection())
    raise RuntimeError("no upgrade request")


def server_frames(message: bytes, count: int) -> bytes:
    """``count`` unmasked text frames (a server's), each holding ``message``."""
    frame = FrameProtocol(client=False, extensions=[]).send_data(message.decode())
    return bytes(frame) * count


def _protocore(blob: bytes, expected: int) -> Contender:
    session = MewsClient("client-token", "access-token")
    conn = ClientConnection(session, _URL, keepalive_interval=None)
    conn.start(0.0)
    conn.receive_data(_accept(conn.data_to_send()), 0.0)
    conn.events()

    def run() -> int:
        conn.receive_data(blob, 1.0)
        count = 0
        for event in conn.events():
            if event.__class__ is EventsReceived:
                count += len(event.envelope.events)
        return count

    assert run() == expected
    return Contender("protocore", run)


def _wsproto_codec(blob: bytes, expected: int) -> Contender:
    client = WSConnection(ConnectionType.CLIENT)
    request = client.send(Request(host="127.0.0.1", target="/ws/connector"))
    client.receive_data(_accept(request))
    list(client.events())
    limit = MewsClient("client-token", "access-token").max_message_size

    def run() -> int:
        client.receive_data(blob)
        count = 0
        for event in client.events():
            if isinstance(event, TextMessage):
                envelope = decode_envelope(event.data, max_size=limit, lenient=True)
                count += len(envelope.events)
        return count

    assert run() == expected
    return Contender("wsproto + codec", run)


def _websockets_json(blob: bytes, expected: int) -> Contender:
    client = ClientProtocol(parse_uri(_URL), state=State.OPEN)
    loads = json.loads

    def run() -> int:
        client.receive_data(blob)
        count = 0
        for frame in client.events_received():
            count += len(loads(frame.data)["Events"])  # type: ignore[union-attr,arg-type]
        return count

    assert run() == expected
    return Contender("websockets + json", run)


def _websockets_msgspec(blob: bytes, expected: int) -> Contender:
    client = ClientProtocol(parse_uri(_URL), state=State.OPEN)
    decode = msgspec.json.Decoder(MsEnvelope).decode

    def run() -> int:
        client.receive_data(blob)
        count = 0
        for frame in client.events_received():
            count += len(decode(frame.data).events)  # type: ignore[union-attr]
        return count

    assert run() == expected
    return Contender("websockets + msgspec", run)


def pipeline_contenders() -> list[Contender]:
    """The four contenders, each fed the same ``FRAMES`` frames per operation."""
    _, message = MEWS[1]
    blob = server_frames(message, FRAMES)
    expected = FRAMES * len(json.loads(message)["Events"])
    return [
        _protocore(blob, expected),
        _wsproto_codec(blob, expected),
        _websockets_msgspec(blob, expected),
        _websockets_json(blob, expected),
    ]
