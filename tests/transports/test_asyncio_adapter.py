"""The asyncio adapter's own Mews behaviour: backpressure, cancellation, closing, secrets.

Cross-transport behaviour (every client against every server) is in
test_conformance / test_interop / test_faults; here is what needs a look inside the
asyncio adapter: a slow consumer pauses the transport's reading (and TCP then backs
the server up) without losing an event, a new connection starts paused while the
consumer is behind, a cancelled ``async for`` leaves nothing running, and the
handle's and client's edges. Client and server share one loop, so waits are awaits.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, Literal

import pytest

from protocore import ConnectionLost, HandshakeFailed, LocalProtocolError
from protocore.backoff import Backoff
from protocore.driver import READ_SIZE
from protocore.mews import Envelope, Reconnected, ResourceEvent, ResourceState
from transports.asyncio import MewsEvents, MewsServerHandle, connect_mews, serve_mews
from transports.asyncio import _Link as Link

pytestmark = pytest.mark.timeout(60)

CLIENT_TOKEN = "CT-Xx9-not-a-real-client-token"
ACCESS_TOKEN = "AT-Yy8-not-a-real-access-token"
WAIT = 10.0  # seconds: the bound of every await; only a failing test reaches it
FAST = Backoff(base=0.01, cap=0.05)


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run one scenario in a fresh loop, bounded in time."""

    async def bounded() -> None:
        async with asyncio.timeout(WAIT * 3):
            await main()

    asyncio.run(bounded())


async def within(awaitable: Awaitable[Any]) -> Any:
    async with asyncio.timeout(WAIT):
        return await awaitable


def resource(name: str, padding: int = 0) -> ResourceEvent:
    """A small event with an id to check order by; ``padding`` makes it bigger."""
    extra = {"Note": "x" * padding} if padding else {}
    return ResourceEvent(id=name, state=ResourceState.DIRTY, extra=extra)


def serve(**options: Any) -> MewsServerHandle:
    return serve_mews(client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN, **options)


def connect(server: MewsServerHandle, **options: Any) -> MewsEvents:
    options.setdefault("reconnect", FAST)
    options.setdefault("client_token", CLIENT_TOKEN)
    options.setdefault("access_token", ACCESS_TOKEN)
    return connect_mews(server.url, **options)


@pytest.fixture(autouse=True)
def _no_asyncio_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """asyncio logs what it cannot raise (a protocol callback's exception, a task's
    unretrieved one): every test here must end without such a record."""
    yield
    records = caplog.get_records("call")
    errors = [r.getMessage() for r in records if r.name == "asyncio" and r.levelno >= logging.ERROR]
    assert not errors, errors


def server_link(server: MewsServerHandle) -> Link:
    (link,) = server._io._links.values()  # type: ignore[union-attr]  # the one client's, server side
    return link  # type: ignore[no-any-return]


def client_link(events: MewsEvents) -> Link:
    link = events._io._link  # type: ignore[union-attr]
    assert isinstance(link, Link)
    assert link.transport is not None
    return link


# -- backpressure -----------------------------------------------------------------------

BUFFER = 50
PADDING = 2000  # bytes of each event's extra field
# One read hands the protocol at most READ_SIZE bytes (plain or TLS): what may arrive
# after the pause, on top of the buffer.
MOST_WAITING = BUFFER + READ_SIZE // PADDING


