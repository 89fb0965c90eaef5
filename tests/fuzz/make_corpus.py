"""Build the seed corpus of every fuzz target from the seeds and the tests' data.

``python tests/fuzz/make_corpus.py`` (re)writes ``tests/fuzz/corpus/<target>/`` with
one file per input, named by its SHA-1 (as libFuzzer names what it finds), so
running it again adds nothing twice. Sources: the Mews seed messages
and the PlaceOS documented examples (both in ``protocore.samples``),
a few hand-made near misses of each, and for the connections whole conversations
built from the same messages (see the config byte in ``_contracts``).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
sys.path[:0] = [str(HERE), str(TESTS)]

import _contracts as c  # noqa: E402

from protocore import samples  # noqa: E402

CORPUS = HERE / "corpus"

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA


def frame(opcode: int, payload: bytes = b"", *, fin: bool = True, masked: bool = False) -> bytes:
    """One raw frame; a masked one uses the zero key, so its payload stays readable."""
    head = bytearray([(0x80 if fin else 0) | opcode])
    mask = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        head.append(mask | n)
    elif n < 1 << 16:
        head += bytes([mask | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([mask | 127]) + n.to_bytes(8, "big")
    if masked:
        head += b"\x00\x00\x00\x00"
    return bytes(head) + payload


def mews_messages() -> list[bytes]:
    seeds = [sample.text.encode() for sample in samples.MEWS_MESSAGES[:3]]
    compact = [json.dumps(json.loads(s), separators=(",", ":")).encode() for s in seeds]
    near = [
        b'{"Events":[]}',
        b'{"Events":[{"Type":"Space","Id":"s","State":"Dirty"}],"X":1}',
        b'{"Events":[{"Type":"Reservation","Id":"r","State":"Enquired",'
        b'"StartUtc":"2020-01-01T10:00:00+01:00","EndUtc":"2020-01-02 10:00:00.5z",'
        b'"AssignedSpaceId":null}]}',
        b'{"Events":[{"Type":"PriceUpdate","Id":"p","SpaceCategoryId":"c","RateId":null}]}',
        b'{"Events":[{"Type":"Bill","Id":1},{"Type":"Resource","Id":"x","State":7}]}',
        b'{"Events":[{"Type":"DeviceCommand","Id":"d","State":"Cancelled","Extra":[1,2]}]}',
        b'{"Events":[1]}',
        b'{"Events":{}}',
        b"[]",
        b'{"Events":[{"Type":"Reservation","Id":"r","State":"Started",'
        b'"StartUtc":"9999-12-31T23:59:59Z","EndUtc":"0001-01-01T00:00:00Z"}]}',
    ]
    return seeds + compact + near


def requests() -> list[bytes]:
    msgs = [text.strip().encode() for text in samples.PLACEOS_REQUESTS.values()]
    return [
        *msgs,
        b'{"id":"a","cmd":"exec","sys":"s","mod":"m","name":"n","args":[1,{"a":[]},null]}',
        b'{"id":7,"cmd":"bind","sys":"s","mod":"m","index":0,"name":"n"}',
        b'{"id":7,"cmd":"nope"}',
        b'{"cmd":"unbind","sys":"s","mod":"m","name":"n"}',
        b"[1,2]",
        b"pingx",
    ]


def responses() -> list[bytes]:
    msgs = [text.strip().encode() for text in samples.PLACEOS_RESPONSES.values()]
    return [
        *msgs,
        b'{"id":1,"type":"error","code":5,"msg":"system not found"}',
        b'{"id":"x","type":"error","error_code":2,"code":403,"msg":"denied"}',
        b'{"id":null,"type":"error","code":99}',
        b'{"id":2,"type":"notify","value":{"a":[1,2.5]},"meta":{"sys":"s","mod":"m","name":"n"}}',
        b'{"id":3,"type":"success","value":[1],"code":200,"meta":{"sys":"s","mod":"m",'
        b'"index":2,"name":"n"}}',
        b'{"type":"debug","mod":"mod-1","level":"chatty","msg":"hi","meta":{"sys":"s",'
        b'"mod":"m","index":1},"id":4}',
        b'{"type":"weird"}',
    ]


def placeos_server_messages() -> list[bytes]:
    """What a PlaceOS server says to the harness's client: answers to its first
    requests (exec id 1, bind id 2, debug id 3), a notify, a debug line, errors."""
    return [
        b'{"id":1,"type":"success","value":[1,"two"],"code":200}',
        b'{"id":2,"type":"success","meta":{"sys":"sys-1","mod":"Display","index":1,'
        b'"name":"power"}}',
        b'{"id":2,"type":"notify","value":true,"meta":{"sys":"sys-1","mod":"Display",'
        b'"index":1,"name":"power"}}',
        b'{"id":3,"type":"success","mod_id":"mod-1","meta":{"sys":"sys-1","mod":"mod-1"}}',
        b'{"type":"debug","mod":"mod-1","klass":"K","level":"info","msg":"m"}',
        b"pong",
        b'{"id":1,"type":"error","code":3,"msg":"failed"}',
    ]


def server_says() -> list[bytes]:
    """Frames a server might send to our client: PlaceOS answers, Mews messages,
    control frames."""
    frames = [frame(TEXT, m) for m in placeos_server_messages()]
    mews = [frame(TEXT, m) for m in mews_messages()[3:6]]
    control = [
        frame(PING, b"hi"),
        frame(PONG, b"\x00\x00\x00\x01"),
        frame(TEXT, b'{"id":1,', fin=False) + frame(PING) + frame(CONT, b'"type":"success"}'),
        frame(BINARY, b"\x00\xff"),
        frame(TEXT, b"\xff\xfe"),
        frame(CLOSE, (1000).to_bytes(2, "big") + b"bye"),
    ]
    return [*frames, *mews, *control]


def placeos_client_messages() -> list[bytes]:
    """PlaceOS requests for the harness's mock engine (sys-1 / Display: status
    power, method echo; module id mod-1), and a few bad ones."""
    return [
        b'{"id":1,"cmd":"bind","sys":"sys-1","mod":"Display","name":"power"}',
        b'{"id":2,"cmd":"exec","sys":"sys-1","mod":"Display","name":"echo","args":[1,"a"]}',
        b'{"id":3,"cmd":"debug","sys":"sys-1","mod":"mod-1","name":"debug"}',
        b'{"id":4,"cmd":"ignore","sys":"sys-1","mod":"mod-1","name":"ignore"}',
        b'{"id":5,"cmd":"unbind","sys":"sys-1","mod":"Display","name":"power"}',
        b'{"id":6,"cmd":"exec","sys":"sys-2","mod":"X","name":"y"}',
        b"ping",
        b"{",
    ]


def client_says() -> list[bytes]:
    """Masked frames a client might send to our server."""
    frames = [frame(TEXT, m, masked=True) for m in placeos_client_messages()]
    control = [
        frame(PING, b"hi", masked=True),
        frame(TEXT, b'{"id":9,"cmd":', fin=False, masked=True)
        + frame(CONT, b'"bind","sys":"sys-1","mod":"Display","name":"power"}', masked=True),
        frame(BINARY, b"\x01", masked=True),
        frame(TEXT, b"unmasked"),
        frame(CLOSE, (1001).to_bytes(2, "big"), masked=True),
    ]
    return [*frames, *control]


def connection_inputs(handshake: list[bytes], said: list[bytes]) -> Iterable[bytes]:
    """Conversations under various config bytes, with and without the harness's
    handshake (``handshake[i]`` is the handshake of protocol bit ``i``)."""
    conversation = b"".join(said[:-1])
    for protocol in (0, c.OTHER_PROTOCOL):
        opening = handshake[1 if protocol else 0]
        for chunking in (0, 1, 5):
            for timers in (0, c.TIMERS):
                base = protocol | timers | (chunking << c.CHUNKS_SHIFT)
                yield bytes([base | c.PREOPEN]) + conversation + said[-1]
                yield bytes([base]) + opening + conversation
        for item in said:
            yield bytes([protocol | c.PREOPEN]) + item
        yield bytes([protocol]) + opening


def write(target: str, inputs: Iterable[bytes]) -> int:
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    count = 0
    for data in inputs:
        path = directory / hashlib.sha1(data).hexdigest()
        if not path.exists():
            path.write_bytes(data)
            count += 1
    return count


def main() -> None:
    refusal = b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope"
    written = {
        "mews_decode": write("mews_decode", mews_messages()),
        "placeos_decode_request": write("placeos_decode_request", requests()),
        "placeos_decode_response": write("placeos_decode_response", responses()),
        "client_connection": write(
            "client_connection",
            [
                *connection_inputs([c.RESPONSE_101, c.RESPONSE_101], server_says()),
                bytes([0]) + refusal,
                bytes([0]) + b"HTTP/1.1 100 Continue\r\n\r\n" + c.RESPONSE_101,
            ],
        ),
        "server_connection": write(
            "server_connection",
            [
                *connection_inputs([c.PLACEOS_REQUEST, c.MEWS_REQUEST], client_says()),
                bytes([0]) + c.PLACEOS_REQUEST.replace(b"X-API-Key: fuzz", b"X-API-Key: bad"),
                bytes([0]) + b"GET / HTTP/1.0\r\n\r\n",
            ],
        ),
    }
    answers = placeos_server_messages()
    written["placeos_client_session"] = write(
        "placeos_client_session",
        [
            b"\x00".join(answers),
            b"\x00".join(reversed(answers)),
            b"\x00".join(answers[:3] + [b""] * 4 + answers[3:]),
            *answers,
        ],
    )
    requests_ = placeos_client_messages()
    written["placeos_server_session"] = write(
        "placeos_server_session",
        [
            bytes([flag]) + joined
            for flag in (0, 1)
            for joined in (b"\x00".join(requests_), b"\x00".join(reversed(requests_)))
        ]
        + [b"\x00" + r for r in requests_],
    )
    for target, count in written.items():
        print(f"{target}: {count} new inputs")


if __name__ == "__main__":
    main()
