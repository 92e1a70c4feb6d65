"""Denials made the way production makes them: a denied 835 ingested for a submitted claim."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from billing.x12.edi835_samples import SampleClaim, SampleLine, SampleRemittance, render_835
from remittance.models import Denial
from remittance.services import remittance_ingest

from .conftest import SERVICE_DATE


def deny(make_claim: Callable[..., object], pcn: str, carc: str = "50") -> Denial:
    """A submitted claim of $100 at Main Street Clinic, denied with CO-<carc> (and RARC N115)."""
    make_claim(pcn)
    line = SampleLine(
        "99213",
        Decimal("100.00"),
        Decimal("0"),
        (("CO", carc, Decimal("100.00")),),
        service_date=SERVICE_DATE,
        remark_codes=("N115",),
    )
    claim = SampleClaim(pcn, (line,), status="4")
    data = render_835(SampleRemittance(claims=[claim], trace=f"T{pcn}")).encode()
    remittance_ingest(actor=None, data=data, file_name=f"{pcn}.835")
    return Denial.objects.select_related("claim__patient").get(claim__patient_control_number=pcn)
