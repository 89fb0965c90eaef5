"""The command line through a proxy, with ``-v`` and ``--stats``; ``serve placeos
--dialect seed``. Real processes, a real proxy (pproxy) and a real server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_processes import TIMEOUT, Running
from proxies import PASSWORD, running_pproxy

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "pk-Hh8-not-a-real-placeos-key"
SYS = "sys-room-1"
PROXY_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k.lower() not in PROXY_ENV}
    env.pop("PLACEOS_API_KEY", None)
    env.update(extra, PYTHONUNBUFFERED="1")
    return env


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "transports.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        cwd=ROOT,
        check=False,
    )


@contextmanager
def _engine(*options: str) -> Iterator[str]:
    argv = [sys.executable, "-m", "transports.cli", "serve", "placeos", "--port", "0", *options]
    process = Running(argv, _env(PLACEOS_API_KEY=API_KEY), cwd=ROOT)
    try:
        first = process.line()
        assert first.startswith("listening on ws://127.0.0.1:"), first
        yield first.removeprefix("listening on ")
    finally:
        process.kill()


@pytest.fixture(scope="module")
def engine_url() -> Iterator[str]:
    with _engine() as url:
        yield url


@pytest.mark.parametrize("transport", ["trio", "asyncio", "sync"])
def test_exec_through_a_proxy_with_verbose_and_stats(engine_url: str, transport: str) -> None:
    with running_pproxy(auth=True) as proxy:
        result = _cli(
            "placeos", "exec", "-v", "--stats", "--transport", transport,
            "--url", engine_url, "--proxy", proxy.url(), SYS, "Display", "switch_to", "hdmi2",
            env=_env(PLACEOS_API_KEY=API_KEY),
        )  # fmt: skip
        port = int(engine_url.split(":")[2].split("/", maxsplit=1)[0])
        assert proxy.tunnels_to(port) == 1
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"input": "hdmi2"}
    err = result.stderr
    assert PASSWORD not in err
    assert API_KEY not in err
    lines = err.splitlines()
    assert "protocore: state: open" in lines
    assert lines.index("protocore: state: open") < lines.index("protocore: state: closed")
    assert any(line.startswith("protocore: latency: ") for line in lines)
    stats = json.loads(lines[-1])["stats"]
    assert stats["messages_out"] >= 1
    assert stats["messages_in"] >= 1
    assert stats["reconnects"] == 0


def test_the_proxy_comes_from_the_environment_unless_none(engine_url: str) -> None:
    exec_args = ("placeos", "exec", "--url", engine_url, SYS, "Display", "volume", "35")
    port = int(engine_url.split(":")[2].split("/", maxsplit=1)[0])
    with running_pproxy() as proxy:
        env = _env(PLACEOS_API_KEY=API_KEY, HTTP_PROXY=proxy.url())
        assert _cli(*exec_args, env=env).stdout == "35\n"
        assert proxy.tunnels_to(port) == 1
        assert _cli(*exec_args, "--proxy", "none", env=env).stdout == "35\n"
        env["NO_PROXY"] = "127.0.0.1"
        assert _cli(*exec_args, env=env).stdout == "35\n"
        assert proxy.tunnels_to(port) == 1


def test_a_proxy_refusal_is_one_line_without_the_password(engine_url: str) -> None:
    with running_pproxy(auth=True) as proxy:
        result = _cli(
            "placeos", "exec", "--url", engine_url, "--proxy", proxy.url(password="bad-pw"),
            SYS, "Display", "volume", "35", env=_env(PLACEOS_API_KEY=API_KEY),
        )  # fmt: skip
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert "refused the credentials (HTTP 407" in line
    assert "bad-pw" not in line


def test_serve_placeos_dialect_seed_puts_the_error_number_in_code() -> None:
    from websockets.sync.client import connect

    request = {"id": 7, "cmd": "exec", "sys": SYS, "mod": "Display", "name": "firmware_update"}
    request.update(index=1, args=[])
    answers = {}
    for dialect in ("seed", "current"):
        with (
            _engine("--dialect", dialect) as url,
            connect(url, additional_headers={"X-API-Key": API_KEY}, open_timeout=TIMEOUT) as ws,
        ):
            ws.send(json.dumps(request))
            answers[dialect] = json.loads(ws.recv(timeout=TIMEOUT))
    assert answers["seed"]["code"] == 3
    assert "error_code" not in answers["seed"]
    assert answers["current"]["error_code"] == 3
    assert answers["current"]["code"] != 3


@pytest.mark.parametrize("transport", ["trio", "sync"])
def test_mews_listen_stats_through_socks5(transport: str) -> None:
    argv = [sys.executable, "-m", "transports.cli", "serve", "mews", "--seed", "3"]
    process = Running([*argv, "--rate", "200", "--port", "0"], _env(), cwd=ROOT)
    try:
        url = process.line().removeprefix("listening on ")
        with running_pproxy(auth=True) as proxy:
            result = _cli(
                "mews", "listen", "--stats", "--transport", transport, "--url", url,
                "--proxy", proxy.url("socks5"), "-n", "3", env=_env(),
            )  # fmt: skip
    finally:
        process.kill()
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3
    assert PASSWORD not in result.stderr
    stats = json.loads(result.stderr.splitlines()[-1])["stats"]
    assert stats["messages_in"] >= 1
    assert stats["bytes_in"] > 0
    assert stats["bad_messages"] == stats["dropped"] == 0
