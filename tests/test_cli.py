"""The ``protocore`` command line, run as a subprocess against its own fake servers.

Every process has a timeout; servers are read line by line through a reader thread
(a bounded ``queue.get``), never waited for with sleeps. Servers listen on
127.0.0.1 port 0 and say where in their first line; they are stopped with SIGINT,
which must end them with status 130 and no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_processes import TIMEOUT, Running

from protocore import samples
from transports.cli import main
from transports.cli.credentials import MEWS_DEMO_ACCESS_TOKEN, MEWS_DEMO_CLIENT_TOKEN

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data" / "cli"
EXAMPLES = ROOT / "examples"

TRANSPORTS = ("trio", "asyncio", "sync")
API_KEY = "pk-Ee5-not-a-real-placeos-key"
CLIENT_TOKEN = "ct-Ff6-not-a-real-client-token"
ACCESS_TOKEN = "at-Gg7-not-a-real-access-token"
SECRETS = (API_KEY, CLIENT_TOKEN, ACCESS_TOKEN, MEWS_DEMO_CLIENT_TOKEN, MEWS_DEMO_ACCESS_TOKEN)
"""Never printed: the demo tokens are public, but printing them would teach a habit."""
SECRET_ENV = ("PLACEOS_API_KEY", "MEWS_CLIENT_TOKEN", "MEWS_ACCESS_TOKEN")
SYS = "sys-room-1"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env.update(extra)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _command(args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "transports.cli", *args]


def cli(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI to its end (bounded) and return what it wrote."""
    return subprocess.run(
        _command(args),
        input=stdin,
        capture_output=True,
        text=True,
        env=env if env is not None else _env(),
        timeout=TIMEOUT,
        cwd=ROOT,
        check=False,
    )


