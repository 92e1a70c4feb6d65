"""The demo clinic: locations, practitioners, one user per role and synthetic patients.

`manage.py seed_demo` calls `seed_demo()`. Everything here is idempotent: locations, practitioners
and users are looked up by their natural keys (code, NPI, username) and only missing ones are
created; patients are "topped up" to the requested number, so a second run creates nothing.

Patients are generated from (seed, index) alone, so the same seed gives the same people whatever
the batch size. Up to SERVICE_PATH_MAX new patients go through `patients.services`
(`patient_register` with its duplicate check, `coverage_save`, `flag_add`), each with its own
audit rows. Larger runs (benchmarks: a million patients) take the bulk path: `bulk_create` in
batches inside transactions, MRNs from the same locked counter, and one `patient.bulk_seed` audit
event per batch naming the fields written.

Both paths act as the service account LOADER_USERNAME ("demo-loader"): a medical office
administrator at both demo locations with an unusable password, so the seeded records are
attributed to the loading process in the audit trail, not to a person who can sign in.

All demo data is fictional: names are drawn from common US names, e-mail addresses are at
example.org, and phone numbers are in the 555 exchange (lines 0000-8999; the benchmark's new
registrations use 9000-9999), which is not used for subscriber lines.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from tqdm import tqdm

from accounts.models import Role, User
from audit.models import Action, Category
from audit.services import record
from core.models import Location
from core.text import digits, fold
from patients.models import Coverage, Patient, PatientFlag, PatientIdentifier
from patients.services import (
    DuplicateCandidatesFound,
    coverage_save,
    flag_add,
    mrn_allocate,
    patient_register,
)
from scheduling.models import Practitioner
from scheduling.validators import make_npi

# Shown by `manage.py demo_logins` and in README.md. 12+ characters, passes Django's validators.
DEMO_PASSWORD = "maple-clinic-2026"  # noqa: S105  (the published demo password)

LOADER_USERNAME = "demo-loader"
LOADER_ROLE = "medical_office_admin"
DEFAULT_PATIENTS = 2000
DEFAULT_SEED = 1
SERVICE_PATH_MAX = 5000
BULK_BATCH_SIZE = 5000
SEED_PHONE_LINES = 9000  # the seed uses 555-0000..555-8999
REFERENCE_DATE = dt.date(2025, 1, 1)  # birth dates and coverage dates are drawn before this


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    first_name: str
    last_name: str
    locations: tuple[str, ...]


BOTH = ("main", "riverside")
DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("frontdesk", "patient_service_rep", "Rosa", "Delgado", ("main",)),
    DemoUser("officeadmin", "medical_office_admin", "Daniel", "Okafor", ("main",)),
    DemoUser("officemanager", "medical_office_manager", "Karen", "Whitfield", BOTH),
    DemoUser("billing", "billing_specialist", "Tom", "Nguyen", BOTH),
    DemoUser("psmanager", "patient_services_manager", "Aisha", "Rahman", BOTH),
    DemoUser("servicedirector", "service_director", "Paul", "Lindqvist", BOTH),
    DemoUser("meddirector", "medical_director", "Helen", "Park", BOTH),
    DemoUser("privacy", "privacy_officer", "Grace", "O'Connell", BOTH),
    DemoUser("sysadmin", "system_admin", "Victor", "Almeida", BOTH),
)
DEMO_USERNAMES = tuple(user.username for user in DEMO_USERS)

DEMO_LOCATIONS: tuple[dict[str, str], ...] = (
    {
        "code": "main",
        "name": "Main Street Clinic",
        "time_zone": "America/New_York",
        "address_line1": "120 Main Street",
        "city": "Hartford",
        "state": "CT",
        "postal_code": "06103",
        "phone": "+18605550100",
    },
    {
        "code": "riverside",
        "name": "Riverside Hospital Outpatient",
        "time_zone": "America/New_York",
        "address_line1": "45 Riverside Drive",
        "city": "Middletown",
        "state": "CT",
        "postal_code": "06457",
        "phone": "+18605550150",
    },
)

# (given, family, credentials, specialty, NPI body (9 digits), locations, accepts new patients)
DEMO_PRACTITIONERS: tuple[tuple[str, str, str, str, str, tuple[str, ...], bool], ...] = (
    ("Elena", "Marquez", "MD", "Family Medicine", "150000001", ("main",), True),
    ("James", "Whitaker", "MD", "Internal Medicine", "150000002", ("main",), False),
    ("Priya", "Raman", "DO", "Family Medicine", "150000003", ("main",), True),
    ("Samuel", "Osei", "NP", "Family Medicine", "150000004", ("main",), True),
    ("Chloé", "Fournier", "MD", "Pediatrics", "150000005", ("main",), True),
    ("Michael", "Brennan", "MD", "Cardiology", "150000006", ("riverside",), True),
    ("Li", "Wei", "MD", "Endocrinology", "150000007", ("riverside",), True),
    ("Sarah", "Goldberg", "MD", "Obstetrics and Gynecology", "150000008", ("riverside",), True),
    ("Marcus", "Johnson", "PA", "Orthopaedic Surgery", "150000009", ("riverside",), False),
    ("Ana", "Núñez-Rivera", "CNM", "Midwifery", "150000010", BOTH, True),
    ("David", "Kowalski", "MD", "Dermatology", "150000011", BOTH, True),
    ("Fatima", "Haddad", "NP", "Behavioral Health", "150000012", BOTH, True),
)

# --- names ---------------------------------------------------------------------------------
# Common US family names with rough relative frequencies, plus accented and hyphenated ones.
FAMILY_NAMES: tuple[tuple[str, int], ...] = (
    ("Smith", 100), ("Johnson", 80), ("Williams", 70), ("Brown", 65), ("Jones", 62),
    ("Garcia", 60), ("Miller", 58), ("Davis", 56), ("Rodriguez", 54), ("Martinez", 52),
    ("Hernandez", 50), ("Lopez", 48), ("Gonzalez", 46), ("Wilson", 44), ("Anderson", 42),
    ("Thomas", 40), ("Taylor", 40), ("Moore", 38), ("Jackson", 38), ("Martin", 37),
    ("Lee", 37), ("Perez", 36), ("Thompson", 36), ("White", 35), ("Harris", 34),
    ("Sanchez", 33), ("Clark", 32), ("Ramirez", 31), ("Lewis", 31), ("Robinson", 30),
    ("Walker", 30), ("Young", 29), ("Allen", 29), ("King", 28), ("Wright", 28),
    ("Scott", 27), ("Torres", 27), ("Nguyen", 27), ("Hill", 26), ("Flores", 26),
    ("Green", 25), ("Adams", 25), ("Nelson", 24), ("Baker", 24), ("Hall", 23),
    ("Rivera", 23), ("Campbell", 22), ("Mitchell", 22), ("Carter", 22), ("Roberts", 21),
    ("Phillips", 20), ("Evans", 20), ("Turner", 19), ("Diaz", 19), ("Parker", 19),
    ("Cruz", 18), ("Edwards", 18), ("Collins", 18), ("Reyes", 17), ("Stewart", 17),
    ("Morris", 17), ("Morales", 16), ("Murphy", 16), ("Cook", 16), ("Rogers", 15),
    ("Gutierrez", 15), ("Ortiz", 15), ("Morgan", 15), ("Cooper", 14), ("Peterson", 14),
    ("Bailey", 14), ("Reed", 14), ("Kelly", 13), ("Howard", 13), ("Ramos", 13),
    ("Kim", 13), ("Cox", 12), ("Ward", 12), ("Richardson", 12), ("Watson", 12),
    ("Brooks", 11), ("Chavez", 11), ("Wood", 11), ("James", 11), ("Bennett", 11),
    ("Gray", 10), ("Mendoza", 10), ("Ruiz", 10), ("Hughes", 10), ("Price", 10),
    ("Alvarez", 10), ("Castillo", 9), ("Sanders", 9), ("Patel", 9), ("Myers", 9),
    ("Long", 9), ("Ross", 9), ("Foster", 9), ("Jimenez", 8), ("Powell", 8),
    ("Sullivan", 8), ("Russo", 8), ("Esposito", 7), ("Kowalski", 7), ("Nowak", 6),
    ("Tran", 7), ("Pham", 6), ("Chen", 8), ("Wang", 7), ("Singh", 7), ("Shah", 5),
    ("Cohen", 6), ("Murray", 7), ("O'Brien", 6), ("O'Connor", 5), ("McCarthy", 5),
    ("D'Angelo", 3), ("DeLuca", 3), ("St. Pierre", 2), ("Van der Berg", 2),
    ("Núñez", 5), ("Muñoz", 6), ("Peña", 5), ("Ibáñez", 3), ("Gómez", 6), ("Hernández", 4),
    ("Rodríguez", 4), ("Martínez", 4), ("Pérez", 3), ("Sánchez", 3), ("Beaulieu", 2),
    ("Lefèvre", 2), ("Gagné", 2), ("Müller", 2), ("Šimić", 1), ("Nováková", 1),
    ("García-López", 3), ("Smith-Jones", 2), ("Ortiz-Rivera", 2), ("Santiago-Cruz", 2),
    ("Williams-Brown", 2), ("Hoxha", 3), ("Berisha", 2), ("Hodžić", 1), ("Okafor", 2),
    ("Mensah", 2), ("Haddad", 2), ("Nakamura", 2), ("Silva", 4), ("Santos", 4),
    ("Pereira", 3), ("Costa", 3), ("Joseph", 4), ("Jean-Baptiste", 2), ("Pierre", 3),
)  # fmt: skip

FEMALE_NAMES: tuple[tuple[str, int], ...] = (
    ("Mary", 40), ("Patricia", 30), ("Jennifer", 30), ("Linda", 28), ("Elizabeth", 28),
    ("Barbara", 25), ("Susan", 25), ("Jessica", 24), ("Sarah", 24), ("Karen", 22),
    ("Lisa", 22), ("Nancy", 20), ("Betty", 18), ("Margaret", 18), ("Sandra", 18),
    ("Ashley", 18), ("Kimberly", 17), ("Emily", 17), ("Donna", 16), ("Michelle", 16),
    ("Carol", 15), ("Amanda", 15), ("Melissa", 14), ("Deborah", 14), ("Stephanie", 14),
    ("Rebecca", 13), ("Laura", 13), ("Sharon", 12), ("Cynthia", 12), ("Kathleen", 12),
    ("Amy", 11), ("Angela", 11), ("Anna", 11), ("Brenda", 10), ("Emma", 10),
    ("Olivia", 10), ("Sophia", 10), ("Isabella", 9), ("Ava", 9), ("Mia", 9),
    ("Charlotte", 8), ("Amelia", 8), ("Harper", 7), ("Evelyn", 7), ("Abigail", 7),
    ("Maria", 14), ("Guadalupe", 4), ("Lucía", 4), ("Sofía", 4), ("Valentina", 4),
    ("Ximena", 2), ("Josefina", 2), ("Zoë", 3), ("Renée", 3), ("Chloé", 2), ("Noémie", 1),
    ("Anne-Marie", 2), ("Mary-Kate", 1), ("Thu", 2), ("Mei", 2), ("Priya", 3),
    ("Aaliyah", 3), ("Imani", 2), ("Fatima", 3), ("Leila", 2), ("Yasmin", 2),
    ("Ana", 5), ("Katherine", 8), ("Victoria", 6), ("Grace", 6), ("Hannah", 6),
)  # fmt: skip

MALE_NAMES: tuple[tuple[str, int], ...] = (
    ("James", 40), ("Robert", 38), ("John", 38), ("Michael", 36), ("David", 34),
    ("William", 32), ("Richard", 28), ("Joseph", 28), ("Thomas", 26), ("Christopher", 24),
    ("Charles", 24), ("Daniel", 22), ("Matthew", 22), ("Anthony", 20), ("Mark", 20),
    ("Donald", 18), ("Steven", 18), ("Paul", 17), ("Andrew", 17), ("Joshua", 16),
    ("Kenneth", 15), ("Kevin", 15), ("Brian", 15), ("George", 14), ("Timothy", 14),
    ("Ronald", 13), ("Edward", 13), ("Jason", 13), ("Jeffrey", 12), ("Ryan", 12),
    ("Jacob", 12), ("Gary", 11), ("Nicholas", 11), ("Eric", 11), ("Jonathan", 11),
    ("Liam", 10), ("Noah", 10), ("Oliver", 9), ("Elijah", 9), ("Lucas", 9),
    ("Mason", 8), ("Logan", 8), ("Ethan", 8), ("Aiden", 7), ("Jackson", 7),
    ("Jose", 12), ("Luis", 8), ("Carlos", 8), ("Juan", 8), ("Miguel", 6), ("Alejandro", 4),
    ("José", 5), ("Andrés", 3), ("Joaquín", 2), ("André", 3), ("René", 2), ("Jean-Luc", 1),
    ("Jean-Pierre", 1), ("Minh", 2), ("Wei", 2), ("Raj", 3), ("Arjun", 2), ("Omar", 3),
    ("Ahmed", 3), ("Malik", 2), ("Darnell", 2), ("Kwame", 1), ("Alexander", 8),
    ("Benjamin", 8), ("Samuel", 7), ("Henry", 6), ("Patrick", 6), ("Sean", 5),
)  # fmt: skip

NICKNAMES = {
    "William": "Bill", "Robert": "Bob", "Elizabeth": "Liz", "Katherine": "Kate",
    "James": "Jim", "Margaret": "Peggy", "Richard": "Rick", "Jennifer": "Jen",
    "Michael": "Mike", "Christopher": "Chris", "Alexander": "Alex", "Victoria": "Tori",
    "Josefina": "Josie", "Patricia": "Trish", "Joseph": "Joe", "Anthony": "Tony",
    "Guadalupe": "Lupe", "Benjamin": "Ben", "Samuel": "Sam", "Rebecca": "Becky",
}  # fmt: skip

# --- places --------------------------------------------------------------------------------
# (city, state, ZIP codes, area codes, weight)
CITIES: tuple[tuple[str, str, tuple[str, ...], tuple[int, ...], int], ...] = (
    ("Hartford", "CT", ("06103", "06105", "06106", "06112", "06114", "06120"), (860, 959), 120),
    ("West Hartford", "CT", ("06107", "06110", "06117", "06119"), (860, 959), 60),
    ("East Hartford", "CT", ("06108", "06118"), (860, 959), 40),
    ("Wethersfield", "CT", ("06109",), (860, 959), 25),
    ("Newington", "CT", ("06111",), (860, 959), 20),
    ("Manchester", "CT", ("06040", "06042"), (860, 959), 30),
    ("Glastonbury", "CT", ("06033",), (860, 959), 20),
    ("Bloomfield", "CT", ("06002",), (860, 959), 15),
    ("Windsor", "CT", ("06095",), (860, 959), 18),
    ("New Britain", "CT", ("06051", "06052", "06053"), (860, 959), 40),
    ("Middletown", "CT", ("06457",), (860, 959), 60),
    ("Cromwell", "CT", ("06416",), (860, 959), 15),
    ("Rocky Hill", "CT", ("06067",), (860, 959), 15),
    ("Bristol", "CT", ("06010",), (860, 959), 25),
    ("Enfield", "CT", ("06082",), (860, 959), 18),
    ("Vernon", "CT", ("06066",), (860, 959), 12),
    ("Southington", "CT", ("06489",), (860, 959), 15),
    ("New Haven", "CT", ("06510", "06511", "06513", "06515"), (203, 475), 30),
    ("Meriden", "CT", ("06450", "06451"), (203, 475), 25),
    ("Wallingford", "CT", ("06492",), (203, 475), 15),
    ("Waterbury", "CT", ("06702", "06705", "06708"), (203, 475), 15),
    ("Springfield", "MA", ("01103", "01104", "01108", "01109"), (413,), 25),
    ("Worcester", "MA", ("01602", "01604", "01605"), (508, 774), 10),
    ("Boston", "MA", ("02108", "02115", "02118", "02124"), (617, 857), 10),
    ("Providence", "RI", ("02903", "02906", "02908"), (401,), 12),
    ("Albany", "NY", ("12203", "12206"), (518,), 6),
    ("New York", "NY", ("10025", "10027", "10031"), (212, 646, 917), 12),
    ("Brooklyn", "NY", ("11215", "11226"), (718, 347, 929), 8),
    ("Newark", "NJ", ("07102", "07104"), (973, 862), 5),
    ("Jersey City", "NJ", ("07302", "07306"), (201, 551), 5),
    ("Philadelphia", "PA", ("19103", "19146"), (215, 267), 4),
    ("Baltimore", "MD", ("21201", "21218"), (410, 443), 3),
    ("Washington", "DC", ("20001", "20009"), (202,), 3),
    ("Miami", "FL", ("33125", "33130"), (305, 786), 4),
    ("Orlando", "FL", ("32801", "32803"), (407, 689), 3),
    ("Atlanta", "GA", ("30303", "30318"), (404, 470, 678), 3),
    ("Chicago", "IL", ("60614", "60625"), (312, 773, 872), 3),
    ("Houston", "TX", ("77002", "77036"), (713, 832, 281), 3),
    ("Dallas", "TX", ("75201", "75208"), (214, 469, 972), 2),
    ("Phoenix", "AZ", ("85004", "85016"), (602, 480), 2),
    ("Los Angeles", "CA", ("90012", "90026"), (213, 323), 3),
    ("San Diego", "CA", ("92101", "92104"), (619, 858), 2),
    ("Seattle", "WA", ("98101", "98122"), (206,), 2),
    ("Denver", "CO", ("80202", "80205"), (303, 720), 2),
    ("Charlotte", "NC", ("28202", "28205"), (704, 980), 2),
    ("Nashville", "TN", ("37203", "37206"), (615, 629), 2),
    ("Columbus", "OH", ("43215", "43201"), (614,), 2),
    ("Detroit", "MI", ("48226", "48207"), (313,), 2),
    ("Minneapolis", "MN", ("55401", "55408"), (612,), 1),
    ("Portland", "ME", ("04101", "04103"), (207,), 2),
    ("Burlington", "VT", ("05401",), (802,), 1),
    ("Manchester", "NH", ("03101", "03104"), (603,), 2),
)  # fmt: skip

STREETS = (
    "Main", "Oak", "Maple", "Elm", "Washington", "Park", "Church", "High", "Pine", "Cedar",
    "Franklin", "Prospect", "Farmington", "Asylum", "Albany", "Wethersfield", "Broad", "Center",
    "Spring", "Summit", "Woodland", "Sycamore", "Highland", "Garden", "Mill", "River",
    "Lincoln", "Jefferson", "Madison", "Adams", "Chestnut", "Walnut", "Willow", "Laurel",
    "Orchard", "Lakeview", "Hillside", "Meadow", "Bushnell", "Capitol", "Sigourney",
)  # fmt: skip
STREET_SUFFIXES = ("Street", "Avenue", "Road", "Drive", "Lane", "Court", "Place", "Boulevard")

LANGUAGES: tuple[tuple[str, int], ...] = (
    ("Spanish", 55), ("Portuguese", 8), ("Polish", 6), ("Vietnamese", 5),
    ("Mandarin Chinese", 5), ("Haitian Creole", 5), ("Albanian", 4), ("Bosnian", 3),
    ("Arabic", 4), ("Russian", 3), ("Italian", 2),
)  # fmt: skip

RELATIONS = ("Spouse", "Partner", "Mother", "Father", "Daughter", "Son", "Sister", "Brother")

FLAG_NOTES = {
    "interpreter": "Book an interpreter for visits.",
    "fall_risk": "Offer a wheelchair at check-in.",
    "behavioural": "Notify the provider before rooming.",
}

# --- payers --------------------------------------------------------------------------------
_LETTERS = "ACDEFGHJKMNPQRTUVWXY"  # Medicare MBI letters (no S, L, O, I, B, Z)


def _mbi(rng: random.Random) -> str:
    """A Medicare Beneficiary Identifier in the shape CMS specifies (11 characters)."""
    alnum = _LETTERS + "0123456789"
    return "".join(
        (
            str(rng.randint(1, 9)),
            rng.choice(_LETTERS),
            rng.choice(alnum),
            str(rng.randint(0, 9)),
            rng.choice(_LETTERS),
            rng.choice(alnum),
            str(rng.randint(0, 9)),
            rng.choice(_LETTERS),
            rng.choice(_LETTERS),
            str(rng.randint(0, 9)),
            str(rng.randint(0, 9)),
        )
    )


def _digits(rng: random.Random, count: int) -> str:
    return f"{rng.randrange(10**count):0{count}d}"


def _payer(rng: random.Random, payer: str) -> dict[str, Any]:
    """Payer name, payer id, plan, member id and group number, shaped like each payer's."""
    if payer == "medicare":
        return {
            "payer_name": "Medicare",
            "payer_identifier": "13102",
            "plan_name": "Medicare Part B",
            "member_id": _mbi(rng),
            "group_number": "",
        }
    if payer == "medicaid":
        return {
            "payer_name": "Medicaid",
            "payer_identifier": "CTMCD",
            "plan_name": "HUSKY Health (Connecticut Medicaid)",
            "member_id": _digits(rng, 9),
            "group_number": "",
        }
    if payer == "aetna":
        return {
            "payer_name": "Aetna",
            "payer_identifier": "60054",
            "plan_name": rng.choice(("Aetna Choice POS II", "Aetna Open Access Managed Choice")),
            "member_id": "W" + _digits(rng, 9),
            "group_number": _digits(rng, 6) + "-" + _digits(rng, 3),
        }
    if payer == "bcbs":
        prefix = rng.choice(("YRP", "JQU", "XDL", "ZGC"))
        return {
            "payer_name": "Blue Cross Blue Shield",
            "payer_identifier": "00060",
            "plan_name": rng.choice(("Anthem Blue Access PPO", "Anthem HMO Pathway")),
            "member_id": prefix + _digits(rng, 9),
            "group_number": _digits(rng, 6),
        }
    if payer == "uhc":
        return {
            "payer_name": "UnitedHealthcare",
            "payer_identifier": "87726",
            "plan_name": rng.choice(("UnitedHealthcare Choice Plus", "UnitedHealthcare Navigate")),
            "member_id": _digits(rng, 9),
            "group_number": _digits(rng, 6),
        }
    if payer == "uhc_supplement":
        return {
            "payer_name": "UnitedHealthcare",
            "payer_identifier": "36273",
            "plan_name": "AARP Medicare Supplement Plan G",
            "member_id": _digits(rng, 11),
            "group_number": "",
        }
    if payer == "cigna":
        return {
            "payer_name": "Cigna",
            "payer_identifier": "62308",
            "plan_name": "Cigna Open Access Plus",
            "member_id": "U" + _digits(rng, 8) + "01",
            "group_number": _digits(rng, 7),
        }
    if payer == "humana":
        return {
            "payer_name": "Humana",
            "payer_identifier": "61101",
            "plan_name": rng.choice(("Humana Gold Plus HMO", "Humana Choice PPO")),
            "member_id": "H" + _digits(rng, 8),
            "group_number": "",
        }
    raise ValueError(f"unknown payer {payer!r}")


