"""The Mews codec: seeds, dialects, bad input, round trips, fast path against precise path.

Every test runs once per JSON backend (orjson and the stdlib) and must give the same
answer under both.
"""

from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mews_samples import (
    COMMAND,
    COMMAND_ID,
    PRICE_UPDATE_ID,
    RATE_ID,
    RESERVATION,
    RESERVATION_ID,
    RESOURCE,
    RESOURCE_ID,
    SEED_001,
    SEEDS,
)

from protocore import DecodeError, EncodeError, ProtocolError, _json
from protocore.mews import (
    CommandState,
    DeviceCommandEvent,
    Envelope,
    InvalidEvent,
    MewsEvent,
    PriceUpdateEvent,
    ReservationEvent,
    ReservationState,
    ResourceEvent,
    ResourceState,
    UnknownEvent,
    codec,
    decode_envelope,
    encode_envelope,
)
from protocore.mews._datetimes import format_datetime, parse_datetime
from protocore.testing import mews as mews_st

pytestmark = pytest.mark.usefixtures("json_backend")

# The json_backend fixture is per test, not per example; the backend it sets holds
# for every example, which is what we want.
hsettings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def wire(data: bytes | str) -> Any:
    """A message as a JSON document, for comparisons that ignore layout and key order."""
    return json.loads(data)


def roundtrip(data: bytes | str, **kwargs: Any) -> Any:
    return wire(encode_envelope(decode_envelope(data, **kwargs)))


def message(*events: dict[str, Any], **top: Any) -> bytes:
    return json.dumps({"Events": list(events), **top}).encode()


def full_state(value: object) -> tuple[Any, ...]:
    """Every slot, equality-exempt ones included, with the class."""
    slots = [name for name in type(value).__slots__ if name != "__weakref__"]
    return (type(value), *(getattr(value, name) for name in slots))


# ------------------------------------------------------------------------------- seeds


@pytest.mark.parametrize(("name", "text", "expected"), SEEDS, ids=[s[0] for s in SEEDS])
def test_seed_example_decodes_to_the_documented_events(
    name: str, text: str, expected: tuple[MewsEvent, ...]
) -> None:
    envelope = decode_envelope(text.encode())
    assert envelope == Envelope(expected)
    assert isinstance(envelope.events, tuple)
    assert [type(e) for e in envelope.events] == [type(e) for e in expected]
    assert all(isinstance(e, MewsEvent) for e in envelope.events)
    assert decode_envelope(text) == envelope  # str in, same answer


@pytest.mark.parametrize(("name", "text", "expected"), SEEDS, ids=[s[0] for s in SEEDS])
def test_seed_example_round_trips_to_the_same_json_document(
    name: str, text: str, expected: tuple[MewsEvent, ...]
) -> None:
    encoded = encode_envelope(decode_envelope(text))
    assert isinstance(encoded, bytes)
    assert wire(encoded) == wire(text)
    # The models alone (no memory of the wire) give the same document, except that an
    # explicit null is only written when the message being re-encoded had one.
    without_nulls = {
        "Events": [{k: v for k, v in e.items() if v is not None} for e in wire(text)["Events"]]
    }
    assert wire(encode_envelope(Envelope(expected))) == without_nulls


def test_seed_000_space_stays_a_space_on_the_way_out() -> None:
    (_, _, space) = decode_envelope(SEEDS[0][1]).events
    assert isinstance(space, ResourceEvent)
    assert space.legacy_space is True
    assert space == RESOURCE  # equality ignores the legacy flag
    assert space.state is ResourceState.DIRTY


def test_enum_values_are_members_and_still_strings() -> None:
    command, reservation, resource, _ = decode_envelope(SEED_001).events
    assert isinstance(command, DeviceCommandEvent)
    assert isinstance(reservation, ReservationEvent)
    assert isinstance(resource, ResourceEvent)
    assert command.state is CommandState.PENDING
    assert command.state == "Pending"
    assert reservation.state is ReservationState.PROCESSED
    assert reservation.start_utc.tzinfo is not None
    assert reservation.start_utc.utcoffset() == timedelta(0)


# ----------------------------------------------------------- dialects, one test each


def test_legacy_space_event_is_a_resource_event() -> None:
    envelope = decode_envelope(message({"Type": "Space", "Id": RESOURCE_ID, "State": "Clean"}))
    (event,) = envelope.events
    assert type(event) is ResourceEvent
    assert event == ResourceEvent(RESOURCE_ID, ResourceState.CLEAN)
    assert event.legacy_space
    assert wire(encode_envelope(envelope))["Events"][0]["Type"] == "Space"
    # Set by the application, the flag writes the legacy type too.
    made = Envelope([ResourceEvent(RESOURCE_ID, "Clean", legacy_space=True)])
    assert wire(encode_envelope(made))["Events"][0]["Type"] == "Space"


def test_legacy_assigned_space_id_fills_assigned_resource_id() -> None:
    raw = {
        "Type": "Reservation",
        "Id": RESERVATION_ID,
        "State": "Started",
        "StartUtc": "2018-09-01T12:00:00Z",
        "EndUtc": "2018-09-03T10:00:00Z",
        "AssignedSpaceId": RESOURCE_ID,
    }
    (event,) = decode_envelope(message(raw)).events
    assert isinstance(event, ReservationEvent)
    assert event.assigned_resource_id == RESOURCE_ID
    assert event.extra == {}
    assert roundtrip(message(raw)) == {"Events": [raw]}


def test_legacy_space_category_id_fills_resource_category_id() -> None:
    raw = {"Type": "PriceUpdate", "Id": PRICE_UPDATE_ID, "SpaceCategoryId": "cat-1"}
    (event,) = decode_envelope(message(raw)).events
    assert event == PriceUpdateEvent(PRICE_UPDATE_ID, resource_category_id="cat-1")
    assert roundtrip(message(raw)) == {"Events": [raw]}


def test_legacy_and_current_names_together_current_wins_legacy_is_kept() -> None:
    raw = {
        "Type": "PriceUpdate",
        "Id": PRICE_UPDATE_ID,
        "SpaceCategoryId": "old",
        "ResourceCategoryId": "new",
    }
    (event,) = decode_envelope(message(raw)).events
    assert isinstance(event, PriceUpdateEvent)
    assert event.resource_category_id == "new"
    assert event.extra == {"SpaceCategoryId": "old"}
    assert roundtrip(message(raw)) == {"Events": [raw]}


