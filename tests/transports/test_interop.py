"""Interop with an independent implementation: the ``websockets`` library.

Each client adapter talks to a server written by hand on ``websockets.asyncio.server``
(in a background thread), speaking PlaceOS or Mews as the seeds and the reference
server do; each server adapter answers a ``websockets.sync.client`` sending raw frames.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import websockets.asyncio.server as ws_server
from harness import (
    ACCESS_TOKEN,
    API_KEY,
    CLIENT_TOKEN,
    DISPLAY,
    MEWS_MESSAGES,
    SYS,
    WAIT,
    Client,
    Served,
    make_engine,
    mews_options,
    placeos_options,
    running_server,
)
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Request, Response
from websockets.sync.client import connect as ws_connect

from protocore.events import BadMessage
from protocore.mews import InvalidEvent, ResourceEvent, decode_envelope
from protocore.placeos import DebugMessage
from protocore.placeos.exceptions import ModuleNotFound

pytestmark = pytest.mark.timeout(60)

Handler = Callable[[ws_server.ServerConnection], Awaitable[None]]
Check = Callable[[Headers, str], bool]


@contextmanager
def websockets_server(handler: Handler, accept: Check) -> Iterator[int]:
    """A ``websockets`` server on 127.0.0.1:0 in a thread; yields its port.

    ``accept(headers, path)`` decides the upgrade (False: 401 before upgrading).
    """
    ready: queue.Queue[int | BaseException] = queue.Queue()
    stopping: list[Callable[[], None]] = []

    def process_request(
        connection: ws_server.ServerConnection, request: Request
    ) -> Response | None:
        if accept(request.headers, request.path):
            return None
        return connection.respond(401, "unauthorized\n")

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        async with ws_server.serve(
            handler, "127.0.0.1", 0, process_request=process_request
        ) as server:
            stopping.append(lambda: loop.call_soon_threadsafe(stop.set))
            ready.put(server.sockets[0].getsockname()[1])
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            ready.put(exc)

    thread = threading.Thread(target=run, name="websockets-server")
    thread.start()
    port = ready.get(timeout=WAIT)
    if isinstance(port, BaseException):
        raise port
    try:
        yield port
    finally:
        stopping[0]()
        thread.join(WAIT)


# -- our clients against a websockets server ------------------------------------------


class RawPlaceOS:
    """A PlaceOS server by hand, in the seed's dialect: stringified notify values,
    the error number in ``code``, debug lines with ``klass``; a notify before the
    bind's success, as the reference server may send."""

    def __init__(self) -> None:
        self.received: list[str] = []

    def accept(self, headers: Headers, path: str) -> bool:
        return path == "/api/engine/v2/systems/control" and headers.get("X-API-Key") == API_KEY

    async def handle(self, ws: ws_server.ServerConnection) -> None:
        async for message in ws:
            assert isinstance(message, str)
            self.received.append(message)
            if message == "ping":
                await ws.send("pong")
                continue
            request = json.loads(message)
            rid, cmd = request["id"], request["cmd"]
            meta = {k: request.get(k) for k in ("sys", "mod", "index", "name")}
            if cmd == "exec" and request["mod"] == DISPLAY:
                await ws.send(
                    json.dumps({"id": rid, "type": "success", "value": sum(request["args"])})
                )
            elif cmd == "exec":
                error = {"id": rid, "type": "error", "code": 6, "msg": "module not found"}
                await ws.send(json.dumps(error))
            elif cmd == "bind":
                await ws.send(
                    json.dumps({"id": rid, "type": "notify", "value": "41", "meta": meta})
                )
                await ws.send(json.dumps({"id": rid, "type": "success", "meta": meta}))
                await ws.send(json.dumps({"id": rid, "type": "notify", "value": 42, "meta": meta}))
            elif cmd == "debug":
                await ws.send(json.dumps({"id": rid, "type": "success", "mod_id": request["mod"]}))
                line = {"type": "debug", "mod": request["mod"], "klass": "::Display"}
                await ws.send(json.dumps({**line, "level": "warn", "msg": "lamp hours high"}))
            else:  # unbind, ignore
                await ws.send(json.dumps({"id": rid, "type": "success"}))


def test_placeos_client_against_a_websockets_server(client: Client) -> None:
    raw = RawPlaceOS()

    async def scenario(c: Client) -> None:
        url = f"ws://127.0.0.1:{port}/api/engine/v2/systems/control"
        async with c.connect_placeos(url, api_key=API_KEY) as placeos:
            assert await placeos.exec(SYS, DISPLAY, "add", 1, 2, 3) == 6
            with pytest.raises(ModuleNotFound):
                await placeos.exec(SYS, "Projector", "add", 1)
            async with placeos.bind(SYS, DISPLAY, "power") as power:
                assert await power.next() == 41  # stringified, and before the success
                assert await power.next() == 42
            async with placeos.debug(SYS, "mod-display") as lines:
                line = await lines.next()
                assert isinstance(line, DebugMessage)
                assert (line.klass, line.message) == ("::Display", "lamp hours high")

    with websockets_server(raw.handle, raw.accept) as port:
        client.run(scenario)
    assert raw.received[0] == "ping"  # the text heartbeat starts on connect
    requests = [json.loads(m) for m in raw.received if m != "ping"]
    assert [r["cmd"] for r in requests] == ["exec", "exec", "bind", "unbind", "debug", "ignore"]
    assert all(isinstance(r["id"], int) for r in requests)  # the reference server needs ints


