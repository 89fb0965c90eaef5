"""PROTOCORE_JSON picks the backend at import; a bad value names itself and the choices."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from protocore import _json


def _import_with(value: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PROTOCORE_JSON": value}
    return subprocess.run(
        [sys.executable, "-c", "import protocore.mews, protocore._json as j; print(j.BACKEND)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_bogus_value_names_the_variable_and_the_valid_values() -> None:
    result = _import_with("bogus")
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError: PROTOCORE_JSON='bogus' is not a JSON backend")
    for backend in _json.available_backends():
        assert backend in last


@pytest.mark.parametrize("backend", _json.available_backends())
def test_each_valid_value_is_used(backend: str) -> None:
    result = _import_with(backend)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == backend
