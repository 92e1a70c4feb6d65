"""Property: whatever charges and corrections are entered, a claim's total equals the sum of
its lines, and the lines are exactly the visit's current (unreversed) charges."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from billing import services
from billing.models import ChargeLine, Claim, Encounter
from billing.services import LineInput

CODES = ["99213", "85025", "36415", "20610"]

line_inputs = st.lists(
    st.tuples(
        st.sampled_from(CODES),
        st.integers(min_value=1, max_value=5),
        st.none() | st.decimals(min_value=1, max_value=5000, places=2),
    ),
    min_size=1,
    max_size=8,
)


@pytest.mark.django_db
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(lines=line_inputs, corrections=st.lists(st.integers(min_value=0, max_value=7), max_size=3))
def test_claim_total_equals_the_sum_of_its_lines(
    billing_user: User,
    encounter: Encounter,
    lines: list[tuple[str, int, Decimal | None]],
    corrections: list[int],
) -> None:
    # given: a fresh visit each example (hypothesis shares the fixture's encounter)
    visit = Encounter.objects.create(
        patient=encounter.patient,
        location=encounter.location,
        date_of_service=encounter.date_of_service - dt.timedelta(days=len(lines)),
        rendering_practitioner=encounter.rendering_practitioner,
        billing_provider=encounter.billing_provider,
    )
    visit.diagnoses.create(position=1, code="J45909")
    added = [
        services.charge_line_add(
            actor=billing_user,
            encounter=visit,
            line=LineInput(
                code=code,
                units=units,
                amount=amount,
                override_reason="negotiated" if amount is not None else "",
            ),
        )
        for code, units, amount in lines
    ]
    for index in sorted(set(corrections)):
        if index < len(added) - 1:
            services.charge_line_correct(actor=billing_user, line=added[index], reason="fix")

    # when
    claim = services.claim_create_from_encounter(actor=billing_user, encounter=visit)

    # then
    claim = Claim.objects.get(pk=claim.pk)
    line_sum = sum((line.charge for line in claim.lines.all()), Decimal("0"))
    assert claim.total_charge == line_sum
    current = set(ChargeLine.objects.filter(encounter=visit, corrects__isnull=True)
                  .exclude(corrections__isnull=False).values_list("pk", flat=True))  # fmt: skip
    assert {line.charge_line_id for line in claim.lines.all()} == current
    Claim.objects.filter(pk=claim.pk).update(status="void")
