"""`manage.py seed_demo`: load the demo clinic (idempotent). See core/demo.py."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from core import demo


class Command(BaseCommand):
    help = (
        "Create the demo clinic: 2 locations, 12 practitioners, one user per role and synthetic "
        "patients with coverages. Idempotent: only what is missing is created."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--patients",
            type=int,
            default=demo.DEFAULT_PATIENTS,
            help=f"Top the patient count up to N (default {demo.DEFAULT_PATIENTS}).",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing when the demo users already exist (used by `make run`).",
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=demo.DEFAULT_SEED,
            help="Random seed: the same seed gives the same people.",
        )
        parser.add_argument(
            "--bulk-above",
            type=int,
            default=demo.SERVICE_PATH_MAX,
            help=(
                "Create more than this many patients with the bulk path (bulk inserts, one audit "
                f"event per batch) instead of the services (default {demo.SERVICE_PATH_MAX})."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        patients: int = options["patients"]
        if patients < 0:
            raise CommandError("--patients must be 0 or more.")
        if options["bulk_above"] < 0:
            raise CommandError("--bulk-above must be 0 or more.")
        if options["if_empty"] and demo.demo_users_exist():
            self.stdout.write("Demo data already loaded; nothing to do.")
            return
        report = demo.seed_demo(
            patients=patients,
            seed=options["seed"],
            bulk_above=options["bulk_above"],
            progress=options["verbosity"] >= 1,
        )
        self.stdout.write(
            f"Locations: {report.locations_created} created. "
            f"Practitioners: {report.practitioners_created} created. "
            f"Demo users: {report.users_created} created."
        )
        how = {"services": " through the patient services", "bulk": " in bulk"}.get(report.path, "")
        self.stdout.write(
            self.style.SUCCESS(
                f"Patients: {report.patients_created} created{how}; "
                f"{report.patients_total} in total."
            )
        )
