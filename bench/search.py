"""Patient search latency through patients.selectors.patient_search (access check + audit row)."""

from __future__ import annotations

import random
import re
import time
from typing import Any

from bench.common import Section, Target, say, summarize_ms

TARGET_P95_MS = 20.0
QUERY_KINDS = (
    "name prefix",
    "family, given",
    "given family",
    "birth date",
    "MRN",
    "phone",
    "member id",
)


def _sample_patients(count: int, rng: random.Random) -> list[Any]:
    from django.db.models import Max, Min

    from patients.models import Patient

    bounds = Patient.objects.aggregate(low=Min("id"), high=Max("id"))
    ids = [rng.randint(bounds["low"], bounds["high"]) for _ in range(count * 2)]
    rows = list(Patient.objects.filter(id__in=ids).prefetch_related("coverages"))
    rng.shuffle(rows)
    return rows[:count]


def build_queries(
    count: int, *, location_ids: frozenset[int], seed: int = 42
) -> list[tuple[str, Any]]:
    """A mix of the searches a front desk types, drawn from real rows so most find someone."""
    from patients.selectors import SearchCriteria

    rng = random.Random(seed)
    people = [
        p for p in _sample_patients(max(200, count), rng) if p.home_location_id in location_ids
    ]
    queries: list[tuple[str, Any]] = []
    for number in range(count):
        person = people[number % len(people)]
        kind = QUERY_KINDS[number % len(QUERY_KINDS)]
        if kind == "name prefix":
            length = rng.choice((2, 3, 3, 4, 5))
            criteria = SearchCriteria(name=person.family_name[:length].lower())
        elif kind == "family, given":
            criteria = SearchCriteria(name=f"{person.family_name}, {person.given_name[:2]}")
        elif kind == "given family":
            criteria = SearchCriteria(name=f"{person.given_name} {person.family_name[:3]}")
        elif kind == "birth date":
            criteria = SearchCriteria(birth_date=person.birth_date)
        elif kind == "MRN":
            criteria = SearchCriteria(mrn=person.mrn)
        elif kind == "phone":
            digits = person.phone_mobile[2:]
            criteria = SearchCriteria(phone=f"({digits[:3]}) {digits[3:6]}-{digits[6:]}")
        else:
            coverage = next(iter(person.coverages.all()), None)
            if coverage is None:
                criteria = SearchCriteria(mrn=person.mrn)
                kind = "MRN"
            else:
                criteria = SearchCriteria(member_id=coverage.member_id)
        queries.append((kind, criteria))
    return queries


def _vendor() -> str:
    from django.db import connection

    return connection.vendor


_PHI_LITERALS = re.compile(r"'(\d{4}-\d{2}-\d{2}|\d{6,}|[0-9a-z]*\d[0-9a-z]*)'(::\w+)?")


def _hide_values(text: str) -> str:
    """Replace dates of birth, phone numbers, MRNs and member ids in SQL and plans with '…'
    (synthetic data, but docs should not look like they carry PHI). Name prefixes stay."""
    return _PHI_LITERALS.sub(lambda m: "'…'" + (m.group(2) or ""), text)


def abbreviate_select(sql: str) -> str:
    """Shorten the select list (the patient's, its location's and merged_into's columns)."""
    match = re.match(r'SELECT (.*?) FROM "patients_patient"', sql)
    if match is None:
        return sql
    count = match.group(1).count(",") + 1
    shown = f'SELECT /* {count} columns */ … FROM "patients_patient"'  # noqa: S608  (display only)
    return shown + sql[match.end() :]


