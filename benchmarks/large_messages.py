"""``python -m benchmarks.large_messages [--quick]``: Autobahn 9.x shapes, timed.

Large messages, in one frame, in many fragments, in small writes, and many small
messages, fed to a `ClientConnection` (unmasked frames, as from a server) and a
`ServerConnection` (masked frames, as from a client) whose limit lets them all in.
wsproto's own ``WSConnection`` reads the same bytes as the reference (it hands over
each frame's piece and leaves the joining to its user, so fragmented messages cost it
less than a whole message costs us). Correctness of these cases is checked by the
conformance tests; this only times them.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import attrs
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request
from wsproto.frame_protocol import FrameProtocol

from protocore import ClientConnection, ServerConnection
from protocore.events import Event
from protocore.session import ClientHandshake, Rejection

from .harness import Contender, compare
from .pipeline import _accept

__all__ = ["SHAPES", "Sink", "main"]

_LIMIT = 17 * 2**20
_REQUEST = (
    b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


@attrs.frozen
class Shape:
    name: str
    message: int  # bytes per message
    fragment: int  # payload bytes per frame
    chop: int  # bytes per write (0: the whole message at once)
    count: int = 1  # messages per operation


SHAPES = (
    Shape("9.1.6 16 MiB, one frame", 2**24, 2**24, 0),
    Shape("9.3.5 4 MiB in 16 KiB fragments", 2**22, 2**14, 0),
    Shape("9.3.1 1 MiB in 64 B fragments", 2**20, 64, 0),
    Shape("9.5.6 1 MiB in writes of 2 KiB", 2**20, 2**20, 2048),
    Shape("9.7.4 1000 messages of 256 B", 256, 256, 0, count=1000),
)


@attrs.frozen
class Sink:
    """A session (client or server) that admits everyone, sends nothing and counts
    what it receives."""

    received: list[int] = attrs.field(factory=lambda: [0])

    def handshake(self) -> ClientHandshake:
        return ClientHandshake()

    def authorize(self, target: str, headers: Sequence[tuple[str, str]]) -> Rejection | None:
        return None

    def connection_made(self, now: float) -> list[Event]:
        return []

    def receive_message(self, data: str | bytes, now: float) -> list[Event]:
        self.received[0] += 1
        return []

    def messages_to_send(self) -> list[str]:
        return []

    def next_deadline(self) -> float | None:
        return None

    def handle_timer(self, now: float) -> list[Event]:
        return []

    def connection_lost(self, now: float) -> list[Event]:
        return []


def _writes(shape: Shape, *, from_client: bool) -> list[bytes]:
    """The bytes of one operation (``count`` messages), write by write."""
    proto = FrameProtocol(client=from_client, extensions=[])
    text = "*" * shape.message
    frames = bytearray()
    for start in range(0, shape.message, shape.fragment):
        piece = text[start : start + shape.fragment]
        frames += proto.send_data(piece, fin=start + shape.fragment >= shape.message)
    if shape.count > 1:
        return [bytes(frames)] * shape.count
    data = bytes(frames)
    if not shape.chop:
        return [data]
    return [data[i : i + shape.chop] for i in range(0, len(data), shape.chop)]


def _protocore(side: str, writes: list[bytes], count: int) -> Contender:
    sink = Sink()
    conn: ClientConnection | ServerConnection
    if side == "client":
        conn = ClientConnection(sink, "ws://127.0.0.1/", max_message_size=_LIMIT)
        conn.start(0.0)
        conn.receive_data(_accept(conn.data_to_send()), 0.0)
    else:
        conn = ServerConnection(sink, max_message_size=_LIMIT)
        conn.start(0.0)
        conn.receive_data(_REQUEST, 0.0)
        conn.data_to_send()
    conn.events()

    def run() -> None:
        before = sink.received[0]
        for data in writes:
            conn.receive_data(data, 1.0)
        conn.events()
        assert sink.received[0] - before == count

    return Contender("protocore", run)


def _wsproto(side: str, writes: list[bytes], count: int) -> Contender:
    if side == "client":
        ws = WSConnection(ConnectionType.CLIENT)
        ws.receive_data(_accept(ws.send(Request(host="127.0.0.1", target="/"))))
    else:
        ws = WSConnection(ConnectionType.SERVER)
        ws.receive_data(_REQUEST)
        list(ws.events())
        ws.send(AcceptConnection())
    list(ws.events())

    def run() -> None:
        done = 0
        for data in writes:
            ws.receive_data(data)
            done += sum(1 for e in ws.events() if getattr(e, "message_finished", False))
        assert done == count

    return Contender("wsproto", run)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Autobahn 9.x shapes, timed")
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 7
    print(f"{'case':36} {'side':7} {'protocore MiB/s':>16} {'wsproto MiB/s':>14} {'ratio':>6}")
    for shape in SHAPES:
        for side in ("client", "server"):
            writes = _writes(shape, from_client=side == "server")
            makers: list[Callable[[str, list[bytes], int], Contender]] = [_protocore, _wsproto]
            result = compare(
                shape.name,
                [make(side, writes, shape.count) for make in makers],
                rounds=rounds,
                batch_seconds=0.05,
            )
            size = shape.message * shape.count / 2**20
            ours, theirs = (size / result.per_op[n] for n in ("protocore", "wsproto"))
            print(f"{shape.name:36} {side:7} {ours:16.1f} {theirs:14.1f} {ours / theirs:5.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
