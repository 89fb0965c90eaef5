"""The JSON backend gives the same answers under orjson and the stdlib."""

from __future__ import annotations

import pytest

from protocore import DecodeError, EncodeError, _json

pytestmark = pytest.mark.usefixtures("json_backend")


@pytest.mark.parametrize(
    "data",
    [
        b"NaN",
        b"[Infinity]",
        b"-Infinity",
        b"1e400",
        b'"\\ud800"',
        b"\xff",
        b"\xef\xbb\xbf{}",
        b"[" * 10_000,
        b"",
        b"{",
        b"{'a': 1}",
    ],
)
def test_bad_json_is_a_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        _json.loads(data)
    assert info.value.path == ""
    assert str(info.value)


def test_size_limit_is_checked_before_parsing() -> None:
    big = b'"' + b"x" * 1000 + b'"'
    with pytest.raises(DecodeError, match="over the limit of 100"):
        _json.loads(big, max_size=100)
    assert _json.loads(big, max_size=2000) == "x" * 1000


def test_str_and_bytes_decode_alike() -> None:
    assert _json.loads('{"a":[1,2.5,"é"]}') == _json.loads('{"a":[1,2.5,"é"]}'.encode())


@pytest.mark.parametrize("value", [float("nan"), [1, float("inf")], {"a": {"b": -float("inf")}}])
def test_non_finite_floats_are_refused_on_encode(value: object) -> None:
    with pytest.raises(EncodeError, match=r"NaN|not JSON|Out of range"):
        _json.dumps(value)


def test_nulls_without_non_finite_floats_encode() -> None:
    assert _json.loads(_json.dumps({"a": None, "b": [None, 1.5]})) == {"a": None, "b": [None, 1.5]}


@pytest.mark.parametrize("value", [{1, 2}, object(), b"bytes"])
def test_unencodable_values_are_an_encode_error(value: object) -> None:
    with pytest.raises(EncodeError):
        _json.dumps(value)


def test_big_integers_encode_under_both_backends() -> None:
    assert _json.dumps([2**70]) == b"[1180591620717411303424]"


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown"):
        _json.set_backend("simplejson")


def test_a_deep_document_with_a_lone_surrogate_is_a_decode_error() -> None:
    deep = "[" * 600 + '"\\ud800"' + "]" * 600
    with pytest.raises(DecodeError):
        _json.loads(deep)
    assert _json.loads("[" * 600 + '"ok"' + "]" * 600) is not None
