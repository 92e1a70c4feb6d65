"""Every scrubber rule runs its own passing and failing cases (rules are data)."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal

import pytest

from billing.scrub_rules import CLEAN, ERROR, RULES, WARNING, Rule, apply_case, run_all, run_rule

PASSING = [(rule, case) for rule in RULES for case in rule.passing]
FAILING = [(rule, case) for rule in RULES for case in rule.failing]


def _id(value: object) -> str:
    return value.id if isinstance(value, Rule) else ""


@pytest.mark.parametrize(("rule", "case"), PASSING, ids=[f"{r.id}-ok" for r, _ in PASSING])
def test_rule_lets_its_passing_case_through(rule: Rule, case: dict[str, object]) -> None:
    assert run_rule(rule, apply_case(CLEAN, case)) == []


@pytest.mark.parametrize(("rule", "case"), FAILING, ids=[f"{r.id}-fail" for r, _ in FAILING])
def test_rule_catches_its_failing_case(rule: Rule, case: dict[str, object]) -> None:
    problems = run_rule(rule, apply_case(CLEAN, case))

    assert problems
    for problem in problems:
        assert problem.rule_id == rule.id
        assert problem.severity == rule.severity
        assert problem.field
        assert "{" not in problem.field
        assert "{" not in problem.message


@pytest.mark.parametrize("rule", RULES, ids=_id)
def test_rule_is_described_completely(rule: Rule) -> None:
    assert re.fullmatch(r"SCR-[A-Z]{2,4}-\d{3}", rule.id)
    assert rule.severity in (ERROR, WARNING)
    assert rule.message.strip()
    assert rule.field.strip()
    assert rule.passing
    assert rule.failing


def test_rule_ids_are_unique() -> None:
    ids = [rule.id for rule in RULES]

    assert len(ids) == len(set(ids))


def test_clean_baseline_passes_every_rule() -> None:
    assert run_all(CLEAN) == []


def test_a_claim_with_many_faults_shows_every_problem_at_once() -> None:
    # given: a missing member id, a bad NPI, a category diagnosis and zero units
    facts = apply_case(
        CLEAN,
        {
            "member_id": "",
            "billing_npi": "1234567890",
            "diagnoses": ("J45", "E119"),
            "lines": (dataclasses.replace(CLEAN.lines[0], units=Decimal("0")),),
            "total_charge": CLEAN.lines[0].charge,
        },
    )

    # when
    problems = run_all(facts)

    # then
    found = {problem.rule_id for problem in problems}
    assert {"SCR-SUB-001", "SCR-BPR-001", "SCR-DX-002", "SCR-UNT-001"} <= found
    severities = [problem.severity for problem in problems]
    assert severities == sorted(severities, key=lambda severity: severity != ERROR)
    dx = next(problem for problem in problems if problem.rule_id == "SCR-DX-002")
    assert dx.message == "Diagnosis 1 (J45) is not a billable ICD-10-CM code."
    assert dx.field == "diagnoses.1"
