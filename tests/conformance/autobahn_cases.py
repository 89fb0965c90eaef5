"""The Autobahn testsuite's cases 1-7 and 9, rebuilt from their public descriptions.

Each case says what the peer sends (frames, chops, waits), what the endpoint must do
(the strict and, where Autobahn has one, the lenient trace; how the close must go)
and the outcome we get, OK or NON-STRICT (or INFORMATIONAL where Autobahn only
informs), with the reason for anything but OK. The tests play every case against
both our connections; `conformance_doc.py` writes the table to docs/conformance.md.

The UTF-8 sequences of 6.5-6.23 are the classic decoder stress test (valid text,
boundaries, malformed, overlong and surrogate sequences, noncharacters); whether
each is valid is decided by Python's strict UTF-8 decoder.
"""

from __future__ import annotations

from collections.abc import Iterator

import attrs
from autobahn_runner import (
    BINARY,
    CLOSE,
    CONTINUATION,
    INVALID_PAYLOAD,
    NORMAL,
    PING,
    PONG,
    PROTOCOL_ERROR,
    TEXT,
    Chops,
    Close,
    Frame,
    Item,
    Outcome,
    Result,
    Side,
    Wait,
    judge,
    play,
)

from protocore.connection import DEFAULT_MAX_MESSAGE_SIZE

OK, NON_STRICT, INFORMATIONAL = Outcome.OK, Outcome.NON_STRICT, Outcome.INFORMATIONAL
LARGE = 16 * 2**20 + 1024
"""The limit for the 9.x cases: every message fits."""


@attrs.frozen
class Case:
    id: str
    description: str
    steps: tuple[Frame | Wait, ...]
    ok: tuple[Item, ...]
    close: Close = NORMAL
    non_strict: tuple[Item, ...] | None = None
    chops: Chops = "one"
    limit: int = DEFAULT_MAX_MESSAGE_SIZE
    outcome: Outcome = OK
    """What we get (the tests check it): OK unless ``note`` says why not."""
    note: str = ""
    informational: bool = False
    """Autobahn only reports what happens (7.1.6, 7.13.x): any clean ending is fine."""

    @property
    def section(self) -> str:
        return self.id.split(".", 1)[0]

    def run(self, side: Side) -> Result:
        trace, by_peer, code, _ = play(side, self.steps, self.chops, self.close, limit=self.limit)
        outcome, why = judge(
            trace, by_peer, code, ok=self.ok, non_strict=self.non_strict, close=self.close
        )
        if self.informational and outcome is not Outcome.FAILED:
            outcome = INFORMATIONAL
        return Result(outcome, trace, by_peer, code, why)


def msg(payload: str | bytes) -> Item:
    return ("message", payload)


def pong(payload: bytes) -> Item:
    return ("pong", payload)


def text(payload: str | bytes, *, fin: bool = True, rsv: int = 0) -> Frame:
    data = payload.encode() if isinstance(payload, str) else payload
    return Frame(TEXT, data, fin=fin, rsv=rsv)


def cont(payload: str | bytes, *, fin: bool = True) -> Frame:
    data = payload.encode() if isinstance(payload, str) else payload
    return Frame(CONTINUATION, data, fin=fin)


def close_frame(code: int | None = 1000, reason: bytes = b"") -> Frame:
    return Frame(CLOSE, b"" if code is None else code.to_bytes(2) + reason)


def fragments(opcode: int, payload: bytes, size: int) -> tuple[Frame, ...]:
    """A message in frames of ``size`` payload bytes."""
    parts = [payload[i : i + size] for i in range(0, len(payload), size)] or [b""]
    return tuple(
        Frame(opcode if not i else CONTINUATION, part, fin=i == len(parts) - 1)
        for i, part in enumerate(parts)
    )


HELLO = "Hello, world!"
KOSME = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"  # κόσμε, with U+1F79
INVALID = KOSME + b"\xed\xa0\x80" + b"edited"  # a lone surrogate at byte 12
UTF8 = "Hello-µ@ßöäüàá-UTF-8!!"


