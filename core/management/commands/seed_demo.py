"""`manage.py seed_demo`: load the demo clinic (idempotent). See core/demo.py."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from core import demo, demo_schedule
from core.models import Location


class Command(BaseCommand):
    help = (
        "Create the demo clinic: 2 locations, 12 practitioners, one user per role, synthetic "
        "patients with coverages, and the schedule (opening hours, rooms, appointment types, "
        "availability, a month of appointments, a waitlist). Idempotent: only what is missing "
        "is created."
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
            help=(
                "Do nothing when the demo users and schedule already exist (used by `make run`)."
            ),
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

        parser.add_argument(
            "--appointments",
            type=int,
            default=None,
            help=(
                "For benchmarks: top the appointment count up to N with the bulk path, over at "
                "least --practitioners practitioners and 100 days ahead plus as many days back as "
                "needed (instead of the demo month booked through the services)."
            ),
        )
        parser.add_argument(
            "--practitioners",
            type=int,
            default=demo_schedule.BENCH_PRACTITIONERS,
            help=(
                "With --appointments: add synthetic practitioners until this many are active "
                f"(default {demo_schedule.BENCH_PRACTITIONERS})."
            ),
        )

        parser.add_argument(
            "--claims",
            type=int,
            default=0,
            help=(
                "For benchmarks: add N claims of 4 charge lines each with the bulk path "
                "(besides the demo's claims in every status)."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        patients: int = options["patients"]
        if patients < 0:
            raise CommandError("--patients must be 0 or more.")
        if options["appointments"] is not None and options["appointments"] < 0:
            raise CommandError("--appointments must be 0 or more.")
        if options["practitioners"] < 1:
            raise CommandError("--practitioners must be 1 or more.")
        if options["bulk_above"] < 0:
            raise CommandError("--bulk-above must be 0 or more.")
        if options["claims"] < 0:
            raise CommandError("--claims must be 0 or more.")
        if options["if_empty"] and demo.demo_users_exist():
            # Loaded before: add only what a later version brought (each step runs once).
            self.stdout.write("Demo data already loaded; adding only parts that are missing.")
            if not demo_schedule.schedule_exists():
                self._seed_schedule(options, options["verbosity"] >= 1)
            self._seed_billing(options, options["verbosity"] >= 1)
            return
        progress = options["verbosity"] >= 1
        report = demo.seed_demo(
            patients=patients,
            seed=options["seed"],
            bulk_above=options["bulk_above"],
            progress=progress,
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
        self._seed_schedule(options, progress)
        self._seed_billing(options, progress)

    def _seed_billing(self, options: dict[str, Any], progress: bool) -> None:
        from billing.demo import seed_billing
        from patientaccounts.demo import seed_accounts
        from remittance.demo import seed_remittances

        billing = seed_billing(claims=options["claims"], progress=progress)
        remittances = seed_remittances(progress=progress)
        accounts = seed_accounts(progress=progress)
        self.stdout.write(
            "Billing: "
            + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in billing.items())
        )
        self.stdout.write(
            "Remittances: "
            + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in remittances.items())
        )
        self.stdout.write(
            "Patient accounts: "
            + ", ".join(f"{key.replace('_', ' ')} {value}" for key, value in accounts.items())
        )

    def _seed_schedule(self, options: dict[str, Any], progress: bool) -> None:
        locations = {
            location.code: location
            for location in Location.objects.filter(code__in=demo.BOTH).order_by("code")
        }
        loader = User.objects.get(username=demo.LOADER_USERNAME)
        report = demo_schedule.seed_schedule(
            actor=loader,
            locations=locations,
            appointments=options["appointments"],
            practitioners=options["practitioners"],
            seed=options["seed"],
            progress=progress,
        )
        self.stdout.write(
            f"Schedule: {report.opening_hours_created} opening hours, "
            f"{report.resources_created} rooms and equipment, "
            f"{report.types_created} appointment types, {report.rules_created} availability "
            f"rules, {report.exceptions_created} exceptions, "
            f"{report.practitioners_created} extra practitioners created."
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Appointments: {report.appointments_created} created "
                f"({report.booked_through_services} through the scheduling services, "
                f"{report.written_in_bulk} in bulk; {report.confirmed} confirmed, "
                f"{report.checked_in} checked in, {report.cancelled} cancelled through the "
                f"services); {report.appointments_total} in total. "
                f"Waitlist: {report.waitlist_created} added."
            )
        )
