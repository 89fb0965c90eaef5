"""`protocore decode`: check captured messages, one per line, and show what they mean.

Each good line becomes one JSON line on stdout (its decoded form, see
`transports.cli.output.jsonable`); each bad one a line on stderr naming its line
number, where in the message it failed (the `DecodeError`'s path) and why. A file
and stdin are read the same way, as bytes split into lines, so a line that is not
UTF-8 is reported like any other bad line and the rest still decode. PlaceOS lines
may be requests (``{"cmd": ...}``, ``ping``) or responses (``{"type": ...}``,
``pong``), told apart line by line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from protocore import DecodeError
from protocore.mews import decode_envelope
from protocore.placeos import decode_request, decode_response

from .mews_source import BadLine, read_lines
from .output import emit, json_line, note

__all__ = ["decode_lines"]

Protocol = Literal["mews", "placeos"]


def _placeos(text: str) -> Any:
    text = text.strip()
    if text == "ping":
        return decode_request(text)
    if text == "pong":
        return decode_response(text)
    try:
        obj = json.loads(text)
    except ValueError:
        return decode_request(text)  # not JSON: the codec says where and why
    if isinstance(obj, dict) and "cmd" in obj:
        return decode_request(text)
    if isinstance(obj, dict) and "type" in obj:
        return decode_response(text)
    raise DecodeError('expected a request (with "cmd"), a response (with "type"), ping or pong')


def _decoder(protocol: Protocol, lenient: bool) -> Callable[[str], Any]:
    if protocol == "mews":
        return lambda text: decode_envelope(text, lenient=lenient)
    return _placeos


def decode_lines(data: bytes, protocol: Protocol, *, source: str, lenient: bool = False) -> int:
    """Decode every non-blank line of ``data``; the exit status (1 when any failed)."""
    decode = _decoder(protocol, lenient)
    good = bad = 0
    for number, line in read_lines(data, source):
        try:
            if isinstance(line, BadLine):
                raise line.error
            decoded = decode(line)
        except DecodeError as exc:
            bad += 1
            where = exc.path or "(the message)"
            note(f"{source}, line {number}: {where}: {exc.reason}")
            continue
        good += 1
        emit(json_line(decoded))
    if bad:
        note(f"{bad} of {good + bad} lines did not decode")
        return 1
    if not good:
        note(f"{source} holds no messages")
    return 0
