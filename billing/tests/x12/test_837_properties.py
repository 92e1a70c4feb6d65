"""Properties of the 837P writer and a fuzz test of the validator (hypothesis)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.x12 import claim837_samples as samples
from billing.x12.edi837 import Claim837Error, clean_text, render_837p
from billing.x12.validate import ValidationResult, validate_837

SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

charges = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999.99"), places=2)
units = st.decimals(min_value=Decimal("1"), max_value=Decimal("999"), places=0)
free_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40
)


@st.composite
def claims(draw):
    index = draw(st.integers(min_value=0, max_value=10_000))
    lines = tuple(
        samples.line(
            draw(st.integers(min_value=0, max_value=7)),
            charge=str(draw(charges)),
            units=draw(units),
            service_date=dt.date(2026, 1, 1) + dt.timedelta(days=draw(st.integers(0, 30))),
        )
        for _ in range(draw(st.integers(min_value=1, max_value=50)))
    )
    return samples.claim(index, lines=lines)


def render(claims_list, **overrides):
    arguments = {
        "claims_by_billing_provider": {samples.BILLING_PROVIDER: claims_list},
        "submitter": samples.SUBMITTER,
        "receiver": samples.RECEIVER,
        "interchange_control_number": 1,
        "group_control_number": 1,
        "transaction_control_number": 1,
        "sender_id": "HARBOR01",
        "receiver_id": "CLEAR01",
        "created_at": samples.CREATED_AT,
    }
    arguments.update(overrides)
    return render_837p(**arguments)


def clm_and_line_sums(text: str) -> list[tuple[Decimal, Decimal]]:
    """(CLM02, sum of the SV102 that follow it) for every claim in the file."""
    pairs: list[list[Decimal]] = []
    for part in text.split("~"):
        fields = part.split("*")
        if fields[0] == "CLM":
            pairs.append([Decimal(fields[2]), Decimal(0)])
        elif fields[0] == "SV1":
            pairs[-1][1] += Decimal(fields[2])
    return [(clm, lines) for clm, lines in pairs]


@given(batch=st.lists(claims(), min_size=1, max_size=5))
@settings(max_examples=150, deadline=None)
def test_clm02_equals_the_sum_of_sv102_for_every_claim(batch):
    text = render(batch)

    sums = clm_and_line_sums(text)

    assert len(sums) == len(batch)
    assert all(clm == lines for clm, lines in sums)
    # claims of one subscriber are written together, so compare without order
    assert sorted(clm for clm, _ in sums) == sorted(claim.total_charge for claim in batch)


@given(claim=claims())
@SLOW
def test_random_claims_validate(claim):
    assert validate_837(render([claim])) == ValidationResult(ok=True, errors=[])


@given(last=free_text, first=free_text, street=free_text)
@SLOW
def test_any_name_or_street_leaves_exactly_one_segment_per_terminator(last, first, street):
    # given
    base = samples.claim(1)
    subscriber = samples.subscriber(
        1,
        last_name=last,
        first_name=first,
        address=samples.Address(street, "Springfield", "IL", "62704"),
    )
    claim = samples.claim(1, subscriber=subscriber, lines=base.lines)
    if not clean_text(last):  # nothing printable left: refused, never written blank
        with pytest.raises(Claim837Error, match="last name"):
            render([claim])
        return

    # when
    text = render([claim])

    # then
    segments = [part for part in text.split("~") if part]
    assert len(segments) == len(render([base]).split("~")) - 1
    nm1 = next(seg for seg in segments if seg.startswith("NM1*IL*"))
    assert len(nm1.split("*")) == 10
    assert all(char not in seg for seg in segments[1:] for char in "^~\r\n")


BASE_TEXT = render(samples.sample_claims(3))


@st.composite
def mutated(draw):
    text = BASE_TEXT
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["delete", "insert", "replace", "drop_segment", "swap"]))
        position = draw(st.integers(min_value=0, max_value=max(0, len(text) - 1)))
        if kind == "delete":
            size = draw(st.integers(min_value=1, max_value=20))
            text = text[:position] + text[position + size :]
        elif kind == "insert":
            chunk = draw(st.text(alphabet="*:~^ABC019\n\ufeff\xe9", min_size=1, max_size=5))
            text = text[:position] + chunk + text[position:]
        elif kind == "replace":
            char = draw(st.sampled_from("*:~^X9 \n\t\x00"))
            text = text[:position] + char + text[position + 1 :]
        else:
            parts = text.split("~")
            i = draw(st.integers(min_value=0, max_value=len(parts) - 1))
            if kind == "drop_segment":
                del parts[i]
            else:
                j = draw(st.integers(min_value=0, max_value=len(parts) - 1))
                parts[i], parts[j] = parts[j], parts[i]
            text = "~".join(parts)
    return text


@given(text=mutated())
@SLOW
def test_mutated_files_get_a_clean_verdict_never_an_exception(text):
    result = validate_837(text)

    assert isinstance(result, ValidationResult)
    assert all(isinstance(line, str) and line for line in result.errors)
    assert result.ok == (not result.errors)
    if text == BASE_TEXT:
        assert result.ok


def test_the_unmutated_fuzz_base_is_valid():
    assert validate_837(BASE_TEXT).ok