def _framing() -> Iterator[Case]:
    sizes = [0, 125, 126, 127, 128, 65535, 65536]
    for sub, (kind, opcode, unit) in enumerate(
        [("text", TEXT, b"*"), ("binary", BINARY, b"\xfe")], 1
    ):
        for n, size in enumerate(sizes, 1):
            payload = unit * size
            data: str | bytes = payload.decode() if opcode == TEXT else payload
            yield Case(
                f"1.{sub}.{n}",
                f"{kind} message, payload of {size} bytes",
                (Frame(opcode, payload),),
                (msg(data),),
            )
        payload = unit * 65536
        yield Case(
            f"1.{sub}.8",
            f"{kind} message, payload of 65536 bytes, written in chops of 997",
            (Frame(opcode, payload),),
            (msg(payload.decode() if opcode == TEXT else payload),),
            chops=997,
        )


def _pings() -> Iterator[Case]:
    binary = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    yield Case("2.1", "ping without payload", (Frame(PING),), (pong(b""),))
    yield Case(
        "2.2",
        "ping with a small text payload",
        (Frame(PING, HELLO.encode()),),
        (pong(HELLO.encode()),),
    )
    yield Case("2.3", "ping with a small binary payload", (Frame(PING, binary),), (pong(binary),))
    yield Case(
        "2.4",
        "ping with 125 bytes of payload",
        (Frame(PING, b"\xfe" * 125),),
        (pong(b"\xfe" * 125),),
    )
    yield Case(
        "2.5",
        "ping with 126 bytes of payload (control frames carry at most 125)",
        (Frame(PING, b"\xfe" * 126),),
        (),
        PROTOCOL_ERROR,
    )
    yield Case(
        "2.6",
        "ping with 125 bytes of payload, written byte by byte",
        (Frame(PING, b"\xfe" * 125),),
        (pong(b"\xfe" * 125),),
        chops="octet",
    )
    yield Case("2.7", "unsolicited pong without payload", (Frame(PONG),), ())
    unsolicited = b"unsolicited pong payload"
    yield Case("2.8", "unsolicited pong with payload", (Frame(PONG, unsolicited),), ())
    yield Case(
        "2.9",
        "unsolicited pong, then a ping",
        (Frame(PONG, unsolicited), Frame(PING, b"ping payload")),
        (pong(b"ping payload"),),
    )
    pings = [f"payload-{i}".encode() for i in range(10)]
    for case_id, chops, how in (("2.10", "one", ""), ("2.11", "octet", ", written byte by byte")):
        yield Case(
            case_id,
            f"10 pings with payload{how}: a pong for each",
            tuple(Frame(PING, p) for p in pings),
            tuple(pong(p) for p in pings),
            chops=chops,  # type: ignore[arg-type]
        )


def _reserved_bits() -> Iterator[Case]:
    yield Case("3.1", "text message with RSV = 1", (text(HELLO, rsv=1),), (), PROTOCOL_ERROR)
    for case_id, rsv, chops, how in (
        ("3.2", 2, "one", ""),
        ("3.3", 3, "frame", ", frame by frame"),
        ("3.4", 4, "octet", ", byte by byte"),
    ):
        yield Case(
            case_id,
            f"text message, then one with RSV = {rsv}, then a ping{how}: the first is "
            "received, then the connection fails, no pong",
            (text(HELLO), text(HELLO, rsv=rsv), Frame(PING)),
            (msg(HELLO),),
            PROTOCOL_ERROR,
            non_strict=(),
            chops=chops,  # type: ignore[arg-type]
        )
    yield Case(
        "3.5",
        "binary message with RSV = 5",
        (Frame(BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5),),
        (),
        PROTOCOL_ERROR,
    )
    yield Case(
        "3.6", "ping with RSV = 6", (Frame(PING, HELLO.encode(), rsv=6),), (), PROTOCOL_ERROR
    )
    yield Case(
        "3.7", "close with RSV = 7", (Frame(CLOSE, (1000).to_bytes(2), rsv=7),), (), PROTOCOL_ERROR
    )


def _opcodes() -> Iterator[Case]:
    payload = b"reserved opcode payload"
    for group, kind, codes in (
        (1, "non-control", (3, 4, 5, 6, 7)),
        (2, "control", (11, 12, 13, 14, 15)),
    ):
        for n, opcode in enumerate(codes, 1):
            body = payload if n % 2 == 0 or n == 5 else b""
            with_payload = " with a payload" if body else ""
            if n <= 2:
                yield Case(
                    f"4.{group}.{n}",
                    f"frame with the reserved {kind} opcode {opcode}{with_payload}",
                    (Frame(opcode, body),),
                    (),
                    PROTOCOL_ERROR,
                )
                continue
            chops: Chops = "octet" if n == 5 else "one"
            how = ", byte by byte" if n == 5 else ""
            yield Case(
                f"4.{group}.{n}",
                f"text message, then the reserved {kind} opcode {opcode}{with_payload}, then "
                f"a ping{how}: the message is received, then the connection fails, no pong",
                (text(HELLO), Frame(opcode, body), Frame(PING)),
                (msg(HELLO),),
                PROTOCOL_ERROR,
                non_strict=(),
                chops=chops,
            )


