"""FHIR import throughput: `manage.py import_fhir` over generated Synthea-like bundles."""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
import time
import uuid
from io import StringIO
from pathlib import Path
from typing import Any

from bench.common import REPO, Section, Target, say
from bench.registration import server_cpu_note, server_cpu_seconds

TARGET_PER_SECOND = 500.0
FIXTURES = REPO.parent / "shared" / "fixtures" / "fhir"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def fixture_dir() -> Path:
    for candidate in (FIXTURES, Path("/work/shared/fixtures/fhir")):
        if candidate.is_dir() and any(candidate.glob("*.json")):
            return candidate
    raise FileNotFoundError("no FHIR fixtures (shared/fixtures/fhir/*.json) beside the repository")


def command_available() -> bool:
    from django.core.management import get_commands

    return "import_fhir" in get_commands()


def _coverage_resource(patient_ref: str, coverage: dict[str, Any], number: int) -> dict[str, Any]:
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'coverage-{number}')}",
        "resource": {
            "resourceType": "Coverage",
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"coverage-{number}")),
            "identifier": [{"system": "urn:patientdesk:bench:coverage", "value": f"cov-{number}"}],
            "status": "active",
            "subscriberId": coverage["member_id"],
            "beneficiary": {"reference": patient_ref},
            "relationship": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship",
                        "code": coverage["relationship"],
                    }
                ]
            },
            "period": {"start": coverage["effective_start"].isoformat()},
            "payor": [{"display": coverage["payer_name"]}],
            "class": [
                {
                    "type": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/coverage-class",
                                "code": "group",
                            }
                        ]
                    },
                    "value": coverage["group_number"] or "NONE",
                    "name": coverage["plan_name"],
                }
            ],
            "order": coverage["order"],
        },
        "request": {"method": "POST", "url": "Coverage"},
    }


def generate_bundles(count: int, directory: Path) -> list[Path]:
    """`count` bundles cut from the Synthea fixtures: every UUID renewed, the person changed."""
    from core.demo import demo_patient

    templates = [path.read_text() for path in sorted(fixture_dir().glob("*.json"))]
    paths: list[Path] = []
    for number in range(count):
        text = templates[number % len(templates)]
        mapping: dict[str, str] = {}

        def renew(match: re.Match[str], n: int = number, seen: dict[str, str] = mapping) -> str:
            old = match.group(0)
            if old not in seen:
                seen[old] = str(uuid.uuid5(uuid.NAMESPACE_OID, f"{old}-{n}"))
            return seen[old]

        bundle = json.loads(_UUID.sub(renew, text))
        person = demo_patient(20_000_000 + number, seed=211)
        values = person.values
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] != "Patient":
                continue
            resource["name"] = [
                {
                    "use": "official",
                    "family": values["family_name"],
                    "given": [values["given_name"]],
                }
            ]
            resource["birthDate"] = values["birth_date"].isoformat()
            resource["gender"] = {"F": "female", "M": "male"}.get(values["sex_at_birth"], "unknown")
            resource["telecom"] = [
                {"system": "phone", "value": values["phone_mobile"], "use": "mobile"}
            ]
            for identifier in resource.get("identifier", []):
                system = identifier.get("system", "")
                if system.endswith("us-ssn"):
                    identifier["value"] = f"999-{number // 10000 % 100:02d}-{number % 10000:04d}"
                elif "passport" in system.lower():
                    identifier["value"] = f"X{number:08d}X"
                elif system.startswith("urn:oid:2.16.840.1.113883.4.3"):
                    identifier["value"] = f"S{number:08d}"
            address = copy.deepcopy(resource.get("address") or [{}])
            address[0].update(
                line=[values["address_line1"]],
                city=values["city"],
                state=values["state"],
                postalCode=values["postal_code"],
                country="US",
            )
            resource["address"] = address
            if person.coverages:
                bundle["entry"].append(
                    _coverage_resource(entry["fullUrl"], person.coverages[0], number)
                )
            break
        path = directory / f"bundle_{number:06d}.json"
        path.write_text(json.dumps(bundle))
        paths.append(path)
    return paths


def run(*, count: int, full: bool) -> Section:
    from django.core.management import call_command

    section = Section("FHIR import")
    if not command_available():
        message = (
            "import_fhir: not available (no `import_fhir` management command in this tree yet); "
            "skipped"
        )
        say(message)
        section.lines.append(message + ".")
        section.targets.append(
            Target("import_fhir", f">= {TARGET_PER_SECOND:.0f} patients/s", "not available", None)
        )
        return section
    with tempfile.TemporaryDirectory(prefix="patientdesk-bench-fhir-") as tmp:
        paths = generate_bundles(count, Path(tmp))
        size_mb = sum(path.stat().st_size for path in paths) / 1e6
        out, err = StringIO(), StringIO()
        server_before = server_cpu_seconds()
        before = os.times()
        start = time.perf_counter()
        call_command("import_fhir", *map(str, paths), "--json", stdout=out, stderr=err)
        elapsed = time.perf_counter() - start
        after = os.times()
        server = server_cpu_note(server_before, server_cpu_seconds(), count)
    # CPU time of this process, and of the reading processes the command forks (ended by then).
    own_cpu = (after.user + after.system - before.user - before.system) / count * 1000
    readers_cpu = (
        (
            after.children_user
            + after.children_system
            - before.children_user
            - before.children_system
        )
        / count
        * 1000
    )
    text = out.getvalue().strip()
    try:
        summary = json.loads(text[text.index("{") :])
    except ValueError:
        summary = {}
    imported = int(summary.get("patients_created", 0)) + int(summary.get("patients_updated", 0))
    rate = imported / elapsed if elapsed else 0.0
    errors = summary.get("errors", [])
    say(
        f"import_fhir: {imported} of {count} patients in {elapsed:.2f} s = {rate:.0f} patients/s "
        f"({summary.get('coverages', '?')} coverages, {summary.get('skipped', '?')} skipped, "
        f"{len(errors)} errors; CPU per patient: {own_cpu:.2f} ms in this process, "
        f"{readers_cpu:.2f} ms in reading processes{server})"
    )
    section.lines += [
        f"`import_fhir --json` over {count} Synthea bundles ({size_mb:.1f} MB; each a full "
        "Synthea R4 transaction bundle of ~66 resources cut from shared/fixtures/fhir with every "
        "UUID renewed, a new name, birth date, phone, address and identifiers, and one Coverage "
        f"added): {imported} patients created or updated, {summary.get('coverages', '?')} "
        f"coverages, {summary.get('skipped', '?')} skipped, {len(errors)} errors, in "
        f"{elapsed:.2f} s: **{rate:.0f} patients/s**. CPU time per patient: {own_cpu:.2f} ms in "
        f"the benchmark process (the command's writing side), {readers_cpu:.2f} ms in the "
        f"processes that read the files{server}.",
    ]
    if errors:
        section.lines.append(f"First error reported: `{str(errors[0])[:200]}`")
    section.targets.append(
        Target(
            "import_fhir",
            f">= {TARGET_PER_SECOND:.0f} patients/s",
            f"{rate:.0f} patients/s",
            (rate >= TARGET_PER_SECOND and imported == count) if full else None,
        )
    )
    return section
