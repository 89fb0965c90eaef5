"""``serve_placeos(dialect=Dialect.SEED)`` on every server: the error number in ``code``."""

from __future__ import annotations

import json

import pytest
from harness import API_KEY, DISPLAY, KINDS, SYS, WAIT, make_engine, placeos_options, running_server
from websockets.sync.client import connect

from protocore.placeos import Dialect


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dialect", list(Dialect))
def test_an_error_reply_in_each_dialect(kind: str, dialect: Dialect) -> None:
    request = {"id": 1, "cmd": "exec", "sys": SYS, "mod": DISPLAY, "index": 1, "name": "fail"}
    options = placeos_options(dialect=dialect)
    with (
        running_server(kind, "placeos", make_engine(), **options) as server,
        connect(server.url, additional_headers={"X-API-Key": API_KEY}, open_timeout=WAIT) as ws,
    ):
        ws.send(json.dumps({**request, "args": []}))
        answer = json.loads(ws.recv(timeout=WAIT))
    assert answer["type"] == "error"
    if dialect is Dialect.SEED:
        assert answer["code"] == 3  # request failed: the number where older clients read it
        assert "error_code" not in answer
    else:
        assert answer["error_code"] == 3
        assert answer["code"] != 3
