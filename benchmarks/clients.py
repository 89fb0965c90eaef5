"""Every Mews client the socket cases measure: protocore's three and the peers.

A user who wants typed events over a WebSocket would otherwise pick one of these:

- ``websockets asyncio + msgspec``, ``websockets trio + msgspec`` and ``websockets sync
  + msgspec``: the websockets library's three clients, each message decoded into the
  msgspec Structs of `codec_cases` (typed, validated, in C);
- ``picows + msgspec``: picows (asyncio, its frame parser in Cython), frames decoded
  from a memoryview without a copy;
- ``trio-websocket + msgspec``: the older trio client;
- ``websockets + json`` (asyncio): the untyped second line, ``json.loads`` into dicts.

Each runner connects to ``url`` and calls ``handle(event_id)`` once per event, in
order, until it returns False; then it closes. Every event carries its ``Id`` on the
wire, so the same handler works for models, Structs and dicts (the latency case puts
the server's send time there). No keepalive, no reconnection, no compression: the runs
are short and the fake server offers none.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import msgspec
import trio

import transports.asyncio
import transports.sync
import transports.trio

from .codec_cases import MsEnvelope

__all__ = ["CLIENTS", "COOKIE", "PROTOCORE", "TOKENS", "Handle", "Runner"]

Handle = Callable[[str], bool]
Runner = Callable[[str, Handle], None]

TOKENS = {"client_token": "client-token", "access_token": "access-token"}
COOKIE = "ClientToken=client-token; AccessToken=access-token"
_HEADERS = {"Cookie": COOKIE}
# No reconnect, no keepalive (the runs are short) and a short close timeout: a client
# that stopped reading cannot see the server's close frame behind the stream, and its
# wait is not part of any measurement.
_OPTIONS: dict[str, Any] = {
    **TOKENS,
    "reconnect": False,
    "keepalive_interval": None,
    "close_timeout": 0.2,
}
_WEBSOCKETS: dict[str, Any] = {
    "additional_headers": _HEADERS,
    "ping_interval": None,
    "close_timeout": 0.2,
    "compression": None,
    "proxy": None,
}


def _typed() -> Callable[[Any], Any]:
    decode: Callable[[Any], Any] = msgspec.json.Decoder(MsEnvelope).decode
    return decode


# ------------------------------------------------------------------------- protocore


def _protocore_trio(url: str, handle: Handle) -> None:
    async def main() -> None:
        async with transports.trio.connect_mews(url, **_OPTIONS) as events:
            async for event in events:
                if not handle(event.id):  # type: ignore[attr-defined]
                    break

    trio.run(main)


def _protocore_asyncio(url: str, handle: Handle) -> None:
    async def main() -> None:
        async with transports.asyncio.connect_mews(url, **_OPTIONS) as events:
            async for event in events:
                if not handle(event.id):  # type: ignore[attr-defined]
                    break

    asyncio.run(main())


def _protocore_sync(url: str, handle: Handle) -> None:
    with transports.sync.connect_mews(url, **_OPTIONS) as events:
        for event in events:
            if not handle(event.id):  # type: ignore[attr-defined]
                break


# ----------------------------------------------------------------------------- peers


def _websockets_asyncio(url: str, handle: Handle) -> None:
    import websockets.asyncio.client

    decode = _typed()

    async def main() -> None:
        async with websockets.asyncio.client.connect(url, **_WEBSOCKETS) as ws:
            async for message in ws:
                for event in decode(message).events:
                    if not handle(event.id):
                        return

    asyncio.run(main())


def _websockets_json(url: str, handle: Handle) -> None:
    import websockets.asyncio.client

    loads = json.loads

    async def main() -> None:
        async with websockets.asyncio.client.connect(url, **_WEBSOCKETS) as ws:
            async for message in ws:
                for event in loads(message)["Events"]:
                    if not handle(event["Id"]):
                        return

    asyncio.run(main())


def _websockets_trio(url: str, handle: Handle) -> None:
    import websockets.trio.client

    decode = _typed()

    async def main() -> None:
        # Its close does not end while the server still streams (its reader stops at
        # a full queue, so the close reply is never read): bound it, as close_timeout
        # would, by cancelling.
        with trio.CancelScope() as scope:
            async with websockets.trio.client.connect(url, **_WEBSOCKETS) as ws:
                async for message in ws:
                    for event in decode(message).events:
                        if not handle(event.id):
                            scope.deadline = trio.current_time() + _WEBSOCKETS["close_timeout"]
                            return

    trio.run(main)


def _websockets_sync(url: str, handle: Handle) -> None:
    import websockets.sync.client

    decode = _typed()
    with websockets.sync.client.connect(url, **_WEBSOCKETS) as ws:
        for message in ws:
            for event in decode(message).events:
                if not handle(event.id):
                    return


def _picows(url: str, handle: Handle) -> None:
    import picows

    decode = _typed()
    text = picows.WSMsgType.TEXT

    class Listener(picows.WSListener):  # type: ignore[misc]
        done = False

        def on_ws_frame(self, transport: Any, frame: Any) -> None:
            if self.done:
                return
            if frame.msg_type is not text:
                if frame.msg_type is picows.WSMsgType.CLOSE:
                    transport.disconnect()
                return
            for event in decode(frame.get_payload_as_memoryview()).events:
                if not handle(event.id):
                    self.done = True
                    transport.send_close(picows.WSCloseCode.OK)
                    transport.disconnect()
                    return

    async def main() -> None:
        transport, _ = await picows.ws_connect(Listener, url, extra_headers=_HEADERS)
        await transport.wait_disconnected()

    asyncio.run(main())


def _trio_websocket(url: str, handle: Handle) -> None:
    import trio_websocket

    decode = _typed()
    headers = [(b"Cookie", COOKIE.encode())]

    async def main() -> None:
        async with trio_websocket.open_websocket_url(
            url, extra_headers=headers, disconnect_timeout=1
        ) as ws:
            while True:
                for event in decode(await ws.get_message()).events:
                    if not handle(event.id):
                        return

    trio.run(main)


#: protocore's clients, by the name the tables use (the transport's).
PROTOCORE: dict[str, Runner] = {
    "trio": _protocore_trio,
    "asyncio": _protocore_asyncio,
    "sync": _protocore_sync,
}

#: Every client: protocore's, then the typed peers, then the untyped second line.
CLIENTS: dict[str, Runner] = {
    **PROTOCORE,
    "websockets asyncio + msgspec": _websockets_asyncio,
    "websockets trio + msgspec": _websockets_trio,
    "websockets sync + msgspec": _websockets_sync,
    "picows + msgspec": _picows,
    "trio-websocket + msgspec": _trio_websocket,
    "websockets + json": _websockets_json,
}
