"""Hypothesis strategies for raw WebSocket bytes: frames right and wrong, mutations, chunks.

`frames` draws one item of a peer's byte stream: a whole message (maybe fragmented,
maybe with a control frame in between), a control frame, or a frame that breaks a
rule of RFC 6455 (`FrameKind` lists them). `frame_streams` draws several items.
`mutations` damages any bytes a little; `chunkings` splits bytes into the pieces a
socket might deliver. `encode_frame` writes one frame exactly as told, lies included.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal, get_args

from hypothesis import strategies as st

__all__ = [
    "CONTINUATION",
    "TEXT",
    "BINARY",
    "CLOSE",
    "PING",
    "PONG",
    "FrameKind",
    "FRAME_KINDS",
    "VALID_KINDS",
    "encode_frame",
    "close_payload",
    "frames",
    "frame_streams",
    "mutations",
    "chunkings",
    "split",
]

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

FrameKind = Literal[
    "text",
    "binary",
    "fragmented",
    "ping",
    "pong",
    "close",
    "masked_wrongly",
    "oversize",
    "bad_utf8",
    "bad_close",
    "reserved_bits",
    "reserved_opcode",
    "long_control",
    "fragmented_control",
    "stray_continuation",
    "interrupted_message",
]
"""What `frames` can draw. The first six are valid; the rest each break one rule:
a mask where there must be none (or none where there must be one), a message over
the receiver's limit, text that is not UTF-8, a close frame with a bad code, length or
reason, RSV bits without an extension, opcodes 3-7 and 11-15, a control frame over
125 bytes or not final, a continuation with no message, and a new message inside a
fragmented one."""

FRAME_KINDS: tuple[FrameKind, ...] = get_args(FrameKind)
VALID_KINDS: tuple[FrameKind, ...] = ("text", "binary", "fragmented", "ping", "pong", "close")

#: Close codes a peer may send (RFC 6455 7.4 and the registry), and some it may not.
_GOOD_CODES = st.sampled_from([1000, 1001, 1002, 1003, *range(1007, 1015)]) | (
    st.integers(3000, 4999)
)
#: Up to this limit, ``oversize`` messages are real bytes; past it only a header lies.
_REAL_OVERSIZE = 1 << 16

_BAD_CODES = st.sampled_from([0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    mask: bytes | None = None,
    rsv: int = 0,
    length: int | None = None,
) -> bytes:
    """One frame, exactly as told: ``mask`` (4 bytes) masks the payload and sets the
    mask bit; ``rsv`` (0-7) sets the reserved bits; ``length`` is the length written in
    the header (default: the payload's), so a frame can claim more than it carries."""
    size = len(payload) if length is None else length
    head = bytearray([(0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 0xF)])
    mask_bit = 0x80 if mask is not None else 0
    if size < 126:
        head.append(mask_bit | size)
    elif size < 1 << 16:
        head.append(mask_bit | 126)
        head += size.to_bytes(2, "big")
    else:
        head.append(mask_bit | 127)
        head += size.to_bytes(8, "big")
    if mask is not None:
        head += mask
        payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return bytes(head) + payload


def close_payload(code: int | None, reason: str = "") -> bytes:
    """A close frame's payload: the code (None: empty payload) and the UTF-8 reason."""
    if code is None:
        return b""
    return code.to_bytes(2, "big") + reason.encode("utf-8")


def _utf8_pieces(draw: st.DrawFn, data: bytes, count: int) -> list[bytes]:
    """``data`` in ``count`` pieces, cut anywhere (even inside a character)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), min_size=count - 1, max_size=count - 1)))
    return split(data, cuts, keep_empty=True)


def split(data: bytes, cuts: Sequence[int], *, keep_empty: bool = False) -> list[bytes]:
    """``data`` cut at the offsets ``cuts`` (any order, repeats allowed)."""
    points = [0, *sorted(set(cuts) if not keep_empty else cuts), len(data)]
    pieces = [data[a:b] for a, b in itertools.pairwise(points)]
    return pieces if keep_empty else [p for p in pieces if p]


@st.composite
def frames(
    draw: st.DrawFn,
    *,
    from_client: bool,
    kinds: Sequence[FrameKind] = FRAME_KINDS,
    max_message_size: int = 1 << 20,
    max_payload: int = 200,
) -> bytes:
    """The bytes of one item of a peer's stream, of a kind drawn from ``kinds``.

    ``from_client`` says who sends: a client masks every frame (with a random key), a
    server masks none, and ``masked_wrongly`` does the opposite. ``oversize`` goes over
    ``max_message_size``: with real bytes (one frame or two) when the limit is at most
    64 KiB, else with a header that claims more than the limit followed by only the
    first bytes of its payload. Other payloads stay under ``max_payload``.
    """
    kind = draw(st.sampled_from(list(kinds)))

    def mask() -> bytes | None:
        return draw(st.binary(min_size=4, max_size=4)) if from_client else None

    def frame(opcode: int, payload: bytes = b"", **kw: object) -> bytes:
        return encode_frame(opcode, payload, mask=mask(), **kw)  # type: ignore[arg-type]

    text = draw(st.text(max_size=max_payload // 4)).encode("utf-8")
    data = draw(st.binary(max_size=max_payload))
    control = draw(st.binary(max_size=125))
    if kind == "text":
        return frame(TEXT, text)
    if kind == "binary":
        return frame(BINARY, data)
    if kind == "fragmented":
        opcode = draw(st.sampled_from([TEXT, BINARY]))
        pieces = _utf8_pieces(draw, text if opcode == TEXT else data, draw(st.integers(2, 4)))
        out = b""
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            out += frame(opcode if i == 0 else CONTINUATION, piece, fin=last)
            if not last and draw(st.booleans()):
                out += frame(draw(st.sampled_from([PING, PONG])), control)
        return out
    if kind in ("ping", "pong"):
        return frame(PING if kind == "ping" else PONG, control)
    if kind == "close":
        code = draw(st.none() | _GOOD_CODES)
        reason = draw(st.text(max_size=30)) if code is not None else ""
        payload = close_payload(code, reason)
        return frame(CLOSE, payload[:125])
    if kind == "masked_wrongly":
        wrong = None if from_client else draw(st.binary(min_size=4, max_size=4))
        return encode_frame(draw(st.sampled_from([TEXT, PING])), text[:125], mask=wrong)
    if kind == "oversize":
        opcode = draw(st.sampled_from([TEXT, BINARY]))
        if max_message_size <= _REAL_OVERSIZE:
            # The whole message, a little over the limit, in one frame or two.
            body = b"x" * (max_message_size + draw(st.integers(1, 64)))
            if draw(st.booleans()):
                return frame(opcode, body)
            half = len(body) // 2
            return frame(opcode, body[:half], fin=False) + frame(CONTINUATION, body[half:])
        # A header claiming more than the limit, then the first bytes of the payload.
        claimed = draw(st.integers(max_message_size + 1, 2**63 - 1))
        return frame(opcode, data[:16] or b"?", length=claimed)
    if kind == "bad_utf8":
        bad = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"]))
        at = draw(st.integers(0, len(text)))
        payload = text[:at] + bad + text[at:]
        if draw(st.booleans()):
            return frame(TEXT, payload)
        return frame(CLOSE, close_payload(1000) + payload[:100])
    if kind == "bad_close":
        payload = draw(
            st.one_of(
                st.binary(min_size=1, max_size=1),
                _BAD_CODES.map(close_payload),
            )
        )
        return frame(CLOSE, payload)
    if kind == "reserved_bits":
        return frame(TEXT, text, rsv=draw(st.integers(1, 7)))
    if kind == "reserved_opcode":
        return frame(draw(st.sampled_from([3, 4, 5, 6, 7, 11, 12, 13, 14, 15])), data[:50])
    if kind == "long_control":
        return frame(draw(st.sampled_from([PING, PONG, CLOSE])), b"\x03\xe8" + b"x" * 124)
    if kind == "fragmented_control":
        return frame(draw(st.sampled_from([PING, PONG])), control, fin=False)
    if kind == "stray_continuation":
        return frame(CONTINUATION, data, fin=draw(st.booleans()))
    assert kind == "interrupted_message"
    return frame(TEXT, text, fin=False) + frame(draw(st.sampled_from([TEXT, BINARY])), data)


def frame_streams(
    *,
    from_client: bool,
    kinds: Sequence[FrameKind] = FRAME_KINDS,
    max_items: int = 8,
    max_message_size: int = 1 << 20,
) -> st.SearchStrategy[list[bytes]]:
    """Up to ``max_items`` `frames` items in a row (concatenate them to get a stream)."""
    return st.lists(
        frames(from_client=from_client, kinds=kinds, max_message_size=max_message_size),
        max_size=max_items,
    )


@st.composite
def mutations(draw: st.DrawFn, data: bytes, max_changes: int = 3) -> bytes:
    """``data`` with 1 to ``max_changes`` small changes, as a flaky peer or a fuzzer
    makes them: a bit flipped, a byte replaced, bytes inserted, a slice dropped or
    repeated, the tail cut off."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, max_changes))):
        action = draw(st.sampled_from(["flip", "replace", "insert", "drop", "repeat", "cut"]))
        at = draw(st.integers(0, len(out)))
        if action == "insert" or not out:
            out[at:at] = draw(st.binary(min_size=1, max_size=8))
            continue
        at = min(at, len(out) - 1)
        end = draw(st.integers(at + 1, min(len(out), at + 16)))
        if action == "flip":
            out[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "replace":
            out[at] = draw(st.integers(0, 255))
        elif action == "drop":
            del out[at:end]
        elif action == "repeat":
            out[at:at] = out[at:end]
        else:
            del out[at:]
    return bytes(out)


def chunkings(data: bytes, max_cuts: int = 20) -> st.SearchStrategy[list[bytes]]:
    """``data`` split into non-empty pieces at up to ``max_cuts`` places: how a socket
    may deliver it. Joined, the pieces are ``data`` again."""
    return st.lists(st.integers(0, len(data)), max_size=max_cuts).map(
        lambda cuts: split(data, cuts)
    )