# --- the generator -------------------------------------------------------------------------


def _weighted(pairs: tuple[tuple[Any, int], ...]) -> tuple[list[Any], list[int]]:
    items = [item for item, _ in pairs]
    cumulative = list(itertools.accumulate(weight for _, weight in pairs))
    return items, cumulative


_FAMILY = _weighted(FAMILY_NAMES)
_FEMALE = _weighted(FEMALE_NAMES)
_MALE = _weighted(MALE_NAMES)
_CITY = _weighted(tuple((city, city[4]) for city in CITIES))
_LANGUAGE = _weighted(LANGUAGES)


def _pick(rng: random.Random, table: tuple[list[Any], list[int]]) -> Any:
    items, cumulative = table
    return rng.choices(items, cum_weights=cumulative)[0]


def _phone(rng: random.Random, area_codes: tuple[int, ...]) -> str:
    return f"+1{rng.choice(area_codes)}555{rng.randrange(SEED_PHONE_LINES):04d}"


def _date_between(rng: random.Random, start: dt.date, end: dt.date) -> dt.date:
    return start + dt.timedelta(days=rng.randrange(max(1, (end - start).days)))


@dataclass
class DemoPatient:
    """One synthetic person: the values patients.services takes, and where they belong."""

    index: int
    home_location: str  # location code
    values: dict[str, Any]
    coverages: list[dict[str, Any]] = field(default_factory=list)
    flags: list[tuple[str, str, str]] = field(default_factory=list)  # kind, severity, note