def assert_one_error_line(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """A failure: the status, exactly one line on stderr, no traceback, no secret."""
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert_no_secrets(result.stdout, result.stderr)
    return lines[0]


def assert_no_secrets(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


@contextmanager
def running(*args: str, env: dict[str, str] | None = None) -> Iterator[Running]:
    process = Running(_command(args), env if env is not None else _env(), cwd=ROOT)
    try:
        yield process
    finally:
        process.kill()


@contextmanager
def server(*args: str, env: dict[str, str] | None = None) -> Iterator[tuple[Running, str]]:
    """A ``protocore serve ...`` process and its URL; on exit, Ctrl-C and check it ends well."""
    with running("serve", *args, "--port", "0", env=env) as process:
        first = process.line()
        assert first.startswith("listening on ws://127.0.0.1:"), first
        yield process, first.removeprefix("listening on ")
        status, out, err = process.interrupt()
        assert status == 130, err
        assert "Traceback" not in err
        assert err.endswith("protocore: interrupted")
        assert_no_secrets(out, err)


@pytest.fixture(scope="module")
def placeos_url() -> Iterator[str]:
    """One fake engine (examples/systems.json, an API key) for the PlaceOS client tests."""
    args = ("placeos", "--systems", str(EXAMPLES / "systems.json"))
    with server(*args, env=_env(PLACEOS_API_KEY=API_KEY)) as (_, url):
        yield url


# -- demo ------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_demo_runs_every_part_and_exits_0(transport: str) -> None:
    result = cli("demo", "--transport", transport)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert f"over the {transport} transport" in out
    assert "Mews: fake Connector server on ws://127.0.0.1:" in out
    for sample in samples.MEWS_MESSAGES:
        assert f"  {sample.label}:" in out
    assert "2017 documentation" in out
    assert "(a legacy Space event)" in out
    assert "Invoice" in out  # the unknown type came through
    assert "the client reconnected" in out
    assert "PlaceOS: fake engine on ws://127.0.0.1:" in out
    assert "the engine sets power = true -> true" in out
    assert 'exec Display.switch_to("hdmi2") -> {"input": "hdmi2"}' in out
    assert "PlaceOS error 3 (request failed): display is in use" in out
    assert "PlaceOS error 6 (module not found)" in out
    assert "log: [debug] ::Place::Display::Samsung: switching input to hdmi2" in out
    assert "binding restored by itself -> true" in out
    summary = out.rstrip().splitlines()[-1]
    assert summary.startswith("Done in ")
    # 3 + 4 + 4 + 3 events in the four samples, and one more after the reconnect
    assert "15 Mews events decoded from 5 messages" in summary


# -- help and usage --------------------------------------------------------------------------

COMMANDS = [
    (),
    ("demo",),
    ("serve",),
    ("serve", "placeos"),
    ("serve", "mews"),
    ("mews", "listen"),
    ("placeos", "exec"),
    ("placeos", "bind"),
    ("placeos", "debug"),
    ("decode",),
    ("decode", "mews"),
    ("decode", "placeos"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "protocore")
def test_every_command_has_help_that_shows_no_secret(
    command: tuple[str, ...], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # In-process (argparse only, no I/O): the subprocess tests cover the real entry point.
    for name, secret in zip(SECRET_ENV, SECRETS[:3], strict=True):
        monkeypatch.setenv(name, secret)
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"usage: protocore {' '.join(command)}".rstrip())
    assert_no_secrets(out, err)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("demo", "--transport", "curl"), "invalid choice: 'curl'"),
        ((), "the following arguments are required: COMMAND"),
        (("serve", "placeos", "--port", "70000"), "expected a port from 0 to 65535"),
        (("placeos", "bind", "--url", "ws://h/", "--index", "0", "s", "m", "n"), "positive"),
        (("mews", "listen", "--url", "ws://h/", "--environment", "demo"), "not allowed with"),
    ],
)
def test_usage_errors_are_one_line_with_status_2(
    args: tuple[str, ...], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(list(args))
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert expected in err


def test_a_bad_url_is_one_line_from_the_real_command() -> None:
    line = assert_one_error_line(cli("placeos", "exec", "--url", "http://x", SYS, "D", "p"), 2)
    assert "must start with ws:// or wss://" in line
    assert line.endswith("(see protocore placeos exec --help)")


# -- decode ----------------------------------------------------------------------------------


def test_decode_mews_file_prints_each_message_as_json() -> None:
    result = cli("decode", "mews", str(EXAMPLES / "mews_events.jsonl"))
    assert result.returncode == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    assert [m["kind"] for m in messages] == ["Envelope"] * 4
    space = messages[0]["events"][2]
    assert space == {
        "kind": "ResourceEvent",
        "id": "5ee074b1-6c86-48e8-915f-c7aa4702086f",
        "state": "Dirty",
        "legacy_space": True,
    }
    assert messages[3]["events"][2]["kind"] == "UnknownEvent"


def test_decode_names_each_bad_line_with_path_and_reason() -> None:
    result = cli("decode", "mews", str(DATA / "mews_bad.jsonl"))
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert "line 3: Events[0].StartUtc: expected an ISO 8601 datetime" in errors[0]
    assert "line 5: (the message): invalid JSON" in errors[1]
    assert errors[2] == "protocore: 2 of 4 lines did not decode"
    assert len(result.stdout.splitlines()) == 2  # the good lines are still shown
    assert "Traceback" not in result.stderr


def test_decode_placeos_tells_requests_from_responses(tmp_path: Path) -> None:
    capture = tmp_path / "placeos_capture.txt"
    lines = [
        json.dumps(json.loads(text)) if text[0] == "{" else text
        for text in samples.PLACEOS_MESSAGES.values()
    ]
    capture.write_text("\n".join(lines) + "\n")
    result = cli("decode", "placeos", str(capture))
    assert result.returncode == 0, result.stderr
    kinds = [json.loads(line)["kind"] for line in result.stdout.splitlines()]
    assert {"Bind", "Exec", "Ping", "Pong", "Notification", "DebugMessage"} <= set(kinds)
    assert "SuccessResponse" in kinds


def test_decode_placeos_from_stdin_names_bad_lines() -> None:
    result = cli("decode", "placeos", "-", stdin=(DATA / "placeos_bad.txt").read_text())
    assert result.returncode == 1
    errors = result.stderr.splitlines()
    assert errors[0].startswith("protocore: <stdin>, line 2: args: ")
    assert errors[1].startswith("protocore: <stdin>, line 3: (the message): expected a request")
    assert errors[2].startswith("protocore: <stdin>, line 4: meta.mod: ")
    assert [json.loads(line)["kind"] for line in result.stdout.splitlines()] == ["Bind", "Pong"]


def test_decode_missing_file_is_one_line() -> None:
    line = assert_one_error_line(cli("decode", "mews", str(DATA / "no-such-file.jsonl")))
    assert "cannot read" in line


# -- PlaceOS clients against `serve placeos` ---------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_prints_the_result(placeos_url: str, transport: str) -> None:
    base = ("placeos", "exec", "--transport", transport, "--url", placeos_url)
    result = cli(*base, "--api-key", API_KEY, SYS, "Display", "switch_to", "hdmi2")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"input": "hdmi2"}
    assert_no_secrets(result.stdout, result.stderr)