@pytest.mark.parametrize(
    ("text", "member"),
    [("Enquired", ReservationState.ENQUIRED), ("Inquired", ReservationState.INQUIRED)],
)
def test_both_spellings_of_inquired_decode_and_keep_their_spelling(
    text: str, member: ReservationState
) -> None:
    raw = {
        "Type": "Reservation",
        "Id": RESERVATION_ID,
        "State": text,
        "StartUtc": "2016-02-20T13:00:00Z",
        "EndUtc": "2016-02-22T11:00:00Z",
    }
    (event,) = decode_envelope(message(raw)).events
    assert isinstance(event, ReservationEvent)
    assert event.state is member
    assert roundtrip(message(raw))["Events"][0]["State"] == text
    assert ReservationState.ENQUIRED != ReservationState.INQUIRED


def test_canceled_and_cancelled_belong_to_their_own_enums() -> None:
    assert ReservationState.CANCELED == "Canceled"
    assert CommandState.CANCELLED == "Cancelled"
    assert "Cancelled" not in {m.value for m in ReservationState}


def test_explicit_null_equals_missing_and_both_round_trip() -> None:
    with_null = {"Type": "PriceUpdate", "Id": PRICE_UPDATE_ID, "RateId": None}
    without = {"Type": "PriceUpdate", "Id": PRICE_UPDATE_ID}
    a = decode_envelope(message(with_null))
    b = decode_envelope(message(without))
    assert a == b
    assert hash(a) == hash(b)
    assert roundtrip(message(with_null)) == {"Events": [with_null]}
    assert roundtrip(message(without)) == {"Events": [without]}


def test_explicit_null_assigned_space_id_keeps_its_legacy_name() -> None:
    raw = {
        "Type": "Reservation",
        "Id": RESERVATION_ID,
        "State": "Confirmed",
        "StartUtc": "2016-02-20T13:00:00Z",
        "EndUtc": "2016-02-22T11:00:00Z",
        "AssignedSpaceId": None,
    }
    (event,) = decode_envelope(message(raw)).events
    assert isinstance(event, ReservationEvent)
    assert event.assigned_resource_id is None
    assert roundtrip(message(raw)) == {"Events": [raw]}


def test_price_update_without_times() -> None:
    raw = {"Type": "PriceUpdate", "Id": PRICE_UPDATE_ID, "RateId": RATE_ID}
    (event,) = decode_envelope(message(raw)).events
    assert event == PriceUpdateEvent(PRICE_UPDATE_ID, rate_id=RATE_ID)
    assert isinstance(event, PriceUpdateEvent)
    assert event.start_utc is None
    assert event.end_utc is None
    assert roundtrip(message(raw)) == {"Events": [raw]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2016-02-20T13:00:00Z", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-20T14:00:00+01:00", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-20T08:30:00-04:30", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-20T14:00:00+0100", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-20T14:00:00+01", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-20T13:00:00-00:00", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-21T00:30:00+11:30", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-20T13:00:00.5Z", datetime(2016, 2, 20, 13, 0, 0, 500000, tzinfo=UTC)),
        ("2016-02-20T13:00:00.123Z", datetime(2016, 2, 20, 13, 0, 0, 123000, tzinfo=UTC)),
        ("2016-02-20T13:00:00.123456Z", datetime(2016, 2, 20, 13, 0, 0, 123456, tzinfo=UTC)),
        ("2016-02-20T13:00:00.1234567Z", datetime(2016, 2, 20, 13, 0, 0, 123456, tzinfo=UTC)),
        ("2016-02-20T13:00:00.123456789Z", datetime(2016, 2, 20, 13, 0, 0, 123456, tzinfo=UTC)),
        ("2016-02-20T13:00:00,25Z", datetime(2016, 2, 20, 13, 0, 0, 250000, tzinfo=UTC)),
        ("2016-02-20T14:00:00.0000000+01:00", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-20T13:00:00", datetime(2016, 2, 20, 13, tzinfo=UTC)),  # no offset: UTC
        ("2016-02-20T13:00Z", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-20t13:00:00z", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-20 13:00:00Z", datetime(2016, 2, 20, 13, tzinfo=UTC)),
        ("2016-02-29T23:59:59Z", datetime(2016, 2, 29, 23, 59, 59, tzinfo=UTC)),
        ("2016-03-01T00:30:00+01:00", datetime(2016, 2, 29, 23, 30, tzinfo=UTC)),
    ],
)
def test_offsets_and_fractions_decode_to_utc_and_keep_their_text(
    text: str, expected: datetime
) -> None:
    raw = {"Type": "PriceUpdate", "Id": PRICE_UPDATE_ID, "StartUtc": text, "EndUtc": text}
    (event,) = decode_envelope(message(raw)).events
    assert isinstance(event, PriceUpdateEvent)
    assert event.start_utc == expected
    assert event.start_utc is not None
    assert event.start_utc.utcoffset() == timedelta(0)
    assert event.start_utc.tzinfo is UTC
    assert roundtrip(message(raw)) == {"Events": [raw]}


def test_unknown_event_type_is_kept_whole() -> None:
    raw = {"Type": "Bill", "Id": "b-1", "State": "Closed", "Total": {"Amount": 12.5}}
    envelope = decode_envelope(message(raw, COMMAND_RAW))
    unknown, command = envelope.events
    assert unknown == UnknownEvent(
        "Bill", {"Id": "b-1", "State": "Closed", "Total": {"Amount": 12.5}}
    )
    assert isinstance(unknown, UnknownEvent)
    assert unknown.id == "b-1"
    assert command == COMMAND
    assert wire(encode_envelope(envelope)) == {"Events": [raw, COMMAND_RAW]}


def test_unknown_event_type_needs_no_id() -> None:
    (event,) = decode_envelope(message({"Type": "Heartbeat"})).events
    assert event == UnknownEvent("Heartbeat")
    assert isinstance(event, UnknownEvent)
    assert event.id is None


