"""The PlaceOS exec service: request/reply over NATS, answered by the site's owner.

Anyone sends a JSON request to ``placeos.<name>.exec``::

    {"sys": "sys-1", "mod": "Display", "method": "power", "args": [true], "index": 1}

Every worker listens there in one queue group; the one that gets it answers itself
when it holds the site, or forwards it to the owner's own subject, or answers
``no_owner`` at once when no worker holds it. The reply is ``{"value": ...}`` or
``{"error": {"code": ..., "message": ...}}``: ``code`` is the PlaceOS error number
(0-7) when the site refused, else one of the strings in `FLEET_ERRORS`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import attrs
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import Error as NATSError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NATSTimeout

from protocore.errors import ConnectionLost
from protocore.placeos.exceptions import RequestTimeout, ServerError

from .publish import json_payload, owner_exec_subject

__all__ = ["ExecRequest", "FLEET_ERRORS", "decode_request", "error_reply", "run_exec", "ExecRouter"]

log = logging.getLogger("protocore.fleet")

FLEET_ERRORS = {
    "bad_request": "the request is not a valid exec request",
    "unknown_connection": "no such PlaceOS connection in the fleet",
    "no_owner": "no worker holds this connection right now",
    "timeout": "the site did not answer in time",
    "connection_lost": "the owner's connection to the site is down",
    "failed": "the exec failed in the worker",
}
DEFAULT_TIMEOUT = 10.0


@attrs.frozen
class ExecRequest:
    sys: str
    mod: str
    method: str
    args: tuple[Any, ...] = ()
    index: int = 1
    timeout: float = DEFAULT_TIMEOUT


class BadExecRequest(ValueError):
    pass


def error_reply(code: int | str, message: str | None = None) -> bytes:
    text = message if message is not None else FLEET_ERRORS.get(str(code), "")
    return json_payload({"error": {"code": code, "message": text}})


def decode_request(data: bytes) -> ExecRequest:
    """An `ExecRequest` from its JSON, or `BadExecRequest` saying what is wrong."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadExecRequest("the request is not JSON") from None
    if not isinstance(doc, dict):
        raise BadExecRequest("the request must be a JSON object")
    for key in ("sys", "mod", "method"):
        if not isinstance(doc.get(key), str) or not doc[key]:
            raise BadExecRequest(f"{key!r} must be a non-empty string")
    args = doc.get("args", [])
    if not isinstance(args, list):
        raise BadExecRequest("'args' must be a list")
    index = doc.get("index", 1)
    if isinstance(index, bool) or not isinstance(index, int) or index < 1:
        raise BadExecRequest("'index' must be a positive integer")
    timeout = doc.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise BadExecRequest("'timeout' must be a positive number of seconds")
    if unknown := sorted(set(doc) - {"sys", "mod", "method", "args", "index", "timeout"}):
        raise BadExecRequest(f"unknown field {unknown[0]!r}")
    return ExecRequest(doc["sys"], doc["mod"], doc["method"], tuple(args), index, float(timeout))


async def run_exec(client: Any, request: ExecRequest) -> bytes:
    """Run ``request`` on a PlaceOS connection (``transports.asyncio``); the reply."""
    try:
        value = await client.exec(
            request.sys,
            request.mod,
            request.method,
            *request.args,
            index=request.index,
            timeout=request.timeout,
        )
    except ServerError as exc:
        return error_reply(int(exc.code), exc.message)
    except RequestTimeout:
        return error_reply("timeout")
    except ConnectionLost:
        return error_reply("connection_lost")
    except Exception as exc:  # anything else: say so rather than leave the caller waiting
        log.warning("exec failed in the worker: %s", type(exc).__name__)
        return error_reply("failed", type(exc).__name__)
    try:
        return json_payload({"value": value})
    except (TypeError, ValueError):
        return error_reply("failed", "the value is not JSON")


class ExecRouter:
    """Answers ``placeos.*.exec`` for the whole fleet (one queue group of all workers).

    ``local(name)`` is the held connection for ``name`` or None; ``known(name)`` says
    whether the fleet has a PlaceOS spec of that name.
    """

    QUEUE = "fleet-exec"

    def __init__(
        self,
        nc: NATS,
        *,
        local: Callable[[str], Any],
        known: Callable[[str], bool],
    ) -> None:
        self._nc = nc
        self._local = local
        self._known = known
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._sub = await self._nc.subscribe("placeos.*.exec", queue=self.QUEUE, cb=self._on_msg)

    async def stop(self) -> None:
        await self._sub.unsubscribe()
        for task in list(self._tasks):
            task.cancel()

    async def _on_msg(self, msg: Msg) -> None:
        # One task per request: a slow site must not hold up the others.
        task = asyncio.get_running_loop().create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        if not msg.reply:
            return
        try:
            await msg.respond(await self._reply(msg))
        except (NATSError, TimeoutError) as exc:  # NATS went away: the caller times out
            log.info("an exec reply was not sent (%s)", type(exc).__name__)

    async def _reply(self, msg: Msg) -> bytes:
        name = msg.subject.split(".")[1]
        try:
            request = decode_request(msg.data)
        except BadExecRequest as exc:
            return error_reply("bad_request", str(exc))
        if not self._known(name):
            return error_reply("unknown_connection")
        client = self._local(name)
        if client is not None:
            return await run_exec(client, request)
        try:
            answer = await self._nc.request(
                owner_exec_subject(name), msg.data, timeout=request.timeout + 1.0
            )
        except NoRespondersError:
            return error_reply("no_owner")
        except NATSTimeout:
            return error_reply("timeout")
        return answer.data