def test_exec_args_are_json_where_they_parse(placeos_url: str) -> None:
    base = ("placeos", "exec", "--url", placeos_url)
    env = _env(PLACEOS_API_KEY=API_KEY)  # the key from the environment
    assert cli(*base, SYS, "Display", "volume", "35", env=env).stdout == "35\n"
    assert cli(*base, SYS, "Display", "volume", '"35"', env=env).stdout == '"35"\n'
    booking = cli(*base, SYS, "Bookings", "make_booking", "1631058815", env=env)
    assert json.loads(booking.stdout)["event_start"] == 1631058815


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_exec_error_reply_is_one_line(placeos_url: str, transport: str) -> None:
    env = _env(PLACEOS_API_KEY=API_KEY)
    base = ("placeos", "exec", "--transport", transport, "--url", placeos_url, SYS)
    line = assert_one_error_line(cli(*base, "Display", "firmware_update", env=env))
    assert line.endswith("PlaceOS error 3 (request failed): display is in use")
    line = assert_one_error_line(cli(*base, "Projector", "power", "true", env=env))
    assert "PlaceOS error 6 (module not found)" in line


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bind_prints_each_value(placeos_url: str, transport: str) -> None:
    env = _env(PLACEOS_API_KEY=API_KEY)
    bind = ("placeos", "bind", "--transport", transport, "--url", placeos_url, "-n", "2")
    with running(*bind, "sys-room-2", "Lighting", "scene", env=env) as values:
        values.err_until("bound to")
        before = json.loads(values.line())  # the current value comes first
        scene = "evening" if before != "evening" else "daylight"
        trigger = ("placeos", "exec", "--url", placeos_url, "sys-room-2", "Lighting", "trigger")
        assert cli(*trigger, scene, env=env).stdout == f'"scene {scene}"\n'
        assert json.loads(values.line()) == scene
        status, _, err = values.finish()
        assert status == 0, err


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_ctrl_c_ends_a_client_with_130_and_no_traceback(placeos_url: str, transport: str) -> None:
    env = _env(PLACEOS_API_KEY=API_KEY)
    bind = ("placeos", "bind", "--transport", transport, "--url", placeos_url)
    with running(*bind, SYS, "Display", "input", env=env) as values:
        values.err_until("bound to")
        assert isinstance(json.loads(values.line()), str)
        status, _, err = values.interrupt()
        assert status == 130
        assert err.splitlines()[-1] == "protocore: interrupted"
        assert "Traceback" not in err


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_debug_prints_log_lines(placeos_url: str, transport: str) -> None:
    env = _env(PLACEOS_API_KEY=API_KEY)
    debug = ("placeos", "debug", "--transport", transport, "--url", placeos_url, "-n", "1")
    with running(*debug, SYS, "mod-room1-display", env=env) as lines:
        lines.err_until("following the logs")
        exec_ = ("placeos", "exec", "--url", placeos_url, SYS, "Display", "switch_to", "usbc")
        assert cli(*exec_, env=env).returncode == 0
        assert lines.line() == "[debug] ::Place::Display::Samsung: switching input to usbc"
        status, _, err = lines.finish()
        assert status == 0, err