def test_unknown_fields_are_kept_read_only_and_re_encoded() -> None:
    raw = {**COMMAND_RAW, "Device": {"Name": "Printer", "Tags": [1, 2]}, "Retry": 3}
    (event,) = decode_envelope(message(raw)).events
    assert isinstance(event, DeviceCommandEvent)
    assert event.extra == {"Device": {"Name": "Printer", "Tags": [1, 2]}, "Retry": 3}
    assert event != COMMAND  # unknown fields are part of the value
    with pytest.raises(TypeError):
        event.extra["Retry"] = 4  # type: ignore[index]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.id = "other"  # type: ignore[misc]
    assert roundtrip(message(raw)) == {"Events": [raw]}


def test_unknown_enum_value_stays_a_plain_string() -> None:
    raw = {"Type": "Resource", "Id": RESOURCE_ID, "State": "BeingPainted"}
    (event,) = decode_envelope(message(raw)).events
    assert isinstance(event, ResourceEvent)
    assert event.state == "BeingPainted"
    assert type(event.state) is str
    assert roundtrip(message(raw)) == {"Events": [raw]}


def test_unknown_top_level_keys_are_kept() -> None:
    data = message(COMMAND_RAW, Sequence=42, Source={"Env": "demo"})
    envelope = decode_envelope(data)
    assert envelope.extra == {"Sequence": 42, "Source": {"Env": "demo"}}
    assert envelope.events == (COMMAND,)
    assert roundtrip(data) == wire(data)


def test_empty_events_list_is_a_valid_message() -> None:
    assert decode_envelope(b'{"Events": []}') == Envelope(())
    assert encode_envelope(Envelope([])) == b'{"Events":[]}'


# ---------------------------------------------------------------- models and hashing

COMMAND_RAW = {"Type": "DeviceCommand", "Id": COMMAND_ID, "State": "Pending"}


def test_models_hash_even_with_unhashable_unknown_fields() -> None:
    raw = {**COMMAND_RAW, "List": [1, 2, {"a": []}]}
    envelope = decode_envelope(message(raw, raw))
    first, second = envelope.events
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second, COMMAND}) == 2
    assert hash(envelope) == hash(decode_envelope(message(raw, raw)))
    assert hash(UnknownEvent("X", {"a": [1]})) == hash(UnknownEvent("X", {"a": [1]}))


def test_equal_models_from_fast_and_precise_paths_hash_equal() -> None:
    fast = decode_envelope(SEED_001)
    # Offsets force the precise path for the same values.
    slow_text = SEED_001.replace("2016-02-20T13:00:00Z", "2016-02-20T14:00:00+01:00")
    slow = decode_envelope(slow_text)
    assert fast == slow
    assert hash(fast) == hash(slow)


def test_user_supplied_mappings_are_copied_and_frozen() -> None:
    extra = {"A": 1}
    event = DeviceCommandEvent("x", "Pending", extra=extra)
    extra["A"] = 2
    assert event.extra == {"A": 1}
    assert Envelope([event], extra={"B": 1}).extra == {"B": 1}


def test_repr_is_readable_and_hides_the_wire_memory() -> None:
    (event,) = decode_envelope(message(COMMAND_RAW)).events
    text = repr(event)
    assert text.startswith("DeviceCommandEvent(id='2391a3df")
    assert "_raw" not in text
    assert "extra={}" in text


def test_decoded_models_pickle() -> None:
    envelope = decode_envelope(SEED_001)
    data = pickle.dumps(envelope)
    assert pickle.loads(data) == envelope
    # The wire memory pickles as plain dicts (unpickling needs no msgspec), and the
    # copy still re-encodes to the same document, its explicit null included.
    assert b"msgspec" not in data
    assert b"_shape" not in data
    assert wire(encode_envelope(pickle.loads(data))) == wire(SEED_001)


def test_fast_path_fills_every_slot() -> None:
    # The fast path builds models without __init__; every slot must be set.
    for event in decode_envelope(SEED_001).events + decode_envelope(SEEDS[0][1]).events:
        for name in type(event).__slots__:
            getattr(event, name)
    envelope = decode_envelope(SEED_001)
    assert all(hasattr(envelope, name) for name in Envelope.__slots__)


def test_fast_path_is_taken_for_the_seed_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(raw: Any, path: str) -> MewsEvent:
        raise AssertionError(f"precise path used for {path}")

    monkeypatch.setattr(codec, "_decode_event", fail)
    assert decode_envelope(SEED_001).events == SEEDS[1][2]
    assert decode_envelope(SEEDS[0][1]).events == SEEDS[0][2]


# ------------------------------------------------------------------------- encoding


def test_changed_datetime_is_written_canonically_unchanged_keeps_its_text() -> None:
    raw = {
        "Type": "Reservation",
        "Id": RESERVATION_ID,
        "State": "Confirmed",
        "StartUtc": "2016-02-20T14:00:00.000+01:00",
        "EndUtc": "2016-02-22T12:00:00+01:00",
    }
    (event,) = decode_envelope(message(raw)).events
    assert isinstance(event, ReservationEvent)
    moved = attrs.evolve(event, end_utc=datetime(2016, 2, 23, 10, 30, 0, 250, tzinfo=UTC))
    out = wire(encode_envelope(Envelope([moved])))["Events"][0]
    assert out["StartUtc"] == "2016-02-20T14:00:00.000+01:00"
    assert out["EndUtc"] == "2016-02-23T10:30:00.000250Z"
    # Same instant in another zone counts as unchanged.
    same = attrs.evolve(
        event, start_utc=datetime(2016, 2, 20, 8, tzinfo=timezone(-timedelta(hours=5)))
    )
    assert wire(encode_envelope(Envelope([same])))["Events"][0] == raw


def test_changed_state_is_written_other_fields_keep_their_memory() -> None:
    raw = {**COMMAND_RAW, "Note": "x"}
    (event,) = decode_envelope(message(raw)).events
    done = attrs.evolve(event, state=CommandState.PROCESSED)
    assert wire(encode_envelope(Envelope([done])))["Events"][0] == {**raw, "State": "Processed"}


