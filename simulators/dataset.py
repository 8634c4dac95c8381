"""Seeded people for the simulators: realistic names plus the nasty cases imports must survive.

`generate(n, seed)` is deterministic. Every provider simulator renders these same people in
its own API's shape, so one dataset serves the tests, the demo and the benchmark.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

FIRST = (
    "Olivia Liam Emma Noah Ava Elijah Sophia James Isabella William Mia Benjamin Amelia Lucas "
    "Harper Henry Evelyn Theodore Abigail Jack Emily Levi Elizabeth Alexander Sofia Jackson "
    "Avery Mateo Ella Daniel Scarlett Michael Grace Mason Chloe Sebastian Victoria Ethan Riley "
    "Logan Aria Owen Lily Samuel Aurora Jacob Zoey Asher Nora Aiden Hannah"
).split()
LAST = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
    "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White "
    "Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres "
    "Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts"
).split()
NON_ASCII = [("Zoë", "Müller"), ("Jürgen", "Straße"), ("Søren", "Ødegård"), ("Łukasz", "Żółć"),
             ("Iñés", "Peña"), ("美咲", "佐藤"), ("Анна", "Иванова"), ("Ngọc", "Trần")]
DOMAINS = ("example.com", "example.org", "mail.example.net", "shop.example.com")
COUNTRIES = ("US", "GB", "DE", "FR", "CA", "AU", "NL", "PL", "ES", "JP")
TIERS = ("Bronze", "Silver", "Gold", "Platinum")
XSS_NAME = "<img src=x onerror=alert(1)>"
FORMULA = '=HYPERLINK("http://example.com/x","click")'
BASE_TIME = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class Person:
    """A person as the source system holds them (provider-neutral)."""

    id: int
    email: str | None
    first_name: str
    last_name: str
    phone: str | None
    country: str | None
    consent: str  # subscribed / opted_out / unknown
    consent_at: datetime | None
    created_at: datetime
    updated_at: datetime
    note: str = ""
    tags: list[str] = field(default_factory=list)
    loyalty_tier: str | None = None
    birthday: date | None = None
    lifetime_value: float | None = None
    website: str | None = None
    kind: str = "normal"  # which nasty case this is, for tests


def _nasty(i: int, p: Person) -> None:
    """Turn person `i` into one of the hard cases, by index (stable for a given n)."""
    case = i % 97
    if case == 3:
        p.email, p.kind = "bob@", "invalid_email"
    elif case == 5:
        p.email, p.kind = f"no-at-sign-{i}.example.com", "invalid_email"
    elif case == 7:
        p.email, p.kind = ("x" * 120) + f"{i}@example.com", "too_long_email"
    elif case == 11:
        p.email, p.kind = None, "missing_email"
    elif case == 13:
        p.first_name, p.kind = XSS_NAME, "xss_name"
    elif case == 17:
        p.last_name, p.note, p.kind = FORMULA, FORMULA, "formula"
    elif case == 19:
        p.first_name, p.last_name = NON_ASCII[i % len(NON_ASCII)]
        p.kind = "non_ascii"
    elif case == 23:
        p.note, p.kind = ("Long note. " * 1000)[:10240], "long_note"
    elif case == 29:
        p.consent, p.kind = "opted_out", "opted_out"
    elif case == 31:
        p.consent, p.consent_at, p.kind = "unknown", None, "unknown_consent"


def generate(n: int, seed: int = 1, base_time: datetime = BASE_TIME) -> list[Person]:
    """`n` people with ids 1..n; updated_at spread over 90 days after `base_time`,
    ascending with id except for a few same-second clusters."""
    rng = random.Random(seed)
    people: list[Person] = []
    span = 90 * 24 * 3600
    for i in range(1, n + 1):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        created = base_time + timedelta(seconds=int(span * (i - 1) / max(n, 1)))
        # clusters: every 50th person shares its second with the previous one
        updated = created if i % 50 else people[-1].updated_at if people else created
        consent = rng.choices(("subscribed", "unknown", "opted_out"), (70, 25, 5))[0]
        p = Person(
            id=i,
            email=f"{first}.{last}.{i}@{DOMAINS[i % len(DOMAINS)]}".lower(),
            first_name=first,
            last_name=last,
            phone=f"+1415555{i % 10000:04d}" if rng.random() < 0.6 else None,
            country=rng.choice(COUNTRIES) if rng.random() < 0.9 else None,
            consent=consent,
            consent_at=created if consent != "unknown" else None,
            created_at=created,
            updated_at=updated,
            tags=rng.sample(["vip", "newsletter", "wholesale", "retail"], rng.randint(0, 2)),
            loyalty_tier=rng.choice(TIERS) if rng.random() < 0.7 else None,
            birthday=date(1950 + i % 50, 1 + i % 12, 1 + i % 28) if rng.random() < 0.5 else None,
            lifetime_value=round(rng.uniform(0, 5000), 2) if rng.random() < 0.8 else None,
            website=f"https://site{i}.example.com" if rng.random() < 0.2 else None,
        )
        _nasty(i, p)
        people.append(p)
    # The same email differing in case and spaces: person 41's email again on 43.
    if n >= 43 and people[40].email and people[42].kind == "normal":
        people[42].email = "  " + people[40].email.upper() + " "
        people[42].kind = "duplicate_email"
    return people


def touch(people: list[Person], ids: list[int], at: datetime) -> None:
    """Mark the given people as changed at `at` (e.g. after a first import)."""
    wanted = set(ids)
    for p in people:
        if p.id in wanted:
            p.updated_at = at
            p.note = (p.note + " (edited)")[-10240:]