def _fragmentation() -> Iterator[Case]:
    f = [f"fragment{i}" for i in range(1, 6)]
    yield Case(
        "5.1",
        "ping in 2 fragments (control frames cannot be fragmented)",
        (Frame(PING, f[0].encode(), fin=False), cont(f[1])),
        (),
        PROTOCOL_ERROR,
    )
    yield Case(
        "5.2",
        "pong in 2 fragments",
        (Frame(PONG, f[0].encode(), fin=False), cont(f[1])),
        (),
        PROTOCOL_ERROR,
    )
    how = {"one": "", "frame": ", frame by frame", "octet": ", byte by byte"}
    for n, chops in enumerate(("one", "frame", "octet"), 3):
        yield Case(
            f"5.{n}",
            f"text message in 2 fragments{how[chops]}",
            (text(f[0], fin=False), cont(f[1])),
            (msg(f[0] + f[1]),),
            chops=chops,  # type: ignore[arg-type]
        )
    for n, chops in enumerate(("one", "frame", "octet"), 6):
        yield Case(
            f"5.{n}",
            f"text message in 2 fragments with a ping in between{how[chops]}: the pong comes first",
            (text(f[0], fin=False), Frame(PING, b"ping payload"), cont(f[1])),
            (pong(b"ping payload"), msg(f[0] + f[1])),
            chops=chops,  # type: ignore[arg-type]
        )
    for first, fin in ((9, True), (12, False)):
        for n, chops in enumerate(("one", "frame", "octet"), first):
            yield Case(
                f"5.{n}",
                f"continuation frame with FIN = {str(fin).lower()} and nothing to continue, "
                f"then a text message{how[chops]}",
                (cont("non-continuation payload", fin=fin), text(HELLO)),
                (),
                PROTOCOL_ERROR,
                chops=chops,  # type: ignore[arg-type]
            )
    yield Case(
        "5.15",
        "text message in 2 fragments, then a continuation with nothing to continue, then "
        "a text message: the first is received, then the connection fails",
        (text(f[0], fin=False), cont(f[1]), cont(f[2], fin=False), text(f[3])),
        (msg(f[0] + f[1]),),
        PROTOCOL_ERROR,
        non_strict=(),
    )
    for n, fin in ((16, False), (17, True)):
        yield Case(
            f"5.{n}",
            f"twice: a continuation with FIN = {str(fin).lower()} and nothing to continue, "
            "then a text message in 2 fragments",
            (cont(f[0], fin=fin), text(f[1], fin=False), cont(f[2])) * 2,
            (),
            PROTOCOL_ERROR,
        )
    yield Case(
        "5.18",
        "text message in 2 fragments, both with the text opcode",
        (text(f[0], fin=False), text(f[1])),
        (),
        PROTOCOL_ERROR,
    )
    steps = (
        text(f[0], fin=False),
        cont(f[1], fin=False),
        Frame(PING, b"pongme 1!"),
        Wait(),
        cont(f[2], fin=False),
        cont(f[3], fin=False),
        Frame(PING, b"pongme 2!"),
        cont(f[4]),
    )
    expected = (pong(b"pongme 1!"), pong(b"pongme 2!"), msg("".join(f)))
    yield Case(
        "5.19",
        "text message in 5 fragments, a pause after the second, pings after the second "
        "and the fourth: each pong comes at once, then the message",
        steps,
        expected,
    )
    yield Case("5.20", "as 5.19, frame by frame", steps, expected, chops="frame")