def _age_days(rng: random.Random) -> int:
    band = rng.random()
    if band < 0.20:
        years = rng.uniform(0, 18)
    elif band < 0.55:
        years = rng.uniform(18, 45)
    elif band < 0.82:
        years = rng.uniform(45, 65)
    else:
        years = rng.uniform(65, 96)
    return int(years * 365.25)


def demo_patient(index: int, *, seed: int = DEFAULT_SEED, attempt: int = 0) -> DemoPatient:
    """The synthetic patient number `index` for `seed` (a new draw for each `attempt`)."""
    # Not for security: reproducible demo data.
    rng = random.Random((seed * 1_000_003 + attempt) * 10_000_019 + index)  # noqa: S311
    sex = "F" if rng.random() < 0.51 else "M"
    if rng.random() < 0.003:
        sex = "U"
    given_table = _FEMALE if sex == "F" or (sex == "U" and rng.random() < 0.5) else _MALE
    given = _pick(rng, given_table)
    family = _pick(rng, _FAMILY)
    birth_date = REFERENCE_DATE - dt.timedelta(days=_age_days(rng) + 1)
    age = (REFERENCE_DATE - birth_date).days // 365
    city, state, zips, area_codes, _ = _pick(rng, _CITY)
    postal_code = rng.choice(zips)
    if rng.random() < 0.1:
        postal_code += f"-{rng.randrange(1, 10000):04d}"
    home = "riverside" if rng.random() < 0.35 else "main"

    gender = {"F": "female", "M": "male", "U": ""}[sex]
    roll = rng.random()
    if roll < 0.01:
        gender = "non-binary"
    elif roll < 0.015:
        gender = "transgender-female" if sex == "M" else "transgender-male"
    elif roll < 0.06:
        gender = ""

    mobile = _phone(rng, area_codes)
    values: dict[str, Any] = {
        "family_name": family,
        "given_name": given,
        "middle_name": "",
        "suffix": "",
        "preferred_name": "",
        "birth_date": birth_date,
        "sex_at_birth": sex,
        "gender_identity": gender,
        "address_line1": (
            f"{rng.randint(1, 2400)} {rng.choice(STREETS)} {rng.choice(STREET_SUFFIXES)}"
        ),
        "address_line2": f"Apt {rng.randint(1, 40)}{rng.choice('ABCD')}"
        if rng.random() < 0.2
        else "",
        "city": city,
        "state": state,
        "postal_code": postal_code,
        "phone_mobile": mobile,
        "phone_home": _phone(rng, area_codes) if rng.random() < 0.2 else "",
        "email": "",
        "preferred_language": "English",
        "interpreter_needed": False,
        "preferred_contact": "phone",
        "consent_sms": False,
        "consent_email": False,
        "emergency_contact_name": "",
        "emergency_contact_relationship": "",
        "emergency_contact_phone": "",
        "guarantor_relationship": "self",
        "guarantor_name": "",
        "guarantor_phone": "",
        "guarantor_address": "",
    }
    roll = rng.random()
    if roll < 0.4:
        values["middle_name"] = _pick(rng, given_table)
    elif roll < 0.55:
        values["middle_name"] = rng.choice("ABCDEFGHJKLMNPRSTW")
    if sex == "M" and age >= 18 and rng.random() < 0.02:
        values["suffix"] = rng.choice(("Jr.", "Sr.", "III"))
    if given in NICKNAMES and rng.random() < 0.4:
        values["preferred_name"] = NICKNAMES[given]
    if rng.random() < 0.7 and age >= 13:
        values["email"] = f"{fold(given)}.{fold(family)}.{index}@example.org"
    if rng.random() < 0.08:
        values["preferred_language"] = _pick(rng, _LANGUAGE)
        values["interpreter_needed"] = rng.random() < 0.75
    values["consent_sms"] = rng.random() < 0.6
    values["consent_email"] = bool(values["email"]) and rng.random() < 0.6
    if values["consent_sms"] and rng.random() < 0.5:
        values["preferred_contact"] = "sms"
    elif values["consent_email"] and rng.random() < 0.4:
        values["preferred_contact"] = "email"
    elif rng.random() < 0.05:
        values["preferred_contact"] = "mail"

    subscriber = (f"{given} {family}", birth_date, "self")
    if age < 18:
        parent_given = _pick(rng, _FEMALE if rng.random() < 0.6 else _MALE)
        parent_family = family if rng.random() < 0.85 else _pick(rng, _FAMILY)
        parent_birth = birth_date - dt.timedelta(days=rng.randint(20 * 365, 42 * 365))
        parent_name = f"{parent_given} {parent_family}"
        values.update(
            guarantor_relationship="parent",
            guarantor_name=parent_name,
            guarantor_phone=mobile,
            guarantor_address=f"{values['address_line1']}, {city}, {state} {postal_code}",
            emergency_contact_name=parent_name,
            emergency_contact_relationship="Parent",
            emergency_contact_phone=mobile,
        )
        subscriber = (parent_name, parent_birth, "child")
    elif rng.random() < 0.85:
        relation = rng.choice(RELATIONS)
        contact_family = family if relation != "Partner" and rng.random() < 0.7 else None
        female = relation in {"Mother", "Daughter", "Sister"} or (
            relation in {"Spouse", "Partner"} and rng.random() < 0.5
        )
        contact_given = _pick(rng, _FEMALE if female else _MALE)
        values.update(
            emergency_contact_name=f"{contact_given} {contact_family or _pick(rng, _FAMILY)}",
            emergency_contact_relationship=relation,
            emergency_contact_phone=_phone(rng, area_codes),
        )

    patient = DemoPatient(index=index, home_location=home, values=values)
    patient.coverages = _coverages(
        rng,
        age=age,
        patient_name=f"{given} {family}",
        birth_date=birth_date,
        subscriber=subscriber,
    )

    if values["interpreter_needed"] and rng.random() < 0.8:
        patient.flags.append(("interpreter", "info", FLAG_NOTES["interpreter"]))
    if age >= 70 and rng.random() < 0.25:
        patient.flags.append(("fall_risk", "warning", FLAG_NOTES["fall_risk"]))
    if rng.random() < 0.02:
        patient.flags.append(("behavioural", "critical", FLAG_NOTES["behavioural"]))
    return patient