class Spy:
    """Sees every `Link.pause_reading` wish and the first `Link.pause_writing`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.wishes: list[bool] = []
        self.paused = asyncio.Event()
        self.server_backed_up = asyncio.Event()
        real_pause_reading = Link.pause_reading
        real_pause_writing = Link.pause_writing

        def pause_reading(link: Link, paused: bool) -> None:
            self.wishes.append(paused)
            if paused:
                self.paused.set()
            real_pause_reading(link, paused)

        def pause_writing(link: Link) -> None:
            self.server_backed_up.set()  # only the server writes enough to fill buffers
            real_pause_writing(link)

        monkeypatch.setattr(Link, "pause_reading", pause_reading)
        monkeypatch.setattr(Link, "pause_writing", pause_writing)


async def back_up(server: MewsServerHandle, events: MewsEvents, spy: Spy) -> list[ResourceEvent]:
    """Publish until the server's own write buffer fills (the consumer takes nothing);
    the events sent."""
    # Smaller socket buffers: the backlog reaches the server's write buffer after
    # about a megabyte, not after the kernel's autotuned megabytes.
    near = client_link(events).transport
    far = server_link(server).transport
    assert near is not None
    assert far is not None
    near.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
    far.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 18)
    sent: list[ResourceEvent] = []
    for number in range(1000):  # a bound; the server backs up long before
        batch = [resource(f"m{number}-e{i}", PADDING) for i in range(10)]
        assert server.publish(batch) == 1
        sent.extend(batch)
        await asyncio.sleep(0)  # one loop turn: the server writes, the client may read
        if spy.server_backed_up.is_set():
            return sent
    pytest.fail("the server never felt the backpressure")


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_slow_consumer_pauses_reading_and_loses_no_event(
    monkeypatch: pytest.MonkeyPatch,
    tls: bool,
    server_ssl: ssl.SSLContext,
    client_ssl: ssl.SSLContext,
) -> None:
    spy = Spy(monkeypatch)

    async def main() -> None:
        async with (
            serve(ssl_context=server_ssl if tls else None) as server,
            connect(server, buffer_size=BUFFER, ssl_context=client_ssl if tls else None) as events,
        ):
            sent = await back_up(server, events, spy)
            assert spy.wishes[0] is True
            # The client holds only its buffer's worth (plus one read); the rest waits
            # in TCP and in the server, which is what keeps memory bounded.
            waiting = len(events)
            assert BUFFER <= waiting <= MOST_WAITING
            assert waiting < len(sent)
            assert client_link(events).transport.is_reading() is False  # type: ignore[union-attr]

            got: list[Any] = []
            most = waiting
            while len(got) < len(sent):
                got.append(await within(anext(events)))
                most = max(most, len(events))
            assert got == sent  # every event, in order, and no Reconnected
            assert most <= MOST_WAITING
            assert False in spy.wishes  # reading resumed once the consumer caught up
            assert events.connected
            assert len(events) == 0

    run(main)


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_leaving_while_paused_still_closes_cleanly(
    monkeypatch: pytest.MonkeyPatch,
    tls: bool,
    server_ssl: ssl.SSLContext,
    client_ssl: ssl.SSLContext,
) -> None:
    spy = Spy(monkeypatch)

    async def main() -> None:
        async with serve(ssl_context=server_ssl if tls else None) as server:
            async with connect(
                server, buffer_size=BUFFER, ssl_context=client_ssl if tls else None
            ) as events:
                await back_up(server, events, spy)
                waiting = len(events)
            # Reading resumed for the close handshake: the server's answer came
            # (a timed-out close would say 1006), and nothing read then was kept.
            closed = events._driver.last_close
            assert closed is not None
            assert closed.code == 1000
            assert len(events) == waiting
            assert len([event async for event in events]) == waiting

    run(main)


def test_a_new_connection_starts_paused_while_the_consumer_is_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = [resource(f"r{i}") for i in range(8)]

    async def main() -> None:
        async with (
            serve() as server,
            # The paused client cannot read the pongs: the keepalive drops it.
            connect(
                server, buffer_size=4, keepalive_interval=0.05, keepalive_timeout=0.1
            ) as events,
        ):
            installed: asyncio.Queue[Link] = asyncio.Queue()
            real_pause = Link.pause_reading

            def spy(link: Link, paused: bool) -> None:  # every pause, on its connection
                real_pause(link, paused)
                if paused:
                    installed.put_nowait(link)

            monkeypatch.setattr(Link, "pause_reading", spy)
            assert server.publish(first) == 1
            paused_first = await within(installed.get())  # the consumer fell behind
            link = await within(installed.get())  # the reconnection after the drop
            assert link is not paused_first
            assert link.transport is not None
            assert link.transport.is_reading() is False  # still behind: not read
            got = [await within(anext(events)) for _ in first]
            assert got == first  # what had arrived is all there, before the marker
            assert isinstance(await within(anext(events)), Reconnected)
            # Caught up: new events flow again. The stalled connections may have been
            # dropped more than once (a marker each), and an event published while a
            # drop is under way is gone with it (Mews does not replay): retry a little.
            late = resource("late")
            for _ in range(20):
                while not installed.empty():
                    installed.get_nowait()
                if server.publish([late]) == 0:
                    await within(installed.get())  # between connections: wait for one
                    continue
                if await within(anext(events)) == late:
                    break
            else:
                pytest.fail("no event came through after catching up")

    run(main)


# -- cancellation and closing -------------------------------------------------------------


def test_cancelling_a_blocked_async_for_leaves_nothing_running() -> None:
    async def main() -> None:
        async with serve() as server:
            async with connect(server) as events:
                got: list[Any] = []
                first_seen = asyncio.Event()

                async def consume() -> None:
                    async for event in events:
                        got.append(event)
                        first_seen.set()

                task = asyncio.create_task(consume())
                server.publish([resource("one")])
                await within(first_seen.wait())
                task.cancel()  # blocked in __anext__, waiting for the next event
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert got == [resource("one")]
                # The stream still works for the next consumer; nothing was lost.
                server.publish([resource("two")])
                assert await within(anext(events)) == resource("two")
                link = client_link(events)
            assert link.lost.done()  # the socket is closed
            assert asyncio.all_tasks() == {asyncio.current_task()}
            with pytest.raises(StopAsyncIteration):
                await anext(events)

    run(main)


def test_closing_ends_iteration_quietly_after_the_queued_events() -> None:
    async def main() -> None:
        async with serve() as server:
            # Events queued at close still come out, then the iteration just ends.
            async with connect(server) as events:
                server.publish([resource("a"), resource("b"), resource("c")])
                assert await within(anext(events)) == resource("a")  # the whole message
                assert events.connected
            assert not events.connected
            assert "closed" in repr(events)
            assert [event async for event in events] == [resource("b"), resource("c")]

            # A task waiting in ``async for`` when the block is left ends without error.
            async with connect(server) as events:
                got: list[Any] = []
                took = asyncio.Event()

                async def consume() -> None:
                    async for event in events:
                        got.append(event)
                        took.set()

                task = asyncio.create_task(consume())
                server.publish([resource("d")])
                await within(took.wait())
            await within(task)
            assert got == [resource("d")]

    run(main)


def test_without_reconnect_the_queued_events_come_before_connection_lost() -> None:
    events_sent = [resource("a"), resource("b"), resource("c")]

    async def main() -> None:
        async with serve() as server, connect(server, reconnect=False) as events:
            server.publish(events_sent)
            assert await within(anext(events)) == events_sent[0]  # all three arrived
            assert server.drop_connections() == 1
            assert [await anext(events), await anext(events)] == events_sent[1:]
            with pytest.raises(ConnectionLost):
                await within(anext(events))
            with pytest.raises(ConnectionLost):  # and again: the end is final
                await anext(events)
            assert not events.connected

    run(main)


# -- the server handle --------------------------------------------------------------------


def test_server_handle_counts_refuses_and_stops(
    server_ssl: ssl.SSLContext, client_ssl: ssl.SSLContext
) -> None:
    async def main() -> None:
        async with serve(ssl_context=server_ssl) as server:
            assert server.url == f"wss://127.0.0.1:{server.port}/ws/connector"
            assert server.publish([resource("nobody")]) == 0
            assert server.connections == 0
            wrong_path = server.url.replace("/ws/connector", "/elsewhere")
            with pytest.raises(HandshakeFailed) as refused:
                async with connect_mews(
                    wrong_path,
                    client_token=CLIENT_TOKEN,
                    access_token=ACCESS_TOKEN,
                    ssl_context=client_ssl,
                ):
                    pytest.fail("a wrong path gets no connection")
            assert refused.value.status_code == 404
            async with (
                connect(server, ssl_context=client_ssl) as one,
                connect(server, ssl_context=client_ssl, auth="query") as two,
            ):
                assert server.connections == 2
                envelope = Envelope((resource("both"),))
                assert server.publish(envelope) == 2
                assert await within(anext(one)) == resource("both")
                assert await within(anext(two)) == resource("both")
                assert server.drop_connections() == 2
                assert isinstance(await within(anext(one)), Reconnected)
                assert isinstance(await within(anext(two)), Reconnected)
                assert server.publish([resource("again")]) == 2
        with pytest.raises(RuntimeError, match="not running"):
            server.publish([resource("late")])

    run(main)


def test_server_publish_from_another_thread() -> None:
    async def main() -> None:
        async with serve() as server, connect(server) as events:
            reached = await within(asyncio.to_thread(server.publish, [resource("t")]))
            assert reached == 1
            assert await within(anext(events)) == resource("t")
            assert await within(asyncio.to_thread(lambda: server.connections)) == 1

    run(main)


# -- misuse and secrets -------------------------------------------------------------------


def test_bad_arguments_and_misuse_are_clear_errors() -> None:
    url = "ws://127.0.0.1:1/ws/connector"
    tokens = {"client_token": CLIENT_TOKEN, "access_token": ACCESS_TOKEN}
    with pytest.raises(ValueError, match="buffer_size"):
        connect_mews(url, client_token=CLIENT_TOKEN, access_token=ACCESS_TOKEN, buffer_size=0)
    with pytest.raises(LocalProtocolError, match="access_token") as bad_token:
        connect_mews(url, client_token="ok", access_token="a;b")
    assert "a;b" not in str(bad_token.value)
    with pytest.raises(LocalProtocolError, match="auth"):
        connect_mews(url, **tokens, auth="header")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="wss://"):
        connect_mews(url, **tokens, ssl_context=ssl.create_default_context())  # type: ignore[arg-type]
    with pytest.raises(LocalProtocolError, match="client_token"):
        serve_mews(client_token="", access_token=ACCESS_TOKEN)

    async def main() -> None:
        async with serve() as server:
            events = connect(server)
            with pytest.raises(RuntimeError, match=r"\(async\) with connect_mews"):
                await anext(events)
            async with events:
                with pytest.raises(RuntimeError, match="only once"):
                    async with events:
                        pytest.fail("entered twice")
                first = asyncio.create_task(anext(events))
                await asyncio.sleep(0)  # let it start waiting
                with pytest.raises(RuntimeError, match="another task"):
                    await anext(events)
                server.publish([resource("x")])
                assert await within(first) == resource("x")

    run(main)


@pytest.mark.parametrize("auth", ["cookie", "query"])
def test_secrets_never_in_reprs_logs_or_errors(
    caplog: pytest.LogCaptureFixture, auth: Literal["cookie", "query"]
) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        async with serve() as server:
            async with connect(server, auth=auth) as events:
                texts = [repr(events), repr(server), repr(events._driver.session)]
                server.publish([resource("x")])
                await within(anext(events))
                server.drop_connections()
                assert isinstance(await within(anext(events)), Reconnected)
            with pytest.raises(HandshakeFailed) as refused:
                async with connect_mews(
                    server.url, client_token=CLIENT_TOKEN, access_token="AT-wrong", auth=auth
                ):
                    pytest.fail("a wrong token gets no connection")
            texts += [str(refused.value), repr(refused.value), repr(events)]
        assert "/ws/connector" in texts[0]
        texts += [record.getMessage() for record in caplog.records]
        assert any("reconnect" in text for text in texts)  # the logs were captured
        for text in texts:
            assert CLIENT_TOKEN not in text
            assert ACCESS_TOKEN not in text
            assert "AT-wrong" not in text

    run(main)
