"""Every atheris harness runs for a bounded number of inputs and finds nothing.

Each harness is its own process (libFuzzer owns it), started through ``run.py`` with
a fixed seed and ``-runs``: deterministic, bounded in count, not in time. The long
runs are done by hand (``python tests/fuzz/run.py --target all --time 3600``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris")

HERE = Path(__file__).parent
#: Inputs per harness: the connections run about a tenth as fast as the decoders, the
#: sessions about a quarter.
RUNS = {
    "mews_decode": 20_000,
    "placeos_decode_request": 20_000,
    "placeos_decode_response": 20_000,
    "client_connection": 2_000,
    "server_connection": 2_000,
    "placeos_client_session": 5_000,
    "placeos_server_session": 5_000,
}


def test_every_harness_is_smoke_tested() -> None:
    assert {p.stem.removeprefix("fuzz_") for p in HERE.glob("fuzz_*.py")} == set(RUNS)


@pytest.mark.parametrize("target", sorted(RUNS))
def test_harness_runs_clean(target: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(HERE / "run.py"),
            "--target",
            target,
            "--runs",
            str(RUNS[target]),
            "--seed",
            "1",
            "--work",
            str(tmp_path / "work"),
            "--artifacts",
            str(tmp_path / "artifacts"),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert f"Done {RUNS[target]} runs" in output, output[-2000:]
    assert not list((tmp_path / "artifacts").iterdir())