def explain_search(user: Any, criteria: Any) -> list[tuple[str, str]]:
    """Each query `patient_search` runs on the patient table for these criteria (a one-word name
    runs two once the family names run out: family names, then given names), with the
    database's plan for it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from patients.selectors import patient_search

    with CaptureQueriesContext(connection) as captured:
        patient_search(user=user, criteria=criteria)
    statements = [
        q["sql"]
        for q in captured.captured_queries
        if 'FROM "patients_patient"' in q["sql"] and "ORDER BY" in q["sql"]
    ]
    explained = []
    with connection.cursor() as cursor:
        for sql in statements:
            if connection.vendor == "postgresql":
                cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            else:
                cursor.execute("EXPLAIN QUERY PLAN " + sql)
                plan = "\n".join(f"{row[0]}|{row[1]}|{row[3]}" for row in cursor.fetchall())
            explained.append((sql, plan))
    return explained


def _given_name_prefix(user: Any, page_size: int = 25) -> str | None:
    """A three-letter prefix of a given name with fewer than a page of family names starting
    with it (in the user's scope), so that its first page reaches the second part of a one-word
    search: given names starting with it."""
    from patients.models import Patient

    mine = Patient.objects.filter(home_location_id__in=user.location_ids, merged_into__isnull=True)
    tried: set[str] = set()
    for given in mine.values_list("given_fold", flat=True)[:500]:
        prefix = given[:3]
        if len(prefix) < 3 or prefix in tried:
            continue
        tried.add(prefix)
        if mine.filter(family_fold__startswith=prefix).count() < page_size:
            return prefix
    return None


def plans_to_show(workload: list[tuple[str, Any]], user: Any) -> list[tuple[str, Any]]:
    """The name prefixes `smi` and `garc`, a prefix whose first page runs both parts of a
    one-word search, then the first search of every other kind."""
    from patients.selectors import SearchCriteria

    shown: list[tuple[str, Any]] = [
        ("name prefix `smi`", SearchCriteria(name="smi")),
        ("name prefix `garc`", SearchCriteria(name="garc")),
    ]
    prefix = _given_name_prefix(user)
    if prefix is not None:
        shown.append(
            (
                f"name prefix `{prefix}` (few family names: given names follow)",
                SearchCriteria(name=prefix),
            )
        )
    for kind in QUERY_KINDS[1:]:
        criteria = next((c for k, c in workload if k == kind), None)
        if criteria is not None:
            shown.append((kind, criteria))
    return shown


def run(*, queries: int, patients: int, user: Any, full: bool) -> Section:
    from patients.selectors import patient_search

    section = Section("Patient search")
    workload = build_queries(queries, location_ids=user.location_ids)
    for _, criteria in workload[:20]:  # warm caches
        patient_search(user=user, criteria=criteria)
    samples: dict[str, list[float]] = {kind: [] for kind in QUERY_KINDS}
    cpu: list[float] = []
    found = 0
    for kind, criteria in workload:
        start, start_cpu = time.perf_counter(), time.thread_time()
        result = patient_search(user=user, criteria=criteria)
        samples[kind].append(time.perf_counter() - start)
        cpu.append(time.thread_time() - start_cpu)
        found += bool(result.patients)
    everything = [value for values in samples.values() for value in values]
    overall = summarize_ms(everything)
    cpu_ms = summarize_ms(cpu)
    say(
        f"search: {len(everything)} queries over {patients:,} patients: "
        f"p50 {overall['p50']:.2f} ms, p95 {overall['p95']:.2f} ms, p99 {overall['p99']:.2f} ms "
        f"({found} found someone; this process's CPU time per search: p50 {cpu_ms['p50']:.2f} ms, "
        f"p95 {cpu_ms['p95']:.2f} ms)"
    )
    section.lines += [
        f"{len(everything)} searches through `patients.selectors.patient_search` "
        f"as `{user.username}` "
        f"(locations: {', '.join(sorted(loc.name for loc in user.locations.all()))}) over "
        f"{patients:,} patients; each search includes the access check and its audit row. "
        f"{found} of {len(everything)} returned at least one patient.",
        "",
        "| query | n | p50 ms | p95 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for kind in QUERY_KINDS:
        if samples[kind]:
            row = summarize_ms(samples[kind])
            section.lines.append(
                f"| {kind} | {row['n']} | {row['p50']:.2f} | {row['p95']:.2f} | "
                f"{row['p99']:.2f} | {row['max']:.2f} |"
            )
            say(
                f"  {kind:<14} p50 {row['p50']:6.2f} ms  p95 {row['p95']:6.2f} ms  "
                f"p99 {row['p99']:6.2f} ms"
            )
    section.lines.append(
        f"| **all** | {overall['n']} | {overall['p50']:.2f} | {overall['p95']:.2f} | "
        f"{overall['p99']:.2f} | {overall['max']:.2f} |"
    )
    section.lines += [
        "",
        "Times are wall-clock. CPU time of the benchmark process per search (Python, Django and, "
        f"for SQLite, the database engine too): p50 {cpu_ms['p50']:.2f} ms, "
        f"p95 {cpu_ms['p95']:.2f} ms.",
    ]
    goal = f"p95 <= {TARGET_P95_MS:.0f} ms over {patients:,} patients"
    section.targets.append(
        Target(
            "patient search",
            goal,
            f"p95 {overall['p95']:.2f} ms",
            overall["p95"] <= TARGET_P95_MS if full else None,
        )
    )
    section.lines += [
        "",
        "The plans below are those of the queries `patient_search` runs for one search of each "
        "kind (values drawn from real rows, not shown here), "
        + (
            "from `EXPLAIN (ANALYZE, BUFFERS)`."
            if _vendor() == "postgresql"
            else "from `EXPLAIN QUERY PLAN`."
        ),
    ]
    for label, criteria in plans_to_show(workload, user):
        for number, (sql, plan) in enumerate(explain_search(user, criteria), start=1):
            section.lines += [
                "",
                f"Plan of {label}, query {number}:",
                "",
                "```sql",
                _hide_values(abbreviate_select(sql)),
                "```",
                "",
                "```",
                _hide_values(plan),
                "```",
            ]
    return section
