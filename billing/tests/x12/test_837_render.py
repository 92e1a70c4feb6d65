"""render_837p writes 005010X222A1 files that pyx12 accepts with zero errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest

from billing.x12 import claim837_samples as samples
from billing.x12.claim837 import Adjustment, BillingProvider, Claim
from billing.x12.edi837 import Claim837Error, clean_text, render_837p
from billing.x12.validate import validate_837


def render(claims_by_provider: dict[BillingProvider, list[Claim]] | list[Claim], **overrides):
    if isinstance(claims_by_provider, list):
        claims_by_provider = {samples.BILLING_PROVIDER: claims_by_provider}
    arguments = {
        "claims_by_billing_provider": claims_by_provider,
        "submitter": samples.SUBMITTER,
        "receiver": samples.RECEIVER,
        "interchange_control_number": 42,
        "group_control_number": 43,
        "transaction_control_number": 44,
        "sender_id": "HARBOR01",
        "receiver_id": "CLEAR01",
        "created_at": samples.CREATED_AT,
        "usage_indicator": "T",
    }
    arguments.update(overrides)
    return render_837p(**arguments)


def segments(text: str) -> list[list[str]]:
    return [part.split("*") for part in text.split("~") if part.strip()]


def find(text: str, segment_id: str) -> list[list[str]]:
    return [seg for seg in segments(text) if seg[0] == segment_id]


def triplet_count(cas: list[str]) -> int:
    return -(-(len(cas) - 2) // 3)


def assert_valid(text: str) -> None:
    result = validate_837(text)
    assert result.errors == []
    assert result.ok


def test_primary_claim_for_a_subscriber_who_is_the_patient_validates():
    # when
    text = render([samples.claim(1)])

    # then
    assert_valid(text)
    assert find(text, "SBR") == [["SBR", "P", "18", "GRP001", "", "", "", "", "", "CI"]]
    assert find(text, "HL") == [["HL", "1", "", "20", "1"], ["HL", "2", "1", "22", "0"]]
    assert find(text, "PAT") == []
    assert find(text, "CLM")[0][5] == "11:B:1"


def test_envelope_is_fixed_width_with_matching_control_numbers_and_exact_counts():
    # when
    text = render([samples.claim(1), samples.claim(2)])

    # then
    isa = text.split("~")[0] + "~"
    assert len(isa) == 106
    assert isa[3] == "*"
    assert isa[104] == ":"
    parsed = segments(text)
    assert parsed[0][13] == "000000042"
    assert parsed[0][15] == "T"
    assert parsed[1][6] == "43"
    assert parsed[1][8] == "005010X222A1"
    assert parsed[2] == ["ST", "837", "0044", "005010X222A1"]
    assert parsed[3][:3] == ["BHT", "0019", "00"]
    assert parsed[3][6] == "CH"
    st_index = next(i for i, seg in enumerate(parsed) if seg[0] == "ST")
    se_index = next(i for i, seg in enumerate(parsed) if seg[0] == "SE")
    assert parsed[se_index] == ["SE", str(se_index - st_index + 1), "0044"]
    assert parsed[-2] == ["GE", "1", "43"]
    assert parsed[-1] == ["IEA", "1", "000000042"]


def test_dependent_patient_gets_a_patient_loop_under_the_subscriber():
    # given
    claim = samples.claim(3, patient=samples.dependent(3))

    # when
    text = render([claim])

    # then
    assert_valid(text)
    assert find(text, "HL") == [
        ["HL", "1", "", "20", "1"],
        ["HL", "2", "1", "22", "1"],
        ["HL", "3", "2", "23", "0"],
    ]
    assert find(text, "PAT") == [["PAT", "19"]]
    assert find(text, "SBR")[0][2] == ""  # SBR02 is 18 only when the subscriber is the patient
    assert any(seg[:2] == ["NM1", "QC"] for seg in segments(text))


def test_hierarchy_groups_claims_by_provider_subscriber_and_patient():
    # given
    other_provider = dataclasses.replace(samples.BILLING_PROVIDER, npi="1234567893", name="Two")
    same_subscriber = samples.claim(5)
    same_subscriber_again = samples.claim(5, patient_control_number="SECOND")
    child = samples.claim(5, patient_control_number="CHILD", patient=samples.dependent(5))
    sibling = samples.claim(
        5, patient_control_number="SIBLING", patient=samples.dependent(5, first_name="Kim")
    )

    # when
    text = render(
        {
            samples.BILLING_PROVIDER: [same_subscriber, child, same_subscriber_again, sibling],
            other_provider: [samples.claim(6)],
        }
    )

    # then
    assert_valid(text)
    hls = find(text, "HL")
    assert [hl[1:] for hl in hls] == [
        ["1", "", "20", "1"],
        ["2", "1", "22", "0"],  # the subscriber's own two claims
        ["3", "1", "22", "1"],  # the same subscriber as the dependents' insured
        ["4", "3", "23", "0"],
        ["5", "3", "23", "0"],
        ["6", "", "20", "1"],
        ["7", "6", "22", "0"],
    ]
    assert len(find(text, "CLM")) == 5


def test_twelve_diagnoses_and_four_modifiers_validate():
    # given
    diagnoses = (
        "J44.9", "E11.9", "I10", "E78.5", "M54.50", "R51.9",
        "K21.9", "F41.1", "G47.00", "N39.0", "R10.9", "Z79.4",
    )  # fmt: skip
    line = samples.line(0, modifiers=("25", "59", "XS", "GT"), diagnosis_pointers=(1, 5, 9, 12))
    claim = samples.claim(7, diagnoses=diagnoses, lines=(line,))

    # when
    text = render([claim])

    # then
    assert_valid(text)
    hi = find(text, "HI")[0]
    assert hi[1] == "ABK:J449"
    assert hi[2:] == [f"ABF:{code.replace('.', '')}" for code in diagnoses[1:]]
    sv1 = find(text, "SV1")[0]
    assert sv1[1] == "HC:99213:25:59:XS:GT"
    assert sv1[7] == "1:5:9:12"


def test_secondary_claim_splits_more_than_six_triplets_into_several_cas_segments():
    # given: 14 claim-level triplets (7 CO, 7 PR) and 8 CO triplets on every line
    claim = samples.secondary_claim(8, triplets=14, line_triplets=8)

    # when
    text = render([claim])

    # then
    assert_valid(text)
    cas = find(text, "CAS")
    assert all(len(seg) <= 2 + 3 * 6 for seg in cas)
    claim_level, line_level = cas[:4], cas[4:]
    assert [seg[1] for seg in claim_level] == ["CO", "CO", "PR", "PR"]
    assert [triplet_count(seg) for seg in claim_level] == [6, 1, 6, 1]
    assert [triplet_count(seg) for seg in line_level] == [6, 2, 6, 2]
    assert find(text, "SBR")[0][1] == "S"
    assert find(text, "SBR")[1][1:3] == ["P", "18"]
    assert find(text, "AMT")[0] == ["AMT", "D", "40"]
    assert len(find(text, "SVD")) == 2
    assert [seg[1] for seg in find(text, "DTP")].count("573") == 2


def test_every_cas_triplet_carries_its_amount():
    # given
    claim = samples.secondary_claim(9, triplets=7)

    # when
    text = render([claim])

    # then
    for seg in find(text, "CAS"):
        triplets = seg[2:]
        for start in range(0, len(triplets), 3):
            reason, amount = triplets[start], triplets[start + 1]
            assert reason
            assert Decimal(amount) > 0


@pytest.mark.parametrize("frequency", ["7", "8"])
def test_replacement_and_void_claims_carry_the_original_claim_number(frequency):
    # given
    claim = samples.claim(10, frequency_code=frequency, original_claim_number="2026011500123-A")

    # when
    text = render([claim])

    # then
    assert_valid(text)
    assert find(text, "CLM")[0][5] == f"11:B:{frequency}"
    assert find(text, "REF")[-1] == ["REF", "F8", "2026011500123A"]


def test_refuses_a_replacement_without_the_original_claim_number():
    claim = samples.claim(11, frequency_code="7")

    with pytest.raises(Claim837Error, match="original claim number"):
        render([claim])


def test_delimiters_and_accents_in_free_text_cannot_break_the_file():
    # given
    subscriber = samples.subscriber(
        12,
        last_name="O'Brien*Núñez~Jr",
        first_name="Zoë:^Ann",
        address=dataclasses.replace(samples.CLINIC_ADDRESS, line1="12 Elm*St~#4", line2=""),
    )
    provider = dataclasses.replace(samples.BILLING_PROVIDER, name="Smith & Sons* Clinic~")
    claim = samples.claim(12, subscriber=subscriber)

    # when
    text = render({provider: [claim]})

    # then
    assert_valid(text)
    nm1 = next(seg for seg in segments(text) if seg[:2] == ["NM1", "IL"])
    assert nm1[3:5] == ["O'BRIEN NUNEZ JR", "ZOE ANN"]
    assert ["N3", "12 ELM ST 4"] in segments(text)
    assert any(seg[:4] == ["NM1", "85", "2", "SMITH & SONS CLINIC"] for seg in segments(text))


def test_clean_text_keeps_only_the_basic_character_set():
    assert clean_text("  a*b~c:d^e\r\nf  ") == "A B C D E F"
    assert clean_text("Ærøskøbing") == "AEROSKOBING"
    assert clean_text("x" * 80, 60) == "X" * 60


def test_medicare_secondary_carries_sbr05_and_validates():
    # given
    subscriber = samples.subscriber(
        13, responsibility="S", filing_indicator="MB", insurance_type="12"
    )
    claim = dataclasses.replace(samples.secondary_claim(13), subscriber=subscriber)

    # when
    text = render([claim])

    # then
    assert_valid(text)
    assert find(text, "SBR")[0] == ["SBR", "S", "18", "GRP013", "", "12", "", "", "", "MB"]


def test_refuses_medicare_secondary_without_sbr05_rather_than_sending_it_blank():
    subscriber = samples.subscriber(14, responsibility="S", filing_indicator="MB")
    claim = dataclasses.replace(samples.secondary_claim(14), subscriber=subscriber)

    with pytest.raises(Claim837Error, match="SBR05"):
        render([claim])


def test_sbr05_stays_empty_for_a_primary_payer_even_if_given():
    subscriber = samples.subscriber(15, filing_indicator="MB", insurance_type="12")

    text = render([samples.claim(15, subscriber=subscriber)])

    assert_valid(text)
    assert find(text, "SBR")[0] == ["SBR", "P", "18", "GRP015", "", "", "", "", "", "MB"]


def test_line_place_of_service_and_date_range_are_written_when_they_differ():
    # given
    line = samples.line(
        0,
        place_of_service="02",
        service_date=dt.date(2026, 1, 5),
        service_date_end=dt.date(2026, 1, 9),
    )

    # when
    text = render([samples.claim(16, lines=(line,))])

    # then
    assert_valid(text)
    assert find(text, "SV1")[0][5] == "02"
    assert ["DTP", "472", "RD8", "20260105-20260109"] in segments(text)


def test_total_charge_is_the_sum_of_the_lines():
    claim = samples.claim(17, line_count=3)

    text = render([claim])

    assert Decimal(find(text, "CLM")[0][2]) == sum(line.charge for line in claim.lines)


def test_line_breaks_option_still_validates():
    text = render([samples.claim(18)], line_breaks=True)

    assert "~\nGS*" in text
    assert_valid(text)


def test_a_mixed_batch_of_many_claims_validates():
    text = render(samples.sample_claims(60))

    assert_valid(text)
    assert len(find(text, "CLM")) == 60


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"lines": ()}, "at least one service line"),
        ({"diagnoses": ()}, "1 to 12 diagnoses"),
        ({"diagnoses": tuple(f"A0{n}" for n in range(13))}, "1 to 12 diagnoses"),
        ({"lines": (samples.line(0, diagnosis_pointers=(3,)),)}, "points at no diagnosis"),
        ({"lines": (samples.line(0, modifiers=("1", "2", "3", "4", "5")),)}, "4 modifiers"),
        ({"frequency_code": "5"}, "frequency code"),
        ({"patient_control_number": "X" * 39}, "1-38 characters"),
        ({"patient": samples.dependent(0, relationship="18")}, "PAT01"),
    ],
)
def test_refuses_claims_it_cannot_write_validly(changes, message):
    claim = samples.claim(19, **changes)

    with pytest.raises(Claim837Error, match=message):
        render([claim])


def test_refuses_more_than_five_cas_segments_in_one_loop():
    # given: 31 CO triplets need 6 CAS segments
    base = samples.secondary_claim(20)
    other = dataclasses.replace(
        base.other_payers[0],
        adjustments=tuple(Adjustment("CO", "45", Decimal(1)) for _ in range(31)),
    )
    claim = dataclasses.replace(base, other_payers=(other,))

    # then
    with pytest.raises(Claim837Error, match="CAS segments"):
        render([claim])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"created_at": dt.datetime(2026, 1, 1, 9, 0)}, "timezone-aware"),
        ({"usage_indicator": "X"}, "usage indicator"),
        ({"interchange_control_number": 1_000_000_000}, "ISA13"),
        ({"group_control_number": 0}, "GS06"),
        ({"transaction_control_number": -1}, "ST02"),
        ({"claims_by_billing_provider": {samples.BILLING_PROVIDER: []}}, "no claims"),
    ],
)
def test_refuses_a_bad_envelope(overrides, message):
    with pytest.raises(Claim837Error, match=message):
        render([samples.claim(21)], **overrides)


def test_more_claims_than_a_transaction_set_may_hold_go_into_several_transaction_sets():
    # given
    claims = [samples.claim(n) for n in range(5)]

    # when
    text = render(claims, max_claims_per_transaction=2)

    # then
    assert_valid(text)
    parsed = segments(text)
    assert [seg[2] for seg in parsed if seg[0] == "ST"] == ["0044", "0045", "0046"]
    assert [seg[2] for seg in parsed if seg[0] == "SE"] == ["0044", "0045", "0046"]
    assert parsed[-2] == ["GE", "3", "43"]
    assert [seg[1] for seg in parsed if seg[0] == "HL" and seg[3] == "20"] == ["1", "1", "1"]
    assert len([seg for seg in parsed if seg[0] == "CLM"]) == 5
    starts = [i for i, seg in enumerate(parsed) if seg[0] == "ST"]
    ends = [i for i, seg in enumerate(parsed) if seg[0] == "SE"]
    assert [int(parsed[end][1]) for end in ends] == [
        end - start + 1 for start, end in zip(starts, ends, strict=True)
    ]


def test_the_default_keeps_at_most_5000_claims_in_one_transaction_set():
    text = render(samples.sample_claims(5001, lines=1))

    assert text.count("~ST*837*") == 2
