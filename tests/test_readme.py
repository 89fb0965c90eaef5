"""The README's Python examples run and type-check as a user copying them would find.

Each block is written to its own file and run with this interpreter from outside the
repository (so it imports the installed package, not the work tree), and all of them
pass ``mypy --strict``. A stale or untyped example is a bug.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)
IDS = [f"block{i}" for i in range(len(BLOCKS))]


def _write_blocks(where: Path) -> list[Path]:
    paths = []
    for number, source in enumerate(BLOCKS):
        path = where / f"readme_block{number}.py"
        path.write_text(source, encoding="utf-8")
        paths.append(path)
    return paths


@pytest.fixture(scope="module")
def mypy_output(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One ``mypy --strict`` run over every block (each a module of its own)."""
    where = tmp_path_factory.mktemp("readme")
    paths = _write_blocks(where)
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    assert mypy is not None
    result = subprocess.run(
        [mypy, "--strict", "--no-incremental", *(path.name for path in paths)],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in {0, 1}, result.stderr  # 2 would be mypy itself failing
    return result.stdout


def test_the_readme_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.timeout(60)
@pytest.mark.parametrize("source", BLOCKS, ids=IDS)
def test_readme_example_runs(source: str, tmp_path: Path) -> None:
    (tmp_path / "example.py").write_text(source, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("number", range(len(BLOCKS)), ids=IDS)
def test_readme_example_type_checks(number: int, mypy_output: str) -> None:
    errors = [
        line for line in mypy_output.splitlines() if line.startswith(f"readme_block{number}.py:")
    ]
    assert errors == []
