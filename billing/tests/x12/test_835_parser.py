"""The 835 parser: delimiters, loops, every CAS triplet and PLB pair, and its refusals."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.x12.edi835 import Remittance835, X835Error, parse_835
from billing.x12.edi835_samples import (
    SampleClaim,
    SampleLine,
    SamplePlb,
    SampleRemittance,
    render_835,
    synthetic_claims,
)

FIXTURES = Path(__file__).resolve().parents[3] / "remittance" / "tests" / "data" / "835"
EMEDNY = (FIXTURES / "emedny_sample.835").read_text()


def one_line_claim(**overrides) -> SampleClaim:
    line = SampleLine(
        code="99213",
        charge=Decimal("100.00"),
        paid=Decimal("70.00"),
        adjustments=(("CO", "45", Decimal("20.00")), ("PR", "2", Decimal("10.00"))),
    )
    values = {"patient_control_number": "PCN1", "lines": (line,), "payer_claim_number": "ICN1"}
    values.update(overrides)
    return SampleClaim(**values)


def sample_text(**overrides) -> str:
    values = {"claims": [one_line_claim()]}
    values.update(overrides)
    return render_835(SampleRemittance(**values))


def refusal(text: str | bytes) -> X835Error:
    with pytest.raises(X835Error) as caught:
        parse_835(text if isinstance(text, bytes) else text.encode())
    return caught.value


def with_delimiters(text: str, element: str, component: str, terminator: str) -> str:
    """The same interchange written with other delimiters (ISA11 '^' kept)."""
    segments = [piece.strip() for piece in text.split("~") if piece.strip()]
    out = []
    for segment in segments:
        parts = segment.split("*")
        if parts[0] == "ISA":
            parts[16] = component
        else:
            parts = [part.replace(":", component) for part in parts]
        out.append(element.join(parts))
    return terminator.join(out) + terminator


# --- delimiters and tokenizing ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("element", "component", "terminator"),
    [("|", ">", "~"), ("~", "^", "_"), ("*", ">", "\n"), ("!", "\\", "'")],
)
def test_reads_delimiters_from_the_isa_header(element, component, terminator):
    # given the eMedNY sample rewritten with other delimiters
    text = with_delimiters(EMEDNY, element, component, terminator)
    # when
    remittance = parse_835(text.encode())
    # then it reads the same as the original
    original = parse_835(EMEDNY.encode())
    assert remittance.delimiters.element == element
    assert remittance.delimiters.component == component
    assert remittance.delimiters.segment == terminator
    assert remittance.payments == original.payments


def test_reads_the_repetition_separator_from_isa11():
    assert parse_835(EMEDNY.encode()).delimiters.repetition == "^"


def test_tolerates_crlf_after_terminators_and_a_utf8_byte_order_mark():
    text = "\ufeff" + EMEDNY.replace("~", "~\r\n")
    assert parse_835(text.encode()).payments == parse_835(EMEDNY.encode()).payments


def test_reads_an_isa_whose_fields_are_not_padded_to_their_fixed_width():
    text = EMEDNY.replace("*ZZ*EMEDNYBAT      *ZZ*ETIN           *", "*ZZ*EMEDNYBAT*ZZ*ETIN*")
    remittance = parse_835(text.encode())
    assert remittance.sender_id == "EMEDNYBAT"
    assert len(remittance.claims) == 3


def test_reads_a_bare_transaction_set_written_one_segment_per_line():
    # given ST..SE only, terminated by line feeds instead of '~'
    body = EMEDNY[EMEDNY.index("ST*835") : EMEDNY.index("GE*")]
    text = body.replace("~", "\n")
    # when
    remittance = parse_835(text.encode())
    # then
    assert remittance.delimiters.segment == "\n"
    assert not remittance.enveloped
    assert len(remittance.claims) == 3


# --- loops and elements ------------------------------------------------------------------------


def test_reads_all_six_triplets_of_one_cas_segment():
    # given a line adjusted by six CO reasons, written as one CAS segment
    reasons = ("45", "59", "97", "253", "B7", "A1")
    adjustments = tuple(("CO", reason, Decimal("5.00")) for reason in reasons)
    line = SampleLine("99213", Decimal("100.00"), Decimal("70.00"), adjustments)
    text = sample_text(claims=[one_line_claim(lines=(line,))])
    assert text.count("CAS*CO*45*5**59*5**97*5**253*5**B7*5**A1*5~") == 1
    # when
    claim = parse_835(text.encode()).claims[0]
    # then
    assert [(a.group, a.reason, a.amount) for a in claim.lines[0].adjustments] == list(adjustments)


def test_reads_cas_quantities():
    text = sample_text().replace("CAS*CO*45*20~", "CAS*CO*45*20*3~")
    adjustment = parse_835(text.encode()).claims[0].lines[0].adjustments[0]
    assert adjustment.quantity == Decimal("3")


def test_refuses_a_cas_segment_with_seven_triplets():
    text = sample_text().replace("CAS*CO*45*20~", "CAS*CO*45*20" + "**1*0" * 6 + "~")
    error = refusal(text)
    assert (error.segment_id, error.message) == ("CAS", "more than six adjustment triplets")


def test_reads_every_plb_pair_and_balances_the_payment_with_them():
    # given a PLB with six pairs: positive amounts reduce the payment, negative add (interest)
    pairs = [
        ("WO", "10.00"),
        ("L6", "-2.50"),
        ("FB", "1.00"),
        ("CS", "0.50"),
        ("72", "1"),
        ("J1", "2"),
    ]
    plb = "PLB*1234567893*20241231*" + "*".join(f"{r}:REF{i}*{a}" for i, (r, a) in enumerate(pairs))
    claims = [one_line_claim()]
    paid = Decimal("70.00") - sum(Decimal(a) for _, a in pairs)
    text = sample_text(claims=claims).replace("SE*", plb + "~\nSE*")
    text = text.replace("BPR*I*70*", f"BPR*I*{paid}*").replace("SE*19*", "SE*20*")
    # when
    payment = parse_835(text.encode()).payments[0]
    # then
    assert payment.warnings == ()
    assert [(p.reason, p.reference, str(p.amount)) for p in payment.provider_adjustments] == [
        (reason, f"REF{i}", amount) for i, (reason, amount) in enumerate(pairs)
    ]
    assert payment.provider_adjustments[0].fiscal_period_date == dt.date(2024, 12, 31)
    assert payment.signed_total == payment.claims_paid_total - payment.provider_adjustment_total


def test_reads_a_reversal_with_negative_amounts_as_a_debit_payment():
    # given a payer taking back a claim it paid (CLP02 = 22, every amount negative)
    line = SampleLine(
        "99213",
        Decimal("-100.00"),
        Decimal("-70.00"),
        (("CO", "45", Decimal("-20.00")), ("PR", "2", Decimal("-10.00"))),
    )
    text = sample_text(claims=[one_line_claim(status="22", lines=(line,))])
    # when
    remittance = parse_835(text.encode())
    # then
    payment, claim = remittance.payments[0], remittance.claims[0]
    assert (payment.credit_debit, payment.total_paid, payment.signed_total) == (
        "D",
        Decimal("70"),
        Decimal("-70"),
    )
    assert claim.is_reversal
    assert not claim.is_denied
    assert claim.paid == Decimal("-70")
    assert claim.patient_responsibility == Decimal("-10")


def test_reads_several_transaction_sets_in_one_group():
    first = sample_text(trace="T1")
    second = sample_text(trace="T2", control_number="0002")
    text = first[: first.index("GE*")] + second[second.index("ST*") :]
    remittance = parse_835(text.encode())
    assert [p.trace_number for p in remittance.payments] == ["T1", "T2"]
    assert [p.control_number for p in remittance.payments] == ["0001", "0002"]


def test_reads_the_payer_line_control_numbers_and_payer_ids():
    text = sample_text(
        claims=[
            one_line_claim(
                lines=(
                    SampleLine(
                        "99213",
                        Decimal(5),
                        Decimal(5),
                        (),
                        (),
                        Decimal(1),
                        dt.date(2024, 1, 2),
                        "LINE-7",
                    ),
                )
            )
        ],
        payer_id="PAYER42",
    )
    payment = parse_835(text.encode()).payments[0]
    assert payment.payer_id == "PAYER42"
    assert payment.payee_npi == "1234567893"
    assert payment.claims[0].lines[0].control_number == "LINE-7"


@given(
    count=st.integers(min_value=0, max_value=30),
    lines=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=10_000),
)
@settings(max_examples=40, deadline=None)
def test_parsed_totals_equal_the_totals_the_file_was_written_from(count, lines, seed):
    claims = synthetic_claims(count, lines_per_claim=lines, seed=seed)
    sample = SampleRemittance(claims=claims, plb=(SamplePlb("WO", Decimal("1.25")),))
    remittance = parse_835(render_835(sample).encode())
    assert len(remittance.claims) == count
    assert remittance.total_paid == sample.total
    assert [c.paid for c in remittance.claims] == [c.paid for c in claims]
    assert [c.charge for c in remittance.claims] == [c.charge for c in claims]
    for claim in remittance.claims:
        assert claim.charge == sum(line.charge for line in claim.lines)


# --- refusals ------------------------------------------------------------------------------


def test_refuses_an_empty_file():
    assert refusal(b"").message == "the file is empty"


def test_refuses_bytes_that_are_not_utf8_text():
    assert "not valid UTF-8" in refusal(b"ISA*00*\xff\xfe").message


def test_refuses_a_file_that_does_not_start_with_isa_or_st():
    assert "does not start with an ISA or ST" in refusal("hello world~").message


def test_refuses_an_837_claim_file():
    error = refusal(EMEDNY.replace("ST*835*1740", "ST*837*1740"))
    assert (error.segment_id, error.element) == ("ST", "ST01")
    assert "not an 835" in str(error)


def test_refuses_a_file_truncated_before_se():
    error = refusal(EMEDNY[: EMEDNY.index("SE*65")])
    assert "truncated" in error.message


def test_refuses_a_payment_that_does_not_balance_and_names_bpr02():
    error = refusal(EMEDNY.replace("BPR*I*45.75*", "BPR*I*45.76*"))
    assert (error.segment_index, error.segment_id, error.element) == (4, "BPR", "BPR02")
    assert "BPR02 45.76 != claims paid 45.75" in str(error)
    assert str(error).startswith("segment 4 (BPR) BPR02: the payment does not balance")


def test_refuses_a_claim_that_does_not_balance_and_names_the_clp():
    managed_care = (FIXTURES / "lfh_managed-care.835").read_text()
    error = refusal(managed_care.replace("CAS*CO*A2*50.00", "CAS*CO*A2*40.00"))
    assert (error.segment_index, error.segment_id, error.element) == (13, "CLP", "CLP04")
    assert "does not balance" in error.message


def test_refuses_a_line_that_does_not_balance_and_names_the_svc():
    error = refusal(sample_text().replace("CAS*CO*45*20~", "CAS*CO*45*20~CAS*OA*23*1~"))
    assert (error.segment_id, error.element) == ("SVC", "SVC03")


def test_refuses_an_unknown_adjustment_group():
    error = refusal(EMEDNY.replace("CAS*CO*29*12~", "CAS*XX*29*12~"))
    assert (error.segment_id, error.element) == ("CAS", "CAS01")
    assert "'XX' is not an adjustment group" in error.message


def test_refuses_an_adjustment_without_an_amount():
    error = refusal(EMEDNY.replace("CAS*CO*29*12~", "CAS*CO*29~"))
    assert (error.segment_id, error.element, error.message) == (
        "CAS",
        "CAS03",
        "the amount is missing",
    )


def test_refuses_an_amount_that_is_not_a_number_or_has_three_decimals():
    assert (
        "'1e5' is not a number" in refusal(EMEDNY.replace("*34.25*34.25**", "*1e5*1e5**")).message
    )
    error = refusal(EMEDNY.replace("CAS*CO*29*12~", "CAS*CO*29*12.001~"))
    assert "more than two decimal places" in error.message


def test_refuses_a_transaction_set_without_a_trace_number():
    error = refusal(EMEDNY.replace("TRN*1*10100000000*1000000000~", ""))
    assert "no TRN" in error.message


def test_refuses_a_transaction_set_whose_se_closes_another_control_number():
    error = refusal(EMEDNY.replace("SE*65*1740", "SE*65*1741"))
    assert (error.segment_id, error.element) == ("SE", "SE02")


def test_refuses_segments_after_the_interchange_trailer():
    assert "after the interchange trailer" in refusal(EMEDNY + "ST*835*1~").message


def test_refuses_a_shifted_svc_that_does_not_balance():
    tertiary = (FIXTURES / "lfh_tertiary-payment.835").read_text()
    text = tertiary.replace("CAS*OA*23*1579.00", "CAS*OA*23*1570.00").replace(
        "CLP*0001000054*3*1766.50*187.50", "CLP*0001000054*3*1757.50*187.50"
    )
    error = refusal(text)
    assert (error.segment_id, error.element) == ("SVC", "SVC01")


def test_refuses_an_svc_code_without_a_qualifier():
    error = refusal(sample_text().replace("SVC*HC:99213*", "SVC*99213*"))
    assert (error.segment_id, error.element) == ("SVC", "SVC01")
    assert "is not a qualifier:code composite" in error.message


def test_short_bpr_with_account_data_reports_the_missing_date():
    text = sample_text().replace("*98765*20240115~", "*20240115~")
    payment = parse_835(text.encode()).payments[0]
    assert payment.payment_date is None
    assert "BPR16 (payment date) is missing" in payment.warnings


# --- only clean errors -----------------------------------------------------------------------

SEEDS = [(FIXTURES / name).read_bytes() for name in sorted(p.name for p in FIXTURES.glob("*.835"))]


def _segments(data: bytes) -> list[bytes]:
    return data.split(b"~")


@st.composite
def mutated_835(draw: st.DrawFn) -> bytes:
    data = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        pieces = _segments(data)
        position = draw(st.integers(min_value=0, max_value=max(0, len(pieces) - 1)))
        kind = draw(
            st.sampled_from(["delete", "duplicate", "swap", "bytes", "truncate", "element"])
        )
        if kind == "delete":
            del pieces[position]
        elif kind == "duplicate":
            pieces.insert(position, pieces[position])
        elif kind == "swap":
            other = draw(st.integers(min_value=0, max_value=len(pieces) - 1))
            pieces[position], pieces[other] = pieces[other], pieces[position]
        elif kind == "element":
            elements = pieces[position].split(b"*")
            slot = draw(st.integers(min_value=0, max_value=len(elements) - 1))
            elements[slot] = draw(
                st.sampled_from([b"", b"-1", b"0", b"X", b"99999999999999999999", b":::", b"1.5.5"])
            )
            pieces[position] = b"*".join(elements)
        data = b"~".join(pieces)
        if kind == "bytes":
            at = draw(st.integers(min_value=0, max_value=len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
        elif kind == "truncate":
            data = data[: draw(st.integers(min_value=0, max_value=len(data)))]
    return data


def outcome(data: bytes) -> Remittance835 | X835Error:
    """The parse result, or the refusal (any other exception propagates and fails the test)."""
    try:
        return parse_835(data)
    except X835Error as error:
        return error


@given(mutated_835())
@settings(max_examples=400, deadline=None)
def test_mutated_fixtures_parse_or_raise_x835error_only(data):
    result = outcome(data)
    if isinstance(result, X835Error):
        assert result.message
        assert str(result).endswith(result.message)
    else:
        for payment in result.payments:
            assert payment.signed_total == (
                payment.claims_paid_total - payment.provider_adjustment_total
            )


@given(st.binary(max_size=300))
@settings(max_examples=200, deadline=None)
def test_random_bytes_parse_or_raise_x835error_only(data):
    result = outcome(b"ISA*" + data)
    assert isinstance(result, X835Error)
    assert result.message


# --- the parser's shortcuts read what the plain readers read ----------------------------------

_AMOUNT_TEXT = st.one_of(
    st.text(alphabet="0123456789.-+eE ", max_size=22),
    st.from_regex(r"-?[0-9]{0,19}(\.[0-9]{0,4})?", fullmatch=True),
    st.sampled_from(["", " ", ".", "-", "-.5", "5.", ".05", "1_0", "\uff11", "\u0661", "NaN"]),
    st.text(max_size=6),
)


def _read(reader, *args, **kwargs):
    try:
        value = reader(*args, **kwargs)
    except X835Error as error:
        return ("refused", error.segment_index, error.element, error.message)
    return ("read", str(value), type(value).__name__)


@given(_AMOUNT_TEXT, st.booleans())
@settings(max_examples=500, deadline=None)
def test_the_parser_amount_shortcuts_read_and_refuse_as_amount_does(raw, again):
    # given an element, read by the parser's cached readers (once, or a second time from the
    # cache) and by `_amount`
    from billing.x12.edi835 import _amount, _Parser
    from billing.x12.segments import Delimiters

    segment = ["CAS", "CO", "45", raw]
    parser = _Parser(Delimiters("*", ":", "~", None, enveloped=True), [])
    cases: list[tuple[Callable[..., Decimal | None], dict[str, bool]]] = [
        (parser.amount, {"required": True}),
        (parser.optional_amount, {"required": False}),
        (parser.optional_number, {"required": False, "money": False}),
    ]
    for reader, plain in cases:
        if again:
            _read(reader, segment, 3, 7)
        # then the same value (text and type), or the same refusal
        assert _read(reader, segment, 3, 7) == _read(_amount, segment, 3, 7, **plain)


def test_equal_cas_triplets_read_as_equal_adjustments_and_each_is_checked():
    # given two lines with the same CAS triplet, one with a quantity
    text = sample_text(
        claims=[
            one_line_claim(
                lines=(
                    SampleLine(
                        "99213", Decimal("100.00"), Decimal("80.00"), (("CO", "45", Decimal("20")),)
                    ),
                    SampleLine(
                        "99214", Decimal("100.00"), Decimal("80.00"), (("CO", "45", Decimal("20")),)
                    ),
                )
            )
        ]
    )
    first, second = text.index("CAS*CO*45*20~"), text.rindex("CAS*CO*45*20~")
    with_quantity = text[:second] + "CAS*CO*45*20*2~" + text[second + len("CAS*CO*45*20~") :]
    # when
    lines = parse_835(text.encode()).claims[0].lines
    quantity_lines = parse_835(with_quantity.encode()).claims[0].lines
    # then
    assert first != second
    assert lines[0].adjustments == lines[1].adjustments
    assert [a.quantity for line in quantity_lines for a in line.adjustments] == [None, Decimal(2)]
    # and a bad quantity after a good triplet of the same texts is still refused
    bad = text[:second] + "CAS*CO*45*20*X~" + text[second + len("CAS*CO*45*20~") :]
    assert refusal(bad).message == "'X' is not a number"


def test_names_the_first_bad_segment_id_after_blank_pieces():
    # given a bad segment id after a blank piece (an empty segment) and good segments
    text = sample_text()
    at = text.index("CLP*")
    bad = text[:at] + "~ \r\n~cLP*" + text[at + len("CLP*") :]
    # when
    error = refusal(bad)
    # then the position counts segments (blank pieces skipped), the piece number counts pieces
    segments = [p for p in text[:at].split("~") if p.strip()]
    pieces = text[:at].split("~")
    assert error.segment_index == len(segments) + 1
    piece = len(pieces) + 2
    assert error.message == f"'cLP' is not a segment identifier (piece {piece} of the file)"


def test_se01_is_checked_against_the_segments_of_each_set():
    # given two transaction sets, the second one's SE01 off by one
    text = sample_text()
    st_at, se_at = text.index("ST*835"), text.index("SE*")
    se_end = text.index("~", se_at) + 1
    second = text[st_at:se_end].replace("ST*835*0001", "ST*835*0002")
    second = second.replace("SE*", "SE*9", 1).replace("*0001~", "*0002~")
    second = second.replace("TRN*1*", "TRN*1*X", 1)
    both = text[:se_end] + second + text[se_end:]
    count = len([p for p in text[st_at:se_end].split("~") if p.strip()])
    # when
    remittance = parse_835(both.encode())
    # then the first set has no warning; the second one names its count
    assert remittance.payments[0].warnings == ()
    assert remittance.payments[1].warnings == (
        f"SE01 says '9{count}' segments; the set has {count}",
    )
