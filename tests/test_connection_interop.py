"""The connection against an independent implementation: websockets' sans-I/O layer.

`ClientConnection` talks to `websockets.server.ServerProtocol` and
`ServerConnection` to `websockets.client.ClientProtocol`, in memory. websockets
shares no code with wsproto or with us, so agreement here means the wire format
is right, not merely self-consistent.
"""

from __future__ import annotations

import pytest
from sessions_for_tests import (
    EchoServerSession,
    Lost,
    Made,
    Received,
    RecordingClientSession,
)
from websockets.client import ClientProtocol
from websockets.exceptions import InvalidStatus
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.uri import parse_uri

from protocore.connection import ClientConnection, ConnectionState, ServerConnection
from protocore.events import Connected, ConnectionClosed, HandshakeRejected

TOKEN = "interop-T0KEN"
CLOSED = ConnectionState.CLOSED
OPEN = ConnectionState.OPEN


# -- plumbing -----------------------------------------------------------------------


def to_ours(
    theirs: ServerProtocol | ClientProtocol, ours: ClientConnection | ServerConnection, now: float
) -> None:
    """Deliver what websockets wrote; its b"" means it closed the TCP stream."""
    for chunk in theirs.data_to_send():
        if ours.state is CLOSED:
            return
        if chunk:
            ours.receive_data(chunk, now)
        else:
            ours.receive_eof(now)


def to_theirs(
    ours: ClientConnection | ServerConnection, theirs: ServerProtocol | ClientProtocol
) -> None:
    data = ours.data_to_send()
    if data:
        theirs.receive_data(data)
    if ours.state is CLOSED and theirs.state is not State.CLOSED:
        theirs.receive_eof()  # our transport closes the socket at CLOSED


def frames(theirs: ServerProtocol | ClientProtocol) -> list[tuple[Opcode, bytes]]:
    return [(e.opcode, e.data) for e in theirs.events_received() if isinstance(e, Frame)]


# -- our client, their server -------------------------------------------------------


def connect_client(
    *,
    session: RecordingClientSession | None = None,
    url: str = "ws://example.com/api?x=1",
    server: ServerProtocol | None = None,
    **kwargs: object,
) -> tuple[ClientConnection, RecordingClientSession, ServerProtocol, Request]:
    cs = session or RecordingClientSession(headers=[("X-API-Key", TOKEN)])
    client = ClientConnection(cs, url, **kwargs)  # type: ignore[arg-type]
    theirs = server or ServerProtocol()
    client.start(0.0)
    theirs.receive_data(client.data_to_send())
    [request] = theirs.events_received()
    assert isinstance(request, Request)
    return client, cs, theirs, request


def open_client(
    **kwargs: object,
) -> tuple[ClientConnection, RecordingClientSession, ServerProtocol]:
    client, cs, theirs, request = connect_client(**kwargs)  # type: ignore[arg-type]
    theirs.send_response(theirs.accept(request))
    to_ours(theirs, client, 0.0)
    assert client.events() == [Connected(None), Made()]
    assert theirs.state is State.OPEN
    return client, cs, theirs


def test_client_handshake_carries_header_and_query_auth() -> None:
    cs = RecordingClientSession(
        headers=[("X-API-Key", TOKEN), ("Cookie", f"ClientToken={TOKEN}; AccessToken=a")],
        query=[("api-key", TOKEN), ("fixed_device", "true")],
    )
    client, _, theirs, request = connect_client(session=cs, url="ws://example.com:8080/api?x=1")
    assert request.path == f"/api?x=1&api-key={TOKEN}&fixed_device=true"
    assert request.headers["X-API-Key"] == TOKEN
    assert request.headers["Cookie"] == f"ClientToken={TOKEN}; AccessToken=a"
    assert request.headers["Host"] == "example.com:8080"
    response = theirs.accept(request)
    assert response.status_code == 101  # websockets found the request valid
    theirs.send_response(response)
    to_ours(theirs, client, 0.0)
    assert client.events() == [Connected(None), Made()]
    assert client.state is OPEN


def test_client_text_both_ways() -> None:
    client, cs, theirs = open_client()
    theirs.send_text("héllo".encode())
    theirs.send_text(b"z" * 70_000)
    to_ours(theirs, client, 1.0)
    assert client.events() == [Received("héllo"), Received("z" * 70_000)]
    cs.send("from the client")
    cs.send("ü" * 40_000)
    to_theirs(client, theirs)
    assert frames(theirs) == [
        (Opcode.TEXT, b"from the client"),
        (Opcode.TEXT, ("ü" * 40_000).encode()),
    ]