def _coverages(
    rng: random.Random,
    *,
    age: int,
    patient_name: str,
    birth_date: dt.date,
    subscriber: tuple[str, dt.date, str],
) -> list[dict[str, Any]]:
    roll = rng.random()
    if roll < 0.05:
        return []  # self-pay
    if age >= 65:
        primary = "medicare" if roll < 0.7 else "humana" if roll < 0.88 else "uhc"
    elif age < 18:
        primary = "medicaid" if roll < 0.35 else rng.choice(("aetna", "bcbs", "uhc", "cigna"))
    else:
        primary = (
            "medicaid"
            if roll < 0.2
            else rng.choice(("aetna", "bcbs", "bcbs", "uhc", "uhc", "cigna"))
        )
    plans = [primary]
    if rng.random() < 0.15:
        if primary == "medicare":
            plans.append(rng.choice(("medicaid", "uhc_supplement", "uhc_supplement")))
        elif primary == "medicaid":
            plans.append(rng.choice(("aetna", "bcbs")))
        else:
            plans.append(rng.choice(tuple({"aetna", "bcbs", "uhc", "cigna"} - {primary})))
    earliest = max(birth_date, dt.date(2012, 1, 1))
    if primary == "medicare":
        turned_65 = birth_date + dt.timedelta(days=int(65 * 365.25))
        earliest = max(earliest, turned_65.replace(day=1))
    coverages = []
    for order, payer in enumerate(plans, start=1):
        # Public programmes and supplements cover the patient in their own right; a child's
        # commercial plan is usually a parent's.
        own = payer in {"medicare", "medicaid", "uhc_supplement"} or subscriber[2] == "self"
        name, birth, relationship = (patient_name, birth_date, "self") if own else subscriber
        coverage = _payer(rng, payer)
        start = _date_between(rng, earliest, REFERENCE_DATE - dt.timedelta(days=30))
        if start.replace(day=1) >= earliest:
            start = start.replace(day=1)
        coverage.update(
            subscriber_name=name,
            subscriber_birth_date=birth,
            relationship=relationship,
            effective_start=start,
            effective_end=None,
            order=order,
            is_active=True,
        )
        coverages.append(coverage)
    return coverages


