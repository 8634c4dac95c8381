"""Regenerate webapp/data/time_zones.json: the canonical IANA time zones people pick from.

Built from the tz database's zone.tab (one zone per country region, e.g. Europe/Amsterdam,
Asia/Kolkata), without the ~180 backward-compatible aliases ("W-SU", "Factory",
"US/Pacific") that `zoneinfo.available_timezones()` also lists. Run where the system
tzdata is installed: `python scripts/gen_time_zones.py [path/to/zone.tab]`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from zoneinfo import available_timezones

OUT = Path(__file__).resolve().parent.parent / "webapp" / "data" / "time_zones.json"


def main(zone_tab: str = "/usr/share/zoneinfo/zone.tab") -> int:
    names = set()
    for line in Path(zone_tab).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            names.add(line.split("\t")[2].strip())
    known = available_timezones()
    zones = sorted(n for n in names if n in known)
    OUT.write_text(json.dumps(zones) + "\n", encoding="utf-8")
    print(f"{len(zones)} zones written to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