def test_refused_key_and_refused_connection_are_one_line(placeos_url: str) -> None:
    wrong = cli("placeos", "exec", "--url", placeos_url, "--api-key", "wrong", SYS, "D", "x")
    assert "HTTP 401" in assert_one_error_line(wrong)
    missing = cli("placeos", "exec", "--url", placeos_url, SYS, "Display", "power", "true")
    assert "give --api-key or set PLACEOS_API_KEY" in assert_one_error_line(missing)
    for transport in TRANSPORTS:
        nobody = cli(
            "placeos",
            "exec",
            "--transport",
            transport,
            "--url",
            "ws://127.0.0.1:1/api/engine/v2/systems/control",
            "--api-key",
            API_KEY,
            SYS,
            "Display",
            "power",
        )
        line = assert_one_error_line(nobody)
        assert line.startswith("protocore: error: PlaceOS: could not connect to ws://127.0.0.1:1/")
        assert line.count("ws://") == 1  # the URL once


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_serve_placeos_loads_toml_and_stops_on_ctrl_c(transport: str) -> None:
    systems = ("--systems", str(EXAMPLES / "systems.toml"), "--transport", transport)
    with server("placeos", *systems, env=_env(PLACEOS_API_KEY=API_KEY)) as (process, url):
        assert "1 system, 3 modules (sys-lobby)" in process.err_line()
        base = ("placeos", "exec", "--url", url, "--api-key", API_KEY, "sys-lobby")
        assert cli(*base, "Display", "power", "true").stdout == "true\n"
        assert "error 2 (access denied)" in assert_one_error_line(cli(*base, "_Admin", "x"))


def test_serve_placeos_names_the_mistake_in_a_systems_file(tmp_path: Path) -> None:
    bad = tmp_path / "systems.json"
    bad.write_text(json.dumps({"systems": {"sys-1": {"modules": [{"name": "D", "stauts": {}}]}}}))
    line = assert_one_error_line(cli("serve", "placeos", "--port", "0", "--systems", str(bad)))
    assert "systems.sys-1.modules[0]: unknown key 'stauts'" in line
    bad.write_text("{not json")
    assert "not valid JSON: line 1" in assert_one_error_line(
        cli("serve", "placeos", "--port", "0", "--systems", str(bad))
    )


# -- Mews --------------------------------------------------------------------------------


def _mews_env() -> dict[str, str]:
    return _env(MEWS_CLIENT_TOKEN=CLIENT_TOKEN, MEWS_ACCESS_TOKEN=ACCESS_TOKEN)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_mews_listen_prints_replayed_events(transport: str) -> None:
    replay = ("mews", "--events", str(EXAMPLES / "mews_events.jsonl"), "--rate", "200")
    with server(*replay, "--transport", transport, env=_mews_env()) as (_, url):
        result = cli(
            "mews", "listen", "--transport", transport, "--url", url, "-n", "14", env=_mews_env()
        )
        assert result.returncode == 0, result.stderr
        events = [json.loads(line) for line in result.stdout.splitlines()]
        assert len(events) == 14
        assert events[0]["kind"] == "DeviceCommandEvent"
        assert events[2] == {
            "kind": "ResourceEvent",
            "id": "5ee074b1-6c86-48e8-915f-c7aa4702086f",
            "state": "Dirty",
            "legacy_space": True,
        }
        assert events[-1]["kind"] == "UnknownEvent"
        assert_no_secrets(result.stdout, result.stderr)


def test_mews_listen_generated_events_and_token_options() -> None:
    with server("mews", "--seed", "7", "--rate", "100", env=_mews_env()) as (_, url):
        tokens = ("--client-token", CLIENT_TOKEN, "--access-token", ACCESS_TOKEN)
        result = cli("mews", "listen", "--url", url, *tokens, "-n", "5")
        assert result.returncode == 0, result.stderr
        kinds = {json.loads(line)["kind"] for line in result.stdout.splitlines()}
        assert len(result.stdout.splitlines()) == 5
        assert kinds <= {
            "ReservationEvent",
            "ResourceEvent",
            "DeviceCommandEvent",
            "PriceUpdateEvent",
        }
        refused = cli("mews", "listen", "--url", url, "--client-token", "x", "--access-token", "y")
        assert "HTTP 401" in assert_one_error_line(refused)