# --- seeding -------------------------------------------------------------------------------


@dataclass
class SeedReport:
    locations_created: int = 0
    practitioners_created: int = 0
    users_created: int = 0
    patients_created: int = 0
    patients_total: int = 0
    path: str = "none"  # "services", "bulk" or "none"


def demo_users_exist() -> bool:
    return User.objects.filter(username__in=DEMO_USERNAMES).exists()


def seed_locations() -> tuple[dict[str, Location], int]:
    created = 0
    locations: dict[str, Location] = {}
    for spec in DEMO_LOCATIONS:
        location, was_created = Location.objects.get_or_create(
            code=spec["code"], defaults={k: v for k, v in spec.items() if k != "code"}
        )
        locations[location.code] = location
        created += was_created
    return locations, created


def seed_practitioners(locations: dict[str, Location]) -> int:
    created = 0
    for given, family, credentials, specialty, body, codes, accepting in DEMO_PRACTITIONERS:
        practitioner, was_created = Practitioner.objects.get_or_create(
            npi=make_npi(body),
            defaults={
                "given_name": given,
                "family_name": family,
                "credentials": credentials,
                "specialty": specialty,
                "accepts_new_patients": accepting,
            },
        )
        if was_created:
            practitioner.full_clean()
            practitioner.locations.set([locations[code] for code in codes])
            created += 1
    return created


