"""Sans-IO is a law: the core imports no socket, TLS, event loop, thread or clock."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import protocore

FORBIDDEN = {"socket", "ssl", "asyncio", "trio", "threading", "selectors", "time"}
CORE = Path(protocore.__file__).parent


def _core_modules() -> list[str]:
    names = ["protocore"]
    for info in pkgutil.walk_packages([str(CORE)], prefix="protocore."):
        names.append(info.name)
    return names


def test_no_core_source_imports_io() -> None:
    offenders = []
    for path in CORE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots = [node.module.split(".")[0]]
            else:
                continue
            offenders += [
                f"{path.relative_to(CORE)}:{node.lineno} {r}" for r in roots if r in FORBIDDEN
            ]
    assert offenders == []


def test_importing_the_core_loads_no_io_module() -> None:
    # attrs itself imports threading (a thread-local guard for recursive reprs), so the
    # baseline is what the dependencies load on their own; protocore must add nothing.
    modules = [m for m in _core_modules() if ".testing" not in m]
    script = f"""
import sys
import attrs, cattrs, cattrs.gen, wsproto, wsproto.connection, wsproto.handshake, json, re
try:
    import orjson
except ImportError:
    pass
before = set(sys.modules)
import importlib
for name in {modules!r}:
    importlib.import_module(name)
added = {{m.split('.')[0] for m in set(sys.modules) - before}}
print(sorted(added & {FORBIDDEN!r}))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
    assert out == ["[]"], out
    assert len(modules) >= 4  # the walk found the package's modules
