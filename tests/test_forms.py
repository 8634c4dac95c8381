"""The WTForms classes: each input parsed and judged on its own, with the page's messages."""

from __future__ import annotations

from decimal import Decimal

from werkzeug.datastructures import MultiDict

from webapp.forms import ImportSetupForm, OAuthAppForm, WorkspaceSettingsForm


def _settings(**data):
    form = WorkspaceSettingsForm(formdata=MultiDict(data))
    form.validate()
    return form.values(), form.first_errors()


def test_settings_inputs_are_cleaned(app):
    with app.test_request_context():
        values, errors = _settings(name="  Acme   Corp ", subscriber_limit=" 2,500 ",
                                   extension_price="12.5", currency=" eur ",
                                   time_zone="Europe/Berlin")
    assert errors == {}
    assert values == {"name": "Acme Corp", "subscriber_limit": 2500,
                      "extension_price": Decimal("12.50"), "currency": "EUR",
                      "time_zone": "Europe/Berlin"}


def test_each_bad_settings_input_gets_its_own_message(app):
    with app.test_request_context():
        values, errors = _settings(name="", subscriber_limit="-1", extension_price="NaN",
                                   currency="XYZ", time_zone="Mars/Olympus")
        _, superscript = _settings(subscriber_limit="²")
    assert errors == {
        "name": "Give the workspace a name of at most 120 characters.",
        "subscriber_limit": "The limit is a whole number of contacts, 0 or more.",
        "extension_price": "The price is an amount such as 15 or 12.50, 0 or more.",
        "currency": "Pick an ISO 4217 currency code such as USD or EUR.",
        "time_zone": "Pick a time zone from the list, e.g. Europe/Berlin.",
    }
    assert "subscriber_limit" not in values and "extension_price" not in values
    assert superscript["subscriber_limit"].startswith("The limit is a whole number")


def test_oauth_app_form_refuses_spaces_and_long_secrets(app):
    with app.test_request_context():
        form = OAuthAppForm(formdata=MultiDict({"client_id": "a b",
                                                "client_secret": "x" * 1001}))
        assert not form.validate()
    assert form.first_errors() == {
        "client_id": "Paste the app's client id (consumer key), without spaces.",
        "client_secret": "That secret is too long to be a client secret."}


def test_set_up_form_defaults_trims_and_judges_single_inputs(app):
    with app.test_request_context():
        form = ImportSetupForm(formdata=MultiDict({"group": " customers ", "consent": "maybe",
                                                   "run_hour": "24", "source": "s" * 300}))
        form.validate()
    assert form.group.data == "customers" and len(form.source.data) == 255
    assert form.criteria.data == "add_update" and form.consent_filter.data == "everyone"
    assert form.consent.data is False
    assert form.first_errors() == {
        "consent": "Confirm that you have permission to email these contacts; imports need it.",
        "run_hour": "Choose an hour from 00:00 to 23:00, or every 24 hours."}


def test_a_plain_dict_is_read_outside_a_request(app):
    form = OAuthAppForm(formdata={"client_id": " id-1 ", "client_secret": "s"})
    assert form.validate() and form.client_id.data == "id-1"
