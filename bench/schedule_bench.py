"""The scheduling benchmarks as bench/run.py runs them, and their section of docs/performance.md.

`bench/bench_scheduling.py` seeds the schedule (200,000 appointments for 50 practitioners, a
30-practitioner day of 600 appointments) and measures the slot finder, the day view's selector
and booking through `appointment_book`. This module adds the day view as a user gets it: the
real page `GET /schedule/day/?location=...&date=...` through django.test.Client, signed in as
the front-desk user of that location (middleware, access check, audit rows, the calendar grid
and the template rendering included), and makes that page the day-view target's figure.

The figures go into their own section of docs/performance.md ("## Scheduling", one block per
database between `bench:scheduling-<database>` markers); the rest of the page is left as it is.
"""

from __future__ import annotations

import datetime as dt
import gc
import re
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

from bench.common import PERFORMANCE_MD, Section, Target, say, summarize_ms, write_section

TARGET_PAGE_P95_MS = 50.0
DAY_LOCATION = "bench-day"
DAY_USER = "bench-frontdesk"
PLAIN_STATIC = "django.contrib.staticfiles.storage.StaticFilesStorage"
HEADING = "## Scheduling"
INTRO = """\
The issue's scheduling targets, measured by `bench/bench_scheduling.py` (seeding and the slot
finder, day-view selector and booking figures) and `bench/schedule_bench.py` (the day view
page through `django.test.Client`), run by `make bench` after the patient benchmarks:

- Slot finder: the first 10 open slots for a type across 50 practitioners over 90 days with
  200,000 booked appointments, p95 ≤ 50 ms on SQLite and on PostgreSQL.
- Day view of a 30-practitioner location with 600 appointments: server time p95 ≤ 50 ms and a
  fixed number of queries.
- Booking: ≥ 500 appointments/s through `appointment_book` with all checks and audit on
  (PostgreSQL).

Run only these with `bench/run.py --database sqlite --suite scheduling` (PostgreSQL: inside
`scripts/with_postgres.sh`). The day view's server time is the wall-clock time of
`Client.get` in the benchmark process (no network, no browser): session and authentication
middleware, the access check and its audit row, the calendar grid and the HTML.
"""
TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def run(*, database: str, quick: bool, full: bool) -> Section:
    """Run the scheduling benchmarks; a failure is reported (N/A), not raised, so that the
    other benchmarks' figures still print."""
    try:
        from bench import bench_scheduling

        figures = bench_scheduling.run(database, quick)
        section = bench_scheduling.section(figures, full)
        section.lines += _booking_variants(figures)
    except Exception:  # report any failure and carry on
        say("scheduling benchmarks failed:")
        say(traceback.format_exc())
        return Section(
            "Scheduling",
            targets=[Target("scheduling benchmarks", "run", "failed (see the log)", None)],
        )
    try:
        page = measure_day_page(runs=20 if quick else 100)
    except Exception:
        say("day view page benchmark failed:")
        say(traceback.format_exc())
        return section
    say(
        f"day view page: {page['appointments_shown']} appointments shown, p50 {page['p50']:.1f} "
        f"ms, p95 {page['p95']:.1f} ms (CPU p50 {page['cpu_p50']:.1f} ms, p95 "
        f"{page['cpu_p95']:.1f} ms), {page['queries']} queries, {page['kib']:.0f} KiB"
    )
    _use_page_for_day_target(section, page, full)
    return section


def _booking_variants(figures: dict[str, Any]) -> list[str]:
    """The booking figures bench_scheduling measures beyond the single worker's (if present)."""
    lines = []
    announcements = figures.get("announcements")
    if announcements:
        lines.append(
            f"- The other apps' work on each booking (`appointment_changed` receivers: reminder "
            f"planning, HL7 SIU queueing) runs in the background worker, from the one task each "
            f"booking queues in its transaction: {announcements['per_second']:.0f} "
            f"announcements/s ({announcements['cpu_ms_each']:.2f} ms CPU each)."
        )
    for key in ("booking_parallel", "booking_processes", "booking_deployed"):
        run = figures.get(key)
        if run:
            lines.append(
                f"- Booking from {run['workers']} {run['kind']} (own connections, as several "
                f"server workers): {run['per_second']:.0f} appointments/s, "
                f"{run['conflicts']} conflicts."
            )
    return lines


