"""How the CLI shows decoded things: JSON lines for scripts, one-line text for people.

`jsonable` turns any decoded model (Mews events and envelopes, PlaceOS requests,
responses and log lines) into plain JSON values, generically from its attrs fields,
so a new field shows up without touching this module: ``{"kind": "ReservationEvent",
"id": ..., "start_utc": "2016-02-20T13:00:00+00:00", ...}``. Private fields (the
wire object a Mews event came from) are left out, as is an empty ``extra``.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import attrs

from protocore import DecodeError, parse_ws_url
from protocore.mews import (
    DeviceCommandEvent,
    InvalidEvent,
    PriceUpdateEvent,
    ReservationEvent,
    ResourceEvent,
    UnknownEvent,
)
from protocore.placeos import DebugMessage

__all__ = [
    "emit",
    "note",
    "jsonable",
    "json_line",
    "describe_mews_event",
    "describe_log_line",
    "short_time",
    "safe_url",
    "plural",
]

PROG = "protocore"


def emit(line: str) -> None:
    """A line of the command's output (stdout), flushed at once for pipes."""
    print(line, flush=True)


def note(message: str) -> None:
    """A line for the person watching (stderr): progress, warnings, errors."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def safe_url(url: str) -> str:
    """``url`` without its query (where legacy Mews URLs carry the tokens)."""
    parsed = parse_ws_url(url)
    return f"{parsed.scheme}://{parsed.host_header}{parsed.path}"


def plural(n: int, word: str) -> str:
    """``1 system``, ``2 systems``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def jsonable(value: Any) -> Any:
    """``value`` as JSON-encodable data (see the module doc)."""
    if isinstance(value, enum.Enum):  # before str and int: StrEnum, IntEnum
        return value.value
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, DecodeError):
        return {"path": value.path, "reason": value.reason}
    if attrs.has(type(value)):
        out: dict[str, Any] = {"kind": type(value).__name__}
        for field in attrs.fields(type(value)):
            if field.name.startswith("_"):
                continue
            item = getattr(value, field.name)
            if field.name == "extra" and not item:
                continue
            out[field.name] = jsonable(item)
        return out
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return repr(value)  # nothing decoded is anything else; never fail on output


def json_line(value: Any) -> str:
    """One compact JSON line (non-ASCII kept as is)."""
    return json.dumps(jsonable(value), ensure_ascii=False, separators=(", ", ": "))


def short_time(value: datetime | None) -> str:
    """``2016-02-20 13:00Z`` (seconds and fractions only when there are some)."""
    if value is None:
        return "?"
    text = value.strftime("%Y-%m-%d %H:%M")
    if value.second or value.microsecond:
        text += value.strftime(":%S")
        if value.microsecond:
            text += f".{value.microsecond:06d}".rstrip("0")
    offset = value.utcoffset()
    return text + ("Z" if offset is not None and not offset else value.strftime("%z"))


def _short_id(value: str | None) -> str:
    return "?" if value is None else value.split("-", 1)[0]


def describe_mews_event(event: Any) -> str:
    """One readable line for a decoded Mews event."""
    extra = getattr(event, "extra", None)
    tail = f"  (new fields kept: {', '.join(sorted(extra))})" if extra else ""
    if isinstance(event, DeviceCommandEvent):
        return f"DeviceCommand {_short_id(event.id)}  state={event.state}{tail}"
    if isinstance(event, ReservationEvent):
        where = (
            f"  resource={_short_id(event.assigned_resource_id)}"
            if event.assigned_resource_id
            else ""
        )
        return (
            f"Reservation   {_short_id(event.id)}  state={event.state}  "
            f"{short_time(event.start_utc)} -> {short_time(event.end_utc)}{where}{tail}"
        )
    if isinstance(event, ResourceEvent):
        legacy = "  (a legacy Space event)" if event.legacy_space else ""
        return f"Resource      {_short_id(event.id)}  state={event.state}{legacy}{tail}"
    if isinstance(event, PriceUpdateEvent):
        dates = (
            f"  {short_time(event.start_utc)} -> {short_time(event.end_utc)}"
            if event.start_utc is not None or event.end_utc is not None
            else "  (no dates: optional since 2023)"
        )
        return f"PriceUpdate   {_short_id(event.id)}  rate={_short_id(event.rate_id)}{dates}{tail}"
    if isinstance(event, UnknownEvent):
        return f"{event.type} {_short_id(event.id)}  (a type this library does not know; kept)"
    if isinstance(event, InvalidEvent):
        return f"invalid {event.type or 'event'}: {event.error}"
    return type(event).__name__


def describe_log_line(line: DebugMessage) -> str:
    """``[info] ::Place::Display: power requested: true``."""
    return f"[{jsonable(line.level)}] {line.klass or line.mod}: {line.message}"
