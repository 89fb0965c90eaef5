"""Write docs/conformance.md: every Autobahn-style case, played against both endpoints.

    .venv/bin/python tests/conformance/conformance_doc.py           # run every case, write the file
    .venv/bin/python tests/conformance/conformance_doc.py --check   # exit 1 if the file is stale

The file shows what the cases gave; the tests check that each case still gives the
outcome its table entry records, and that the file is the rendering of those.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

from autobahn_cases import CASES, SECTIONS
from autobahn_runner import SIDES, Outcome

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"

Outcomes = dict[tuple[str, str], Outcome]

_INTRO = """\
# WebSocket conformance

The Autobahn testsuite is the usual conformance bar for WebSocket implementations.
It needs Python 2, so protocore rebuilds its cases 1-7 and 9 from their public
descriptions and plays them in memory against both endpoints, `ClientConnection`
(frames from a server, unmasked) and `ServerConnection` (frames from a client,
masked), with a session that takes every message. Each case writes its frames in
the case's chops (at once, frame by frame, byte by byte, or in chops of N bytes),
pauses where the case pauses, and judges the result as Autobahn does:

- **OK**: what the endpoint did (messages received whole, pongs sent, still open at
  each pause, who closed first and with which code) is what the case expects.
- **NON-STRICT**: it matches the case's lenient expectation (say, failing a bad
  message at its end instead of at the first bad byte).
- **INFORMATIONAL**: the spec leaves the outcome open; the note says what we do.
- **FAILED**: anything else.

Autobahn checks a message by its echo; here the session receives it, and the case
checks what it received. Case 7.7 keeps Autobahn's list of valid close codes; the
registry's 1012, 1013 and 1014 are accepted too (tests/test_connection_rfc.py checks
every class of code). Cases 9.x (messages up to 16 MiB) check correctness here;
their speed is measured in `benchmarks/`. Regenerate this file with
`.venv/bin/python tests/conformance/conformance_doc.py`; the test suite fails when it is
stale.
"""


def render(outcomes: Outcomes) -> str:
    lines = [_INTRO]
    total = Counter(outcomes.values())
    lines += [
        "## Summary",
        "",
        f"{len(CASES)} cases, each against both endpoints: "
        + ", ".join(f"{total[o]} {o.value}" for o in Outcome)
        + ".",
        "",
        "| Section | Cases | Client | Server |",
        "|---|---|---|---|",
    ]
    for section, title in SECTIONS.items():
        cases = [c for c in CASES if c.section == section]
        cells = []
        for side in SIDES:
            counts = Counter(outcomes[(c.id, side)] for c in cases)
            cells.append(", ".join(f"{counts[o]} {o.value}" for o in Outcome if counts[o]))
        lines.append(f"| {section}. {title} | {len(cases)} | {cells[0]} | {cells[1]} |")
    notes = [c for c in CASES if c.note]
    if notes:
        lines += ["", "## Notes", ""]
        lines += [f"- **{c.id}** ({c.outcome.value}): {c.note}" for c in notes]
    for section, title in SECTIONS.items():
        lines += [
            "",
            f"## {section}. {title}",
            "",
            "| Case | Description | Client | Server |",
            "|---|---|---|---|",
        ]
        for case in (c for c in CASES if c.section == section):
            cells = [outcomes[(case.id, side)].value for side in SIDES]
            description = case.description.replace("|", "\\|")
            lines.append(f"| {case.id} | {description} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines) + "\n"


def recorded() -> Outcomes:
    """The outcomes the case table records (what the tests hold every case to)."""
    return {(c.id, side): c.outcome for c in CASES for side in SIDES}


def measured() -> Outcomes:
    return {(c.id, side): c.run(side).outcome for c in CASES for side in SIDES}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != render(recorded()):
            print(f"{DOC.name} is stale: run tests/conformance/conformance_doc.py", file=sys.stderr)
            return 1
        return 0
    outcomes = measured()
    differ = sorted(k for k, v in outcomes.items() if v is not recorded()[k])
    for case_id, side in differ:
        print(f"{case_id} ({side}): {outcomes[(case_id, side)].value}", file=sys.stderr)
    DOC.write_text(render(outcomes), encoding="utf-8")
    print(f"wrote {DOC} ({len(differ)} outcomes differ from the case table)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