def seed_users(locations: dict[str, Location]) -> tuple[User, int]:
    """The nine demo users (one per role) and the loader account. Existing ones are left alone."""
    roles = {role.slug: role for role in Role.objects.all()}
    created = 0
    for spec in DEMO_USERS:
        user, was_created = User.objects.get_or_create(
            username=spec.username,
            defaults={
                "first_name": spec.first_name,
                "last_name": spec.last_name,
                "email": f"{spec.username}@example.org",
            },
        )
        if was_created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
            user.roles.set([roles[spec.role]])
            user.locations.set([locations[code] for code in spec.locations])
            created += 1
    loader, was_created = User.objects.get_or_create(
        username=LOADER_USERNAME,
        defaults={"first_name": "Demo data", "last_name": "loader", "email": ""},
    )
    if was_created:
        loader.set_unusable_password()
        loader.save(update_fields=["password"])
        loader.roles.set([roles[LOADER_ROLE]])
        loader.locations.set(locations.values())
    return loader, created


def seed_demo(
    *,
    patients: int = DEFAULT_PATIENTS,
    seed: int = DEFAULT_SEED,
    bulk_above: int = SERVICE_PATH_MAX,
    batch_size: int = BULK_BATCH_SIZE,
    progress: bool = False,
) -> SeedReport:
    """Create whatever of the demo clinic is missing and top patients up to `patients`."""
    report = SeedReport()
    with transaction.atomic():
        locations, report.locations_created = seed_locations()
        report.practitioners_created = seed_practitioners(locations)
        loader, report.users_created = seed_users(locations)
    existing = Patient.objects.count()
    missing = max(0, patients - existing)
    if missing > bulk_above:
        report.path = "bulk"
        report.patients_created = seed_patients_bulk(
            actor=loader,
            locations=locations,
            start=existing,
            count=missing,
            seed=seed,
            batch_size=batch_size,
            progress=progress,
        )
    elif missing:
        report.path = "services"
        report.patients_created = seed_patients_through_services(
            actor=loader,
            locations=locations,
            start=existing,
            count=missing,
            seed=seed,
            progress=progress,
        )
    report.patients_total = Patient.objects.count()
    return report


