"""Country codes and names → ISO 3166-1 alpha-2, from a small generated table.

The table (webapp/data/country_names.json, made by scripts/gen_country_names.py) keeps
workers light: importing the phonenumbers locale data it comes from costs about 100 MB.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_TABLE = Path(__file__).resolve().parent / "data" / "country_names.json"


@cache
def _table() -> tuple[frozenset[str], dict[str, str]]:
    data = json.loads(_TABLE.read_text(encoding="utf-8"))
    return frozenset(data["codes"]), data["names"]


def country_code(value: Any) -> str | None:
    """ISO-2 for a code or a country name in a main language; None when unknown."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    codes, names = _table()
    if len(text) == 2 and text.upper() in codes:
        return text.upper()
    return names.get(text.casefold())
