"""`manage.py roles_matrix [--markdown | --check PATH]`: the role-by-capability matrix.

The matrix comes from `core.capabilities.ROLE_DEFINITIONS`, the single source the data
migrations copy into the Role table (accounts/tests/test_roles_matrix.py proves the table equals
it), so the command needs no database. `--markdown` prints docs/roles.md; `--check PATH` exits 1
when PATH differs from it.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.capabilities import ROLE_DEFINITIONS, Capability

CHECK = "✓"


def _roles() -> list[tuple[str, str, bool, frozenset[str]]]:
    """(slug, name, requires_2fa, capability values) in definition order."""
    return [
        (
            slug,
            str(spec["name"]),
            bool(spec["requires_2fa"]),
            frozenset(str(c) for c in spec["capabilities"]),  # type: ignore[attr-defined]
        )
        for slug, spec in ROLE_DEFINITIONS.items()
    ]


def _abbreviation(name: str) -> str:
    return "".join(word[0] for word in name.split()).upper()


def render_text() -> str:
    roles = _roles()
    abbreviations = [_abbreviation(name) for _, name, _, _ in roles]
    if len(set(abbreviations)) != len(abbreviations):
        abbreviations = [slug for slug, _, _, _ in roles]
    first = max(len("capability"), *(len(c.value) for c in Capability))
    widths = [max(3, len(a)) for a in abbreviations]

    def row(label: str, cells: list[str]) -> str:
        return "  ".join(
            [label.ljust(first), *(c.center(w) for c, w in zip(cells, widths, strict=True))]
        ).rstrip()

    lines = [row("capability", abbreviations), row("-" * first, ["-" * w for w in widths])]
    for capability in Capability:
        lines.append(
            row(capability.value, [CHECK if capability.value in r[3] else "" for r in roles])
        )
    lines.append(row("(requires 2FA)", ["yes" if r[2] else "" for r in roles]))
    lines.append("")
    lines.extend(
        f"{a.ljust(max(widths))}  {r[1]}" for a, r in zip(abbreviations, roles, strict=True)
    )
    return "\n".join(lines) + "\n"


def render_markdown() -> str:
    roles = _roles()
    out = [
        "# Roles and capabilities",
        "",
        "patientdesk grants access by capability, never by role name: each role grants a fixed "
        "set of capabilities, and the code checks only capabilities "
        "(`user.can(Capability.X)`). A user may hold several roles and has the union of their "
        "capabilities; patient records are further limited to the user's own locations, and "
        "anything outside them needs an audited, time-limited break-glass grant. This file is "
        "generated from `core/capabilities.py` by `python manage.py roles_matrix --markdown` "
        "(`make docs-roles`); do not edit it by hand: `make test` fails when it drifts.",
        "",
        "## Matrix",
        "",
        "| Capability | " + " | ".join(name for _, name, _, _ in roles) + " |",
        "|---|" + "|".join(":---:" for _ in roles) + "|",
    ]
    for capability in Capability:
        cells = [CHECK if capability.value in caps else "" for _, _, _, caps in roles]
        out.append(f"| `{capability.value}` | " + " | ".join(cells) + " |")
    out += ["", "## Capabilities", ""]
    out += [f"- `{c.value}`: {c.label}." for c in Capability]
    with_2fa = [name for _, name, needs, _ in roles if needs]
    without = [name for _, name, needs, _ in roles if not needs]
    out += [
        "",
        "## Two-factor sign-in",
        "",
        "These roles must confirm every sign-in with a TOTP code from an authenticator app "
        "(django-otp); until then they reach only the two-factor screens, and the APIs answer "
        "403:",
        "",
        *(f"- {name}" for name in with_2fa),
        "",
        "These roles sign in with a password alone (they may still turn two-factor sign-in on):",
        "",
        *(f"- {name}" for name in without),
        "",
        "A user holding any role of the first list needs two-factor sign-in. Only the demo "
        "(`PATIENTDESK_DEMO=1`) relaxes this, and only for its seeded users.",
    ]
    return "\n".join(out) + "\n"


class Command(BaseCommand):
    help = "Print the role-by-capability matrix (text, or the Markdown of docs/roles.md)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--markdown", action="store_true", help="Print docs/roles.md.")
        mode.add_argument(
            "--check",
            metavar="PATH",
            help="Exit 1 when PATH differs from what --markdown prints.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["check"]:
            self._check(Path(options["check"]))
        elif options["markdown"]:
            self.stdout.write(render_markdown(), ending="")
        else:
            self.stdout.write(render_text(), ending="")

    def _check(self, path: Path) -> None:
        expected = render_markdown()
        fix = "run `make docs-roles` (manage.py roles_matrix --markdown > docs/roles.md)"
        if not path.is_file():
            raise CommandError(f"{path} does not exist: {fix}.", returncode=1)
        actual = path.read_text(encoding="utf-8")
        if actual != expected:
            diff = "".join(
                difflib.unified_diff(
                    actual.splitlines(keepends=True),
                    expected.splitlines(keepends=True),
                    fromfile=str(path),
                    tofile="roles_matrix --markdown",
                )
            )
            raise CommandError(
                f"{path} is out of date with core/capabilities.py: {fix}.\n{diff}", returncode=1
            )
        self.stdout.write(f"{path} matches the role definitions.")
