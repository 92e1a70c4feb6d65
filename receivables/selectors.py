"""Reads of A/R aging and KPIs with their access checks and audit events.

Payer aging and KPIs need VIEW_REVENUE_REPORTS. Aging by patient lists names and MRNs (PHI),
so it also needs VIEW_BILLING and is audited as a query (the CSV as an export). A user sees the
claims of encounters at their locations and the patient balances of patients whose home is one
of their locations. A refusal raises PermissionDenied (403) and is audited.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied

from audit.models import Action, Category, Outcome
from audit.services import record
from core.capabilities import Capability
from receivables.aging import AgingReport, GroupBy, compute_aging
from receivables.kpis import KpiReport, compute_kpis

if TYPE_CHECKING:
    from accounts.models import User

PAGE_ROWS = 100


def _require(user: User, capabilities: list[Capability], *, what: str) -> None:
    missing = [c for c in capabilities if not user.can(c)]
    if missing:
        record(
            actor=user,
            action=Action.EXECUTE,
            event="auth.permission_denied",
            category=Category.SECURITY,
            outcome=Outcome.DENIED,
            object_type="url",
            object_id=what,
            reason=f"missing capability {missing[0].value}",
        )
        raise PermissionDenied(f"Your roles do not allow: {missing[0].label}.")


def aging_capabilities(by: str) -> list[Capability]:
    if by == GroupBy.PATIENT:
        return [Capability.VIEW_REVENUE_REPORTS, Capability.VIEW_BILLING]
    return [Capability.VIEW_REVENUE_REPORTS]


def aging_for_user(
    *,
    user: User,
    by: str,
    basis: str,
    as_of: dt.date,
    export: bool = False,
) -> AgingReport:
    """The aging report for `user`'s locations; the page shows the first PAGE_ROWS patients,
    the export every row. By patient (PHI) is audited as a query or an export."""
    _require(user, aging_capabilities(by), what="receivables.aging")
    report = compute_aging(
        by=by,
        basis=basis,
        as_of=as_of,
        location_ids=user.location_ids,
        limit=None if export or by != GroupBy.PATIENT else PAGE_ROWS,
    )
    if by == GroupBy.PATIENT or export:
        record(
            actor=user,
            action=Action.EXPORT if export else Action.QUERY,
            event=f"receivables.aging_{by}{'.export' if export else ''}",
            category=Category.BILLING,
            object_type="ar_aging",
            object_id=f"{by}:{basis}:{as_of.isoformat()}",
            fields=["mrn", "name", "balance"] if by == GroupBy.PATIENT else ["payer", "balance"],
            reason=f"{report.row_count} rows",
        )
    return report


def kpis_for_user(*, user: User, start: dt.date, end: dt.date) -> KpiReport:
    """Revenue-cycle KPIs over the user's locations (no patient data: not audited)."""
    _require(user, [Capability.VIEW_REVENUE_REPORTS], what="receivables.kpis")
    return compute_kpis(start=start, end=end, location_ids=user.location_ids)
