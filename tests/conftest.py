"""Shared fixtures: every codec test runs under each JSON backend; hypothesis profiles."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from hypothesis import settings

from protocore import _json

# Property tests assert behaviour, never speed: no per-example deadline. In CI the
# examples are derandomized so a red run can be reproduced.
settings.register_profile("default", deadline=None, print_blob=True)
settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

# A suite started in the background (``cmd &`` in a script) inherits Ctrl-C ignored,
# and so would every CLI process the tests start and then interrupt: they would rightly
# keep ignoring it. The tests that send Ctrl-C need it to mean what it does at a
# terminal, however the suite was started.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(params=_json.available_backends())
def json_backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """Run the test once per JSON backend (orjson and the stdlib), restoring the default."""
    before = _json.BACKEND
    _json.set_backend(request.param)
    try:
        yield request.param
    finally:
        _json.set_backend(before)
