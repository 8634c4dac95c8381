"""Time zones as people pick them: canonical IANA names grouped by region, with readable
labels ("Argentina / Buenos Aires"), not the ~600 raw names zoneinfo lists ("Factory",
"W-SU"). Any valid IANA name is still accepted, so a zone saved earlier keeps working.

The list is webapp/data/time_zones.json (from the tz database's zone.tab, made by
scripts/gen_time_zones.py).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from zoneinfo import available_timezones

_TABLE = Path(__file__).resolve().parent / "data" / "time_zones.json"
UTC = "UTC"
REGION_LABELS = {"America": "Americas", "Indian": "Indian Ocean", "Atlantic": "Atlantic Ocean",
                 "Pacific": "Pacific Ocean", "Arctic": "Arctic", "Antarctica": "Antarctica"}


@cache
def canonical() -> tuple[str, ...]:
    """The canonical zones, sorted, UTC first."""
    return (UTC, *json.loads(_TABLE.read_text(encoding="utf-8")))


@cache
def valid() -> frozenset[str]:
    """Every name zoneinfo can load (what a form accepts)."""
    return frozenset(available_timezones()) | {UTC}


def label(zone: str) -> str:
    """'America/Argentina/Buenos_Aires' -> 'Argentina / Buenos Aires'; 'UTC' stays."""
    parts = zone.split("/")
    shown = parts[1:] if len(parts) > 1 else parts
    return " / ".join(p.replace("_", " ") for p in shown)


def grouped(current: str | None = None) -> list[tuple[str, list[tuple[str, str]]]]:
    """[(region label, [(zone, label), …]), …] for a <select> with optgroups. A saved zone
    that is valid but not canonical (an old alias) is kept as its own first group."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for zone in canonical():
        region = zone.split("/", 1)[0] if "/" in zone else "Universal"
        groups.setdefault(REGION_LABELS.get(region, region), []).append((zone, label(zone)))
    out = list(groups.items())
    if current and current not in canonical() and current in valid():
        out.insert(0, ("Saved earlier", [(current, current)]))
    return out
