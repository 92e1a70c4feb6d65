"""`manage.py demo_logins`: where the demo runs and who can sign in to it."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User
from core import demo
from core.capabilities import ROLE_DEFINITIONS


class Command(BaseCommand):
    help = "Print the demo URL, the demo users with their roles, and the demo password."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="Port the demo serves on.")

    def handle(self, *args: Any, **options: Any) -> None:
        location_names = {spec["code"]: spec["name"] for spec in demo.DEMO_LOCATIONS}
        present = set(
            User.objects.filter(username__in=demo.DEMO_USERNAMES).values_list("username", flat=True)
        )
        out = self.stdout
        out.write("")
        out.write(self.style.SUCCESS(f"patientdesk is at http://127.0.0.1:{options['port']}/"))
        out.write("")
        out.write(f"  {'username':<16} {'role':<32} locations")
        for user in demo.DEMO_USERS:
            role = str(ROLE_DEFINITIONS[user.role]["name"])
            places = ", ".join(location_names[code] for code in user.locations)
            missing = "" if user.username in present else "  (not created yet: run seed_demo)"
            out.write(f"  {user.username:<16} {role:<32} {places}{missing}")
        out.write("")
        out.write(f"  Password for every demo user: {demo.DEMO_PASSWORD}")
        if settings.DEMO_MODE:
            out.write(
                "  2FA is relaxed in demo mode (PATIENTDESK_DEMO=1): roles that require TOTP "
                "sign in with the password alone."
            )
        else:
            out.write(
                "  PATIENTDESK_DEMO is not set: managers, directors, the privacy officer and the "
                "system administrator must enrol TOTP two-factor at first sign-in."
            )
        out.write("")