def _progress(total: int, enabled: bool, unit: str = "patient") -> tqdm[Any]:
    return tqdm(
        total=total,
        unit=unit,
        desc="Seeding patients",
        file=sys.stderr,
        disable=not enabled,
        mininterval=0.5,
        dynamic_ncols=True,
    )


def seed_patients_through_services(
    *,
    actor: User,
    locations: dict[str, Location],
    start: int,
    count: int,
    seed: int = DEFAULT_SEED,
    progress: bool = False,
    chunk: int = 100,
) -> int:
    """Register patients one by one through patients.services (duplicate check and audit on).

    A generated person the duplicate check rejects is drawn again (same index, next attempt),
    so the seed never confirms a duplicate. Each chunk of patients commits together.
    """
    created = 0
    bar = _progress(count, progress)
    with bar:
        for chunk_start in range(start, start + count, chunk):
            with transaction.atomic():
                for index in range(chunk_start, min(chunk_start + chunk, start + count)):
                    _register_one(actor=actor, locations=locations, index=index, seed=seed)
                    created += 1
                    bar.update(1)
    return created


def _register_one(*, actor: User, locations: dict[str, Location], index: int, seed: int) -> Patient:
    for attempt in range(20):
        person = demo_patient(index, seed=seed, attempt=attempt)
        try:
            patient = patient_register(
                actor=actor, home_location=locations[person.home_location], values=person.values
            )
        except DuplicateCandidatesFound:
            continue
        for coverage in person.coverages:
            coverage_save(actor=actor, patient=patient, values=coverage)
        for kind, severity, note in person.flags:
            flag_add(actor=actor, patient=patient, kind=kind, severity=severity, note=note)
        return patient
    raise RuntimeError(f"could not generate a non-duplicate patient for index {index}")