def test_models_built_by_the_application_encode_in_the_current_dialect() -> None:
    envelope = Envelope(
        [
            ReservationEvent(
                "r",
                ReservationState.CONFIRMED,
                datetime(2024, 5, 1, 14, tzinfo=UTC),
                datetime(2024, 5, 3, 10, 0, 0, 1, tzinfo=UTC),
                assigned_resource_id="room",
            ),
            PriceUpdateEvent("p", resource_category_id="cat"),
        ]
    )
    assert wire(encode_envelope(envelope)) == {
        "Events": [
            {
                "Type": "Reservation",
                "Id": "r",
                "State": "Confirmed",
                "StartUtc": "2024-05-01T14:00:00Z",
                "EndUtc": "2024-05-03T10:00:00.000001Z",
                "AssignedResourceId": "room",
            },
            {"Type": "PriceUpdate", "Id": "p", "ResourceCategoryId": "cat"},
        ]
    }


def test_invalid_event_encodes_back_to_its_fields() -> None:
    bad = {"Type": "Reservation", "Id": 7, "Extra": [1]}
    envelope = decode_envelope(message(bad), lenient=True)
    assert wire(encode_envelope(envelope)) == {"Events": [bad]}


@pytest.mark.parametrize(
    ("event", "where"),
    [
        (DeviceCommandEvent(5, "Pending"), "Events[0].Id"),  # type: ignore[arg-type]
        (DeviceCommandEvent("x", None), "Events[0].State"),  # type: ignore[arg-type]
        (ResourceEvent("x", 3), "Events[0].State"),  # type: ignore[arg-type]
        (
            ReservationEvent("x", "Started", datetime(2016, 1, 1), datetime(2016, 1, 2)),
            "Events[0].StartUtc",
        ),
        (PriceUpdateEvent("x", start_utc="2016-01-01T00:00:00Z"), "Events[0].StartUtc"),  # type: ignore[arg-type]
        (PriceUpdateEvent("x", rate_id=12), "Events[0].RateId"),  # type: ignore[arg-type]
        (UnknownEvent(None), "Events[0].Type"),  # type: ignore[arg-type]
        (DeviceCommandEvent("x", "Pending", extra={"Bad": {1, 2}}), ""),
        ("not an event", "Events[0]"),
    ],
)
def test_values_that_cannot_go_on_the_wire_raise_encode_error(event: Any, where: str) -> None:
    with pytest.raises(EncodeError) as info:
        encode_envelope(Envelope([event]))
    assert str(info.value).startswith(where)


def test_encode_envelope_wants_an_envelope() -> None:
    with pytest.raises(EncodeError, match="expected an Envelope"):
        encode_envelope([COMMAND])  # type: ignore[arg-type]


def test_format_datetime_is_canonical() -> None:
    assert format_datetime(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01T00:00:00Z"
    assert format_datetime(datetime(2016, 2, 20, 13, 0, 0, 10, tzinfo=UTC)) == (
        "2016-02-20T13:00:00.000010Z"
    )
    plus_one = timezone(timedelta(hours=1))
    assert format_datetime(datetime(2016, 2, 20, 14, tzinfo=plus_one)) == "2016-02-20T13:00:00Z"
    with pytest.raises(EncodeError, match="naive"):
        format_datetime(datetime(2016, 2, 20))
    with pytest.raises(EncodeError, match="out of range"):
        format_datetime(datetime(1, 1, 1, tzinfo=plus_one))


# ---------------------------------------------------------------------- cattrs hooks


def test_single_events_through_the_cattrs_converters() -> None:
    raw = dict(COMMAND_RAW)
    event = codec.decoder.structure(raw, DeviceCommandEvent)
    assert event == COMMAND
    assert codec.decoder.structure(raw, MewsEvent) == COMMAND
    assert codec.encoder.unstructure(event) == raw
    assert codec.decoder.structure("2016-02-20T13:00:00Z", datetime) == RESERVATION.start_utc
    assert codec.encoder.unstructure(RESERVATION.start_utc) == "2016-02-20T13:00:00Z"
    assert codec.decoder.structure(wire(SEED_001), Envelope).events == SEEDS[1][2]
    with pytest.raises(DecodeError) as info:
        codec.decoder.structure(raw, ReservationEvent)
    assert info.value.path == "Type"
    assert "Reservation" in info.value.reason
    with pytest.raises(DecodeError) as info:
        codec.decoder.structure({**raw, "Id": None}, DeviceCommandEvent)
    assert info.value.path == "Id"


# ------------------------------------------------------------------------ bad input

_RES = {
    "Type": "Reservation",
    "Id": RESERVATION_ID,
    "State": "Confirmed",
    "StartUtc": "2016-02-20T13:00:00Z",
    "EndUtc": "2016-02-22T11:00:00Z",
}
_PRICE = {"Type": "PriceUpdate", "Id": PRICE_UPDATE_ID}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not _DROP}


_DROP = object()


def _msg(*events: Any) -> bytes:
    return json.dumps({"Events": list(events)}).encode()


