"""Shared pieces of the benchmarks: the fresh database, machine facts, timing, the docs section."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent
PERFORMANCE_MD = REPO / "docs" / "performance.md"


@dataclass
class Target:
    """One figure the issue sets a bar for."""

    name: str
    goal: str
    measured: str
    passed: bool | None  # None: could not be measured

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "N/A"}[self.passed]


@dataclass
class Section:
    """What one benchmark reports: its target line(s) and the figures and notes behind them."""

    title: str
    targets: list[Target] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)  # Markdown lines for docs/performance.md


def percentile(samples: list[float], pct: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def summarize_ms(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99/mean/max in milliseconds of samples given in seconds."""
    return {
        "n": len(samples),
        "p50": percentile(samples, 50) * 1000,
        "p95": percentile(samples, 95) * 1000,
        "p99": percentile(samples, 99) * 1000,
        "mean": statistics.fmean(samples) * 1000 if samples else float("nan"),
        "max": max(samples) * 1000 if samples else float("nan"),
    }


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def say(message: str = "") -> None:
    print(message, flush=True)


# --- the fresh database ---------------------------------------------------------------------


@contextmanager
def fresh_database(kind: str) -> Iterator[str]:
    """Point DATABASE_URL at a new, empty database for this run; remove it afterwards."""
    if kind == "sqlite":
        handle, path = tempfile.mkstemp(prefix="patientdesk-bench-", suffix=".sqlite3")
        os.close(handle)
        os.unlink(path)
        os.environ["DATABASE_URL"] = f"sqlite:///{path}"
        try:
            yield path
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(path + suffix).unlink(missing_ok=True)
        return
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith(("postgres://", "postgresql://")):
        sys.exit(
            "bench: --database postgresql needs DATABASE_URL pointing at a PostgreSQL server; "
            "run it inside scripts/with_postgres.sh (as `make bench` does)."
        )
    import psycopg

    name = f"patientdesk_bench_{os.getpid()}"
    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(base)
    os.environ["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
    try:
        yield name
    finally:
        from django.db import connections

        connections.close_all()
        os.environ["DATABASE_URL"] = base
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- the machine ----------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    match = re.search(r"^model name\s*:\s*(.+)$", text, re.MULTILINE)
    return match.group(1).strip() if match else "unknown"


def _ram() -> str:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return "unknown"
    match = re.search(r"^MemTotal:\s*(\d+) kB", text, re.MULTILINE)
    return f"{int(match.group(1)) / 1024 / 1024:.1f} GiB" if match else "unknown"


def database_version() -> str:
    from django.db import connection

    if connection.vendor == "sqlite":
        import sqlite3

        return f"SQLite {sqlite3.sqlite_version}"
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        row = cursor.fetchone()
    return f"PostgreSQL {row[0] if row else '?'}"


def machine_facts() -> list[tuple[str, str]]:
    import django

    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return [
        ("date (UTC)", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M")),
        ("CPU", _cpu_model()),
        ("cores (nproc)", str(os.cpu_count())),
        ("RAM", _ram()),
        ("load average at start (1/5/15 min)", " / ".join(f"{value:.2f}" for value in load)),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("Django", django.get_version()),
        ("database", database_version()),
    ]


# --- docs/performance.md ----------------------------------------------------------------------


def _markers(kind: str) -> tuple[str, str]:
    return f"<!-- bench:{kind}:start -->", f"<!-- bench:{kind}:end -->"


def write_section(kind: str, body: str, path: Path = PERFORMANCE_MD) -> None:
    """Replace this database's section of docs/performance.md, keeping everything else."""
    start, end = _markers(kind)
    block = f"{start}\n{body.rstrip()}\n{end}"
    text = path.read_text() if path.exists() else "# Performance\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text)
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def in_fresh_process(module: str, function: str, **kwargs: Any) -> Any:
    """`module.function(**kwargs)` in a new interpreter (multiprocessing "spawn"), with Django
    set up on the same database: the state of the process that ran earlier benchmarks (big
    libraries' data, GC pressure) does not leak into this one, as it would not into a web or
    background worker of the deployed system."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(_call_in_child, (module, function, kwargs))


def _call_in_child(module: str, function: str, kwargs: dict[str, Any]) -> Any:
    import importlib

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    return getattr(importlib.import_module(module), function)(**kwargs)
