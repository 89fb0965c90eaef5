"""The router and the exceptions the blocking/async APIs raise for PlaceOS outcomes."""

from __future__ import annotations

from typing import Any

import pytest

from protocore import BadMessage, ConnectionLost, DecodeError
from protocore.placeos import (
    Binding,
    DebugMessage,
    ErrorCode,
    ErrorResponse,
    ModuleMeta,
    Notification,
    SuccessResponse,
)
from protocore.placeos.events import (
    AbortReason,
    BindingLost,
    DebugLog,
    RequestAborted,
    RequestFailed,
    RequestSucceeded,
    RequestTimedOut,
    UnexpectedResponse,
    ValueChanged,
)
from protocore.placeos.exceptions import (
    AccessDenied,
    BadRequest,
    ModuleNotFound,
    ParseError,
    PlaceOSError,
    RequestFailedError,
    RequestTimeout,
    ServerError,
    SystemNotFound,
    UnexpectedFailure,
    UnknownCommand,
    exception_for,
)
from protocore.placeos.router import Router

BINDING = Binding("sys-1", "Display", 1, "power")


def _failed(code: int, message: str = "nope") -> RequestFailed:
    return RequestFailed(7, code, message, ErrorResponse(7, code, message))


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (0, ParseError),
        (1, BadRequest),
        (2, AccessDenied),
        (3, RequestFailedError),
        (4, UnknownCommand),
        (5, SystemNotFound),
        (6, ModuleNotFound),
        (7, UnexpectedFailure),
    ],
)
def test_every_error_number_has_its_exception(code: int, cls: type[ServerError]) -> None:
    error = exception_for(_failed(code, "driver said no"))
    assert type(error) is cls
    assert isinstance(error, PlaceOSError)
    assert error.code == code
    assert error.message == "driver said no"
    assert f"PlaceOS error {code}" in str(error)
    assert "driver said no" in str(error)


def test_an_unknown_error_number_is_a_plain_server_error() -> None:
    error = exception_for(_failed(42))
    assert type(error) is ServerError
    assert error.code == 42
    assert "42" in str(error)


def test_timeouts_and_aborts_have_their_exceptions() -> None:
    timeout = exception_for(RequestTimedOut(3))
    assert isinstance(timeout, RequestTimeout)
    assert isinstance(timeout, TimeoutError)
    lost = exception_for(RequestAborted(4, AbortReason.CONNECTION_LOST))
    assert isinstance(lost, ConnectionLost)
    assert "4" in str(lost)
    not_connected = exception_for(RequestAborted(5, AbortReason.NOT_CONNECTED))
    assert isinstance(not_connected, ConnectionLost)
    assert "not connected" in str(not_connected)


def test_results_reach_the_caller_waiting_on_that_id() -> None:
    router = Router()
    got: dict[int, tuple[Any, BaseException | None]] = {}
    for request_id in (1, 2, 3):
        router.expect(request_id, lambda v, e, i=request_id: got.__setitem__(i, (v, e)))
    assert router.waiting == 3
    left = router.dispatch(
        [
            RequestSucceeded(2, {"ok": True}, SuccessResponse(2, {"ok": True})),
            RequestFailed(1, ErrorCode.MODULE_NOT_FOUND, "no", ErrorResponse(1, 6, "no")),
            RequestTimedOut(3),
        ]
    )
    assert left == []
    assert got[2] == ({"ok": True}, None)
    assert isinstance(got[1][1], ModuleNotFound)
    assert isinstance(got[3][1], RequestTimeout)
    assert router.waiting == 0


def test_forgotten_and_unknown_requests_are_returned_not_lost() -> None:
    router = Router()
    called: list[object] = []
    router.expect(1, lambda v, e: called.append(v))
    router.forget(1)
    router.forget(99)  # no-op
    event = RequestSucceeded(1, 5, None)
    assert router.dispatch([event]) == [event]
    assert called == []


def test_values_fan_out_to_every_listener_of_their_binding_only() -> None:
    router = Router()
    a: list[Any] = []
    b: list[Any] = []
    other: list[Any] = []
    router.listen(BINDING, a.append, lambda e: None)
    token = router.listen(BINDING, b.append, lambda e: None)
    router.listen(Binding("sys-1", "Display", 1, "input"), other.append, lambda e: None)
    change = ValueChanged(BINDING, True, Notification(1, BINDING, True))
    assert router.dispatch([change]) == []
    router.unlisten(token)
    router.dispatch([ValueChanged(BINDING, False, Notification(1, BINDING, False))])
    assert a == [True, False]
    assert b == [True]
    assert other == []


def test_a_value_nobody_listens_to_is_returned() -> None:
    router = Router()
    change = ValueChanged(BINDING, 1, Notification(1, BINDING, 1))
    assert router.dispatch([change]) == [change]


def test_debug_lines_route_by_module_id() -> None:
    router = Router()
    lines: list[DebugMessage] = []
    router.listen_debug("mod-1", lines.append, lambda e: None)
    mine = DebugMessage("mod-1", None, "debug", "input changed")
    theirs = DebugMessage("mod-2", None, "info", "other")
    left = router.dispatch([DebugLog(mine), DebugLog(theirs)])
    assert lines == [mine]
    assert left == [DebugLog(theirs)]


def test_binding_lost_ends_its_listeners_with_the_servers_reason() -> None:
    router = Router()
    ended: list[BaseException] = []
    values: list[Any] = []
    router.listen(BINDING, values.append, ended.append)
    lost = BindingLost(BINDING, ErrorResponse(None, ErrorCode.ACCESS_DENIED, "revoked"))
    assert router.dispatch([lost]) == [lost]
    assert len(ended) == 1
    assert isinstance(ended[0], AccessDenied)
    # The listeners are gone: a late value is returned, not delivered.
    late = ValueChanged(BINDING, 1, Notification(1, BINDING, 1))
    assert router.dispatch([late]) == [late]
    assert values == []


def test_debug_stream_lost_without_an_error_ends_with_a_server_error() -> None:
    router = Router()
    ended: list[BaseException] = []
    router.listen_debug("mod-9", lambda m: None, ended.append)
    router.dispatch([BindingLost(ModuleMeta("sys-1", "mod-9", 1))])
    assert len(ended) == 1
    assert isinstance(ended[0], ServerError)
    assert "mod-9" in str(ended[0])


def test_other_events_pass_through_in_order() -> None:
    router = Router()
    bad = BadMessage(b"{", DecodeError("invalid JSON"))
    unexpected = UnexpectedResponse(SuccessResponse(8))
    assert router.dispatch([bad, unexpected]) == [bad, unexpected]


def test_unlisten_of_an_unknown_token_is_a_no_op() -> None:
    router = Router()
    router.unlisten(12345)
    router.listen(BINDING, lambda v: None, lambda e: None)
    router.unlisten(12345)
    assert router.dispatch([ValueChanged(BINDING, 1, Notification(1, BINDING, 1))]) == []
