"""Custom-field rules in webapp/customfields.py: names, definitions, coercion by type and
format (good and bad values for every type), select values and clipping at 255."""

from __future__ import annotations

import pytest

from webapp.customfields import (
    TEXT_LIMIT,
    FieldDefinitionError,
    coerce,
    coerce_type,
    validate_definition,
    validate_name,
)
from webapp.models.lists import FIELD_FORMATS, FIELD_TYPES

GOOD = {
    "text": [("hello", "hello"), ("  padded  ", "padded"), (42, "42")],
    "number": [("42", 42), ("-3.5", -3.5), ("1,234", 1234), ("1,234.5", 1234.5), (7, 7),
               (2.0, 2), (" 12 ", 12)],
    "date": [("2024-02-29", "2024-02-29"), ("2024-05-01T23:30:00+02:00", "2024-05-01"),
             ("2024-05-01T00:30:00+02:00", "2024-05-01"), ("2024-05-01T10:00:00Z", "2024-05-01")],
    "datetime": [("2024-05-01T10:00:00Z", "2024-05-01T10:00:00+00:00"),
                 ("2024-05-01T12:00:00+02:00", "2024-05-01T10:00:00+00:00"),
                 ("2024-05-01 10:00", "2024-05-01T10:00:00+00:00")],
    "country": [("DE", "DE"), ("de", "DE"), ("Germany", "DE"), ("united states of america", "US"),
                ("UK", "GB")],
    "currency": [("EUR", "EUR"), ("usd", "USD"), (" jpy ", "JPY")],
    "phone": [("+49 30 901820", "+4930901820"), ("+1 (202) 456-1111", "+12024561111")],
    "gender": [("Male", "Male"), ("f", "Female"), ("PREFER NOT TO SAY", "Prefer not to say")],
    "ip": [("192.168.0.1", "192.168.0.1"), ("2001:DB8::1", "2001:db8::1")],
    "url": [("https://example.com/x?y=1", "https://example.com/x?y=1"),
            ("http://localhost:8000", "http://localhost:8000")],
}

BAD = {
    "text": ["", "   ", None],
    "number": ["abc", "1,5", "nan", "inf", "1e400", True, "12abc"],
    "date": ["2024-02-30", "01/05/2024", "yesterday", "2024-13-01"],
    "datetime": ["not a time", "2024-05-01T25:00", "31.12.2024"],
    "country": ["Atlantis", "XX", "D"],
    "currency": ["EURO", "XXX", "$"],
    "phone": ["12345", "not a phone", "+49 1"],
    "gender": ["Other", "x", "yes"],
    "ip": ["999.1.1.1", "example.com", "1.2.3"],
    "url": ["example.com", "ftp://example.com/file", "javascript:alert(1)", "http://",
            "https://" + "a" * 2050],
}


def test_every_type_has_good_and_bad_cases():
    assert set(GOOD) == set(FIELD_TYPES) == set(BAD)


@pytest.mark.parametrize(("type_", "raw", "expected"),
                         [(t, raw, exp) for t, cases in GOOD.items() for raw, exp in cases])
def test_good_values_are_coerced(type_, raw, expected):
    result = coerce_type(type_, raw)
    assert result.ok, result.error
    assert result.value == expected
    assert result.warning is None
    assert coerce(type_, "text", [], raw).value == expected


@pytest.mark.parametrize(("type_", "raw"), [(t, raw) for t, cases in BAD.items() for raw in cases])
def test_bad_values_are_refused(type_, raw):
    result = coerce_type(type_, raw)
    assert not result.ok and result.value is None
    assert result.error


def test_phone_with_default_region():
    assert coerce_type("phone", "030 901820", region="DE").value == "+4930901820"
    assert not coerce_type("phone", "030 901820").ok  # no region, no country code


def test_text_is_clipped_at_255_with_a_warning():
    exact = coerce_type("text", "x" * TEXT_LIMIT)
    assert exact.value == "x" * 255 and exact.warning is None
    long = coerce_type("text", "é" * 300)
    assert long.ok and long.value == "é" * 255 and "clipped" in long.warning
    assert coerce("text", "textarea", [], "y" * 256).value == "y" * 255


@pytest.mark.parametrize("name", ["loyalty_tier", "a", "x1", "_", "a" * 64, " padded "])
def test_good_names(name):
    assert validate_name(name) == name.strip()


@pytest.mark.parametrize("name", ["", "Loyalty", "has space", "dash-ed", "a" * 65, "ümlaut",
                                  "semi;colon", None, "a.b", "tier\nx"])
def test_bad_names(name):
    with pytest.raises(FieldDefinitionError) as info:
        validate_name(name)
    assert info.value.field == "name"


def test_definition_types_and_formats():
    for type_ in FIELD_TYPES:
        assert validate_definition(type_, "text", []) == []
    for format_ in ("text", "textarea"):
        assert validate_definition("text", format_, ["", "  "]) == []
    with pytest.raises(FieldDefinitionError) as info:
        validate_definition("colour", "text", [])
    assert info.value.field == "type"
    with pytest.raises(FieldDefinitionError) as info:
        validate_definition("text", "dropdown", [])
    assert info.value.field == "format"
    with pytest.raises(FieldDefinitionError) as info:
        validate_definition("text", "text", ["a", "b"])
    assert info.value.field == "allowed_values"


@pytest.mark.parametrize("format_", ["checkbox", "radio", "single_select", "multi_select"])
def test_choice_formats_need_two_distinct_values(format_):
    assert format_ in FIELD_FORMATS
    assert validate_definition("text", format_, [" Gold ", "Silver", "gold", ""]) == [
        "Gold", "Silver"]
    for allowed in ([], ["Only"], ["Same", "same", " SAME "]):
        with pytest.raises(FieldDefinitionError) as info:
            validate_definition("text", format_, allowed)
        assert info.value.field == "allowed_values"


def test_choice_values_must_fit_the_type():
    assert validate_definition("number", "radio", ["1", "2"]) == ["1", "2"]
    assert validate_definition("country", "single_select", ["DE", "France"]) == ["DE", "France"]
    with pytest.raises(FieldDefinitionError, match="not a valid number"):
        validate_definition("number", "radio", ["1", "two"])


def test_single_select_is_case_insensitive_and_returns_the_allowed_spelling():
    allowed = ["Gold", "Silver"]
    for format_ in ("single_select", "radio"):
        assert coerce("text", format_, allowed, "gold").value == "Gold"
        assert coerce("text", format_, allowed, " SILVER ").value == "Silver"
        assert not coerce("text", format_, allowed, "Bronze").ok
        assert coerce("text", format_, allowed, "").error == "empty"
        assert coerce("text", format_, allowed, None).error == "empty"


def test_multi_select_takes_several_values():
    allowed = ["Red", "Green", "Blue"]
    for format_ in ("multi_select", "checkbox"):
        assert coerce("text", format_, allowed, "red; BLUE").value == ["Red", "Blue"]
        assert coerce("text", format_, allowed, "green,green , red").value == ["Green", "Red"]
        assert coerce("text", format_, allowed, ["blue", "Red"]).value == ["Blue", "Red"]
        bad = coerce("text", format_, allowed, "red, purple")
        assert not bad.ok and "purple" in bad.error
        assert coerce("text", format_, allowed, " ; , ").error == "empty"
