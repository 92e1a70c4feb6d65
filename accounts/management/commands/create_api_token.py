"""`manage.py create_api_token USERNAME [--name NAME]`: make a personal API token.

The token is printed once on standard output (alone, so scripts can capture it) and stored only
as a SHA-256 fingerprint; a note goes to standard error.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import User
from accounts.services import api_token_create


class Command(BaseCommand):
    help = "Create a personal API token for USERNAME and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The user the token acts as.")
        parser.add_argument(
            "--name", default="Command-line token", help="What the token is for (max. 80)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        try:
            token, raw = api_token_create(actor=None, user=user, name=options["name"])
        except ValidationError as exc:
            reason = " ".join(exc.messages)
            raise CommandError(f"Cannot create a token for '{username}': {reason}") from None
        self.stdout.write(raw)
        self.stderr.write(
            f"Created API token '{token.name}' for {username} (starts with {token.hint}). "
            "It is shown this once: store it now. Revoke it at /accounts/tokens/."
        )
