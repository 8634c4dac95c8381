"""Custom-field rules: names, definitions, and coercion of values by type and format.

Used by the custom-field pages (validate what people type) and by imports (coerce source
values; a value that does not fit is dropped for that contact with a warning).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit

import phonenumbers

from .countries import country_code
from .models.lists import CHOICE_FORMATS, FIELD_FORMATS, FIELD_TYPES

NAME_RE = re.compile(r"^[a-z0-9_]{1,64}$")
TEXT_LIMIT = 255
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")
GENDERS = ("Male", "Female", "Prefer not to say")
_GENDER_ALIASES = {"m": "Male", "male": "Male", "f": "Female", "female": "Female",
                   "prefer not to say": "Prefer not to say"}
# Formats whose value is a list of allowed values.
MULTI_FORMATS = ("checkbox", "multi_select")

# ISO 4217 active currency codes.
CURRENCIES = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP
BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR
KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK
MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR
SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS
UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
""".split())

# English names for the currency choices ("EUR · Euro"), one per code above.
CURRENCY_NAMES = {
    "AED": "UAE dirham", "AFN": "Afghan afghani", "ALL": "Albanian lek", "AMD": "Armenian dram",
    "ANG": "Netherlands Antillean guilder", "AOA": "Angolan kwanza", "ARS": "Argentine peso",
    "AUD": "Australian dollar", "AWG": "Aruban florin", "AZN": "Azerbaijani manat",
    "BAM": "Bosnia and Herzegovina convertible mark", "BBD": "Barbados dollar",
    "BDT": "Bangladeshi taka", "BGN": "Bulgarian lev", "BHD": "Bahraini dinar",
    "BIF": "Burundian franc", "BMD": "Bermudian dollar", "BND": "Brunei dollar",
    "BOB": "Bolivian boliviano", "BRL": "Brazilian real", "BSD": "Bahamian dollar",
    "BTN": "Bhutanese ngultrum", "BWP": "Botswana pula", "BYN": "Belarusian ruble",
    "BZD": "Belize dollar", "CAD": "Canadian dollar", "CDF": "Congolese franc",
    "CHF": "Swiss franc", "CLP": "Chilean peso", "CNY": "Chinese yuan renminbi",
    "COP": "Colombian peso", "CRC": "Costa Rican colón", "CUP": "Cuban peso",
    "CVE": "Cape Verdean escudo", "CZK": "Czech koruna", "DJF": "Djiboutian franc",
    "DKK": "Danish krone", "DOP": "Dominican peso", "DZD": "Algerian dinar",
    "EGP": "Egyptian pound", "ERN": "Eritrean nakfa", "ETB": "Ethiopian birr", "EUR": "Euro",
    "FJD": "Fiji dollar", "FKP": "Falkland Islands pound", "GBP": "Pound sterling",
    "GEL": "Georgian lari", "GHS": "Ghanaian cedi", "GIP": "Gibraltar pound",
    "GMD": "Gambian dalasi", "GNF": "Guinean franc", "GTQ": "Guatemalan quetzal",
    "GYD": "Guyanese dollar", "HKD": "Hong Kong dollar", "HNL": "Honduran lempira",
    "HTG": "Haitian gourde", "HUF": "Hungarian forint", "IDR": "Indonesian rupiah",
    "ILS": "Israeli new shekel", "INR": "Indian rupee", "IQD": "Iraqi dinar",
    "IRR": "Iranian rial", "ISK": "Icelandic króna", "JMD": "Jamaican dollar",
    "JOD": "Jordanian dinar", "JPY": "Japanese yen", "KES": "Kenyan shilling",
    "KGS": "Kyrgyzstani som", "KHR": "Cambodian riel", "KMF": "Comorian franc",
    "KPW": "North Korean won", "KRW": "South Korean won", "KWD": "Kuwaiti dinar",
    "KYD": "Cayman Islands dollar", "KZT": "Kazakhstani tenge", "LAK": "Lao kip",
    "LBP": "Lebanese pound", "LKR": "Sri Lankan rupee", "LRD": "Liberian dollar",
    "LSL": "Lesotho loti", "LYD": "Libyan dinar", "MAD": "Moroccan dirham", "MDL": "Moldovan leu",
    "MGA": "Malagasy ariary", "MKD": "Macedonian denar", "MMK": "Myanmar kyat",
    "MNT": "Mongolian tögrög", "MOP": "Macanese pataca", "MRU": "Mauritanian ouguiya",
    "MUR": "Mauritian rupee", "MVR": "Maldivian rufiyaa", "MWK": "Malawian kwacha",
    "MXN": "Mexican peso", "MYR": "Malaysian ringgit", "MZN": "Mozambican metical",
    "NAD": "Namibian dollar", "NGN": "Nigerian naira", "NIO": "Nicaraguan córdoba",
    "NOK": "Norwegian krone", "NPR": "Nepalese rupee", "NZD": "New Zealand dollar",
    "OMR": "Omani rial", "PAB": "Panamanian balboa", "PEN": "Peruvian sol",
    "PGK": "Papua New Guinean kina", "PHP": "Philippine peso", "PKR": "Pakistani rupee",
    "PLN": "Polish złoty", "PYG": "Paraguayan guaraní", "QAR": "Qatari riyal",
    "RON": "Romanian leu", "RSD": "Serbian dinar", "RUB": "Russian ruble", "RWF": "Rwandan franc",
    "SAR": "Saudi riyal", "SBD": "Solomon Islands dollar", "SCR": "Seychelles rupee",
    "SDG": "Sudanese pound", "SEK": "Swedish krona", "SGD": "Singapore dollar",
    "SHP": "Saint Helena pound", "SLE": "Sierra Leonean leone", "SOS": "Somali shilling",
    "SRD": "Surinamese dollar", "SSP": "South Sudanese pound",
    "STN": "São Tomé and Príncipe dobra", "SVC": "Salvadoran colón", "SYP": "Syrian pound",
    "SZL": "Swazi lilangeni", "THB": "Thai baht", "TJS": "Tajikistani somoni",
    "TMT": "Turkmenistan manat", "TND": "Tunisian dinar", "TOP": "Tongan paʻanga",
    "TRY": "Turkish lira", "TTD": "Trinidad and Tobago dollar", "TWD": "New Taiwan dollar",
    "TZS": "Tanzanian shilling", "UAH": "Ukrainian hryvnia", "UGX": "Ugandan shilling",
    "USD": "US dollar", "UYU": "Uruguayan peso", "UZS": "Uzbekistani som",
    "VES": "Venezuelan bolívar", "VND": "Vietnamese đồng", "VUV": "Vanuatu vatu",
    "WST": "Samoan tālā", "XAF": "Central African CFA franc", "XCD": "East Caribbean dollar",
    "XCG": "Caribbean guilder", "XOF": "West African CFA franc", "XPF": "CFP franc",
    "YER": "Yemeni rial", "ZAR": "South African rand", "ZMW": "Zambian kwacha",
    "ZWG": "Zimbabwe gold",
}