class RawMews:
    """A Mews server by hand: checks the cookie exactly, sends the seeds verbatim."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages

    def accept(self, headers: Headers, path: str) -> bool:
        cookie = f"ClientToken={CLIENT_TOKEN}; AccessToken={ACCESS_TOKEN}"
        return path == "/ws/connector" and headers.get("Cookie") == cookie

    async def handle(self, ws: ws_server.ServerConnection) -> None:
        for message in self.messages:
            await ws.send(message)
        await ws.wait_closed()


def test_mews_client_against_a_websockets_server(client: Client) -> None:
    bad_event = '{"Events": [{"Type": "Reservation", "Id": "r1", "State": "Confirmed"}]}'
    raw = RawMews([MEWS_MESSAGES["000"], "not json at all", bad_event, MEWS_MESSAGES["001"]])
    seed_000 = decode_envelope(MEWS_MESSAGES["000"]).events
    seed_001 = decode_envelope(MEWS_MESSAGES["001"]).events

    async def scenario(c: Client) -> None:
        url = f"ws://127.0.0.1:{port}/ws/connector"
        async with c.connect_mews(
            url, client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN
        ) as events:
            assert tuple([await events.next() for _ in seed_000]) == seed_000
            assert isinstance(seed_000[2], ResourceEvent)
            bad = await events.next()
            assert isinstance(bad, BadMessage)  # never silently dropped
            assert bad.data == "not json at all"
            invalid = await events.next()
            assert isinstance(invalid, InvalidEvent)  # kept in place, with its error
            assert "StartUtc" in str(invalid.error)
            assert tuple([await events.next() for _ in seed_001]) == seed_001

    with websockets_server(raw.handle, raw.accept) as port:
        client.run(scenario)


# -- our servers against a websockets client --------------------------------------------


def _recv_json(ws: Any) -> Any:
    return json.loads(ws.recv(timeout=WAIT))


def test_placeos_server_answers_a_websockets_client(server_kind: str) -> None:
    engine = make_engine()
    with running_server(server_kind, "placeos", engine, **placeos_options()) as handle:
        served = Served(handle)
        with ws_connect(served.url, additional_headers={"X-API-Key": API_KEY}) as ws:
            ws.send("ping")
            assert ws.recv(timeout=WAIT) == "pong"
            assert ws.ping(b"probe").wait(WAIT)  # WebSocket pings are answered too

            ws.send(
                json.dumps({"id": 1, "cmd": "bind", "sys": SYS, "mod": DISPLAY, "name": "power"})
            )
            success, notify = _recv_json(ws), _recv_json(ws)
            assert (success["id"], success["type"]) == (1, "success")
            assert (notify["type"], notify["value"]) == ("notify", False)
            assert notify["meta"]["name"] == "power"
            assert served.set_status(SYS, DISPLAY, "power", True) == 1
            assert _recv_json(ws)["value"] is True

            exec_request = {"id": 2, "cmd": "exec", "sys": SYS, "mod": DISPLAY}
            ws.send(json.dumps({**exec_request, "name": "add", "args": [20, 22]}))
            answer = _recv_json(ws)
            assert (answer["id"], answer["type"], answer["value"]) == (2, "success", 42)

            ws.send("{this is not json")
            parse_error = _recv_json(ws)
            assert parse_error["type"] == "error"
            assert parse_error.get("error_code", parse_error.get("code")) == 0
            ws.send(json.dumps({"id": 3, "cmd": "dance", "sys": SYS, "mod": DISPLAY}))
            unknown = _recv_json(ws)
            assert unknown["id"] == 3
            assert unknown.get("error_code", unknown.get("code")) == 4

        # A missing key is refused before the upgrade.
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(served.url).close()
        assert refused.value.response.status_code == 401


def test_mews_server_pushes_to_a_websockets_client(server_kind: str) -> None:
    with running_server(server_kind, "mews", **mews_options()) as handle:
        served = Served(handle)
        cookie = f"ClientToken={CLIENT_TOKEN}; AccessToken={ACCESS_TOKEN}"
        with ws_connect(served.url, additional_headers={"Cookie": cookie}) as ws:
            assert ws.ping().wait(WAIT)
            envelope = decode_envelope(MEWS_MESSAGES["001"])
            assert served.publish(envelope) == 1
            assert json.loads(ws.recv(timeout=WAIT)) == json.loads(MEWS_MESSAGES["001"])
        legacy = f"{served.url}?ClientToken={CLIENT_TOKEN}&AccessToken={ACCESS_TOKEN}"
        with ws_connect(legacy) as ws:
            assert served.publish(decode_envelope(MEWS_MESSAGES["000"])) == 1
            assert json.loads(ws.recv(timeout=WAIT)) == json.loads(MEWS_MESSAGES["000"])
