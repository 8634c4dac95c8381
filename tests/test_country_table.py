"""The generated country table: built by scripts/gen_country_names.py, no junk keys."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_country_names", ROOT / "scripts" / "gen_country_names.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_reference_to_itself_or_to_nothing_gives_no_name():
    gen = _generator()
    assert gen._name({"zh": "*zh"}, "zh") == ""
    assert gen._name({"de": "*fr", "fr": "*de"}, "de") == ""
    assert gen._name({"de": "*xx"}, "de") == ""
    assert gen._name({"aa": "Samoa", "en": "*aa"}, "en") == "Samoa"


def test_the_committed_table_is_what_the_generator_builds_and_has_no_references():
    table = json.loads((ROOT / "webapp" / "data" / "country_names.json").read_text())
    assert table == _generator().build()
    assert not [name for name in table["names"] if name.startswith("*")]
    assert table["names"]["samoa"] == "WS"