BAD_INPUTS: list[tuple[str, Any, str, str]] = [
    # (id, data, path, a word of the reason)
    ("empty bytes", b"", "", "invalid JSON"),
    ("empty str", "", "", "invalid JSON"),
    ("whitespace", b"  \n", "", "invalid JSON"),
    ("truncated", SEED_001.encode()[:200], "", "invalid JSON"),
    ("trailing garbage", b'{"Events": []} x', "", "invalid JSON"),
    ("invalid utf-8", b'{"Events": [], "X": "\xff\xfe"}', "", "UTF-8"),
    ("lone surrogate", b'{"Events": [{"Type": "\\ud800"}]}', "", "surrogate"),
    ("NaN literal", b'{"Events": [], "X": NaN}', "", "invalid JSON"),
    ("Infinity literal", b'{"Events": [], "X": Infinity}', "", "invalid JSON"),
    ("-Infinity literal", b'{"Events": [], "X": -Infinity}', "", "invalid JSON"),
    ("10,000-deep nesting", b"[" * 10_000 + b"]" * 10_000, "", "invalid JSON"),
    (
        "deep nesting in an event",
        b'{"Events": [' + b"[" * 10_000 + b"]" * 10_001 + b"}",
        "",
        "JSON",
    ),
    ("top-level array", b"[]", "", "expected an object"),
    ("top-level string", b'"Events"', "", "expected an object"),
    ("top-level null", b"null", "", "expected an object"),
    ("top-level number", b"12", "", "expected an object"),
    ("not bytes at all", 12, "", "bytes or str"),
    ("Events missing", b"{}", "Events", "missing"),
    ("Events misspelled", b'{"events": []}', "Events", "missing"),
    ("Events an object", b'{"Events": {}}', "Events", "array"),
    ("Events null", b'{"Events": null}', "Events", "array"),
    ("Events a string", b'{"Events": "[]"}', "Events", "array"),
    ("Events true", b'{"Events": true}', "Events", "array"),
    ("event a number", _msg(COMMAND_RAW, 5), "Events[1]", "expected an event object"),
    ("event a list", _msg([COMMAND_RAW]), "Events[0]", "expected an event object"),
    ("event null", _msg(None), "Events[0]", "expected an event object"),
    ("Type missing", _msg({"Id": "x"}), "Events[0].Type", "missing"),
    ("Type a number", _msg({"Type": 5, "Id": "x"}), "Events[0].Type", "expected a string"),
    ("Type a bool", _msg({"Type": True}), "Events[0].Type", "got true"),
    ("Type null", _msg({"Type": None}), "Events[0].Type", "got null"),
    ("Id missing", _msg({"Type": "DeviceCommand", "State": "Pending"}), "Events[0].Id", "missing"),
    ("Id a number", _msg(_with(COMMAND_RAW, Id=42)), "Events[0].Id", "expected a string"),
    ("Id a bool", _msg(_with(COMMAND_RAW, Id=False)), "Events[0].Id", "got false"),
    ("Id null", _msg(_with(COMMAND_RAW, Id=None)), "Events[0].Id", "got null"),
    ("State missing", _msg(_with(COMMAND_RAW, State=_DROP)), "Events[0].State", "missing"),
    ("State a number", _msg(_with(COMMAND_RAW, State=1)), "Events[0].State", "CommandState"),
    ("State a bool", _msg(_with(_RES, State=True)), "Events[0].State", "ReservationState"),
    ("State an object", _msg(_with(_RES, State={})), "Events[0].State", "an object"),
    (
        "StartUtc out of range, third event",
        _msg(COMMAND_RAW, _RES, _with(_RES, StartUtc="2016-13-45")),
        "Events[2].StartUtc",
        "expected an ISO 8601 datetime, got '2016-13-45'",
    ),
    ("EndUtc missing", _msg(_with(_RES, EndUtc=_DROP)), "Events[0].EndUtc", "missing"),
    ("StartUtc null", _msg(_with(_RES, StartUtc=None)), "Events[0].StartUtc", "ISO 8601"),
    ("StartUtc a number", _msg(_with(_RES, StartUtc=1455973200)), "Events[0].StartUtc", "ISO 8601"),
    (
        "date without time",
        _msg(_with(_RES, StartUtc="2016-02-20")),
        "Events[0].StartUtc",
        "ISO 8601",
    ),
    ("hour 24", _msg(_with(_RES, EndUtc="2016-02-20T24:00:00Z")), "Events[0].EndUtc", "hour"),
    ("leap second", _msg(_with(_RES, EndUtc="2016-12-31T23:59:60Z")), "Events[0].EndUtc", "second"),
    ("Feb 30", _msg(_with(_RES, EndUtc="2016-02-30T10:00:00Z")), "Events[0].EndUtc", "day"),
    ("week date", _msg(_with(_RES, EndUtc="2016-W07-6T13:00:00Z")), "Events[0].EndUtc", "ISO"),
    ("basic format", _msg(_with(_RES, EndUtc="20160220T130000Z")), "Events[0].EndUtc", "ISO"),
    ("odd separator", _msg(_with(_RES, EndUtc="2016-02-20X13:00:00Z")), "Events[0].EndUtc", "ISO"),
    (
        "offset 24h",
        _msg(_with(_RES, EndUtc="2016-02-20T13:00:00+24:00")),
        "Events[0].EndUtc",
        "offset",
    ),
    (
        "year 1 minus offset",
        _msg(_with(_RES, EndUtc="0001-01-01T00:00:00+01:00")),
        "Events[0].EndUtc",
        "range",
    ),
    (
        "10 fraction digits",
        _msg(_with(_RES, EndUtc="2016-02-20T13:00:00.1234567891Z")),
        "Events[0].EndUtc",
        "ISO",
    ),
    (
        "datetime with spaces",
        _msg(_with(_RES, EndUtc=" 2016-02-20T13:00:00Z")),
        "Events[0].EndUtc",
        "ISO",
    ),
    (
        "AssignedResourceId a number",
        _msg(_with(_RES, AssignedResourceId=5)),
        "Events[0].AssignedResourceId",
        "expected a string",
    ),
    (
        "legacy AssignedSpaceId path keeps its spelling",
        _msg(_with(_RES, AssignedSpaceId=["x"])),
        "Events[0].AssignedSpaceId",
        "an array",
    ),
    ("RateId a list", _msg(_with(_PRICE, RateId=[])), "Events[0].RateId", "expected a string"),
    (
        "PriceUpdate bad StartUtc",
        _msg(_with(_PRICE, StartUtc="soon")),
        "Events[0].StartUtc",
        "'soon'",
    ),
    (
        "legacy SpaceCategoryId a bool",
        _msg(_with(_PRICE, SpaceCategoryId=True)),
        "Events[0].SpaceCategoryId",
        "got true",
    ),
    ("PriceUpdate Id missing", _msg({"Type": "PriceUpdate"}), "Events[0].Id", "missing"),
    (
        "Space with numeric State",
        _msg({"Type": "Space", "Id": "s", "State": 0}),
        "Events[0].State",
        "ResourceState",
    ),
]


