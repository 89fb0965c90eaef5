"""Connection specs, credentials, message ids and the fair share: no NATS needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from protocore.mews import ResourceEvent, ResourceState
from transports.fleet import (
    BindingSpec,
    ConnectionSpec,
    CredentialError,
    MessageIds,
    SpecError,
    decode_spec,
    encode_spec,
    fair_share,
    resolve_credentials,
)
from transports.fleet.cli import parse_binding
from transports.fleet.publish import mews_payload, mews_subject

MEWS = {"client_token": "env:MEWS_CLIENT", "access_token": "file:/etc/hotel-1"}


def test_spec_round_trips_through_json() -> None:
    spec = ConnectionSpec(
        "site-1",
        "placeos",
        "ws://127.0.0.1:1/api/engine/v2/systems/control",
        {"api_key": "env:SITE_KEY"},
        (BindingSpec("sys-1", "Display", "power", 2),),
    )
    assert decode_spec(encode_spec(spec)) == spec
    mews = ConnectionSpec("hotel-1", "mews", "wss://ws.mews.com/ws/connector", MEWS)
    assert decode_spec(encode_spec(mews)) == mews


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"{", "not a JSON document"),
        (b"[]", "must be a JSON object"),
        (b'{"name": "a", "protocol": "mews"}', "missing field 'url'"),
        (b'{"name": "a.b", "protocol": "mews", "url": "ws://h/"}', "name must be"),
        (b'{"name": "a", "protocol": "ftp", "url": "ws://h/"}', "protocol must be"),
        (b'{"name": "a", "protocol": "mews", "url": "http://h/"}', "ws:// or wss://"),
        (b'{"name": "a", "protocol": "mews", "url": "ws://h/"}', "lack access_token"),
        (
            b'{"name": "a", "protocol": "placeos", "url": "ws://h/", '
            b'"credentials": {"api_key": "env:K", "bearer_token": "env:T"}}',
            "exactly one",
        ),
        (
            b'{"name": "a", "protocol": "placeos", "url": "ws://h/", '
            b'"credentials": {"api_key": "K"}}',
            "'env:VARIABLE' or 'file:PATH'",
        ),
        (
            b'{"name": "a", "protocol": "placeos", "url": "ws://h/", '
            b'"credentials": {"api_key": "env:K"}, "bindings": [{"sys": "s.1", '
            b'"mod": "M", "name": "n"}]}',
            "bindings[].sys",
        ),
        (b'{"name": "a", "protocol": "mews", "url": "ws://h/", "extra": 1}', "unknown field"),
    ],
)
def test_bad_specs_say_what_is_wrong(doc: bytes, message: str) -> None:
    with pytest.raises(SpecError, match=None) as caught:
        decode_spec(doc)
    assert message in str(caught.value)


def test_credentials_come_from_env_and_files_and_never_show(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cret-access\n")
    spec = ConnectionSpec(
        "hotel-1",
        "mews",
        "ws://127.0.0.1/ws/connector",
        {"client_token": "env:MEWS_CLIENT", "access_token": f"file:{secret}"},
    )
    assert resolve_credentials(spec, {"MEWS_CLIENT": "s3cret-client"}) == {
        "client_token": "s3cret-client",
        "access_token": "s3cret-access",
    }
    with pytest.raises(CredentialError, match="MEWS_CLIENT") as caught:
        resolve_credentials(spec, {})
    assert "s3cret" not in str(caught.value)
    secret.unlink()
    with pytest.raises(CredentialError, match="cannot read access_token"):
        resolve_credentials(spec, {"MEWS_CLIENT": "s3cret-client"})
    assert "s3cret" not in repr(spec)


def test_bindings_parse_from_the_placeos_spelling() -> None:
    assert parse_binding("sys-1/Display_2.power") == BindingSpec("sys-1", "Display", "power", 2)
    assert parse_binding("sys-1/Display.power") == BindingSpec("sys-1", "Display", "power", 1)
    with pytest.raises(SpecError, match=r"SYS/MOD_INDEX\.NAME"):
        parse_binding("sys-1.power")


def test_message_ids_agree_between_owners_and_separate_repeats() -> None:
    a, b = MessageIds("hotel-1"), MessageIds("hotel-1")
    dirty = mews_payload(ResourceEvent("r-1", ResourceState.DIRTY))
    clean = mews_payload(ResourceEvent("r-1", ResourceState.CLEAN))
    first = [a.next(p, 0.0) for p in (dirty, clean, dirty)]
    assert len(set(first)) == 3  # a repeated event is a new message
    assert [b.next(p, 1.0) for p in (dirty, clean, dirty)] == first  # the same ids elsewhere
    assert MessageIds("hotel-2").next(dirty, 0.0) != first[0]
    # Past the duplicate window the count starts again (JetStream forgot the id too).
    assert a.next(dirty, 1000.0) == first[0]
    assert len(a) == 1


def test_event_subjects_name_the_type() -> None:
    assert mews_subject("h", ResourceEvent("r", ResourceState.DIRTY)) == "mews.h.Resource"


@pytest.mark.parametrize(
    ("specs", "workers", "share"), [(30, 3, 10), (31, 3, 11), (30, 2, 15), (0, 3, 0), (5, 0, 5)]
)
def test_fair_share(specs: int, workers: int, share: int) -> None:
    assert fair_share(specs, workers) == share


def test_message_ids_stay_bounded() -> None:
    ids = MessageIds("hotel-1", max_entries=100)
    for n in range(1000):
        ids.next(mews_payload(ResourceEvent(f"r-{n}", ResourceState.DIRTY)), 0.0)
    assert len(ids) == 100


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"nope", "not JSON"),
        (b"[1]", "JSON object"),
        (b'{"sys": "s", "mod": "m"}', "'method' must be a non-empty string"),
        (b'{"sys": "s", "mod": "m", "method": "x", "args": 1}', "'args' must be a list"),
        (b'{"sys": "s", "mod": "m", "method": "x", "index": 0}', "'index'"),
        (b'{"sys": "s", "mod": "m", "method": "x", "timeout": -1}', "'timeout'"),
        (b'{"sys": "s", "mod": "m", "method": "x", "extra": 1}', "unknown field 'extra'"),
    ],
)
def test_bad_exec_requests_say_what_is_wrong(doc: bytes, message: str) -> None:
    from transports.fleet.exec import BadExecRequest, decode_request

    with pytest.raises(BadExecRequest) as caught:
        decode_request(doc)
    assert message in str(caught.value)


def test_exec_requests_decode() -> None:
    from transports.fleet import ExecRequest
    from transports.fleet.exec import decode_request

    doc = b'{"sys": "s", "mod": "m", "method": "x", "args": [1, "a"], "index": 2, "timeout": 3}'
    assert decode_request(doc) == ExecRequest("s", "m", "x", (1, "a"), 2, 3.0)


def test_the_parser_registers_without_nats_py() -> None:
    """A command line installed without the 'fleet' extra still lists the command and
    says what to install (one line, status 1)."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['nats'] = None\n"  # as if nats-py were not installed
        "import argparse\n"
        "from transports.fleet.cli import register\n"
        "parser = argparse.ArgumentParser()\n"
        "register(parser.add_subparsers())\n"
        "args = parser.parse_args(['fleet', 'list'])\n"
        "sys.exit(args.fleet_handler(args))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert done.stderr == (
        "protocore fleet: error: the fleet needs nats-py: pip install 'protocore[fleet]'\n"
    )
