"""`manage.py roles_matrix`, docs/roles.md and the Role table against ROLE_DEFINITIONS."""

from __future__ import annotations

from io import StringIO
from pathlib import Path
from typing import cast

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.management.commands.roles_matrix import render_markdown
from accounts.models import Role
from core.capabilities import ROLE_DEFINITIONS, Capability

DOC = Path(settings.BASE_DIR) / "docs" / "roles.md"


def _run(*args: str) -> str:
    out = StringIO()
    call_command("roles_matrix", *args, stdout=out)
    return out.getvalue()


def test_docs_roles_md_is_what_the_command_generates():
    assert DOC.read_text(encoding="utf-8") == render_markdown(), (
        "docs/roles.md drifted from core/capabilities.py: run `make docs-roles`"
    )


def test_check_passes_on_the_committed_document():
    assert "matches the role definitions" in _run("--check", str(DOC))


def test_check_exits_1_and_names_the_fix_when_the_document_drifted(tmp_path):
    stale = tmp_path / "roles.md"
    stale.write_text(DOC.read_text(encoding="utf-8").replace("✓", "", 1), encoding="utf-8")

    with pytest.raises(CommandError, match=r"is out of date with core/capabilities\.py") as error:
        _run("--check", str(stale))

    assert error.value.returncode == 1
    assert "make docs-roles" in str(error.value)


def test_check_exits_1_when_the_document_is_missing(tmp_path):
    with pytest.raises(CommandError, match="does not exist") as error:
        _run("--check", str(tmp_path / "absent.md"))

    assert error.value.returncode == 1


def test_text_matrix_marks_each_granted_capability():
    text = _run()
    lines = text.splitlines()
    header = lines[0]

    manage_users = next(line for line in lines if line.startswith("manage_users"))
    view_audit = next(line for line in lines if line.startswith("view_audit"))
    assert header.split()[-2:] == ["PO", "SA"]
    assert manage_users.split() == ["manage_users", "✓"]
    assert manage_users.index("✓") > header.index("PO") + 1  # in the system admin's column
    assert view_audit.split() == ["view_audit", "✓"]
    assert header.index("PO") - 1 <= view_audit.index("✓") <= header.index("PO") + 2
    assert "SA   System administrator" in text


def test_markdown_has_title_matrix_descriptions_and_two_factor_sections():
    markdown = _run("--markdown")

    assert markdown.startswith("# Roles and capabilities\n\n")
    sections = [line for line in markdown.splitlines() if line.startswith("## ")]
    assert sections == ["## Matrix", "## Capabilities", "## Two-factor sign-in"]
    for capability in Capability:
        assert f"- `{capability.value}`: {capability.label}." in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| `manage_users`"))
    granted = [
        slug
        for slug, spec in ROLE_DEFINITIONS.items()
        if Capability.MANAGE_USERS in cast(list[Capability], spec["capabilities"])
    ]
    assert row.count("✓") == len(granted) == 1
    two_factor = markdown.split("## Two-factor sign-in", 1)[1]
    assert "- System administrator" in two_factor.split("password alone", 1)[0]
    assert "- Patient service representative" in two_factor.split("password alone", 1)[1]


@pytest.mark.django_db
def test_role_table_equals_the_role_definitions():
    table = {
        role.slug: (role.name, role.requires_2fa, sorted(role.capabilities))
        for role in Role.objects.all()
    }
    defined = {
        slug: (spec["name"], spec["requires_2fa"], sorted(str(c) for c in spec["capabilities"]))
        for slug, spec in ROLE_DEFINITIONS.items()
    }

    assert table == defined
