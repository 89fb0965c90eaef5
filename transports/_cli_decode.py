"""`protocore decode`: check captured messages, one per line, and show what they mean.

Each good line becomes one JSON line on stdout (its decoded form, see
`transports._cli_output.jsonable`); each bad one a line on stderr naming its line
number, where in the message it failed (the `DecodeError`'s path) and why. PlaceOS
lines may be requests (``{"cmd": ...}``, ``ping``) or responses (``{"type": ...}``,
``pong``), told apart line by line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from protocore import _json
from protocore.errors import DecodeError
from protocore.mews import decode_envelope
from protocore.placeos import decode_request, decode_response

from ._cli_mews_source import read_lines
from ._cli_output import emit, json_line, note

__all__ = ["decode_lines"]

Protocol = Literal["mews", "placeos"]


def _placeos(line: str) -> Any:
    text = line.strip()
    if text == "ping":
        return decode_request(text)
    if text == "pong":
        return decode_response(text)
    obj = _json.loads(text)  # a DecodeError for what is not JSON at all
    if isinstance(obj, dict) and "cmd" in obj:
        return decode_request(text)
    if isinstance(obj, dict) and "type" in obj:
        return decode_response(text)
    raise DecodeError('expected a request (with "cmd"), a response (with "type"), ping or pong')


def _decoder(protocol: Protocol, lenient: bool) -> Callable[[str], Any]:
    if protocol == "mews":
        return lambda line: decode_envelope(line, lenient=lenient)
    return _placeos


def decode_lines(text: str, protocol: Protocol, *, source: str, lenient: bool = False) -> int:
    """Decode every non-blank line of ``text``; the exit status (1 when any failed)."""
    decode = _decoder(protocol, lenient)
    good = bad = 0
    for number, line in read_lines(text):
        try:
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