def test_mews_listen_needs_tokens_and_an_address() -> None:
    # Only production: elsewhere Mews' published demo tokens stand in (see below).
    line = assert_one_error_line(cli("mews", "listen", "--environment", "production"))
    assert "give --client-token or set MEWS_CLIENT_TOKEN" in line
    half = cli("mews", "listen", "--url", "ws://127.0.0.1:1/ws/connector", "--client-token", "x")
    assert "no access token: give --access-token or set MEWS_ACCESS_TOKEN" in (
        assert_one_error_line(half)
    )
    assert_one_error_line(cli("mews", "listen", env=_mews_env()), 2)


def test_serve_mews_names_the_bad_line_of_a_replay_file() -> None:
    result = cli("serve", "mews", "--events", str(DATA / "mews_bad.jsonl"), env=_mews_env())
    assert "mews_bad.jsonl, line 3: Events[0].StartUtc" in assert_one_error_line(result)


# -- ready for real users ----------------------------------------------------------------


def test_version_names_the_installed_distribution() -> None:
    from importlib import metadata

    from transports.cli.version import distribution

    dist = distribution()
    assert dist is not None  # the test environment installs the project
    result = cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"protocore {dist.version} (distribution {dist.metadata['Name']})\n"
    assert metadata.version(dist.metadata["Name"]) == dist.version


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "--transport", "sync", "placeos", "bind", "--url", "ws://h/", "s", "m", "n"],
        ["placeos", "bind", "-v", "--transport", "sync", "--url", "ws://h/", "s", "m", "n"],
        ["placeos", "-v", "bind", "--url", "ws://h/", "s", "m", "n", "--transport", "sync"],
        ["--transport", "sync", "placeos", "bind", "--url", "ws://h/", "s", "m", "n", "-v"],
    ],
)
def test_global_options_work_before_and_after_the_subcommand(argv: list[str]) -> None:
    from transports.cli.parser import build_parser

    args = build_parser().parse_args(argv)
    assert (args.verbose, args.transport, args.command) == (True, "sync", "placeos bind")


def test_global_options_given_once_are_not_undone_below() -> None:
    from transports.cli.parser import build_parser
    from transports.cli.runtime import DEFAULT_TRANSPORT

    parse = build_parser().parse_args
    assert parse(["-v", "serve", "placeos"]).verbose is True
    assert parse(["--transport", "trio", "serve", "mews"]).transport == "trio"
    assert parse(["demo"]).transport == DEFAULT_TRANSPORT == "asyncio"
    assert parse(["demo"]).verbose is False


def test_decode_lenient_before_or_after_the_protocol(tmp_path: Path) -> None:
    capture = tmp_path / "capture.jsonl"
    bad_event = '{"Type": "Reservation", "Id": "r1", "State": "Confirmed", "StartUtc": "soon"}'
    capture.write_text(f'{{"Events": [{bad_event}]}}\n')
    strict = cli("decode", "mews", str(capture))
    assert strict.returncode == 1
    before = cli("decode", "--lenient", "mews", str(capture))
    after = cli("decode", "mews", "--lenient", str(capture))
    assert before.returncode == after.returncode == 0, after.stderr
    assert before.stdout == after.stdout
    assert json.loads(after.stdout)["events"][0]["kind"] == "InvalidEvent"