# What people see for a field's type and format (the stored values stay the codes).
TYPE_LABELS = {
    "text": "Text", "number": "Number", "date": "Date", "datetime": "Date and time",
    "country": "Country", "currency": "Currency", "phone": "Phone number",
    "gender": "Gender", "ip": "IP address", "url": "Web address (URL)",
}
FORMAT_LABELS = {
    "text": "Single line of text", "textarea": "Several lines of text",
    "checkbox": "Checkboxes (several choices)", "radio": "Radio buttons (one choice)",
    "single_select": "Single choice", "multi_select": "Multiple choice",
}


def currency_choices() -> list[tuple[str, str]]:
    """(code, "EUR · Euro") for every currency, by code."""
    return [(code, f"{code} · {CURRENCY_NAMES[code]}") for code in sorted(CURRENCIES)]


class FieldDefinitionError(ValueError):
    """A custom-field definition breaks a rule; `field` names the form input."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class Coerced:
    """Result of coercing one value: the value to store, or why it was dropped."""

    value: Any = None
    warning: str | None = None  # stored, but changed (e.g. clipped)
    error: str | None = None  # not stored

    @property
    def ok(self) -> bool:
        return self.error is None


def validate_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise FieldDefinitionError(
            "name", "Use 1–64 lowercase letters, digits or underscores (e.g. loyalty_tier)."
        )
    return name


def validate_definition(type_: str, format_: str, allowed: list[str]) -> list[str]:
    """Check type/format/allowed values; returns the cleaned allowed values."""
    if type_ not in FIELD_TYPES:
        raise FieldDefinitionError("type", f"Unknown type {type_!r}.")
    if format_ not in FIELD_FORMATS:
        raise FieldDefinitionError("format", f"Unknown format {format_!r}.")
    cleaned: list[str] = []
    seen: set[str] = set()
    for value in allowed:
        value = value.strip()
        if value and value.lower() not in seen:
            seen.add(value.lower())
            cleaned.append(value)
    if format_ in CHOICE_FORMATS:
        if len(cleaned) < 2:
            raise FieldDefinitionError(
                "allowed_values", "Checkbox, radio and select formats need at least 2 values."
            )
        for value in cleaned:
            result = coerce_type(type_, value)
            if not result.ok:
                raise FieldDefinitionError(
                    "allowed_values", f"Allowed value {value!r} is not a valid {type_}."
                )
        return cleaned
    if cleaned:
        raise FieldDefinitionError(
            "allowed_values", "Only checkbox, radio and select formats take allowed values."
        )
    return []


def parse_country(raw: str) -> str | None:
    return country_code(raw)


def _parse_datetime(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def coerce_type(type_: str, raw: Any, *, region: str | None = None) -> Coerced:
    """Coerce one scalar to a field type. Strings are trimmed first."""
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    text = str(raw).strip() if raw is not None else ""
    if text == "":
        return Coerced(error="empty")
    if type_ == "text":
        if len(text) > TEXT_LIMIT:
            return Coerced(text[:TEXT_LIMIT], warning="clipped to 255 characters")
        return Coerced(text)
    if type_ == "number":
        if "," in text and not _THOUSANDS.match(text):  # "1,5": a decimal comma, not 15
            return Coerced(error=f"{text[:40]!r} is not a number")
        try:
            number = float(text.replace(",", "")) if not isinstance(raw, int | float) else raw
        except ValueError:
            return Coerced(error=f"{text[:40]!r} is not a number")
        if number != number or number in (float("inf"), float("-inf")):
            return Coerced(error="not a finite number")
        return Coerced(int(number) if float(number).is_integer() else float(number))
    if type_ == "date":
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            try:
                return Coerced(date.fromisoformat(text).isoformat())
            except ValueError:
                return Coerced(error=f"{text!r} is not a calendar date")
        try:  # the calendar date as written, not shifted to UTC by its offset
            return Coerced(datetime.fromisoformat(text.replace("Z", "+00:00")).date().isoformat())
        except ValueError:
            return Coerced(error=f"{text[:40]!r} is not a date (YYYY-MM-DD)")
    if type_ == "datetime":
        moment = _parse_datetime(text)
        if moment is None:
            return Coerced(error=f"{text[:40]!r} is not an ISO date and time")
        return Coerced(moment.isoformat())
    if type_ == "country":
        code = parse_country(text)
        return Coerced(code) if code else Coerced(error=f"{text[:40]!r} is not a country")
    if type_ == "currency":
        code = text.upper()
        return Coerced(code) if code in CURRENCIES else Coerced(error=f"{text[:10]!r} "
                                                                "is not an ISO 4217 currency")
    if type_ == "phone":
        try:
            number = phonenumbers.parse(text, region)
        except phonenumbers.NumberParseException:
            return Coerced(error=f"{text[:40]!r} is not a phone number")
        if not phonenumbers.is_valid_number(number):
            return Coerced(error=f"{text[:40]!r} is not a valid phone number")
        return Coerced(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
    if type_ == "gender":
        value = _GENDER_ALIASES.get(text.lower())
        return Coerced(value) if value else Coerced(error=f"{text[:40]!r} is not a gender option")
    if type_ == "ip":
        try:
            return Coerced(str(ipaddress.ip_address(text)))
        except ValueError:
            return Coerced(error=f"{text[:45]!r} is not an IP address")
    if type_ == "url":
        parts = urlsplit(text)
        if parts.scheme in ("http", "https") and parts.netloc and len(text) <= 2048:
            return Coerced(text)
        return Coerced(error=f"{text[:60]!r} is not an http(s) URL")
    return Coerced(error=f"unknown type {type_}")


def coerce(type_: str, format_: str, allowed: list[str], raw: Any, *,
           region: str | None = None) -> Coerced:
    """Coerce a value for a field definition, honouring select formats' allowed values."""
    if format_ in CHOICE_FORMATS:
        lookup = {a.lower(): a for a in allowed}
        if format_ in MULTI_FORMATS:
            items = raw if isinstance(raw, list | tuple) else re.split(r"[;,]", str(raw or ""))
            picked, bad = [], []
            for item in items:
                item = str(item).strip()
                if not item:
                    continue
                match = lookup.get(item.lower())
                (picked if match else bad).append(match or item)
            if not picked and not bad:
                return Coerced(error="empty")
            if bad:
                return Coerced(error=f"not allowed: {', '.join(b[:30] for b in bad)}")
            return Coerced(list(dict.fromkeys(picked)))
        match = lookup.get(str(raw if raw is not None else "").strip().lower())
        if not str(raw if raw is not None else "").strip():
            return Coerced(error="empty")
        return Coerced(match) if match else Coerced(error=f"{str(raw)[:40]!r} is not allowed")
    return coerce_type(type_, raw, region=region)
