"""The AsyncAPI documents: valid AsyncAPI 3.0, committed as generated, true to the wire.

Validity is checked against the official AsyncAPI 3.0.0 JSON Schema, vendored from
the npm package ``@asyncapi/specs`` (tests/data/asyncapi/, Apache-2.0). Truth: every
published example (`protocore.samples`), the example data file, the documents' own
examples, generated messages in every dialect and whatever else the decoders accept
validate against the payload schemas, and messages the decoders refuse do not.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import jsonschema
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from protocore import DecodeError, asyncapi, samples
from protocore.mews import decode_envelope, encode_envelope
from protocore.mews.codec import _SCHEMAS
from protocore.placeos import (
    DebugMessage,
    Dialect,
    ErrorResponse,
    Notification,
    SuccessResponse,
    ValueFormat,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
)
from protocore.placeos.codec import _COMMANDS
from protocore.testing.mews import (
    envelopes,
    garbage_mews_messages,
    mews_messages,
    near_mews_messages,
)
from protocore.testing.placeos import (
    FIELDS,
    lookalikes,
    near_values,
    request_messages,
    requests,
    response_messages,
    responses,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
DOCS = ROOT / "docs" / "asyncapi"
PROTOCOLS: tuple[asyncapi.ProtocolName, ...] = ("mews", "placeos")
FORMATS: tuple[asyncapi.Format, ...] = ("json", "yaml")
REGENERATE = "bash scripts/asyncapi"


@pytest.fixture(scope="module")
def asyncapi_schema() -> jsonschema.Draft7Validator:
    schema = json.loads((DATA / "asyncapi" / "asyncapi-3.0.0.schema.json").read_text("utf-8"))
    return jsonschema.Draft7Validator(schema)


def _payload_validator(
    protocol: asyncapi.ProtocolName, schema_name: str
) -> jsonschema.Draft7Validator:
    """Validates against one payload schema, its references resolved in the document."""
    uri = f"urn:protocore:asyncapi:{protocol}"
    resource = Resource.from_contents(asyncapi.document(protocol), default_specification=DRAFT7)
    registry: Registry[Any] = Registry().with_resource(uri, resource)
    return jsonschema.Draft7Validator(
        {"$ref": f"{uri}#/components/schemas/{schema_name}"}, registry=registry
    )


ENVELOPE = _payload_validator("mews", "Envelope")
_PLACEOS: dict[str, jsonschema.Draft7Validator] = {}


def _placeos(schema_name: str) -> jsonschema.Draft7Validator:
    if schema_name not in _PLACEOS:
        _PLACEOS[schema_name] = _payload_validator("placeos", schema_name)
    return _PLACEOS[schema_name]


_RESPONSE_SCHEMAS = {
    "success": "SuccessResponse",
    "error": "ErrorResponse",
    "notify": "NotifyResponse",
    "debug": "DebugResponse",
}


def _check_request(data: bytes | str) -> None:
    obj = json.loads(data)
    _placeos(f"{_COMMANDS[obj['cmd']].__name__}Request").validate(obj)


def _check_response(data: bytes | str) -> None:
    obj = json.loads(data)
    _placeos(_RESPONSE_SCHEMAS[obj["type"]]).validate(obj)


# ---------------------------------------------------------------- the documents themselves


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_document_is_valid_asyncapi_3(
    protocol: asyncapi.ProtocolName, asyncapi_schema: jsonschema.Draft7Validator
) -> None:
    document = asyncapi.document(protocol)
    assert document["asyncapi"] == "3.0.0"
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in asyncapi_schema.iter_errors(document)
    ]
    assert errors == []


def test_the_official_schema_catches_a_broken_document(
    asyncapi_schema: jsonschema.Draft7Validator,
) -> None:
    document = asyncapi.document("placeos")
    document["components"]["securitySchemes"]["apiKeyHeader"]["in"] = "body"
    assert not asyncapi_schema.is_valid(document)
    document = asyncapi.document("mews")
    del document["channels"]["connector"]["address"]
    document["channels"]["connector"]["adress"] = "/ws/connector"
    assert not asyncapi_schema.is_valid(document)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_committed_document_is_current(
    protocol: asyncapi.ProtocolName, fmt: asyncapi.Format
) -> None:
    path = DOCS / f"{protocol}.{fmt}"
    assert path.exists(), f"{path} is missing: run {REGENERATE}"
    rendered = asyncapi.render(protocol, fmt)
    assert path.read_text("utf-8") == rendered, f"{path} is stale: run {REGENERATE}"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_yaml_and_json_say_the_same(protocol: asyncapi.ProtocolName) -> None:
    from_json = json.loads(asyncapi.render(protocol, "json"))
    assert yaml.safe_load(asyncapi.render(protocol, "yaml")) == from_json
    assert from_json == asyncapi.document(protocol)


def test_a_document_is_a_fresh_copy() -> None:
    first = asyncapi.document("mews")
    first["info"]["title"] = "changed"
    assert asyncapi.document("mews")["info"]["title"] != "changed"


def test_unknown_protocol_and_format_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown protocol 'xmpp': expected one of mews, placeos"):
        asyncapi.document("xmpp")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown format 'toml'"):
        asyncapi.render("mews", "toml")  # type: ignore[arg-type]


# ----------------------------------------------------------------------- every field is in


def test_every_mews_field_the_codec_reads_is_described() -> None:
    schemas = asyncapi.document("mews")["components"]["schemas"]
    for kind, schema in _SCHEMAS.items():
        (described,) = [
            s
            for s in schemas.values()
            if s.get("properties", {}).get("Type", {}).get("const") == kind
        ]
        model_fields = {f.name for f in attrs.fields(schema.cls)} - {
            "extra",
            "_raw",
            "legacy_space",
        }
        assert {field.attr for field in schema.fields} == model_fields
        for field in schema.fields:
            assert field.wire in described["properties"]
            if field.legacy:
                assert described["properties"][field.legacy]["deprecated"] is True
    for enum_name in ("CommandState", "ReservationState", "ResourceState"):
        assert schemas[enum_name]["enum"]


def test_every_placeos_command_and_response_field_is_described() -> None:
    schemas = asyncapi.document("placeos")["components"]["schemas"]
    for cmd, cls in _COMMANDS.items():
        properties = schemas[f"{cls.__name__}Request"]["properties"]
        assert properties["cmd"]["const"] == cmd
        assert {f.name for f in attrs.fields(cls)} <= set(properties)
    wire = {
        "SuccessResponse": (SuccessResponse, {"id", "value", "meta", "mod_id", "code"}),
        "NotifyResponse": (Notification, {"id", "meta", "value"}),
        "DebugResponse": (DebugMessage, {"mod", "klass", "level", "msg", "meta", "id"}),
        "ErrorResponseCurrent": (ErrorResponse, {"id", "error_code", "code", "msg"}),
    }
    for name, (cls, names) in wire.items():
        assert set(schemas[name]["properties"]) == names | {"type"}
        assert len(attrs.fields(cls)) <= len(names)
    assert set(schemas["ErrorResponseSeed"]["properties"]) == {"type", "id", "code", "msg"}
    assert schemas["ErrorCode"]["enum"] == list(range(8))
    assert "fatal" in schemas["LogLevel"]["enum"]


def test_auth_schemes_and_the_heartbeat_are_described() -> None:
    placeos = asyncapi.document("placeos")
    schemes = placeos["components"]["securitySchemes"]
    assert {(s.get("name"), s.get("in"), s.get("scheme")) for s in schemes.values()} == {
        ("X-API-Key", "header", None),
        ("api-key", "query", None),
        ("api-key", "cookie", None),
        (None, None, "bearer"),
        ("bearer_token", "query", None),
        ("bearer_token", "cookie", None),
    }
    messages = placeos["components"]["messages"]
    for text in ("ping", "pong"):
        assert messages[text]["contentType"] == "text/plain"
        assert messages[text]["payload"] == {"type": "string", "const": text}
    mews = asyncapi.document("mews")
    assert {(s["name"], s["in"]) for s in mews["components"]["securitySchemes"].values()} == {
        (token, place) for token in ("ClientToken", "AccessToken") for place in ("cookie", "query")
    }
    assert mews["servers"]["demo"]["host"] == "ws.mews-demo.com"


# --------------------------------------------------------------- what the wire really holds


@pytest.mark.parametrize("sample", samples.MEWS_MESSAGES, ids=lambda sample: sample.name)
def test_the_published_mews_examples_validate(sample: samples.Sample) -> None:
    decode_envelope(sample.text)
    ENVELOPE.validate(json.loads(sample.text))


def test_the_mews_example_file_validates() -> None:
    lines = [
        line
        for line in (ROOT / "examples" / "mews_events.jsonl").read_text("utf-8").splitlines()
        if line.strip()
    ]
    assert lines
    for line in lines:
        decode_envelope(line)
        ENVELOPE.validate(json.loads(line))


def _check_text_frame(text: str) -> None:
    messages = asyncapi.document("placeos")["components"]["messages"]
    jsonschema.validate(text, messages[text]["payload"])


@pytest.mark.parametrize("name", sorted(samples.PLACEOS_REQUESTS))
def test_the_published_placeos_requests_validate(name: str) -> None:
    text = samples.PLACEOS_REQUESTS[name]
    decode_request(text)
    if text == "ping":
        _check_text_frame(text)
    else:
        _check_request(text)


@pytest.mark.parametrize("name", sorted(samples.PLACEOS_RESPONSES))
def test_the_published_placeos_responses_validate(name: str) -> None:
    text = samples.PLACEOS_RESPONSES[name]
    decode_response(text)
    if text == "pong":
        _check_text_frame(text)
    else:
        _check_response(text)


def test_the_heartbeat_messages_are_the_raw_words() -> None:
    assert {samples.PLACEOS_REQUESTS["heartbeat_request"]} == {"ping"}
    assert {samples.PLACEOS_RESPONSES["heartbeat_response"]} == {"pong"}
    with pytest.raises(jsonschema.ValidationError):
        _check_text_frame_as("ping", '"ping"')


def _check_text_frame_as(message: str, text: str) -> None:
    messages = asyncapi.document("placeos")["components"]["messages"]
    jsonschema.validate(text, messages[message]["payload"])


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_documents_own_examples_decode_and_validate(protocol: asyncapi.ProtocolName) -> None:
    messages = asyncapi.document(protocol)["components"]["messages"]
    checked = 0
    for message in messages.values():
        if message["contentType"] != "application/json":
            continue
        for example in message["examples"]:
            data = json.dumps(example["payload"])
            if protocol == "mews":
                decode_envelope(data)
                ENVELOPE.validate(example["payload"])
            elif "cmd" in example["payload"]:
                decode_request(data)
                _check_request(data)
            else:
                decode_response(data)
                _check_response(data)
            checked += 1
    assert checked >= 2


@settings(max_examples=100)
@given(st.one_of(mews_messages("current"), mews_messages("legacy"), mews_messages()))
def test_generated_mews_messages_validate(data: bytes) -> None:
    ENVELOPE.validate(json.loads(data))


@settings(max_examples=100)
@given(envelopes())
def test_what_we_encode_for_mews_validates(envelope: Any) -> None:
    ENVELOPE.validate(json.loads(encode_envelope(envelope)))


@settings(max_examples=100)
@given(request_messages())
def test_generated_placeos_requests_validate(data: bytes) -> None:
    if data != b"ping":
        _check_request(data)


@settings(max_examples=100)
@given(st.one_of(response_messages(Dialect.CURRENT), response_messages(Dialect.SEED)))
def test_generated_placeos_responses_validate(data: bytes) -> None:
    if data != b"pong":
        _check_response(data)


@settings(max_examples=100)
@given(requests(), responses(), st.sampled_from(list(Dialect)))
def test_what_we_encode_for_placeos_validates(
    request: Any, response: Any, dialect: Dialect
) -> None:
    encoded = encode_request(request)
    if encoded != b"ping":
        _check_request(encoded)
    encoded = encode_response(response, dialect=dialect)
    if encoded != b"pong":
        _check_response(encoded)


def _without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def change(obj: dict[str, Any]) -> dict[str, Any]:
        out = copy.deepcopy(obj)
        del out["Events"][0][key]
        return out

    return change


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"Events": {}},
        {"Events": [{"Id": "x", "State": "Dirty"}]},
        {"Events": [{"Type": "Resource", "Id": 7, "State": "Dirty"}]},
        {
            "Events": [
                {
                    "Type": "Reservation",
                    "Id": "r",
                    "State": "Confirmed",
                    "StartUtc": "soon",
                    "EndUtc": "2024-01-01T00:00:00Z",
                }
            ]
        },
        {
            "Events": [
                {
                    "Type": "Reservation",
                    "Id": "r",
                    "State": "Confirmed",
                    "EndUtc": "2024-01-01T00:00:00Z",
                }
            ]
        },
    ],
)
def test_mews_messages_the_decoder_refuses_do_not_validate(bad: dict[str, Any]) -> None:
    with pytest.raises(DecodeError):
        decode_envelope(json.dumps(bad))
    assert not ENVELOPE.is_valid(bad)


_PRICE = {"Type": "PriceUpdate", "Id": "p"}


@pytest.mark.parametrize(
    ("event", "decodes"),
    [
        ({**_PRICE, "SpaceCategoryId": "c"}, True),  # the legacy name alone: read
        ({**_PRICE, "SpaceCategoryId": []}, False),  # ... and so checked
        ({**_PRICE, "ResourceCategoryId": "c", "SpaceCategoryId": []}, True),  # kept in extra
        ({**_PRICE, "ResourceCategoryId": None, "SpaceCategoryId": 5}, True),
    ],
)
def test_a_legacy_name_is_checked_only_when_it_is_the_one_read(
    event: dict[str, Any], decodes: bool
) -> None:
    message = {"Events": [event]}
    try:
        decode_envelope(json.dumps(message))
    except DecodeError:
        decoded = False
    else:
        decoded = True
    assert (decoded, ENVELOPE.is_valid(message)) == (decodes, decodes)


@pytest.mark.parametrize(
    ("kind", "bad"),
    [
        ("BindRequest", {"id": 1, "cmd": "bind", "sys": "s", "mod": "m"}),
        ("BindRequest", {"id": 1.5, "cmd": "bind", "sys": "s", "mod": "m", "name": "n"}),
        ("ExecRequest", {"id": 1, "cmd": "exec", "sys": "s", "mod": "m", "name": "n", "index": 0}),
        ("ErrorResponse", {"id": 1, "type": "error", "msg": "no number"}),
        ("NotifyResponse", {"id": 1, "type": "notify", "value": 1, "meta": {"sys": "s"}}),
        ("DebugResponse", {"type": "debug", "mod": "m", "msg": "no level"}),
    ],
)
def test_placeos_messages_the_decoder_refuses_do_not_validate(
    kind: str, bad: dict[str, Any]
) -> None:
    decode = decode_request if kind.endswith("Request") else decode_response
    with pytest.raises(DecodeError):
        decode(json.dumps(bad))
    assert not _placeos(kind).is_valid(bad)


# ------------------------------------------- whatever the decoders accept, the schemas accept


@settings(max_examples=100)
@given(st.one_of(near_mews_messages(), garbage_mews_messages()))
def test_every_mews_message_that_decodes_validates(data: bytes) -> None:
    try:
        decode_envelope(data)
    except DecodeError:
        return
    ENVELOPE.validate(json.loads(data))


@st.composite
def near_placeos_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A valid PlaceOS message of either direction with some fields changed or removed."""
    data = draw(st.one_of(request_messages(), response_messages()).filter(_is_json))
    obj: dict[str, Any] = json.loads(data)
    for key in draw(st.sets(st.sampled_from(sorted(obj)))):
        if key not in {"cmd", "type"}:
            del obj[key]
    changes = draw(st.dictionaries(st.sampled_from(FIELDS), near_values(), max_size=3))
    obj.update({key: value for key, value in changes.items() if key not in {"cmd", "type"}})
    if isinstance(obj.get("meta"), dict) and draw(st.booleans()):
        meta_keys = st.sampled_from(["sys", "mod", "index", "name"])
        obj["meta"] = {**obj["meta"], **draw(st.dictionaries(meta_keys, near_values(), max_size=2))}
    return obj


def _is_json(data: bytes) -> bool:
    return data not in {b"ping", b"pong"}


@settings(max_examples=100)
@given(st.one_of(near_placeos_messages(), lookalikes()))
def test_every_placeos_message_that_decodes_validates(obj: dict[str, Any]) -> None:
    data = json.dumps(obj)
    if "cmd" in obj:
        try:
            decode_request(data)
        except DecodeError:
            return
        _check_request(data)
    elif "type" in obj:
        try:
            decode_response(data, value_format=ValueFormat.RAW)
        except DecodeError:
            return
        _check_response(data)