def test_decode_reports_a_non_utf8_line_and_decodes_the_rest(tmp_path: Path) -> None:
    good = json.dumps(json.loads(samples.MEWS_CURRENT.text)).encode()
    capture = tmp_path / "capture.jsonl"
    capture.write_bytes(good + b'\n{"Events": ["\xff"]}\n' + good + b"\n")
    from_file = cli("decode", "mews", str(capture))
    with capture.open("rb") as stdin:
        from_stdin = subprocess.run(
            _command(["decode", "mews", "-"]),
            stdin=stdin,
            capture_output=True,
            timeout=TIMEOUT,
            env=_env(),
            check=False,
        )
    for source, status, out, err in (
        (str(capture), from_file.returncode, from_file.stdout, from_file.stderr),
        ("<stdin>", from_stdin.returncode, from_stdin.stdout.decode(), from_stdin.stderr.decode()),
    ):
        assert status == 1
        assert len(out.splitlines()) == 2  # both good lines
        assert err.splitlines() == [
            f"protocore: {source}, line 2: (the message): not UTF-8 text (byte 14)",
            "protocore: 1 of 3 lines did not decode",
        ]


def test_a_library_that_cannot_load_is_one_error_line() -> None:
    line = assert_one_error_line(cli("--help", env=_env(PROTOCORE_JSON="bogus")))
    assert line.startswith("protocore: error: cannot load protocore: ")
    assert "bogus" in line


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_messages_name_the_flags_not_the_library_parameters(transport: str) -> None:
    url = ("--url", "ws://127.0.0.1:1/ws/connector", "--transport", transport)
    bad = cli("mews", "listen", *url, "--client-token", "a;b", "--access-token", "x")
    line = assert_one_error_line(bad)
    assert "--client-token cannot be sent" in line
    assert "client_token" not in line


def test_a_refused_key_says_which_credential_once(placeos_url: str) -> None:
    wrong = cli("placeos", "exec", "--url", placeos_url, "--api-key", "wrong", SYS, "D", "x")
    line = assert_one_error_line(wrong)
    refused = "the server refused the API key (--api-key) (HTTP 401)"
    assert line == f"protocore: error: PlaceOS at {placeos_url}: {refused}"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_verbose_shows_each_connect_once(transport: str) -> None:
    with server("mews", "--seed", "3", "--rate", "50", env=_mews_env()) as (_, url):
        listen = ("mews", "listen", "--url", url, "-n", "1", "-v", "--transport", transport)
        result = cli(*listen, env=_mews_env())
        assert result.returncode == 0, result.stderr
        connects = [line for line in result.stderr.splitlines() if "connected to" in line]
        assert connects == [f"protocore: connected to {url}"]
        assert "waiting for events from" in result.stderr


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bind_without_a_value_says_so_then_prints_values(tmp_path: Path, transport: str) -> None:
    systems = tmp_path / "systems.json"
    room = {"modules": [{"name": "Sensor", "methods": {"occupy": {"sets": {"occupied": True}}}}]}
    systems.write_text(json.dumps({"systems": {"sys-1": room}}))
    env = _env(PLACEOS_API_KEY=API_KEY)
    with server("placeos", "--systems", str(systems), env=env) as (_, url):
        bind = ("placeos", "bind", "--transport", transport, "--url", url, "-n", "1")
        with running(*bind, "sys-1", "Sensor", "occupied", env=env) as values:
            values.err_until("bound to sys-1 Sensor_1.occupied")
            note = values.err_line()
            assert note == "protocore: sys-1 Sensor_1.occupied has no value yet; waiting for one"
            occupy = cli("placeos", "exec", "--url", url, "sys-1", "Sensor", "occupy", env=env)
            assert occupy.returncode == 0, occupy.stderr
            assert values.line() == "true"
            status, _, err = values.finish()
            assert status == 0, err


