"""Every shared 835 fixture parses with figures that match its segments.

The expected figures are counted here from the raw text with a few lines of splitting (not with
`billing.x12`), so the parser is checked against an independent reading of the same file.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest

from billing.x12.edi835 import ProcedureCode, Remittance835, parse_835

FIXTURES = Path(__file__).resolve().parents[3] / "remittance" / "tests" / "data" / "835"
FIXTURE_NAMES = sorted(path.name for path in FIXTURES.glob("*.835"))


@dataclass
class RawFigures:
    bpr_signed: list[Decimal] = field(default_factory=list)
    clp_paid: list[Decimal] = field(default_factory=list)
    claim_cas: list[tuple[str, str, Decimal]] = field(default_factory=list)
    line_cas: list[tuple[str, str, Decimal]] = field(default_factory=list)
    plb: list[Decimal] = field(default_factory=list)
    svc_count: int = 0


def raw_figures(text: str) -> RawFigures:
    """Counted from the raw text: '~' ends a segment, '*' separates elements (all fixtures)."""
    figures = RawFigures()
    in_line = False
    for piece in text.lstrip("\ufeff").split("~"):
        element = piece.strip().split("*")
        tag = element[0]
        if tag == "BPR":
            sign = -1 if element[3] == "D" else 1
            figures.bpr_signed.append(sign * Decimal(element[2]))
        elif tag == "CLP":
            figures.clp_paid.append(Decimal(element[4]))
            in_line = False
        elif tag == "SVC":
            in_line = True
            figures.svc_count += 1
        elif tag == "CAS":
            for first in range(2, len(element), 3):
                if element[first]:
                    triplet = (element[1], element[first], Decimal(element[first + 1]))
                    (figures.line_cas if in_line else figures.claim_cas).append(triplet)
        elif tag == "PLB":
            figures.plb += [
                Decimal(element[n + 1]) for n in range(3, len(element), 2) if element[n]
            ]
    return figures


def parsed(name: str) -> Remittance835:
    return parse_835((FIXTURES / name).read_bytes())


def test_all_six_shared_fixtures_are_present():
    assert len(FIXTURE_NAMES) == 6


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_claim_count_and_paid_total_match_the_clp_segments(name):
    # given
    raw = raw_figures((FIXTURES / name).read_text())
    # when
    remittance = parsed(name)
    # then
    assert len(remittance.claims) == len(raw.clp_paid)
    assert sum(c.paid for c in remittance.claims) == sum(raw.clp_paid)
    assert [c.paid for c in remittance.claims] == raw.clp_paid
    assert sum(len(c.lines) for c in remittance.claims) == raw.svc_count


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_cas_triplet_is_read_at_claim_and_line_level(name):
    raw = raw_figures((FIXTURES / name).read_text())
    remittance = parsed(name)
    claim_level = [(a.group, a.reason, a.amount) for c in remittance.claims for a in c.adjustments]
    line_level = [
        (a.group, a.reason, a.amount)
        for c in remittance.claims
        for line in c.lines
        for a in line.adjustments
    ]
    assert claim_level == raw.claim_cas
    assert line_level == raw.line_cas


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_payment_balances_bpr_against_claims_paid_less_provider_adjustments(name):
    raw = raw_figures((FIXTURES / name).read_text())
    remittance = parsed(name)
    provider = [p.amount for pay in remittance.payments for p in pay.provider_adjustments]
    assert provider == raw.plb
    assert sum(raw.bpr_signed) == sum(raw.clp_paid) - sum(raw.plb)
    assert remittance.total_paid == sum(raw.bpr_signed)
    assert remittance.total_paid == sum(c.paid for c in remittance.claims) - sum(provider)


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_each_claim_balances_charge_less_paid_against_its_adjustments(name):
    for claim in parsed(name).claims:
        assert claim.charge - claim.paid == claim.adjusted_total


def test_emedny_sample_keeps_three_claims_with_the_same_patient_control_number():
    remittance = parsed("emedny_sample.835")
    claims = remittance.claims
    assert remittance.interchange_control_number == "006000600"
    assert remittance.group_control_numbers == ("6000600",)
    assert [c.status_code for c in claims] == ["1", "2", "2"]
    assert {c.patient_control_number for c in claims} == {"PATIENT ACCOUNT NUMBER"}
    assert len({c.payer_claim_number for c in claims}) == 3
    assert claims[0].corrected_patient is not None
    assert claims[0].corrected_patient.last_name == "CORRECTED LAST"
    assert claims[0].patient is not None
    assert claims[0].patient.identifier == "LL99999L"
    assert claims[0].lines[0].procedure == ProcedureCode("HC", "V2020", ("RB",))
    assert claims[0].lines[0].allowed == Decimal("6")
    assert claims[0].service_start == dt.date(2010, 1, 1)


def test_emedny_denied_lines_carry_their_remark_codes_and_the_zero_paid_claim_is_denied():
    claims = parsed("emedny_sample.835").claims
    assert claims[1].paid == Decimal("0")
    assert claims[1].is_denied
    assert [a.reason for a in claims[1].line_adjustments] == ["29", "29"]
    assert [line.remark_codes for line in claims[2].lines] == [(), (), ("N206",), ("N206",)]
    assert not claims[2].is_denied


def test_bcbsnc_file_without_envelope_is_accepted_with_warnings():
    remittance = parsed("bcbsnc_sample_no_envelope.835")
    payment = remittance.payments[0]
    claim = remittance.claims[0]
    assert not remittance.enveloped
    assert remittance.interchange_control_number == ""
    assert any("no ISA/GS envelope" in w for w in remittance.all_warnings)
    assert any("SE01 says '33'" in w for w in remittance.all_warnings)
    assert payment.trace_number == "02790758"
    assert payment.payer_identifier == "560894904"
    assert payment.payee_npi == "0987654321"
    assert payment.payment_date == dt.date(2011, 1, 8)
    assert claim.patient_responsibility == Decimal("142.54")
    assert claim.patient is not None
    assert claim.patient.identifier == "YPB123456789001"


def test_bcbsnc_recoded_lines_keep_the_original_code_and_the_empty_line_has_no_amounts():
    lines = parsed("bcbsnc_sample_no_envelope.835").claims[0].lines
    assert [line.original_procedure for line in lines[:2]] == [ProcedureCode("HC", "59410")] * 2
    assert lines[0].control_number == "0001"
    assert lines[0].allowed == Decimal("1175.4")
    assert lines[2].charge is None
    assert lines[2].paid is None


def test_cob_file_reads_the_greater_than_sign_as_component_separator_in_svc():
    remittance = parsed("lfh_cob-contractural-adjustment.835")
    line = remittance.claims[0].lines[0]
    assert line.procedure == ProcedureCode("HC", "55669")
    assert any("uses '>' as component separator" in w for w in remittance.all_warnings)


def test_cob_file_keeps_the_negative_oa_94_adjustment_and_the_rendering_provider():
    claim = parsed("lfh_cob-contractural-adjustment.835").claims[0]
    assert [(a.group, a.reason, a.amount) for a in claim.line_adjustments] == [
        ("OA", "23", Decimal("516.00")),
        ("OA", "94", Decimal("-9.00")),
    ]
    assert claim.rendering_provider is not None
    assert claim.rendering_provider.identifier == "34426"


@pytest.mark.parametrize(
    ("name", "date"),
    [
        ("lfh_cob-contractural-adjustment.835", dt.date(2005, 3, 18)),
        ("lfh_tertiary-payment.835", dt.date(2005, 4, 12)),
    ],
)
def test_short_bpr_takes_the_date_from_bpr15_with_a_warning(name, date):
    remittance = parsed(name)
    assert remittance.payments[0].payment_date == date
    assert any("BPR has 15 elements" in w for w in remittance.all_warnings)


def test_tertiary_shifted_svc_is_read_one_element_to_the_right_because_it_balances():
    remittance = parsed("lfh_tertiary-payment.835")
    line = remittance.claims[0].lines[0]
    assert line.procedure == ProcedureCode("HC", "24599")
    assert (line.charge, line.paid, line.units) == (
        Decimal("1766.50"),
        Decimal("187.50"),
        Decimal("1"),
    )
    assert any("'*' where the component separator belongs" in w for w in remittance.all_warnings)


def test_managed_care_invalid_bpr16_date_is_reported_not_fatal():
    remittance = parsed("lfh_managed-care.835")
    payment = remittance.payments[0]
    assert payment.payment_date is None
    assert "BPR16 '20002316' is not a valid date" in payment.warnings
    assert payment.method == "ACH"
    assert payment.payer_name == "RUSHMORE LIFE"


def test_managed_care_claim_level_cas_is_kept_apart_from_line_cas():
    claims = parsed("lfh_managed-care.835").claims
    assert [(a.group, a.reason) for a in claims[1].adjustments] == [("CO", "A2")]
    assert [(a.group, a.reason) for a in claims[1].line_adjustments] == [("PR", "1"), ("CO", "45")]
    assert claims[1].lines[0].service_date == dt.date(2002, 3, 10)
    assert claims[1].lines[0].service_end_date == dt.date(2002, 3, 12)


def test_full_denial_file_is_a_non_payment_with_a_denied_claim():
    remittance = parsed("pyx12_835_mult_loops.835")
    payment = remittance.payments[0]
    claim = remittance.claims[0]
    assert (payment.handling_code, payment.method, payment.total_paid) == ("H", "NON", 0)
    assert claim.status_code == "4"
    assert claim.is_denied
    assert [line.remark_codes for line in claim.lines] == [("N14",)] * 3
    assert [line.units for line in claim.lines] == [Decimal(68), Decimal(16), Decimal(36)]
