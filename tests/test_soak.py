"""A few seconds of the chaos soak (benchmarks/soak) on one transport: it runs end to
end, its faults really break links, nothing it checks is violated, and it measures
the clients' process and the servers' process apart. Then the server process on its
own: a failed request, a dead child and a dead parent each end in a clear error or
an exit, never a hang."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmarks.soak.__main__ import main
from benchmarks.soak.servers import ServerProcess, ServerProcessError

ROOT = Path(__file__).resolve().parent.parent


def test_a_short_soak_on_the_sync_transport_passes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "soak.json"
    assert main(["--minutes", "0.1", "--transport", "sync", "--seed", "7", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "RSS slope after warm-up, clients:" in printed
    assert "RSS slope after warm-up, servers:" in printed
    [report] = json.loads(out.read_text())
    assert report["violations"] == []
    assert report["rounds"] >= 1
    assert report["execs_ok"] > 0
    assert report["events"] > 0
    broke = {f for f in report["faults"] if f != "none"}
    assert report["placeos_reconnects"] + report["mews_reconnects"] >= 1 or not broke
    # Both processes, one sample each per round, each with its own slopes.
    clients, servers = report["clients"], report["servers"]
    assert clients["pid"] == os.getpid()
    assert servers["pid"] not in (0, os.getpid())
    for memory in (clients, servers):
        assert len(memory["series"]["rows"]) == memory["samples"] == report["rounds"]
        assert memory["series"]["columns"][:2] == ["t", "rss"]
        assert {"rss_slope_kib_per_min", "heap_used_slope_kib_per_min"} <= set(memory)
    # The sync clients' threads are here; the servers' own threads are there.
    assert min(row[3] for row in clients["series"]["rows"]) > 50
    assert max(row[3] for row in servers["series"]["rows"]) < 20


def test_a_failed_request_reaches_the_parent_as_a_clear_error() -> None:
    with ServerProcess() as servers:
        with pytest.raises(ServerProcessError, match=r"failed 'inject': ValueError: unknown fault"):
            servers.inject("earthquake", ("placeos",))
        assert set(servers.counters()) == {"placeos", "mews"}  # still answering
        assert servers.sample(0.0).threads >= 1


def test_a_dead_server_process_is_an_error_not_a_hang() -> None:
    with ServerProcess() as servers:
        servers.process.kill()
        servers.process.join(10)
        with pytest.raises(ServerProcessError, match=r"the server process (ended|is gone)"):
            servers.publish(1)


def test_the_server_process_ends_with_its_parent() -> None:
    # A parent that dies at once, without any cleanup: its child must still go.
    script = textwrap.dedent(
        """
        import os, sys
        from benchmarks.soak.servers import ServerProcess
        servers = ServerProcess().__enter__()
        print(servers.process.pid, flush=True)
        os._exit(0)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert parent.stdout is not None
    with parent.stdout:  # the child holds this pipe open too: read one line, not to the end
        pid = int(parent.stdout.readline())
        assert parent.wait(60) == 0
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return  # already gone
        try:
            readable, _, _ = select.select([pidfd], [], [], 30)
            assert readable, f"the server process {pid} outlived its parent"
        finally:
            os.close(pidfd)
