"""The one authorized-request path (providers/auth.py): token expiry in one format with the
old one still read, proactive refresh, one refresh after a 401, the refresh lock, and the
credentials handed back — against the Zoho and Salesforce simulators and a bare fake."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from requests.structures import CaseInsensitiveDict

from simulators import zoho as sim
from simulators.dataset import generate
from tests.providers.cases.zoho import Case
from webapp.providers.auth import TokenAuth, expires_at, with_expiry
from webapp.providers.base import parse_time
from webapp.providers.http import Response


@pytest.fixture
def zoho():
    case = Case(generate(30, seed=5), contact_id_base=sim.CONTACT_ID_BASE)
    case.start()
    yield case
    case.stop()


def test_both_expiry_formats_are_read():
    at = datetime(2030, 1, 1, tzinfo=UTC)
    assert expires_at({"expires_at": "2030-01-01T00:00:00+00:00"}) == at
    assert expires_at({"access_token_expires_at": int(at.timestamp())}) == at
    assert expires_at({"access_token_expires_at": str(int(at.timestamp()))}) == at
    assert expires_at({"access_token_expires_at": "2030-01-01T00:00:00Z"}) == at
    assert expires_at({"access_token": "t"}) is None


def test_new_credentials_carry_expires_at_only():
    now = datetime(2030, 1, 1, tzinfo=UTC)
    creds = with_expiry({"access_token": "t", "access_token_expires_at": 5}, 3600, now)
    assert "access_token_expires_at" not in creds
    assert parse_time(creds["expires_at"]) == now + timedelta(hours=1)
    assert creds["access_token_lifetime"] == 3600


def test_a_connection_saved_in_the_old_format_keeps_working(zoho):
    """Credentials stored before (epoch `access_token_expires_at`): a live token is used as
    it is, an expired one is refreshed once and saved back in the one format."""
    live = {**zoho.credentials,
            "access_token_expires_at": int(datetime.now(UTC).timestamp()) + 3000}
    provider = zoho.provider(credentials=live)
    provider.test_connection()
    assert zoho.state.refresh_requests == 0 and zoho.saved_credentials == {}

    stale = {**zoho.credentials, "access_token_expires_at": 1_000}
    zoho.provider(credentials=stale).test_connection()
    assert zoho.state.refresh_requests == 1
    saved = zoho.saved_credentials
    assert "access_token_expires_at" not in saved
    assert expires_at(saved) > datetime.now(UTC) + timedelta(minutes=50)
    again = zoho.provider(credentials=saved)
    again.test_connection()
    assert zoho.state.refresh_requests == 1


def test_a_refused_token_costs_one_refresh_then_the_request_is_repeated(zoho):
    provider = zoho.provider()
    zoho.expire_access_token()
    provider.test_connection()
    assert zoho.state.refresh_requests == 1
    assert provider.credentials["access_token"] != zoho.credentials["access_token"]


def test_the_refresh_lock_is_held_and_newer_stored_credentials_are_adopted(zoho):
    entered: list[bool] = []
    newer = {**zoho.credentials, "access_token": "stored-by-another-run"}

    @contextmanager
    def lock():
        entered.append(True)
        yield newer

    provider = zoho.provider(credentials={**zoho.credentials, "access_token_expires_at": 1},
                             refresh_lock=lock)
    provider.refresh()
    assert entered == [True] and zoho.state.refresh_requests == 0
    assert provider.credentials["access_token"] == "stored-by-another-run"


class _Fake(TokenAuth):
    """A bare TokenAuth user: counts renewals, answers 401 as told."""

    def __init__(self, credentials, answers):
        self.credentials = dict(credentials)
        self.answers = list(answers)
        self.renewals = 0
        self.handed: list[dict] = []
        self.sent: list[str] = []

    @contextmanager
    def refreshing(self):
        yield False

    def hand_back(self, credentials):
        self.credentials = dict(credentials)
        self.handed.append(dict(credentials))

    def renew(self, credentials):
        self.renewals += 1
        return {**credentials, "access_token": f"new{self.renewals}"}

    def send(self, token):
        self.sent.append(token)
        return Response(self.answers.pop(0), CaseInsensitiveDict(), b"", "https://x.test/")


def test_proactive_refresh_counts_as_the_one_refresh():
    soon = (datetime.now(UTC) + timedelta(seconds=10)).isoformat()
    fake = _Fake({"access_token": "old", "expires_at": soon}, [401])
    assert fake.authorized(fake.send).status == 401
    assert fake.renewals == 1 and fake.sent == ["new1"] and fake.handed[0]["access_token"] == "new1"


def test_a_second_401_is_returned_not_refreshed_again():
    fake = _Fake({"access_token": "old"}, [401, 401])
    assert fake.authorized(fake.send).status == 401
    assert fake.renewals == 1 and fake.sent == ["old", "new1"]


def test_short_lived_tokens_keep_a_proportional_margin():
    fake = _Fake({"access_token": "t", "access_token_lifetime": 30,
                  "expires_at": (datetime.now(UTC) + timedelta(seconds=10)).isoformat()}, [200])
    assert fake.authorized(fake.send).status == 200
    assert fake.renewals == 0  # 10 s left is more than 10 % of 30 s
