"""Mews datetimes: ISO 8601 text on the wire, timezone-aware UTC `datetime` in models.

Mews writes ``YYYY-MM-DDThh:mm:ssZ``. We also accept what ISO 8601 producers commonly
emit: fractional seconds (1 to 9 digits: .NET writes 7; beyond microseconds they are
truncated), ``hh:mm`` without seconds, offsets (``+01:00``, ``+0100``, ``+01``,
converted to UTC), ``t``/``z`` in lower case and a space instead of ``T`` (RFC 3339).
A value without an offset is taken as UTC, since Mews documents every time as UTC.
A time part is required; anything else (week dates, basic format, leap seconds,
hour 24) is refused with a reason.

This is the precise parser and the source of the error messages; the codec's fast path
reads the canonical form with ``datetime.fromisoformat`` and must agree with it
wherever it succeeds (a test checks it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from protocore.errors import DecodeError, EncodeError

from ._describe import describe

__all__ = ["format_datetime", "parse_datetime"]

_DATETIME = re.compile(
    r"""
    (?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})
    [Tt ]
    (?P<hour>\d{2}):(?P<minute>\d{2})
    (?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?
    (?:(?P<utc>[Zz])|(?P<sign>[+-])(?P<off_hour>\d{2})(?::?(?P<off_minute>\d{2}))?)?
    """,
    re.VERBOSE | re.ASCII,
)


def _invalid(value: object, detail: str = "") -> DecodeError:
    suffix = f" ({detail})" if detail else ""
    return DecodeError(f"expected an ISO 8601 datetime, got {describe(value)}{suffix}")


def parse_datetime(value: object) -> datetime:
    """A wire datetime as an aware UTC `datetime`, or a pathless `DecodeError`."""
    if not isinstance(value, str):
        raise _invalid(value)
    match = _DATETIME.fullmatch(value)
    if match is None:
        raise _invalid(value)
    fraction = match["fraction"] or ""
    try:
        result = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"] or 0),
            int(fraction.ljust(6, "0")[:6]),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise _invalid(value, str(exc)) from None
    if match["sign"] is None:
        return result
    off_hour, off_minute = int(match["off_hour"]), int(match["off_minute"] or 0)
    if off_hour > 23 or off_minute > 59:
        raise _invalid(value, "offset out of range")
    offset = timedelta(hours=off_hour, minutes=off_minute)
    try:
        # Read the wall time in its own offset, then move it to UTC.
        return (result - offset) if match["sign"] == "+" else (result + offset)
    except OverflowError:
        raise _invalid(value, "out of range once converted to UTC") from None


def format_datetime(value: datetime) -> str:
    """Canonical wire text: ``YYYY-MM-DDThh:mm:ssZ``, ``.ffffff`` only when needed."""
    if not isinstance(value, datetime):
        raise EncodeError(f"expected a datetime, got {type(value).__name__}")
    offset = value.utcoffset()
    if offset is None:
        raise EncodeError("naive datetime: give it tzinfo=timezone.utc (Mews times are UTC)")
    if offset:
        try:
            value = (value - offset).replace(tzinfo=UTC)
        except OverflowError:
            raise EncodeError("datetime out of range once converted to UTC") from None
    text = (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        f"T{value.hour:02d}:{value.minute:02d}:{value.second:02d}"
    )
    return f"{text}.{value.microsecond:06d}Z" if value.microsecond else f"{text}Z"
