#!/usr/bin/env python3
"""atheris harness: `PlaceOSClient.receive_message` between the application's own calls.

The contract is `_contracts.check_placeos_client_session`; anything else escaping is a crash.
Run it with ``python tests/fuzz/run.py --target placeos_client_session``, or directly with libFuzzer
flags and corpus directories (``python tests/fuzz/fuzz_placeos_client_session.py -help=1``).
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["protocore", "_contracts"]):
    from _contracts import check_placeos_client_session


def main() -> None:
    atheris.Setup(sys.argv, check_placeos_client_session)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
