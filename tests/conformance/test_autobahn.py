"""The Autobahn-style cases against both endpoints, and docs/conformance.md kept current."""

from __future__ import annotations

from collections import Counter

import conformance_doc
import pytest
from autobahn_cases import CASES, Case
from autobahn_runner import NORMAL, PING, SIDES, Frame, Outcome, Side

from protocore.connection import DEFAULT_MAX_MESSAGE_SIZE


@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_case(case: Case, side: Side) -> None:
    result = case.run(side)
    assert result.outcome is case.outcome, result.why


def test_no_case_fails_and_every_other_outcome_says_why() -> None:
    for case in CASES:
        assert case.outcome is not Outcome.FAILED, case.id
        assert (case.outcome is Outcome.OK) is (not case.note), case.id


def test_the_table_has_autobahns_cases() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    per_section = Counter(c.section for c in CASES)
    assert per_section == {"1": 16, "2": 11, "3": 7, "4": 10, "5": 20, "6": 145, "7": 37, "9": 54}


def test_a_case_whose_expectation_is_not_met_fails() -> None:
    """The judge can say FAILED: a ping whose pong is expected twice."""
    ping = Frame(PING, b"x")
    case = Case("0.1", "a test of the judge", (ping,), (("pong", b"x"),) * 2, NORMAL)
    for side in SIDES:
        result = case.run(side)
        assert result.outcome is Outcome.FAILED
        assert "unexpected events" in result.why


def test_a_message_over_the_limit_is_not_ok() -> None:
    big = next(c for c in CASES if c.id == "9.1.6")
    small = Case(big.id, big.description, big.steps, big.ok, limit=DEFAULT_MAX_MESSAGE_SIZE)
    assert small.run("client").outcome is Outcome.FAILED


def test_the_published_table_is_current() -> None:
    assert conformance_doc.DOC.read_text(encoding="utf-8") == conformance_doc.render(
        conformance_doc.recorded()
    ), "docs/conformance.md is stale: run .venv/bin/python tests/conformance/conformance_doc.py"
