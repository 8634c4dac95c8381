"""Regenerate webapp/data/country_names.json: country names → ISO 3166-1 alpha-2.

Built from the locale data shipped with the `phonenumbers` package (English plus the main
European and Asian languages). Importing that data costs about 100 MB of memory, so the app
reads this small generated file instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from phonenumbers.geodata.locale import LOCALE_DATA

LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt", "pl", "sv", "da", "nb", "fi", "cs",
             "ru", "tr", "ja", "zh", "ko")
ALIASES = {
    "usa": "US", "u.s.a.": "US", "u.s.": "US", "united states of america": "US",
    "america": "US", "uk": "GB", "u.k.": "GB", "great britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB", "holland": "NL",
    "the netherlands": "NL", "south korea": "KR", "korea": "KR", "russia": "RU",
    "czech republic": "CZ", "uae": "AE", "türkiye": "TR", "turkey": "TR",
}


def _name(by_lang: dict[str, str], lang: str) -> str:
    """The region's name in `lang`, following "*xx" ("the same as language xx") references;
    "" when a reference leads nowhere or back to itself (the data has "zh": "*zh")."""
    text, followed = by_lang.get(lang, ""), {lang}
    while text.startswith("*"):
        lang = text[1:]
        if lang in followed:
            return ""
        followed.add(lang)
        text = by_lang.get(lang, "")
    return text


def build() -> dict[str, str]:
    names: dict[str, str] = {}
    for lang in LANGUAGES:
        for region, by_lang in sorted(LOCALE_DATA.items()):
            if text := _name(by_lang, lang):
                names.setdefault(text.casefold(), region)
    for alias, code in ALIASES.items():
        names[alias] = code
    return {"codes": sorted(LOCALE_DATA), "names": dict(sorted(names.items()))}


if __name__ == "__main__":
    target = Path(__file__).resolve().parent.parent / "webapp" / "data" / "country_names.json"
    target.write_text(json.dumps(build(), ensure_ascii=False, indent=0) + "\n")
    print(f"wrote {target}")