def _use_page_for_day_target(section: Section, page: dict[str, Any], full: bool) -> None:
    target = Target(
        "day view page p95 (GET /schedule/day/, 30 practitioners, 600 appointments)",
        f"<= {TARGET_PAGE_P95_MS:.0f} ms, fixed queries",
        f"{page['p95']:.1f} ms, {page['queries']} queries",
        page["p95"] <= TARGET_PAGE_P95_MS if full else None,
    )
    for n, existing in enumerate(section.targets):
        if existing.name.startswith("day view"):
            # the selector's figure stays in the notes; the page is what the target is about
            section.targets[n] = target
            break
    else:
        section.targets.append(target)
    section.lines.append(
        f"- Day view page (`GET /schedule/day/?location=…&date=…` through `django.test.Client`, "
        f"signed in as the location's front-desk user; {page['appointments_shown']} "
        f"appointments on the page, {page['kib']:.0f} KiB of HTML): p50 {page['p50']:.1f} ms, "
        f"**p95 {page['p95']:.1f} ms**, max {page['max']:.1f} ms over {page['n']} requests "
        f"(CPU of the server process p50 {page['cpu_p50']:.1f} ms, p95 {page['cpu_p95']:.1f} ms); "
        f"{page['queries']} queries per request."
    )


def measure_day_page(runs: int) -> dict[str, Any]:
    """Time the day page of the 30-practitioner location that bench_scheduling seeded."""
    from django.conf import settings
    from django.test import override_settings

    from accounts.models import User
    from core.models import Location
    from scheduling.availability import zone
    from scheduling.models import Appointment

    location = Location.objects.get(code=DAY_LOCATION)
    user = User.objects.get(username=DAY_USER)
    first = Appointment.objects.filter(location=location).order_by("start").first()
    if first is None:
        raise RuntimeError("the day-view location has no appointments")
    day: dt.date = first.start.astimezone(zone(location.time_zone)).date()
    ids = {
        str(pk)
        for pk in Appointment.objects.filter(location=location).values_list("public_id", flat=True)
    }
    # Static URLs without the collectstatic manifest (the benchmark's checkout has none; with
    # it, a URL is one dictionary lookup).
    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": PLAIN_STATIC}}
    with override_settings(STORAGES=storages), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No directory at")
        return _time_page(location=location, user=user, day=day, ids=ids, runs=runs)


def _time_page(
    *, location: Any, user: Any, day: dt.date, ids: set[str], runs: int
) -> dict[str, Any]:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    url = f"/schedule/day/?location={location.public_id}&date={day.isoformat()}"
    samples: list[float] = []
    cpu: list[float] = []
    body = b""
    gc.collect()
    # As a server worker does after loading (config/wsgi.py): what exists now is long-lived and
    # left out of the cyclic collector's full collections (here that includes the benchmark's
    # own data, which a server would not hold at all).
    gc.freeze()
    try:
        for n in range(runs + 3):
            began, began_cpu = time.perf_counter(), time.process_time()
            response = client.get(url, secure=True)
            elapsed = time.perf_counter() - began
            used = time.process_time() - began_cpu
            if response.status_code != 200:
                raise RuntimeError(f"GET {url} answered {response.status_code}")
            body = response.content
            if n >= 3:  # the first requests warm caches (templates, zone data), as a server's
                samples.append(elapsed)
                cpu.append(used)
    finally:
        gc.unfreeze()
    with CaptureQueriesContext(connection) as captured:
        client.get(url, secure=True)
    shown = set(
        re.findall(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", body.decode())
    )
    cpu_ms = summarize_ms(cpu)
    return {
        **summarize_ms(samples),
        # CPU time of this process per request (the database's own is not counted): the
        # figure to judge by when other work shares the machine
        "cpu_p50": cpu_ms["p50"],
        "cpu_p95": cpu_ms["p95"],
        "queries": len(captured.captured_queries),
        "appointments_shown": len(ids & shown),
        "kib": len(body) / 1024,
    }


# ---- docs/performance.md ---------------------------------------------------------------------


def render(database: str, section: Section, facts: list[tuple[str, str]]) -> str:
    title = TITLES[database]
    when = dict(facts).get("date (UTC)", "")
    load = dict(facts).get("load average at start (1/5/15 min)", "")
    lines = [
        f"### {title}",
        "",
        f"Run {when} UTC on {dict(facts).get('database', title)}; load average at start "
        f"{load} ({dict(facts).get('cores (nproc)', '?')} cores).",
        "",
        "| target | goal | measured | verdict |",
        "|---|---|---|---|",
    ]
    lines += [f"| {t.name} | {t.goal} | {t.measured} | {t.verdict} |" for t in section.targets]
    lines += ["", *section.lines]
    return "\n".join(lines) + "\n"


def write_docs(database: str, body: str, path: Path = PERFORMANCE_MD) -> None:
    """Replace this database's block of the Scheduling section (created when missing), leaving
    the rest of the page as it is; the file is read right before it is written."""
    text = path.read_text() if path.exists() else "# Performance\n"
    if HEADING not in text.splitlines():
        blocks = "\n\n".join(
            f"<!-- bench:scheduling-{kind}:start -->\n### {title}\n\nNot measured yet.\n"
            f"<!-- bench:scheduling-{kind}:end -->"
            for kind, title in TITLES.items()
        )
        path.write_text(text.rstrip() + f"\n\n{HEADING}\n\n{INTRO}\n{blocks}\n")
    write_section(f"scheduling-{database}", body, path)
