#!/usr/bin/env python3
"""atheris harness: `PlaceOSServer.receive_message` with a mock engine, replying or dropping.

The contract is `_contracts.check_placeos_server_session`; anything else escaping is a crash.
Run it with ``python tests/fuzz/run.py --target placeos_server_session``, or directly with libFuzzer
flags and corpus directories (``python tests/fuzz/fuzz_placeos_server_session.py -help=1``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["protocore", "_contracts"]):
    from _contracts import check_placeos_server_session


def main() -> None:
    atheris.Setup(sys.argv, check_placeos_server_session)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
