"""WTForms classes for the settings and set-up forms: each input's parsing and its own rule,
with the message shown next to it. Rules across inputs stay in the services.

CSRF is checked for every POST by CSRFProtect before a view runs, so these forms have no
token field of their own; templates keep their hand-written inputs (the names match)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from flask_wtf import FlaskForm
from werkzeug.datastructures import MultiDict
from wtforms import BooleanField, StringField
from wtforms.validators import AnyOf, StopValidation, ValidationError

from .customfields import CURRENCIES
from .models.imports import CRITERIA

MAX_SUBSCRIBER_LIMIT = 100_000_000


def _words(value):
    """Runs of whitespace as one space, trimmed (names)."""
    return " ".join((value or "").split())


def _strip(value):
    return (value or "").strip()


def _upper(value):
    return (value or "").upper()


def _cut(limit: int):
    def cut(value):
        return (value or "")[:limit]
    return cut


class PlainForm(FlaskForm):
    """A form read from `formdata` (request.form, the query string or a plain dict), without
    its own CSRF token; `first_errors` is {input name: its first message}, as the templates
    show them."""

    class Meta:
        csrf = False

        def wrap_formdata(self, form, formdata):
            if isinstance(formdata, dict) and not hasattr(formdata, "getlist"):
                formdata = MultiDict(formdata)  # a plain dict from a script (demo)
            return super().wrap_formdata(form, formdata)

    def first_errors(self) -> dict[str, str]:
        return {name: messages[0] for name, messages in self.errors.items() if messages}


def _one_of_zones(message: str):
    def check(_form, field):
        from .services.settings import time_zones

        if field.data not in time_zones():
            raise StopValidation(message)
    return check


# ------------------------------------------------------------------ workspace settings


def _whole_number(_form, field):
    raw = (field.data or "").replace(",", "")
    try:
        number = int(raw) if raw.isdigit() else None
    except ValueError:  # digits int() does not read (superscripts)
        number = None
    if number is None or number > MAX_SUBSCRIBER_LIMIT:
        raise StopValidation("The limit is a whole number of contacts, 0 or more.")
    field.number = number


def _amount(_form, field):
    try:
        price = Decimal(field.data or "")
        if not price.is_finite() or price < 0 or price >= Decimal("100000000"):
            raise InvalidOperation
    except (InvalidOperation, ValueError):
        raise StopValidation("The price is an amount such as 15 or 12.50, 0 or more.") from None
    field.amount = price.quantize(Decimal("0.01"))


def _name(_form, field):
    if not field.data or len(field.data) > 120:
        raise StopValidation("Give the workspace a name of at most 120 characters.")


class WorkspaceSettingsForm(PlainForm):
    name = StringField(filters=[_words], validators=[_name])
    subscriber_limit = StringField(filters=[_strip], validators=[_whole_number])
    extension_price = StringField(filters=[_strip], validators=[_amount])
    currency = StringField(filters=[_strip, _upper], validators=[
        AnyOf(CURRENCIES, message="Pick an ISO 4217 currency code such as USD or EUR.")])
    time_zone = StringField(filters=[_strip], validators=[
        _one_of_zones("Pick a time zone from the list, e.g. Europe/Berlin.")])

    def values(self) -> dict:
        """The cleaned values of the inputs (the parsed number and amount where valid)."""
        values = {"name": self.name.data, "currency": self.currency.data,
                  "time_zone": self.time_zone.data}
        if hasattr(self.subscriber_limit, "number"):
            values["subscriber_limit"] = self.subscriber_limit.number
        if hasattr(self.extension_price, "amount"):
            values["extension_price"] = self.extension_price.amount
        return values


def _client_id(_form, field):
    if not field.data or len(field.data) > 255 or any(c.isspace() for c in field.data):
        raise StopValidation("Paste the app's client id (consumer key), without spaces.")


def _secret_length(_form, field):
    if len(field.data) > 1000:
        raise ValidationError("That secret is too long to be a client secret.")


class OAuthAppForm(PlainForm):
    """An OAuth app's client id and secret; an empty secret keeps the saved one (the
    service says when there is none to keep)."""

    client_id = StringField(filters=[_strip], validators=[_client_id])
    client_secret = StringField(filters=[_strip], validators=[_secret_length])


# ------------------------------------------------------------------ import set-up


def _hour(_form, field):
    if field.data == "":
        return
    try:
        hour = int(field.data)
    except ValueError:
        hour = None
    if hour is None or not 0 <= hour <= 23:
        raise StopValidation("Choose an hour from 00:00 to 23:00, or every 24 hours.")


class TickBox(BooleanField):
    """A checkbox that counts as ticked only for the values a browser or client sends."""

    def process_formdata(self, valuelist):
        self.data = bool(valuelist) and valuelist[0] in ("on", "1", "true", "yes")


def _or(default: str):
    def fill(value):
        return value or default
    return fill


def _confirmed(_form, field):
    if not field.data:
        raise StopValidation("Confirm that you have permission to email these contacts; "
                             "imports need it.")


class ImportSetupForm(PlainForm):
    """The set-up form of a recurring import. Inputs are trimmed and cut to their column's
    length; the list, cycle, group, source and consent choices are checked by the service
    against each other and the source."""

    list_id = StringField(filters=[_strip, _cut(255)])
    new_list_name = StringField(filters=[_strip, _cut(200)])
    cycle_id = StringField(filters=[_strip, _cut(255)])
    cycle_start_day = StringField(filters=[_strip, _cut(255)])
    group = StringField(filters=[_strip, _cut(64)])
    source = StringField(filters=[_strip, _cut(255)])
    criteria = StringField(filters=[_strip, _cut(255), _or("add_update")], validators=[
        AnyOf(CRITERIA, message="Choose how new and existing contacts are treated.")])
    consent_filter = StringField(filters=[_strip, _cut(16), _or("everyone")])
    consent_field = StringField(filters=[_strip, _cut(255)])
    consent = TickBox(validators=[_confirmed])
    run_hour = StringField(filters=[_strip, _cut(255)], validators=[_hour])
    time_zone = StringField(filters=[_strip, _cut(64)])