def _utf8_sequences() -> list[tuple[str, list[bytes]]]:
    kosme_prefixes = [KOSME[:i] for i in range(1, len(KOSME) + 1)]
    missing = [
        b"\xc0",
        b"\xe0\x80",
        b"\xf0\x80\x80",
        b"\xf8\x80\x80\x80",
        b"\xfc\x80\x80\x80\x80",
        b"\xdf",
        b"\xef\xbf",
        b"\xf7\xbf\xbf",
        b"\xfb\xbf\xbf\xbf",
        b"\xfd\xbf\xbf\xbf\xbf",
    ]
    high = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf"]
    low = [b"\xed\xb0\x80", b"\xed\xbf\xbf"]
    lonely = [(0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD)]
    nonchars = [chr(c).encode() for c in (0xFFFE, 0xFFFF)]
    nonchars += [chr(p << 16 | c).encode() for p in range(1, 17) for c in (0xFFFE, 0xFFFF)]
    return [
        (
            "valid text",
            [
                b"hello$world",
                "hello¢world".encode(),
                "hello€world".encode(),
                "hello\U00024b62world".encode(),
                KOSME,
            ],
        ),
        ("every prefix of a text with multi-byte code points", kosme_prefixes),
        (
            "first sequence of each length",
            [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"],
        ),
        (
            "first sequence of length 5 and 6",
            [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"],
        ),
        (
            "last sequence of each length",
            [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"],
        ),
        (
            "last sequence of length 4, 5 and 6 (past U+10FFFF)",
            [b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"],
        ),
        (
            "other boundaries",
            [
                b"\xed\x9f\xbf",
                b"\xee\x80\x80",
                b"\xef\xbf\xbd",
                b"\xf4\x8f\xbf\xbf",
                b"\xf4\x90\x80\x80",
            ],
        ),
        (
            "unexpected continuation bytes",
            [
                b"\x80",
                b"\xbf",
                b"\x80\xbf",
                b"\x80\xbf\x80",
                b"\x80\xbf\x80\xbf",
                b"\x80\xbf\x80\xbf\x80",
                b"\x80\xbf\x80\xbf\x80\xbf",
                bytes(range(0x80, 0xBF)),
            ],
        ),
        (
            "lonely start bytes, each followed by a space",
            [b"".join(bytes([i, 0x20]) for i in range(a, b)) for a, b in lonely],
        ),
        ("sequences missing their last continuation byte", missing),
        ("those incomplete sequences, concatenated", [b"".join(missing)]),
        ("impossible bytes", [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"]),
        (
            "overlong slash",
            [
                b"\xc0\xaf",
                b"\xe0\x80\xaf",
                b"\xf0\x80\x80\xaf",
                b"\xf8\x80\x80\x80\xaf",
                b"\xfc\x80\x80\x80\x80\xaf",
            ],
        ),
        (
            "longest overlong sequences",
            [
                b"\xc1\xbf",
                b"\xe0\x9f\xbf",
                b"\xf0\x8f\xbf\xbf",
                b"\xf8\x87\xbf\xbf\xbf",
                b"\xfc\x83\xbf\xbf\xbf\xbf",
            ],
        ),
        (
            "overlong NUL",
            [
                b"\xc0\x80",
                b"\xe0\x80\x80",
                b"\xf0\x80\x80\x80",
                b"\xf8\x80\x80\x80\x80",
                b"\xfc\x80\x80\x80\x80\x80",
            ],
        ),
        ("single UTF-16 surrogates", [*high, b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf"]),
        ("paired UTF-16 surrogates", [h + lo for h in high for lo in low]),
        ("noncharacters (valid UTF-8)", nonchars),
        ("Unicode specials", [chr(c).encode() for c in range(0xFFF9, 0x10000)]),
    ]


def _valid(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _utf8() -> Iterator[Case]:
    yield Case("6.1.1", "text message of length 0", (text(b""),), (msg(""),))
    yield Case(
        "6.1.2",
        "text message in 3 empty fragments",
        (text(b"", fin=False), cont(b"", fin=False), cont(b"")),
        (msg(""),),
    )
    middle = "middle frame payload"
    yield Case(
        "6.1.3",
        "text message in 3 fragments, the first and last empty",
        (text(b"", fin=False), cont(middle, fin=False), cont(b"")),
        (msg(middle),),
    )
    yield Case("6.2.1", "valid UTF-8 text message in one frame", (text(UTF8),), (msg(UTF8),))
    yield Case(
        "6.2.2",
        "valid UTF-8 text message in 2 fragments, cut on a code point boundary",
        (text("Hello-µ@ßöä", fin=False), cont("üàá-UTF-8!!")),
        (msg(UTF8),),
    )
    yield Case(
        "6.2.3",
        "valid UTF-8 text message in fragments of 1 byte (cut inside code points)",
        fragments(TEXT, UTF8.encode(), 1),
        (msg(UTF8),),
    )
    yield Case(
        "6.2.4",
        "valid UTF-8 text message (κόσμε) in fragments of 1 byte",
        fragments(TEXT, KOSME, 1),
        (msg(KOSME.decode()),),
    )
    yield Case(
        "6.3.1", "invalid UTF-8 text message in one frame", (text(INVALID),), (), INVALID_PAYLOAD
    )
    yield Case(
        "6.3.2",
        "invalid UTF-8 text message in fragments of 1 byte",
        fragments(TEXT, INVALID, 1),
        (),
        INVALID_PAYLOAD,
    )
    out_of_range = KOSME + b"\xf4\x90\x80\x80" + b"edited"  # U+110000: past the last code point
    fail_fast = (("wait", "A"),)
    lenient = (("wait", "A"), ("wait", "B"))
    yield Case(
        "6.4.1",
        "invalid UTF-8 in 3 fragments with pauses, the second making it invalid: fail "
        "fast, before the third",
        (
            text(KOSME, fin=False),
            Wait("A"),
            cont(b"\xf4\x90\x80\x80", fin=False),
            Wait("B"),
            cont("edited"),
        ),
        fail_fast,
        INVALID_PAYLOAD,
        non_strict=lenient,
    )
    yield Case(
        "6.4.2",
        "as 6.4.1, the second fragment only the byte that makes it invalid (the first "
        "ends inside a code point)",
        (
            text(out_of_range[:12], fin=False),
            Wait("A"),
            cont(out_of_range[12:13], fin=False),
            Wait("B"),
            cont(out_of_range[13:]),
        ),
        fail_fast,
        INVALID_PAYLOAD,
        non_strict=lenient,
    )
    yield Case(
        "6.4.3",
        "as 6.4.1, in 3 chops of one frame",
        (Frame(TEXT, out_of_range, waits_at=(11, 15)),),
        fail_fast,
        INVALID_PAYLOAD,
        non_strict=lenient,
    )
    yield Case(
        "6.4.4",
        "as 6.4.2, in 3 chops of one frame",
        (Frame(TEXT, out_of_range, waits_at=(12, 13)),),
        fail_fast,
        INVALID_PAYLOAD,
        non_strict=lenient,
    )
    for group, (title, sequences) in enumerate(_utf8_sequences(), 5):
        for n, data in enumerate(sequences, 1):
            valid = _valid(data)
            yield Case(
                f"6.{group}.{n}",
                f"{title}: {data[:24].hex()}{'...' if len(data) > 24 else ''} "
                f"({'valid' if valid else 'invalid'})",
                (text(data),),
                (msg(data.decode()),) if valid else (),
                NORMAL if valid else INVALID_PAYLOAD,
            )


def _close() -> Iterator[Case]:
    hello = "Hello World!"
    yield Case("7.1.1", "text message, then a close", (text(hello), close_frame()), (msg(hello),))
    yield Case(
        "7.1.2", "two close frames: the second is ignored", (close_frame(), close_frame(None)), ()
    )
    yield Case("7.1.3", "a ping after the close: no pong", (close_frame(), Frame(PING)), ())
    yield Case("7.1.4", "a text message after the close: ignored", (close_frame(), text(hello)), ())
    yield Case(
        "7.1.5",
        "a first fragment, a close, then the last fragment",
        (text("fragment1", fin=False), close_frame(), cont("fragment2")),
        (),
    )
    big = (b"BAsd7&jh23" * (256 * 2**10 // 10 + 1))[: 256 * 2**10]
    yield Case(
        "7.1.6",
        "a 256 KiB text message, a small one, a close, then a ping",
        (text(big), text(hello), close_frame(), Frame(PING)),
        (msg(big.decode()), msg(hello)),
        informational=True,
        outcome=INFORMATIONAL,
        note="Autobahn only informs here. Both messages are received before the close "
        "is answered (the bytes are read in order); the ping after it gets no pong.",
    )
    yield Case(
        "7.3.1", "close frame without payload: an empty close answers it", (close_frame(None),), ()
    )
    yield Case(
        "7.3.2",
        "close frame with a 1-byte payload",
        (Frame(CLOSE, b"*"),),
        (),
        Close(by_peer=True, codes=(1002,)),
    )
    yield Case("7.3.3", "close frame with a code and no reason", (close_frame(),), ())
    yield Case(
        "7.3.4", "close frame with a code and a reason", (close_frame(1000, hello.encode()),), ()
    )
    yield Case(
        "7.3.5",
        "close frame with a reason of 123 bytes (the most that fits)",
        (close_frame(1000, b"*" * 123),),
        (),
    )
    yield Case(
        "7.3.6",
        "close frame with a reason of 124 bytes (126 bytes of payload)",
        (close_frame(1000, b"*" * 124),),
        (),
        Close(by_peer=True, codes=(1002,)),
    )
    yield Case(
        "7.5.1",
        "close frame with a reason that is not UTF-8",
        (close_frame(1000, INVALID),),
        (),
        Close(by_peer=True, codes=(1002, 1007)),
    )
    valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
    for n, code in enumerate(valid, 1):
        yield Case(
            f"7.7.{n}",
            f"close with the valid code {code}: echoed",
            (close_frame(code),),
            (),
            Close(by_peer=True, codes=(1000, code)),
        )
    invalid = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]
    for n, code in enumerate(invalid, 1):
        yield Case(
            f"7.9.{n}",
            f"close with the invalid code {code}: refused with 1002",
            (close_frame(code),),
            (),
            Close(by_peer=True, codes=(1002,)),
        )
    for n, code in enumerate((5000, 65535), 1):
        yield Case(
            f"7.13.{n}",
            f"close with the code {code}, past the registry",
            (close_frame(code),),
            (),
            Close(by_peer=True, codes=(1002,)),
            informational=True,
            outcome=INFORMATIONAL,
            note="The spec leaves this open; Autobahn only informs. We refuse it with 1002.",
        )


def _large() -> Iterator[Case]:
    sizes = [
        ("64 KiB", 2**16),
        ("256 KiB", 2**18),
        ("1 MiB", 2**20),
        ("4 MiB", 2**22),
        ("8 MiB", 2**23),
        ("16 MiB", 2**24),
    ]
    kinds = [("text", TEXT, b"*"), ("binary", BINARY, b"\xfe")]
    for sub, (kind, opcode, unit) in enumerate(kinds, 1):
        for n, (name, size) in enumerate(sizes, 1):
            payload = unit * size
            yield Case(
                f"9.{sub}.{n}",
                f"{kind} message of {name}",
                (Frame(opcode, payload),),
                (msg(payload.decode() if opcode == TEXT else payload),),
                limit=LARGE,
            )
    pieces = [
        ("64 B", 64),
        ("256 B", 256),
        ("1 KiB", 2**10),
        ("4 KiB", 2**12),
        ("16 KiB", 2**14),
        ("64 KiB", 2**16),
        ("256 KiB", 2**18),
        ("1 MiB", 2**20),
        ("4 MiB", 2**22),
    ]
    for sub, (kind, opcode, unit) in enumerate(kinds, 3):
        payload = unit * 2**22
        for n, (name, size) in enumerate(pieces, 1):
            yield Case(
                f"9.{sub}.{n}",
                f"{kind} message of 4 MiB in fragments of {name}",
                fragments(opcode, payload, size),
                (msg(payload.decode() if opcode == TEXT else payload),),
                limit=LARGE,
            )
    for sub, (kind, opcode, unit) in enumerate(kinds, 5):
        payload = unit * 2**20
        for n, size in enumerate((64, 128, 256, 512, 1024, 2048), 1):
            yield Case(
                f"9.{sub}.{n}",
                f"{kind} message of 1 MiB written in chops of {size} bytes",
                (Frame(opcode, payload),),
                (msg(payload.decode() if opcode == TEXT else payload),),
                chops=size,
                limit=LARGE,
            )
    for sub, (kind, opcode, unit) in enumerate(kinds, 7):
        for n, size in enumerate((0, 16, 64, 256, 1024, 4096), 1):
            payload = unit * size
            data: str | bytes = payload.decode() if opcode == TEXT else payload
            yield Case(
                f"9.{sub}.{n}",
                f"1000 {kind} messages of {size} bytes, one write each",
                (Frame(opcode, payload),) * 1000,
                (msg(data),) * 1000,
                chops="frame",
                limit=LARGE,
            )


def _all() -> list[Case]:
    return [
        *_framing(),
        *_pings(),
        *_reserved_bits(),
        *_opcodes(),
        *_fragmentation(),
        *_utf8(),
        *_close(),
        *_large(),
    ]


CASES: list[Case] = _all()
SECTIONS = {
    "1": "Framing",
    "2": "Pings and pongs",
    "3": "Reserved bits",
    "4": "Opcodes",
    "5": "Fragmentation",
    "6": "UTF-8 handling",
    "7": "Close handling",
    "9": "Limits (large messages)",
}