def test_client_answers_their_ping_and_their_pong_answers_our_keepalive() -> None:
    client, _, theirs = open_client(keepalive_interval=5.0, keepalive_timeout=2.0)
    theirs.send_ping(b"yours")
    to_ours(theirs, client, 1.0)
    to_theirs(client, theirs)
    assert frames(theirs) == [(Opcode.PONG, b"yours")]
    client.handle_timer(5.0)
    to_theirs(client, theirs)
    [(opcode, _payload)] = frames(theirs)
    assert opcode is Opcode.PING
    to_ours(theirs, client, 5.5)  # websockets pongs by itself
    assert client.next_deadline() == 10.0
    client.handle_timer(7.5)  # past the pong deadline: nothing happens, the pong came
    assert client.state is OPEN
    assert client.events() == []


def test_client_reassembles_their_fragments() -> None:
    client, _, theirs = open_client()
    word = "ça va".encode()
    theirs.send_text(word[:1], fin=False)  # "ç" split across frames
    theirs.send_ping(b"meanwhile")
    theirs.send_continuation(word[1:3], fin=False)
    theirs.send_continuation(word[3:], fin=True)
    to_ours(theirs, client, 1.0)
    assert client.events() == [Received("ça va")]


def test_client_starts_the_close_handshake() -> None:
    client, cs, theirs = open_client()
    client.close(1000, "done", now=1.0)
    to_theirs(client, theirs)
    assert frames(theirs) == [(Opcode.CLOSE, b"\x03\xe8done")]
    to_ours(theirs, client, 1.2)  # their close frame, then their EOF
    assert client.state is CLOSED
    assert client.events() == [Lost(), ConnectionClosed(1000, "done", True)]
    to_theirs(client, theirs)
    assert theirs.state is State.CLOSED
    assert theirs.close_code == 1000
    assert cs.lost == 1


def test_client_answers_their_close() -> None:
    client, _cs, theirs = open_client()
    theirs.send_close(1001, "restarting")
    to_ours(theirs, client, 1.0)
    assert client.events() == [Lost(), ConnectionClosed(1001, "restarting", False)]
    to_theirs(client, theirs)
    assert theirs.close_code == 1001
    assert theirs.close_reason == "restarting"
    assert theirs.state is State.CLOSED


def test_client_sees_their_rejection() -> None:
    client, cs, theirs, _request = connect_client()
    theirs.send_response(theirs.reject(401, "no such key\n"))
    to_ours(theirs, client, 0.0)
    events = client.events()
    rejected = events[0]
    assert isinstance(rejected, HandshakeRejected)
    assert rejected.status_code == 401
    assert rejected.body == b"no such key\n"
    assert ("content-type", "text/plain; charset=utf-8") in rejected.headers
    assert events[1:] == [Lost(), ConnectionClosed(1006, "opening handshake refused with HTTP 401")]
    assert cs.made == 0


def test_client_refuses_their_oversized_message() -> None:
    client, cs, theirs = open_client(max_message_size=1000)
    theirs.send_text(b"a" * 1001)
    to_ours(theirs, client, 1.0)
    assert client.state is ConnectionState.CLOSING
    to_theirs(client, theirs)
    assert theirs.close_rcvd is not None
    assert theirs.close_rcvd.code == 1009
    to_ours(theirs, client, 1.1)
    assert client.events() == [Lost(), ConnectionClosed(1009, "message too big", True)]
    assert cs.received == []


def test_client_subprotocol_chosen_by_them() -> None:
    client, _, theirs, request = connect_client(
        subprotocols=["v1", "v2"], server=ServerProtocol(subprotocols=["v2"])
    )
    theirs.send_response(theirs.accept(request))
    to_ours(theirs, client, 0.0)
    assert client.events()[0] == Connected("v2")


# -- their client, our server -------------------------------------------------------


def connect_server(
    *,
    uri: str = "ws://example.com/api",
    api_key_header: str | None = TOKEN,
    session: EchoServerSession | None = None,
    theirs: ClientProtocol | None = None,
    **kwargs: object,
) -> tuple[ServerConnection, EchoServerSession, ClientProtocol, Response]:
    ss = session or EchoServerSession(api_key=TOKEN)
    server = ServerConnection(ss, **kwargs)  # type: ignore[arg-type]
    server.start(0.0)
    client = theirs or ClientProtocol(parse_uri(uri))
    request = client.connect()
    if api_key_header is not None:
        request.headers["X-API-Key"] = api_key_header
    client.send_request(request)
    to_ours(client, server, 0.0)
    client.receive_data(server.data_to_send())
    [response] = client.events_received()
    assert isinstance(response, Response)
    return server, ss, client, response


def open_server(**kwargs: object) -> tuple[ServerConnection, EchoServerSession, ClientProtocol]:
    server, ss, theirs, response = connect_server(**kwargs)  # type: ignore[arg-type]
    assert response.status_code == 101
    assert theirs.handshake_exc is None
    assert theirs.state is State.OPEN
    assert server.events() == [Connected(None), Made()]
    return server, ss, theirs


def test_server_accepts_header_auth() -> None:
    server, ss, _ = open_server()
    [(target, headers)] = ss.requests
    assert target == "/api"
    assert ("x-api-key", TOKEN) in headers
    assert server.state is OPEN


