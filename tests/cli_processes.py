"""A command left running in tests: its stdout and stderr read line by line as they come.

Reader threads fill queues; every wait is a bounded ``queue.get``, never a sleep. A
process that does not end in time is asked for its threads' stacks (faulthandler, on
SIGABRT) before it is killed, and the failure shows them with the rest of its stderr:
a hang seen once (in CI, say) then says where it hung.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

__all__ = ["TIMEOUT", "Running"]

TIMEOUT = 60.0
"""Bound of any one process or line wait: generous, only a broken command hits it."""


class Running:
    """A CLI process left running: its stdout and stderr lines, read as they come."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**env, "PYTHONFAULTHANDLER": "1"},
            cwd=cwd,
        )
        self.out: queue.Queue[str | None] = queue.Queue()
        self.err: queue.Queue[str | None] = queue.Queue()
        self.seen_out: list[str] = []
        self.seen_err: list[str] = []
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._readers = [
            threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _pump(stream: object, lines: queue.Queue[str | None]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def _next(self, lines: queue.Queue[str | None], seen: list[str]) -> str:
        line = lines.get(timeout=TIMEOUT)
        assert line is not None, f"the process ended; stderr so far: {self.seen_err}"
        seen.append(line)
        return line

    def line(self) -> str:
        """The next stdout line (fails if the process ends first)."""
        return self._next(self.out, self.seen_out)

    def err_line(self) -> str:
        """The next stderr line."""
        return self._next(self.err, self.seen_err)

    def err_until(self, fragment: str) -> str:
        """Stderr lines up to the first that holds ``fragment``."""
        while True:
            line = self.err_line()
            if fragment in line:
                return line

    def finish(self) -> tuple[int, str, str]:
        """Wait for the end (bounded); status and everything written."""
        try:
            status = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise AssertionError(self._hung()) from None
        self._collect()
        return status, "\n".join(self.seen_out), "\n".join(self.seen_err)

    def _collect(self) -> None:
        """Once the process has ended: every line it wrote, into `seen_out`/`seen_err`."""
        for reader in self._readers:
            reader.join(timeout=TIMEOUT)
        for lines, seen in ((self.out, self.seen_out), (self.err, self.seen_err)):
            while (line := lines.get(timeout=TIMEOUT)) is not None:
                seen.append(line)

    def _hung(self) -> str:
        """Stacks of a process that did not end, then the process killed; the message."""
        self.proc.send_signal(signal.SIGABRT)  # faulthandler writes every thread's stack
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        self._collect()
        err = "\n".join(self.seen_err)
        return f"{' '.join(self.argv[2:])} did not end within {TIMEOUT:g} s; stderr:\n{err}"

    def interrupt(self) -> tuple[int, str, str]:
        """Ctrl-C, then `finish`."""
        self.proc.send_signal(signal.SIGINT)
        return self.finish()

    def kill(self) -> None:
        """Stop it if it still runs, and close its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        for reader in self._readers:
            reader.join(timeout=TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