def test_serve_placeos_without_a_key_needs_allow_anonymous(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = assert_one_error_line(cli("serve", "placeos", "--port", "0"))
    assert "no API key: give --api-key or set PLACEOS_API_KEY" in line
    assert "--allow-anonymous" in line
    with server("placeos", "--allow-anonymous") as (process, url):
        assert process.err_until("--allow-anonymous") == (
            "protocore: --allow-anonymous: every client is accepted, with or without a key"
        )
        exec_ = ("placeos", "exec", "--url", url, "--api-key", "any", SYS, "Display", "power")
        assert cli(*exec_, "true").stdout == "true\n"
    with pytest.raises(SystemExit):
        main(["serve", "placeos", "--help"])
    assert "--allow-anonymous" in capsys.readouterr().out


def test_serve_mews_without_tokens_accepts_the_published_demo_tokens() -> None:
    replay = ("mews", "--events", str(EXAMPLES / "mews_events.jsonl"), "--rate", "200")
    with server(*replay) as (process, url):
        accepting = process.err_line()
        assert (
            accepting == "protocore: accepting Mews' published demo tokens (none given: see --help)"
        )
        result = cli("mews", "listen", "--url", url, "-n", "14")  # no tokens either
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 14
        assert "with Mews' published demo tokens" in result.stderr
        assert_no_secrets(result.stdout, result.stderr)
        refused = cli(
            "mews", "listen", "--url", url, *("--client-token", "x", "--access-token", "y")
        )
        assert assert_one_error_line(refused).endswith(
            "the server refused the tokens (--client-token, --access-token) (HTTP 401)"
        )


def test_the_example_replay_file_holds_the_samples() -> None:
    lines = (EXAMPLES / "mews_events.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        json.loads(sample.text) for sample in samples.MEWS_MESSAGES
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_fake_servers_log_refused_clients_under_verbose(transport: str) -> None:
    env = _env(PLACEOS_API_KEY=API_KEY)
    with server("placeos", "-v", "--transport", transport, env=env) as (process, url):
        wrong = cli("placeos", "exec", "--url", url, "--api-key", "wrong", SYS, "Display", "power")
        assert "refused the API key" in assert_one_error_line(wrong)
        assert "401" in process.err_until("refused a client")
    with server("mews", "-v", "--transport", transport) as (process, url):
        tokens = ("--client-token", CLIENT_TOKEN, "--access-token", ACCESS_TOKEN)
        assert_one_error_line(cli("mews", "listen", "--url", url, *tokens))
        assert "401" in process.err_until("refused a client")


def _without_trio(*args: str) -> subprocess.CompletedProcess[str]:
    """The command line as after a plain install: ``import trio`` fails."""
    code = "import sys; sys.modules['trio'] = None; from transports.cli import main; "
    code += f"sys.exit(main({list(args)!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=TIMEOUT,
        check=False,
    )


def test_the_first_command_works_without_trio_installed() -> None:
    # A plain install has the core dependencies only: the default transport needs nothing more.
    demo = _without_trio("demo")
    assert demo.returncode == 0, demo.stderr
    assert "over the asyncio transport" in demo.stdout
    line = assert_one_error_line(_without_trio("demo", "--transport", "trio"))
    assert "the trio transport needs 'trio', which is not installed" in line


def test_the_command_line_imports_only_public_names() -> None:
    import ast

    from transports.cli.runtime import TRANSPORTS

    private = []
    for path in sorted((ROOT / "transports" / "cli").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [alias.name for alias in node.names if alias.name != "__version__"]
                modules = [f"{node.module}.{name}" for name in names]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                parts = module.split(".")
                if parts[0] in {"protocore", "transports"} and any(
                    part.startswith("_") for part in parts
                ):
                    private.append(f"{path.name}: {module}")
                # The transports by name, through the runtime; the fleet (another
                # application on the same public API) registers its own commands.
                if parts[0] == "transports" and parts[1:2] not in (["cli"], ["fleet"]):
                    private.append(f"{path.name}: {module} (use the runtime's import by name)")
    assert private == []
    assert set(TRANSPORTS) == {"asyncio", "trio", "sync"}  # imported as transports.<name>


def test_the_fleet_commands_are_part_of_the_command_line() -> None:
    out = cli("fleet", "--help")
    assert out.returncode == 0, out.stderr
    for action in ("add", "remove", "list", "worker"):
        assert action in out.stdout


def test_asyncapi_prints_the_committed_documents() -> None:
    for protocol in ("mews", "placeos"):
        for fmt in ("json", "yaml"):
            out = cli("asyncapi", protocol, "--format", fmt)
            assert out.returncode == 0, out.stderr
            committed = (ROOT / "docs" / "asyncapi" / f"{protocol}.{fmt}").read_text("utf-8")
            assert out.stdout.strip() == committed.strip()
    assert_one_error_line(cli("asyncapi", "nope"), status=2)
