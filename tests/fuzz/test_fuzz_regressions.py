"""What the fuzzers found, kept as unit tests; and the whole seed corpus under the contract.

Every input in ``corpus/<target>/`` (seeds and minimised crashes) goes through the
target's contract (`_contracts.TARGETS`) without atheris, so a regression shows up in
an ordinary test run. The named tests below are the crashes, minimised, with the
bug each one found.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from _contracts import TARGETS, check_mews_decode, json_backend

from protocore import _json
from protocore.errors import DecodeError
from protocore.mews import decode_envelope

CORPUS = Path(__file__).parent / "corpus"
INPUTS = [
    pytest.param(target, path, id=f"{target}/{path.name[:12]}")
    for target in sorted(TARGETS)
    for path in sorted((CORPUS / target).iterdir())
]


def test_every_target_has_a_seed_corpus() -> None:
    assert {p.name for p in CORPUS.iterdir()} == set(TARGETS)
    assert all(any((CORPUS / target).iterdir()) for target in TARGETS)


@pytest.mark.parametrize(("target", "path"), INPUTS)
def test_corpus_input_meets_the_contract(target: str, path: Path) -> None:
    TARGETS[target](path.read_bytes())


# -- crashes found by fuzzing ---------------------------------------------------------------

# fuzz_mews_decode: the stdlib backend checked for lone surrogates in the parsed value,
# where a later duplicate key had already replaced the string holding one; orjson
# refuses them anywhere, so the two backends disagreed.
DUPLICATE_KEY_HIDES_SURROGATE = [
    b'{"Events":[],"X":"\\ud800","X":1}',
    b'{"Events":[{"Type":"DeviceCommand","Id":"\\ud800","Id":"d","State":"Pending"}]}',
    b'{"Events":[{"Type":"Bill","A":{"B":"x\\udc00y","B":null}}]}',
]


@pytest.mark.parametrize("data", DUPLICATE_KEY_HIDES_SURROGATE)
@pytest.mark.parametrize("backend", _json.available_backends())
def test_a_lone_surrogate_replaced_by_a_duplicate_key_is_still_refused(
    data: bytes, backend: str
) -> None:
    with json_backend(backend), pytest.raises(DecodeError, match="surrogate"):
        decode_envelope(data)
    check_mews_decode(data)


@pytest.mark.parametrize("backend", _json.available_backends())
def test_an_escaped_backslash_before_u_is_not_a_surrogate(backend: str) -> None:
    with json_backend(backend):
        assert _json.loads(b'{"a":"\\\\ud800","a":1}') == {"a": 1}
        assert _json.loads(b'{"a":"\\ud83d\\ude00","a":1}') == {"a": 1}
