"""Every shell command of README.md and examples/README.md runs as written.

Each ```sh block is a session, run line by line in a fresh environment (no secrets
from the caller's), with a ``protocore`` on the PATH that runs this checkout:

- ``export NAME=value`` and ``NAME=value`` lines set the session's environment.
- ``protocore serve ...`` (with or without ``&``: it runs until Ctrl-C) starts in
  the background on a free port: its ``--port P`` (or the default, 8080 for PlaceOS
  and 8081 for Mews) becomes ``--port 0``, and ``127.0.0.1:P`` in later lines and
  variables becomes the port it printed in ``listening on URL``.
- Another line ending in ``&`` starts in the background once its note on stderr
  says it is ready (bound, following, waiting); it must end by itself (``-n N``)
  with status 0 by the end of the block.
- Any other ``protocore`` line (pipes allowed) runs through bash and must exit 0.
  ``--environment demo`` (the real Mews demo server, not reachable from tests)
  points at the block's fake Mews server instead, which accepts the same
  published demo tokens.
- Lines that are not about the command line are listed in `NOT_RUN` with the reason;
  a line that is neither fails the test, so that a new command gets classified.

At the end of a block the servers get Ctrl-C and must stop with status 130.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_processes import TIMEOUT, Running

ROOT = Path(__file__).resolve().parents[1]
DOCS = (ROOT / "README.md", ROOT / "examples" / "README.md")

DEFAULT_PORTS = {"placeos": 8080, "mews": 8081}
NOT_RUN = {
    "bash scripts/demo": "sets up ./.venv, then runs `protocore demo` (run here directly)",
    "bash scripts/test": "the whole suite, of which this test is a part",
    "pip install": "installs packages (the suite runs in an installed environment)",
    ".venv/bin/python -m benchmarks": "minutes long; benchmarks/ has its own smoke run",
    ".venv/bin/python tests/fuzz/": "fuzzing; tests/fuzz has its own bounded runs",
}
SECRET_ENV = ("PLACEOS_API_KEY", "MEWS_CLIENT_TOKEN", "MEWS_ACCESS_TOKEN")


def _sessions() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for number, block in enumerate(re.findall(r"```sh\n(.*?)```", text, re.DOTALL)):
            lines = [_strip_comment(line) for line in block.splitlines()]
            found.append((f"{doc.relative_to(ROOT)}#{number}", [line for line in lines if line]))
    return found


def _strip_comment(line: str) -> str:
    """The line without its trailing ``# comment`` (outside quotes) and blanks."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()


SESSIONS = _sessions()


def _background(command: str, env: dict[str, str]) -> Running:
    return Running(["bash", "-c", f"exec {command}"], env, ROOT)


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment without secrets, with this checkout's ``protocore``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "protocore"
    shim.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m transports.cli "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _not_run(line: str) -> bool:
    return any(line.startswith(prefix) for prefix in NOT_RUN)


def _assignments(line: str) -> dict[str, str] | None:
    """``export A=1 B=2`` or ``A=1``: the variables; None for any other line."""
    words = shlex.split(line)
    if words and words[0] == "export":
        words = words[1:]
    pairs = [word.partition("=") for word in words]
    if not words or not all(sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", k) for k, sep, _ in pairs):
        return None
    return {name: value for name, _, value in pairs}


class Session:
    """One block's state: its environment, its servers and background jobs, its ports."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = dict(env)
        self.ports: dict[int, int] = {}
        self.mews_url: str | None = None
        self.servers: list[Running] = []
        self.jobs: list[Running] = []

    def rewrite(self, line: str) -> str:
        for documented, actual in self.ports.items():
            line = line.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{actual}")
        if "--environment demo" in line:
            assert self.mews_url is not None, "--environment demo needs a serve mews before it"
            line = line.replace("--environment demo", f"--url {self.mews_url}")
        return line

    def run(self, line: str) -> None:
        background = line.endswith("&")
        line = self.rewrite(line.removesuffix("&").strip())
        if variables := _assignments(line):
            self.env.update({k: self.rewrite(v) for k, v in variables.items()})
        elif line.startswith("protocore serve "):
            self.serve(line)
        elif background:
            job = _background(line, self.env)
            self.jobs.append(job)
            job.err_line()  # its first note: bound, following, waiting
        else:
            done = subprocess.run(
                ["bash", "-c", line],
                capture_output=True,
                text=True,
                env=self.env,
                cwd=ROOT,
                timeout=TIMEOUT,
                check=False,
            )
            assert done.returncode == 0, f"{line!r} failed: {done.stderr}"
            assert "Traceback" not in done.stderr

    def serve(self, line: str) -> None:
        words = shlex.split(line)
        kind = words[2]
        if "--port" in words:
            at = words.index("--port") + 1
            documented = int(words[at])
            words[at] = "0"
        else:
            documented = DEFAULT_PORTS[kind]
            words += ["--port", "0"]
        server = _background(shlex.join(words), self.env)
        self.servers.append(server)
        first = server.line()
        assert first.startswith("listening on ws://127.0.0.1:"), first
        url = first.removeprefix("listening on ")
        self.ports[documented] = int(url.split(":")[2].split("/")[0])
        if kind == "mews":
            self.mews_url = url

    def finish(self) -> None:
        for job in self.jobs:
            status, _, err = job.finish()
            assert status == 0, f"{job.argv[-1]!r} ended with {status}: {err}"
        for server in self.servers:
            status, _, err = server.interrupt()
            assert status == 130, f"{server.argv[-1]!r} ended with {status}: {err}"
            assert "Traceback" not in err

    def stop(self) -> None:
        for process in self.jobs + self.servers:
            process.kill()


@pytest.fixture
def session(shell_env: dict[str, str]) -> Iterator[Session]:
    running = Session(shell_env)
    try:
        yield running
    finally:
        running.stop()


def test_the_docs_have_command_line_sessions() -> None:
    commands = [line for _, lines in SESSIONS for line in lines if "protocore " in line]
    assert len(commands) >= 12
    assert any(line.startswith("protocore demo") for line in commands)


@pytest.mark.timeout(300)
@pytest.mark.parametrize(("where", "lines"), SESSIONS, ids=[where for where, _ in SESSIONS])
def test_readme_session_runs_as_written(where: str, lines: list[str], session: Session) -> None:
    for line in lines:
        if _not_run(line):
            continue
        assert "protocore" in line or _assignments(line) is not None, (
            f"{where}: {line!r} is neither a protocore command nor listed in NOT_RUN"
        )
        session.run(line)
    session.finish()