@pytest.mark.parametrize(
    ("data", "path", "word"), [b[1:] for b in BAD_INPUTS], ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_raises_decode_error_with_its_path(data: Any, path: str, word: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_envelope(data)
    error = info.value
    assert error.path == path
    assert word in error.reason
    assert str(error) == (f"{path}: {error.reason}" if path else error.reason)
    assert not error.reason.startswith(codec.DECODER_BUG)


def test_fifty_megabyte_string_is_refused_by_size_before_parsing() -> None:
    body = bytearray(b'{"Events": [{"Type": "X", "Blob": "')
    body += b"a" * (50 * 1024 * 1024)
    body += b'"}]}'
    with pytest.raises(DecodeError) as info:
        decode_envelope(bytes(body), max_size=1024 * 1024)
    assert info.value.path == ""
    assert "over the limit" in info.value.reason
    assert len(str(info.value)) < 200


def test_a_long_bad_value_gives_a_short_message() -> None:
    data = _msg(_with(_RES, StartUtc="9" * 100_000))
    with pytest.raises(DecodeError) as info:
        decode_envelope(data)
    assert info.value.path == "Events[0].StartUtc"
    assert "100000 characters" in info.value.reason
    assert len(str(info.value)) < 200


def test_max_size_lets_small_messages_through() -> None:
    assert decode_envelope(SEED_001, max_size=len(SEED_001)).events == SEEDS[1][2]


def test_decode_error_is_a_remote_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        decode_envelope(b"{}")


def test_an_internal_bug_still_surfaces_as_decode_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(obj: Any, lenient: bool) -> Envelope:
        raise KeyError("oops")

    monkeypatch.setattr(codec, "_structure_envelope", broken)
    with pytest.raises(DecodeError, match=codec.DECODER_BUG):
        decode_envelope(b"{}")


# -------------------------------------------------------------------------- lenient


def test_lenient_mode_keeps_good_events_around_a_bad_one() -> None:
    bad = _with(_RES, StartUtc="2016-13-45")
    data = _msg(COMMAND_RAW, bad, _RES, {"Type": 3})
    with pytest.raises(DecodeError):
        decode_envelope(data)
    envelope = decode_envelope(data, lenient=True)
    command, invalid, reservation, untyped = envelope.events
    assert command == COMMAND
    assert isinstance(reservation, ReservationEvent)
    assert isinstance(invalid, InvalidEvent)
    assert invalid.type == "Reservation"
    assert invalid.fields == bad
    assert invalid.error.path == "Events[1].StartUtc"
    assert "ISO 8601" in invalid.error.reason
    assert isinstance(untyped, InvalidEvent)
    assert untyped.type is None
    assert untyped.error.path == "Events[3].Type"
    assert wire(encode_envelope(envelope)) == wire(data)
    assert hash(envelope) == hash(decode_envelope(data, lenient=True))
    assert envelope == decode_envelope(data, lenient=True)


@pytest.mark.parametrize(
    "data",
    [b"[]", b"{}", b'{"Events": 1}', _msg(COMMAND_RAW, 5), b"{", b'{"Events": [null]}'],
)
def test_lenient_mode_still_raises_for_a_broken_envelope(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_envelope(data, lenient=True)


# ----------------------------------------------------------------- property tests

# The strategies are protocore.testing's, the ones users fuzz their own code with.
envelopes = mews_st.envelopes()


@hsettings
@given(envelopes)
def test_property_every_model_round_trips(envelope: Envelope) -> None:
    decoded = decode_envelope(encode_envelope(envelope))
    assert decoded == envelope
    for before, after in zip(envelope.events, decoded.events, strict=True):
        assert type(before) is type(after)
        if isinstance(before, ResourceEvent):
            assert isinstance(after, ResourceEvent)
            assert after.legacy_space == before.legacy_space
    # And once decoded, encoding is stable.
    assert encode_envelope(decode_envelope(encode_envelope(decoded))) == encode_envelope(decoded)


datetime_texts = mews_st.datetime_texts
wire_events = mews_st.wire_events  # every dialect: legacy names, nulls, odd datetimes


@hsettings
@given(st.lists(wire_events(), max_size=6))
def test_property_wire_documents_round_trip(events: list[dict[str, Any]]) -> None:
    data = json.dumps({"Events": events})
    envelope = decode_envelope(data)
    assert wire(encode_envelope(envelope)) == wire(data)
    assert decode_envelope(encode_envelope(envelope)) == envelope


_mutations = mews_st.event_mutations  # near misses: one field replaced, dropped or added


@hsettings
@given(_mutations())
def test_property_fast_path_agrees_with_precise_path(raw: dict[str, Any]) -> None:
    try:
        precise: Any = codec._decode_event(raw, "")
    except DecodeError as error:
        precise = error
    try:
        fast = codec._FAST[raw["Type"]](raw)
    except Exception:  # the fast path may give up on anything
        return
    assert not isinstance(precise, DecodeError), (
        f"fast path accepted what precise refused: {precise}"
    )
    assert full_state(fast) == full_state(precise)


def _fast_or_precise(event: Any) -> tuple[Any, Any]:
    precise: Any
    try:
        precise = codec._unstructure_at(event, "")
    except EncodeError as error:
        precise = error
    try:
        fast: Any = codec._fast_wire([event], codec._DICT_WRITERS)[0]
    except Exception:  # the fast encoder may give up on anything
        fast = None
    return fast, precise


@hsettings
@given(st.one_of(wire_events(), _mutations()), st.sampled_from(["kept", "dropped", "changed"]))
def test_property_fast_encoders_agree_with_the_precise_encoder(
    raw: dict[str, Any], history: str
) -> None:
    try:
        event: Any = codec._decode_event(raw, "")
    except DecodeError:
        return
    if event.__class__ not in codec._ENCODE_SCHEMAS:
        return  # unknown and invalid events: the precise encoder only
    if history == "dropped":  # as if built by the application
        event = attrs.evolve(event, _raw=None)
    elif history == "changed" and hasattr(event, "id"):  # changed after decoding
        event = attrs.evolve(event, id=event.id + "-changed")
    fast, precise = _fast_or_precise(event)
    if fast is None:
        return
    assert not isinstance(precise, EncodeError), f"fast took what precise refused: {precise}"
    assert fast == precise
    assert all(value is None or isinstance(value, str) for value in fast.values())


@hsettings
@given(mews_st.mews_events())
def test_property_fast_encoders_agree_on_models_built_by_the_application(event: Any) -> None:
    fast, precise = _fast_or_precise(event)
    if fast is not None:
        assert not isinstance(precise, EncodeError)
        assert fast == precise


def _precise_bytes(envelope: Envelope) -> bytes | EncodeError:
    """The envelope as the precise encoder alone writes it (or its error)."""
    try:
        events = [codec._unstructure_at(e, f"Events[{i}]") for i, e in enumerate(envelope.events)]
        return _json.dumps({"Events": events})
    except EncodeError as error:
        return error


def _decoded_events(raw: dict[str, Any]) -> list[Any]:
    try:
        return [codec._decode_event(raw, "")]
    except DecodeError:
        return []


@hsettings
@given(
    st.lists(
        st.one_of(
            mews_st.mews_events().map(lambda event: [event]),
            st.one_of(wire_events(), _mutations()).map(_decoded_events),
            mews_st.mews_messages().map(lambda data: list(decode_envelope(data).events)),
        ),
        max_size=5,
    ).map(lambda parts: [event for part in parts for event in part])
)
def test_property_fast_envelope_encoder_agrees_with_the_precise_encoder(
    events: list[Any],
) -> None:
    # The fast loop over a whole envelope (every class inlined): byte for byte what the
    # precise encoder writes, or the same error, on this test's backend.
    envelope = Envelope(events)
    precise = _precise_bytes(envelope)
    try:
        fast: bytes | EncodeError = encode_envelope(envelope)
    except EncodeError as error:
        fast = error
    if isinstance(precise, EncodeError):
        assert isinstance(fast, EncodeError)
        assert str(fast) == str(precise)
    else:
        assert fast == precise


@pytest.mark.parametrize(
    "id_", ['q"uote', "back\\slash", "tab\tnew\nline\x00\x1f\x7f", "é😀\u2028", "lone\ud83d"]
)
def test_fast_envelope_encoder_escapes_like_the_precise_encoder(id_: str) -> None:
    # The Struct writer (msgspec) and the dict writer (orjson, json) escape alike, and a
    # string no backend can write gets the precise encoder's EncodeError.
    start = datetime(2026, 3, 1, 14, tzinfo=UTC)
    events = [
        ReservationEvent(id_, ReservationState.CONFIRMED, start, start, assigned_resource_id=id_),
        ResourceEvent(id_, "NotAState", legacy_space=True),
        DeviceCommandEvent(id_, CommandState.PENDING),
        PriceUpdateEvent(id_, end_utc=start, rate_id=id_),
    ]
    envelope = Envelope(events)
    precise = _precise_bytes(envelope)
    if isinstance(precise, EncodeError):
        with pytest.raises(EncodeError) as caught:
            encode_envelope(envelope)
        assert str(caught.value) == str(precise)
    else:
        assert encode_envelope(envelope) == precise
        assert decode_envelope(precise).events[0].id == id_


def test_fast_encoders_take_the_common_shapes() -> None:
    # the current dialect, one explicit null; decoded the ordinary way (dicts kept)
    envelope = codec._structure_envelope(json.loads(SEED_001), False)
    for event in envelope.events:
        assert codec._fast_wire([event], codec._DICT_WRITERS)[0] is event._raw  # unchanged: reused
        built = attrs.evolve(event, _raw=None)
        assert codec._fast_wire([built], codec._DICT_WRITERS)[0] == {
            key: value for key, value in event._raw.items() if value is not None
        }
    # The public converter hands out a copy, never the event's own wire object.
    assert codec.encoder.unstructure(envelope.events[0]) is not envelope.events[0]._raw


@st.composite
def _shaped_event(draw: st.DrawFn) -> dict[str, Any]:
    """A wire event as Mews sends it today (the shaped path's shape): known types and
    states, canonical datetimes, each optional field absent, null or set, no extras."""
    times = mews_st.utc_datetimes().map(lambda d: format_datetime(d.replace(microsecond=0)))
    kind = draw(
        st.sampled_from(["DeviceCommand", "Reservation", "Resource", "Space", "PriceUpdate"])
    )
    event: dict[str, Any] = {"Type": kind, "Id": draw(st.text(max_size=8))}
    optional: dict[str, st.SearchStrategy[Any]] = {}
    if kind == "DeviceCommand":
        event["State"] = draw(st.sampled_from(list(CommandState))).value
    elif kind == "Reservation":
        event["State"] = draw(st.sampled_from(list(ReservationState))).value
        event["StartUtc"], event["EndUtc"] = draw(times), draw(times)
        optional = {"AssignedResourceId": st.text(max_size=8)}
    elif kind in ("Resource", "Space"):
        event["State"] = draw(st.sampled_from(list(ResourceState))).value
    else:
        optional = {"StartUtc": times, "EndUtc": times, "RateId": st.text(max_size=8)}
        optional["ResourceCategoryId"] = st.text(max_size=8)
    for key, values in optional.items():
        choice = draw(st.sampled_from(["absent", "null", "value"]))
        if choice != "absent":
            event[key] = None if choice == "null" else draw(values)
    return event


def _shaped_messages() -> st.SearchStrategy[bytes]:
    return st.lists(_shaped_event(), min_size=1, max_size=4).map(
        lambda events: json.dumps({"Events": events}).encode()
    )


SHAPE_EDGES = [
    b'{"Type":"Resource","Id":"a","Id":"b","State":"Dirty"}',
    b'{"Type":"Resource","Type":"Space","Id":"a","State":"Dirty"}',
    b'{"Id":"a","State":"Clean","Type":"Space"}',
    b'{"Type":"DeviceCommand","Id":"a","State":"Pending","State":"Nope"}',
    b'{"Type":"Reservation","Id":"r","State":"Enquired","StartUtc":"2016-02-20T13:00:00Z",'
    b'"EndUtc":"2016-02-20T13:00:00+00:00"}',
    b'{"Type":"Reservation","Id":"r","State":"Canceled","StartUtc":"2016-02-20T13:00:00Z",'
    b'"EndUtc":"2016-02-21T13:00:00Z","AssignedResourceId":null}',
    b'{"Type":"PriceUpdate","Id":"p"}',
    b'{"Type":"PriceUpdate","Id":"p","RateId":"x","StartUtc":"2016-02-20T13:00:00Z"}',
    b'{"Type":"PriceUpdate","Id":"p","SpaceCategoryId":"c"}',
    rb'{"Type":"Resource","Id":"\u00e9\ud83d\ude00","State":"Dirty"}',
    rb'{"Type":"Resource","Id":"\ud83d","State":"Dirty"}',
]


@hsettings
@given(
    st.one_of(
        mews_st.mews_messages(),
        mews_st.near_mews_messages(),
        mews_st.garbage_mews_messages(),
        _shaped_messages(),
        # the shape's own edges: duplicate keys, a tag twice, Type last, nulls, BOMs
        st.lists(st.sampled_from(SHAPE_EDGES), min_size=1, max_size=3).map(
            lambda parts: b'{"Events":[' + b",".join(parts) + b"]}"
        ),
    )
)
def test_property_shaped_path_agrees_with_the_ordinary_path(data: bytes) -> None:
    """With msgspec, a message in the shape skips the dicts: same models as without."""
    if codec._shape is None:
        pytest.skip("msgspec (the fast extra) is not installed")
    try:
        shaped = codec._from_shape(codec._shape.decode(data).events)
    except Exception:  # not in the shape: the ordinary way decides alone
        return
    ordinary = codec._structure_envelope(_json.loads(data), False)  # must not raise either
    assert shaped == ordinary
    for ours, theirs in zip(shaped.events, ordinary.events, strict=True):
        assert type(ours) is type(theirs)
        assert getattr(ours, "legacy_space", None) == getattr(theirs, "legacy_space", None)
        assert [type(getattr(ours, name)) for name in ours.__slots__ if name != "_raw"] == [
            type(getattr(theirs, name)) for name in theirs.__slots__ if name != "_raw"
        ]
    # Each keeps its Struct, which stands for the wire object; it re-encodes the same.
    assert wire(encode_envelope(shaped)) == wire(data)
    for event, raw in zip(shaped.events, wire(data)["Events"], strict=True):
        assert type(event._raw) in codec._SHAPE_EVENTS
        assert codec._raw_mapping(event) == raw
        assert pickle.loads(pickle.dumps(event._raw)) == raw  # unpickles without msgspec


def _shaped_changes(event: Any, change: str) -> Any:
    """A shaped-decoded event changed after decoding in one field (or not at all)."""
    if change == "id":
        return attrs.evolve(event, id=event.id + "-changed")
    if change == "null" and isinstance(event, ReservationEvent | PriceUpdateEvent):
        name = "assigned_resource_id" if isinstance(event, ReservationEvent) else "rate_id"
        return attrs.evolve(event, **{name: None if getattr(event, name) else "x"})
    if change in ("start_utc", "end_utc") and isinstance(
        event, ReservationEvent | PriceUpdateEvent
    ):
        value = getattr(event, change)
        other: datetime | None = datetime(2026, 1, 1, tzinfo=UTC)
        if value == other:
            other = datetime(2026, 1, 2, tzinfo=UTC)
        if isinstance(event, PriceUpdateEvent) and value is not None:
            other = None  # an optional time dropped
        return attrs.evolve(event, **{change: other})
    if change == "state" and not isinstance(event, PriceUpdateEvent):
        return attrs.evolve(event, state=f"{event.state}-changed")
    if change == "space" and isinstance(event, ResourceEvent):  # Resource <-> Space
        return attrs.evolve(event, legacy_space=not event.legacy_space)
    if change == "copy":  # equal values, none of them the decoded objects
        return attrs.evolve(event, id="".join(event.id))
    return event


@hsettings
@given(_shaped_messages())
def test_property_shaped_events_re_encode_like_the_precise_encoder(data: bytes) -> None:
    # An event of the shaped path keeps its Struct: unchanged, the Struct itself goes
    # out again; changed, or encoded to dicts, the result is the precise encoder's.
    if codec._shape is None:
        pytest.skip("msgspec (the fast extra) is not installed")
    decoded = codec._from_shape(codec._shape.decode(data).events)
    for change in ("kept", "id", "state", "null", "start_utc", "end_utc", "space", "copy"):
        events = [_shaped_changes(event, change) for event in decoded.events]
        envelope = Envelope(events)
        assert encode_envelope(envelope) == _precise_bytes(envelope), change
        for event in events:
            assert codec._wire_event(event, None, share=False) == codec._unstructure_at(event, "")
    out = codec._fast_wire(decoded.events, codec._STRUCT_WRITERS)
    assert all(wired is event._raw for wired, event in zip(out, decoded.events, strict=True))


canonical_like = st.builds(
    lambda base, i, ch: base[:i] + ch + base[i + 1 :],
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(
        lambda d: f"{d.year:04d}-{d:%m-%dT%H:%M:%S}Z"
    ),
    st.integers(0, 19),
    st.sampled_from([*"0123456789-T:Z zt+.W,٣", "", "00", "W0"]),
)


@hsettings
@given(canonical_like | st.text(min_size=18, max_size=22))
def test_property_fast_datetimes_agree_with_the_precise_parser(text: str) -> None:
    try:
        fast = codec._canonical_time(text)
    except Exception:  # declined or invalid: the precise path decides
        return
    assert parse_datetime(text) == fast
    assert fast.tzinfo is UTC
    assert format_datetime(fast) == text


@hsettings
@given(datetime_texts())
def test_property_accepted_datetime_texts_parse_to_utc_and_keep_their_text(text: str) -> None:
    value = parse_datetime(text)
    assert value.tzinfo is UTC
    raw = {"Type": "PriceUpdate", "Id": "p", "StartUtc": text}
    assert roundtrip(message(raw)) == {"Events": [raw]}


garbage_envelopes = mews_st.garbage_mews_messages()


@hsettings
@given(garbage_envelopes, st.booleans())
def test_property_garbage_gives_an_envelope_or_a_decode_error_only(
    data: bytes, lenient: bool
) -> None:
    outcome = decode_or_error(data, lenient=lenient)
    if isinstance(outcome, DecodeError):
        assert not outcome.reason.startswith(codec.DECODER_BUG)
    else:
        assert isinstance(outcome, Envelope)
        assert wire(encode_envelope(outcome)) == wire(data)


@hsettings
@given(st.binary(max_size=64) | st.text(max_size=64), st.booleans())
def test_property_random_bytes_never_escape_as_other_exceptions(
    data: bytes | str, lenient: bool
) -> None:
    outcome = decode_or_error(data, lenient=lenient)
    assert isinstance(outcome, Envelope | DecodeError)
    if isinstance(outcome, DecodeError):
        assert not outcome.reason.startswith(codec.DECODER_BUG)


def decode_or_error(data: bytes | str, *, lenient: bool) -> Envelope | DecodeError:
    """The envelope, or the DecodeError; any other exception fails the test."""
    try:
        return decode_envelope(data, lenient=lenient)
    except DecodeError as error:
        return error
