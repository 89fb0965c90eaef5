"""Deliver a `PlaceOSClient`'s events to whoever waits on them, through callbacks.

Every transport needs the same bookkeeping: which caller waits on which request id,
which subscribers listen to which binding or debug stream, and what to tell them
when a binding is lost. That is logic, not I/O, so it lives here once; a transport
only supplies callbacks that wake its own kind of waiter (a trio channel, an
asyncio future, a ``queue.Queue``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from protocore.events import Event

from .events import (
    BindingLost,
    DebugLog,
    RequestAborted,
    RequestFailed,
    RequestSucceeded,
    RequestTimedOut,
    ValueChanged,
)
from .exceptions import ServerError, exception_for
from .models import Binding, ModuleMeta

__all__ = ["Router", "ResultCallback", "ItemCallback", "EndCallback"]

ResultCallback = Callable[[Any, BaseException | None], None]
"""Called once with (value, None) on success or (None, exception) otherwise."""
ItemCallback = Callable[[Any], None]
"""Called with each new value of a binding, or each `DebugMessage` of a stream."""
EndCallback = Callable[[BaseException], None]
"""Called once when a subscription ends because the server took it away."""


class Router:
    """Routes events by request id, by binding, and by debug module id.

    `dispatch` returns the events nobody was waiting for (an `UnexpectedResponse`,
    a `BadMessage`, a notify for a binding without listeners...), so a transport can
    log or surface them instead of losing them silently.
    """

    __slots__ = ("_debug", "_next_token", "_requests", "_tokens", "_values")

    def __init__(self) -> None:
        self._requests: dict[int, ResultCallback] = {}
        self._values: dict[Binding, dict[int, tuple[ItemCallback, EndCallback]]] = {}
        self._debug: dict[str, dict[int, tuple[ItemCallback, EndCallback]]] = {}
        # token -> (table, key): unlisten in O(1), not a scan (10,000 bindings unbind).
        self._tokens: dict[int, tuple[dict[Any, Any], Any]] = {}
        self._next_token = 0

    # -- requests ----------------------------------------------------------------------

    def expect(self, request_id: int, callback: ResultCallback) -> None:
        """Call ``callback`` when request ``request_id`` ends, however it ends."""
        self._requests[request_id] = callback

    def forget(self, request_id: int) -> None:
        """The caller stopped waiting (cancelled): drop its callback, if still there."""
        self._requests.pop(request_id, None)

    @property
    def waiting(self) -> int:
        """How many requests have a caller waiting on them."""
        return len(self._requests)

    # -- subscriptions -----------------------------------------------------------------

    def listen(self, binding: Binding, on_value: ItemCallback, on_end: EndCallback) -> int:
        """Send every new value of ``binding`` to ``on_value``; returns a token for `unlisten`."""
        return self._add(self._values, binding, on_value, on_end)

    def listen_debug(self, module_id: str, on_line: ItemCallback, on_end: EndCallback) -> int:
        """Send every log line of module ``module_id`` to ``on_line``; returns a token."""
        return self._add(self._debug, module_id, on_line, on_end)

    def unlisten(self, token: int) -> None:
        """Stop a subscription made by `listen` or `listen_debug` (unknown tokens: no-op)."""
        where = self._tokens.pop(token, None)
        if where is None:
            return
        table, key = where
        listeners = table.get(key)
        if listeners is not None and listeners.pop(token, None) is not None and not listeners:
            del table[key]

    def _add(
        self,
        table: dict[Any, dict[int, tuple[ItemCallback, EndCallback]]],
        key: Any,
        on_item: ItemCallback,
        on_end: EndCallback,
    ) -> int:
        self._next_token = token = self._next_token + 1
        table.setdefault(key, {})[token] = (on_item, on_end)
        self._tokens[token] = (table, key)
        return token

    # -- dispatch ----------------------------------------------------------------------

    def dispatch(self, events: Iterable[Event]) -> list[Event]:
        """Deliver ``events``; return those nobody consumed, in order."""
        unrouted: list[Event] = []
        for event in events:
            cls = event.__class__
            if cls is ValueChanged:
                assert isinstance(event, ValueChanged)
                listeners = self._values.get(event.binding)
                if not listeners:
                    unrouted.append(event)
                    continue
                for on_value, _ in list(listeners.values()):
                    on_value(event.value)
            elif cls is RequestSucceeded:
                assert isinstance(event, RequestSucceeded)
                callback = self._requests.pop(event.request_id, None)
                if callback is None:
                    unrouted.append(event)
                else:
                    callback(event.value, None)
            elif cls in (RequestFailed, RequestTimedOut, RequestAborted):
                assert isinstance(event, RequestFailed | RequestTimedOut | RequestAborted)
                callback = self._requests.pop(event.request_id, None)
                if callback is None:
                    unrouted.append(event)
                else:
                    callback(None, exception_for(event))
            elif cls is DebugLog:
                assert isinstance(event, DebugLog)
                listeners = self._debug.get(event.message.mod)
                if not listeners:
                    unrouted.append(event)
                    continue
                for on_line, _ in list(listeners.values()):
                    on_line(event.message)
            elif cls is BindingLost:
                assert isinstance(event, BindingLost)
                self._end(event)
                unrouted.append(event)
            else:
                unrouted.append(event)
        return unrouted

    def _end(self, event: BindingLost) -> None:
        target = event.target
        if isinstance(target, ModuleMeta):
            listeners = self._debug.pop(target.mod, {})
        else:
            listeners = self._values.pop(target, {})
        for token in listeners:
            self._tokens.pop(token, None)
        if event.error is not None:
            error: BaseException = exception_for(
                RequestFailed(0, event.error.code, event.error.message, event.error)
            )
        else:
            error = ServerError(f"{_describe(target)} was not restored after a reconnect")
        for _, on_end in listeners.values():
            on_end(error)


def _describe(target: Binding | ModuleMeta) -> str:
    if isinstance(target, Binding):
        return f"binding {target.sys}/{target.mod}_{target.index}.{target.name}"
    return f"debug stream {target.sys}/{target.mod}_{target.index}"