def test_server_accepts_query_auth() -> None:
    _server, ss, _ = open_server(uri=f"ws://example.com/api?api-key={TOKEN}", api_key_header=None)
    assert ss.requests[0][0] == f"/api?api-key={TOKEN}"


def test_server_rejection_reaches_their_client() -> None:
    server, ss, theirs, response = connect_server(api_key_header="wrong")
    assert response.status_code == 401
    assert response.body == b"bad api key\n"
    assert isinstance(theirs.handshake_exc, InvalidStatus)
    assert server.state is CLOSED
    assert server.events()[-1] == ConnectionClosed(
        1006, "opening handshake refused with HTTP 401: refused by the session", True
    )
    assert ss.made == 0


def test_server_text_both_ways() -> None:
    server, ss, theirs = open_server()
    theirs.send_text("echo é".encode())
    theirs.send_text(b"q" * 70_000)
    to_ours(theirs, server, 1.0)
    assert server.events() == [Received("echo é"), Received("q" * 70_000)]
    to_theirs(server, theirs)
    assert frames(theirs) == [(Opcode.TEXT, "echo é".encode()), (Opcode.TEXT, b"q" * 70_000)]
    ss.send("server push")
    to_theirs(server, theirs)
    assert frames(theirs) == [(Opcode.TEXT, b"server push")]


def test_server_ping_pong_both_ways() -> None:
    server, _, theirs = open_server(keepalive_interval=5.0, keepalive_timeout=2.0)
    theirs.send_ping(b"client ping")
    to_ours(theirs, server, 1.0)
    to_theirs(server, theirs)
    assert frames(theirs) == [(Opcode.PONG, b"client ping")]
    server.handle_timer(5.0)
    to_theirs(server, theirs)
    [(opcode, _)] = frames(theirs)
    assert opcode is Opcode.PING
    to_ours(theirs, server, 5.1)
    assert server.next_deadline() == 10.0


def test_server_reassembles_their_fragments() -> None:
    server, _ss, theirs = open_server()
    theirs.send_text(b"frag", fin=False)
    theirs.send_continuation(b"men", fin=False)
    theirs.send_continuation(b"ted", fin=True)
    to_ours(theirs, server, 1.0)
    assert server.events() == [Received("fragmented")]


def test_their_close_is_answered() -> None:
    server, ss, theirs = open_server()
    theirs.send_close(1000, "bye")
    to_ours(theirs, server, 1.0)
    assert server.events() == [Lost(), ConnectionClosed(1000, "bye", False)]
    to_theirs(server, theirs)
    assert theirs.state is State.CLOSED
    assert theirs.close_code == 1000
    assert ss.lost == 1


def test_server_starts_the_close_handshake() -> None:
    server, _ss, theirs = open_server()
    server.close(4000, "maintenance", now=1.0)
    to_theirs(server, theirs)
    assert theirs.close_rcvd is not None
    assert (theirs.close_rcvd.code, theirs.close_rcvd.reason) == (4000, "maintenance")
    to_ours(theirs, server, 1.1)
    assert server.state is CLOSED
    assert server.events() == [Lost(), ConnectionClosed(4000, "maintenance", True)]
    to_theirs(server, theirs)  # we close the socket: their client sees the EOF it waits for
    assert theirs.state is State.CLOSED
    assert theirs.close_code == 4000


def test_server_refuses_their_oversized_message() -> None:
    server, ss, theirs = open_server(max_message_size=10)
    theirs.send_text(b"0123456789A")
    to_ours(theirs, server, 1.0)
    to_theirs(server, theirs)
    assert theirs.close_rcvd is not None
    assert theirs.close_rcvd.code == 1009
    to_ours(theirs, server, 1.1)
    assert server.events() == [Lost(), ConnectionClosed(1009, "message too big", True)]
    assert ss.received == []


def test_server_declines_an_offered_compression_extension() -> None:
    offer = ClientProtocol(
        parse_uri("ws://example.com/api"), extensions=[ClientPerMessageDeflateFactory()]
    )
    server, _, theirs = open_server(theirs=offer)
    theirs.send_text(b"plain")
    to_ours(theirs, server, 1.0)
    assert server.events() == [Received("plain")]
    to_theirs(server, theirs)
    assert frames(theirs) == [(Opcode.TEXT, b"plain")]


@pytest.mark.parametrize(("offered", "chosen"), [(["v1", "v2"], "v2"), (["v1"], None)])
def test_server_subprotocol_with_their_client(offered: list[str], chosen: str | None) -> None:
    client = ClientProtocol(parse_uri("ws://example.com/api"), subprotocols=offered)  # type: ignore[arg-type]
    server, _, theirs, _response = connect_server(theirs=client, subprotocols=["v2"])
    assert theirs.handshake_exc is None
    assert theirs.subprotocol == chosen
    assert server.events()[0] == Connected(chosen)
