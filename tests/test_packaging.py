"""The wheel a user installs: its name, files and metadata, and that its types check.

Builds the wheel, installs it into a fresh venv (its dependencies from the package
index, as a user's pip would get them) and runs what a user would first: `protocore
demo`, and `mypy --strict` on a small script importing both transports and
`protocore.mews`. mypy refusing an import as untyped fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import venv
import zipfile
from email.parser import HeaderParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "protocore-ws"

USER_SCRIPT = '''
"""A user's first script: both transports and the Mews models, fully typed."""

import asyncio

import trio

import transports.asyncio
import transports.trio
from protocore import DecodeError
from protocore.mews import Envelope, ResourceEvent, ResourceState, decode_envelope


def parse(data: bytes) -> Envelope | None:
    try:
        return decode_envelope(data)
    except DecodeError as error:
        print(error.path, error.reason)
        return None


async def with_trio() -> None:
    async with transports.trio.serve_mews(client_token="c", access_token="a") as server:
        async with transports.trio.connect_mews(
            server.url, client_token="c", access_token="a"
        ) as events:
            server.publish([ResourceEvent(id="room-1", state=ResourceState.CLEAN)])
            async for event in events:
                print(event)
                break


async def with_asyncio() -> None:
    async with transports.asyncio.connect_placeos("ws://127.0.0.1:1/x", api_key="k") as client:
        result = await client.exec("sys-1", "Display", "power", True)
        print(result)


if __name__ == "__main__":
    envelope = parse(b'{"Events": []}')
    assert envelope is not None and envelope.events == ()
    trio.run(with_trio)
    asyncio.run(with_asyncio())
'''

# The same imports, one wrong use: mypy must see the real types to call it wrong.
MISTAKE = """
from protocore.mews import decode_envelope
import transports.trio

count: int = decode_envelope(b"{}")
transports.trio.connect_mews("ws://x", client_token=1, access_token="a")
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel and its dependencies: its python."""
    where = tmp_path_factory.mktemp("venv") / "venv"
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return python


def test_the_wheel_is_named_and_holds_both_packages_typed(wheel: Path) -> None:
    assert wheel.name.startswith("protocore_ws-")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"protocore/py.typed", "transports/py.typed"} <= names
    assert {"protocore/__init__.py", "protocore/mews/__init__.py"} <= names
    assert {"transports/trio.py", "transports/asyncio.py", "transports/sync.py"} <= names
    assert not [name for name in names if name.startswith(("tests/", "benchmarks/", "scripts/"))]
    dist_info = next(name.split("/")[0] for name in names if ".dist-info/" in name)
    assert f"{dist_info}/licenses/LICENSE" in names


def test_the_wheel_metadata(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = HeaderParser().parsestr(archive.read(metadata_name).decode("utf-8"))
        entry_points = archive.read(metadata_name.replace("METADATA", "entry_points.txt"))
    assert metadata["Name"] == DISTRIBUTION
    assert metadata["License-Expression"] == "MIT"
    classifiers = metadata.get_all("Classifier") or []
    for version in ("3.11", "3.12", "3.13"):
        assert f"Programming Language :: Python :: {version}" in classifiers
    assert "Typing :: Typed" in classifiers
    requires = metadata.get_all("Requires-Dist") or []
    assert any(r.startswith("trio") and "extra" not in r for r in requires)  # the demo's
    assert b"protocore = transports.cli:main" in entry_points


def test_the_demo_runs_after_a_plain_install(installed: Path) -> None:
    result = subprocess.run(
        [str(installed.parent / "protocore"), "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Done in" in result.stdout + result.stderr


def _mypy(script: str, installed: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    # Outside the repository, so that mypy sees only what the wheel installed.
    (tmp_path / "user_script.py").write_text(textwrap.dedent(script), encoding="utf-8")
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    assert mypy is not None
    env = {key: value for key, value in os.environ.items() if key != "MYPYPATH"}
    return subprocess.run(
        [
            mypy,
            "--strict",
            "--no-incremental",
            "--python-executable",
            str(installed),
            "user_script.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_user_script_passes_mypy_strict_against_the_wheel(
    installed: Path, tmp_path: Path
) -> None:
    result = _mypy(USER_SCRIPT, installed, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout


def test_mypy_sees_the_wheels_real_types(installed: Path, tmp_path: Path) -> None:
    result = _mypy(MISTAKE, installed, tmp_path)
    assert result.returncode == 1
    assert "import-untyped" not in result.stdout
    assert "import-not-found" not in result.stdout
    assert "[assignment]" in result.stdout  # Envelope is not an int
    assert "[arg-type]" in result.stdout  # a token is a str