def _bulk_patient(person: DemoPatient, *, mrn: str, location: Location) -> Patient:
    values = person.values
    patient = Patient(mrn=mrn, home_location=location, **values)
    # bulk_create skips Patient.save(), which maintains the search keys: fill them here.
    patient.family_fold = fold(values["family_name"])
    patient.given_fold = fold(values["given_name"])
    patient.phone_mobile_digits = digits(values["phone_mobile"])
    patient.phone_home_digits = digits(values["phone_home"])
    return patient


def seed_patients_bulk(
    *,
    actor: User,
    locations: dict[str, Location],
    start: int,
    count: int,
    seed: int = DEFAULT_SEED,
    batch_size: int = BULK_BATCH_SIZE,
    progress: bool = False,
) -> int:
    """Insert many patients fast: bulk_create per batch, one transaction and audit row each.

    No duplicate check (the generator's people are distinct by construction: each has its own
    e-mail, and duplicates of name + birth date are rare and harmless in demo data).
    """
    created = 0
    bar = _progress(count, progress)
    with bar:
        for batch_start in range(start, start + count, batch_size):
            batch_end = min(batch_start + batch_size, start + count)
            created += _bulk_batch(
                actor=actor,
                locations=locations,
                people=(demo_patient(i, seed=seed) for i in range(batch_start, batch_end)),
                size=batch_end - batch_start,
            )
            bar.update(batch_end - batch_start)
    return created


@transaction.atomic
def _bulk_batch(
    *, actor: User, locations: dict[str, Location], people: Iterator[DemoPatient], size: int
) -> int:
    persons = list(people)
    mrns = mrn_allocate(size)
    rows = [
        _bulk_patient(person, mrn=mrn, location=locations[person.home_location])
        for person, mrn in zip(persons, mrns, strict=True)
    ]
    Patient.objects.bulk_create(rows, batch_size=1000)
    if any(row.pk is None for row in rows):  # databases that cannot return ids from a bulk insert
        ids = dict(Patient.objects.filter(mrn__in=mrns).values_list("mrn", "id"))
        for row in rows:
            row.pk = ids[row.mrn]
    identifiers: list[PatientIdentifier] = []
    coverages: list[Coverage] = []
    flags: list[PatientFlag] = []
    for person, row in zip(persons, rows, strict=True):
        identifiers.append(
            PatientIdentifier(patient_id=row.pk, system=PatientIdentifier.MRN_SYSTEM, value=row.mrn)
        )
        for values in person.coverages:
            coverage = Coverage(patient_id=row.pk, **values)
            coverage.member_id_fold = fold(coverage.member_id)
            coverages.append(coverage)
        for kind, severity, note in person.flags:
            flags.append(
                PatientFlag(
                    patient_id=row.pk, kind=kind, severity=severity, note=note, created_by=actor
                )
            )
    PatientIdentifier.objects.bulk_create(identifiers, batch_size=2000)
    Coverage.objects.bulk_create(coverages, batch_size=2000)
    PatientFlag.objects.bulk_create(flags, batch_size=2000)
    record(
        actor=actor,
        action=Action.CREATE,
        event="patient.bulk_seed",
        category=Category.DEMOGRAPHICS,
        object_type="patients.Patient",
        object_id=f"MRN {mrns[0]}..{mrns[-1]}"[:64],
        reason=f"demo data: {size} patients, {len(coverages)} coverages, {len(flags)} alerts",
        fields=sorted({*persons[0].values, "mrn", "home_location", "coverages", "flags"}),
    )
    return size
