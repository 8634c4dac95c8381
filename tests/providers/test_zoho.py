"""Zoho CRM v8: every quirk of PROVIDERS.md, the OAuth helpers and the error paths, over
real HTTP against the simulator (realistic 19-digit record ids)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from simulators import zoho as sim
from simulators.dataset import generate
from tests.providers.cases.zoho import Case, serve_fast
from webapp.providers.auth import expires_at
from webapp.providers.base import (
    AuthError,
    ConfigurationError,
    RateLimited,
    SchemaError,
)
from webapp.providers.zoho import (
    DATA_CENTRES,
    SCOPES,
    Zoho,
    authorize_url,
    exchange_code,
    verify_callback,
)

REDIRECT = "https://tributary.example.com/integrations/zoho/callback"


@pytest.fixture
def make_case():
    started: list[Case] = []

    def make(n: int = 120, seed: int = 3, **options) -> Case:
        options.setdefault("contact_id_base", sim.CONTACT_ID_BASE)
        case = Case(generate(n, seed=seed), **options)
        case.start()
        started.append(case)
        return case

    yield make
    for case in started:
        case.stop()


def raw_get(case: Case, path: str, params=None, headers=None, token: str | None = None):
    auth = {"Authorization": f"Zoho-oauthtoken {token or case.credentials['access_token']}"}
    return requests.get(f"{case.url}/crm/v8/{path}", params=params,
                        headers={**auth, **(headers or {})}, timeout=10)


def raw_refresh(case: Case, refresh_token: str | None = None):
    return requests.post(f"{case.url}/oauth/v2/token", data={
        "grant_type": "refresh_token", "client_id": case.state.client_id,
        "client_secret": case.state.client_secret,
        "refresh_token": refresh_token or case.credentials["refresh_token"]}, timeout=10)


def ids(pages) -> list[str]:
    return [r.source_id for p in pages for r in p.records]


def expired(case: Case) -> dict:
    return {**case.credentials, "access_token_expires_at": 1_000}


# ------------------------------------------------------------------------------ OAuth


@pytest.mark.parametrize("dc", sorted(DATA_CENTRES))
def test_authorize_url_per_data_centre(dc):
    url = authorize_url(dc, "1000.CID", REDIRECT, "st4te")
    parts = urlsplit(url)
    q = parse_qs(parts.query)
    assert parts.scheme == "https" and parts.hostname == DATA_CENTRES[dc][0]
    assert parts.path == "/oauth/v2/auth"
    assert q["scope"] == [",".join(SCOPES)]
    assert "ZohoCRM.modules.contacts.READ" in q["scope"][0]
    assert q["access_type"] == ["offline"] and q["response_type"] == ["code"]
    assert q["client_id"] == ["1000.CID"] and q["redirect_uri"] == [REDIRECT]
    assert q["state"] == ["st4te"]


def test_canada_uses_zohocloud_hosts():
    assert urlsplit(authorize_url("ca", "c", REDIRECT, "s")).hostname == "accounts.zohocloud.ca"
    assert DATA_CENTRES["ca"][1] == "www.zohoapis.ca"


def test_authorize_url_refuses_unknown_data_centre():
    with pytest.raises(ConfigurationError):
        authorize_url("mars", "c", REDIRECT, "s")


def test_callback_takes_accounts_server_and_location():
    cb = verify_callback({"code": "1000.x", "state": "s", "location": "eu",
                          "accounts-server": "https://accounts.zoho.eu"}, "s")
    assert cb.accounts_server == "https://accounts.zoho.eu" and cb.data_centre == "eu"
    cb = verify_callback({"code": "c", "state": "s", "location": "ca",
                          "accounts-server": "https://accounts.zohocloud.ca"}, "s")
    assert cb.data_centre == "ca"


@pytest.mark.parametrize("server", [
    "https://accounts.zoho.evil.com", "http://accounts.zoho.com",
    "https://accounts.zoho.com:8443", "https://127.0.0.1:9999", "https://zoho.com.attacker.io",
])
def test_callback_refuses_unknown_accounts_server(server):
    with pytest.raises(ConfigurationError) as info:
        verify_callback({"code": "c", "state": "s", "accounts-server": server}, "s")
    assert "data centre" in info.value.reason


def test_callback_loopback_only_when_allowed():
    params = {"code": "c", "state": "s", "accounts-server": "http://127.0.0.1:5123"}
    with pytest.raises(ConfigurationError):
        verify_callback(params, "s")
    assert verify_callback(params, "s", allow_loopback=True).accounts_server == \
        "http://127.0.0.1:5123"


def test_callback_checks_state_error_and_consistency():
    with pytest.raises(AuthError):
        verify_callback({"code": "c", "state": "other",
                         "accounts-server": "https://accounts.zoho.com"}, "s")
    with pytest.raises(AuthError):
        verify_callback({"error": "access_denied", "state": "s"}, "s")
    with pytest.raises(ConfigurationError):
        verify_callback({"code": "c", "state": "s", "location": "eu",
                         "accounts-server": "https://accounts.zoho.com"}, "s")


def test_oauth_flow_uses_callback_server_and_returned_api_domain(make_case):
    case = make_case()
    api = serve_fast(case.app)  # the same simulator on a second port plays the API domain
    try:
        case.state.api_domain = api.url
        url = authorize_url("us", case.state.client_id, REDIRECT, "st", accounts_server=case.url,
                            allow_loopback=True)
        answer = requests.get(url, allow_redirects=False, timeout=10)
        assert answer.status_code == 302
        params = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["Location"]).query).items()}
        assert params["accounts-server"] == case.url and params["location"] == "us"
        cb = verify_callback(params, "st", allow_loopback=True)
        before = case.state.token_requests
        result = exchange_code(cb, client_id=case.state.client_id,
                               client_secret=case.state.client_secret, redirect_uri=REDIRECT,
                               http=case.http(), allow_loopback=True)
        assert case.state.token_requests == before + 1
        assert result["settings"] == {"data_centre": "us", "accounts_server": case.url,
                                      "api_domain": api.url}
        creds = result["credentials"]
        assert creds["refresh_token"] and creds["access_token"]
        assert expires_at(creds).timestamp() > datetime.now(UTC).timestamp() + 3000
        case.state.api_hosts.clear()
        Zoho(result["settings"], creds, http=case.http(), allow_loopback=True).test_connection()
        assert case.state.api_hosts == {urlsplit(api.url).netloc}
    finally:
        api.stop()


def test_reused_code_is_http_200_with_error(make_case):
    case = make_case()
    url = authorize_url("us", case.state.client_id, REDIRECT, "st", accounts_server=case.url,
                        allow_loopback=True)
    loc = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
    params = {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}
    form = {"grant_type": "authorization_code", "client_id": case.state.client_id,
            "client_secret": case.state.client_secret, "redirect_uri": REDIRECT,
            "code": params["code"]}
    first = requests.post(f"{case.url}/oauth/v2/token", params=form, timeout=10)  # query form
    assert first.status_code == 200 and "access_token" in first.json()
    again = requests.post(f"{case.url}/oauth/v2/token", data=form, timeout=10)
    assert again.status_code == 200 and again.json() == {"error": "invalid_code"}
    cb = verify_callback(params, "st", allow_loopback=True)
    with pytest.raises(AuthError) as info:
        exchange_code(cb, client_id=case.state.client_id, client_secret=case.state.client_secret,
                      redirect_uri=REDIRECT, http=case.http(), allow_loopback=True)
    assert "connect again" in info.value.reason


def test_wrong_client_secret_and_foreign_api_domain(make_case):
    case = make_case()

    def callback():
        url = authorize_url("us", case.state.client_id, REDIRECT, "st",
                            accounts_server=case.url, allow_loopback=True)
        loc = requests.get(url, allow_redirects=False, timeout=10).headers["Location"]
        return verify_callback({k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()},
                               "st", allow_loopback=True)

    with pytest.raises(AuthError) as info:
        exchange_code(callback(), client_id=case.state.client_id, client_secret="wrong",
                      redirect_uri=REDIRECT, http=case.http(), allow_loopback=True)
    assert "secret" in info.value.reason
    case.state.api_domain = "https://www.zohoapis.evil.com"
    with pytest.raises(ConfigurationError):
        exchange_code(callback(), client_id=case.state.client_id,
                      client_secret=case.state.client_secret, redirect_uri=REDIRECT,
                      http=case.http(), allow_loopback=True)


# ------------------------------------------------------------------------------ tokens


def test_access_token_cached_for_its_hour_across_instances(make_case):
    case = make_case()
    saved: list[dict] = []
    first = case.provider(credentials=expired(case), on_credentials=saved.append)
    assert len(ids(first.iter_pages("Contacts", "all"))) == 120
    assert case.state.refresh_requests == 1 and len(saved) == 1
    assert saved[0]["refresh_token"] == case.credentials["refresh_token"]  # not rotated
    second = case.provider(credentials=saved[0])
    for _ in range(3):
        second.test_connection()
        list(second.iter_pages("Contacts", "all"))
    assert case.state.refresh_requests == 1


def test_short_lived_token_is_not_refreshed_before_every_request(make_case):
    """A 30 s token keeps a 3 s margin (10 % of its life), not the fixed 60 s that made
    every request refresh first and ran into Zoho's refresh throttle."""
    case = make_case(access_lifetime=30)
    saved: list[dict] = []
    provider = case.provider(credentials=expired(case), on_credentials=saved.append)
    for _ in range(6):
        provider.test_connection()
    assert case.state.refresh_requests == 1
    assert saved[0]["access_token_lifetime"] == 30
    assert provider._expiry_margin() == pytest.approx(3.0)
    hour = case.provider(credentials={**case.credentials, "access_token_lifetime": 3600})
    assert hour._expiry_margin() == 60.0
    legacy = case.provider()  # stored before lifetimes were kept: assume an hour
    assert legacy._expiry_margin() == 60.0


def test_refresh_rate_limit_is_enforced_and_reported(make_case):
    case = make_case()
    for _ in range(5):
        assert "access_token" in raw_refresh(case).json()
    denied = raw_refresh(case)
    assert denied.status_code == 400 and denied.json()["error"] == "Access Denied"
    with pytest.raises(RateLimited) as info:
        case.provider(credentials=expired(case)).test_connection()
    assert "too many token refreshes" in info.value.reason
    case.state.advance(61)  # the limit is per minute
    assert "access_token" in raw_refresh(case).json()


def test_dead_refresh_token_is_200_invalid_code(make_case):
    case = make_case()
    answer = raw_refresh(case, refresh_token="1000.revoked")
    assert answer.status_code == 200 and answer.json() == {"error": "invalid_code"}
    creds = {**expired(case), "refresh_token": "1000.revoked"}
    with pytest.raises(AuthError) as info:
        case.provider(credentials=creds).test_connection()
    assert "reconnect" in info.value.reason


def test_bad_token_is_401_invalid_token(make_case):
    case = make_case()
    answer = raw_get(case, "Contacts", {"fields": "Email"}, token="1000.bogus")
    assert answer.status_code == 401
    assert answer.json() == {"code": "INVALID_TOKEN", "details": {},
                             "message": "invalid oauth token", "status": "error"}
    bearer = requests.get(f"{case.url}/crm/v8/Contacts", params={"fields": "Email"}, timeout=10,
                          headers={"Authorization": f"Bearer {case.credentials['access_token']}"})
    assert bearer.status_code == 401 and bearer.json()["code"] == "AUTHENTICATION_FAILURE"


def test_401_refreshes_once_then_gives_up(make_case):
    case = make_case()
    provider = case.provider(credentials={**case.credentials, "access_token": "1000.stale"})
    provider.test_connection()
    assert case.state.refresh_requests == 1
    # A token that works at the accounts server but never at the API: wrong data centre.
    case.state.access_tokens.clear()
    case.state._new_access = lambda refresh: ("1000.useless", 0)  # type: ignore[method-assign]
    with pytest.raises(AuthError) as info:
        case.provider(credentials={**case.credentials, "access_token": "x"}).test_connection()
    assert "data centre" in info.value.reason
    assert case.state.refresh_requests == 2


def test_refresh_runs_under_the_callers_lock(make_case):
    case = make_case()
    entered: list[int] = []

    @contextlib.contextmanager
    def lock():
        entered.append(1)
        yield

    case.provider(credentials=expired(case), refresh_lock=lock).test_connection()
    assert entered == [1]


def test_missing_scope_is_a_plain_configuration_error(make_case):
    case = make_case()
    creds = case.state.issue_tokens(scopes=("ZohoCRM.settings.fields.READ",))
    with pytest.raises(ConfigurationError) as info:
        case.provider(credentials=creds).test_connection()
    assert "permission" in info.value.reason


def test_settings_refuse_hosts_outside_zoho(make_case):
    creds = {"access_token": "t", "refresh_token": "r"}
    with pytest.raises(ConfigurationError):
        Zoho({"data_centre": "xx"}, creds)
    with pytest.raises(ConfigurationError):
        Zoho({"api_domain": "https://www.zohoapis.evil.com"}, creds)
    with pytest.raises(ConfigurationError):
        Zoho({"accounts_server": "http://127.0.0.1:8080"}, creds)  # loopback not allowed
    z = Zoho({"data_centre": "au"}, creds)
    assert z.api_domain == "https://www.zohoapis.com.au"
    assert z.accounts_server == "https://accounts.zoho.com.au"


# ------------------------------------------------------------------------- list quirks


def test_fields_is_mandatory_and_capped_at_50(make_case):
    case = make_case()
    missing = raw_get(case, "Contacts", {"per_page": 5})
    assert missing.status_code == 400 and missing.json() == {
        "code": "REQUIRED_PARAM_MISSING", "details": {"param_name": "fields"},
        "message": "One of the expected parameter is missing", "status": "error"}
    many = raw_get(case, "Contacts", {"fields": ",".join(["Email"] * 51)})
    assert many.status_code == 400 and many.json()["code"] == "LIMIT_EXCEEDED"
    assert many.json()["status"] == "error"
    big = raw_get(case, "Contacts", {"fields": "Email", "per_page": 201})
    assert big.status_code == 400 and big.json()["code"] == "INVALID_DATA"


def test_more_than_50_fields_are_batched_and_merged_by_id(make_case):
    case = make_case(n=450, extra_custom_fields=70)
    pages = list(case.provider().iter_pages("Contacts", "all"))
    records = [r for p in pages for r in p.records]
    assert len(records) == 450
    assert all(r.fields["Custom_70"] == f"custom_70-{int(r.source_id) - sim.CONTACT_ID_BASE}"
               and r.fields["Custom_1"] and "Loyalty_Tier" in r.fields for r in records)
    lists = [e for e in case.state.log if e["path"] == "/crm/v8/Contacts"]
    assert all(len(e["args"]["fields"].split(",")) <= 50 for e in lists)
    assert len(lists) == 3 * 2  # three pages, two field batches each


def test_walk_crosses_2000_switching_from_page_to_page_token(make_case):
    case = make_case(n=2500)
    pages = list(case.provider().iter_pages("Contacts", "all"))
    got = ids(pages)
    assert len(got) == len(set(got)) == 2500
    assert set(got) == case.expected_ids()
    lists = [e["args"] for e in case.state.log if e["path"] == "/crm/v8/Contacts"]
    assert [a.get("page") for a in lists[:10]] == [str(i) for i in range(1, 11)]
    assert all("page_token" in a and "page" not in a for a in lists[10:])
    assert len(lists) == 13
    assert [p.cursor["mode"] for p in pages[9:]] == ["token", "token", "token", "done"]
    assert pages[-1].done and not any(p.done for p in pages[:-1])


def test_discrete_limit_ambiguity_binding_and_expiry_are_enforced(make_case):
    case = make_case(n=2500)
    over = raw_get(case, "Contacts", {"fields": "Email", "page": 11, "per_page": 200})
    assert over.status_code == 400 and over.json() == {
        "code": "DISCRETE_PAGINATION_LIMIT_EXCEEDED", "details": {"limit": 2000},
        "message": "You can only get the first 2000 records without using page_token param",
        "status": "error"}
    first = raw_get(case, "Contacts", {"fields": "Email", "per_page": 200}).json()["info"]
    token = first["next_page_token"]
    assert first["more_records"] and first["page_token_expiry"]
    both = raw_get(case, "Contacts", {"fields": "Email", "per_page": 200, "page": 2,
                                      "page_token": token})
    assert both.status_code == 400 and both.json()["code"] == "AMBIGUITY_DURING_PROCESSING"
    moved = raw_get(case, "Contacts", {"fields": "Email", "per_page": 100, "page_token": token})
    assert moved.status_code == 400 and moved.json()["code"] == "TOKEN_BOUND_DATA_MISMATCH"
    ok = raw_get(case, "Contacts", {"fields": "Email", "per_page": 200, "page_token": token})
    assert ok.status_code == 200 and ok.json()["info"]["page"] == 2
    case.state.advance(24 * 3600 + 1)
    token = case.state.issue_tokens()["access_token"]
    old = raw_get(case, "Contacts", {"fields": "Email", "per_page": 200,
                                     "page_token": ok.json()["info"]["next_page_token"]},
                  token=token)
    assert old.status_code == 400 and old.json()["code"] == "EXPIRED_VALUE"


def test_resume_after_page_token_expired_restarts_from_modified_time(make_case):
    case = make_case(n=2500)
    pages = list(case.provider().iter_pages("Contacts", "all"))
    head = ids(pages[:11])  # pages[10] is the first page read with a page_token
    assert pages[10].cursor["mode"] == "token"
    case.state.advance(25 * 3600)  # page tokens (and the access token) are now stale
    resumed = list(case.provider().iter_pages("Contacts", "all", cursor=pages[10].cursor))
    tail = ids(resumed)
    assert not set(head) & set(tail)
    assert sorted(head + tail) == sorted(ids(pages))
    restarted = [e for e in case.state.log if e["if_modified_since"]]
    assert restarted and restarted[0]["args"].get("page") == "1"


def test_page_token_record_limit_restarts_with_if_modified_since(make_case):
    case = make_case(n=2500, token_record_limit=2200)
    got = ids(case.provider().iter_pages("Contacts", "all"))
    assert len(got) == len(set(got)) == 2500
    assert any(e["if_modified_since"] for e in case.state.log)


def test_no_records_is_204_with_empty_body(make_case):
    case = make_case(n=0)
    answer = raw_get(case, "Contacts", {"fields": "Email"})
    assert answer.status_code == 204 and answer.content == b""
    pages = list(case.provider().iter_pages("Contacts", "all"))
    assert len(pages) == 1 and pages[0].done and pages[0].records == []


def test_nothing_changed_is_304_with_empty_body(make_case):
    case = make_case()
    later = "2030-01-01T00:00:00+05:30"
    answer = raw_get(case, "Contacts", {"fields": "Email"}, {"If-Modified-Since": later})
    assert answer.status_code == 304 and answer.content == b""
    pages = list(case.provider().iter_pages(
        "Contacts", "all", since=datetime(2030, 1, 1, tzinfo=UTC)))
    assert len(pages) == 1 and pages[0].done and pages[0].records == []


def test_if_modified_since_is_inclusive(make_case):
    case = make_case()
    person = case.people[59]
    pages = list(case.provider().iter_pages("Contacts", "all", since=person.updated_at))
    got = {int(i) - sim.CONTACT_ID_BASE for i in ids(pages)}
    assert person.id in got
    assert got == {p.id for p in case.people if p.updated_at >= person.updated_at}
    header = next(e["if_modified_since"] for e in case.state.log if e["if_modified_since"])
    assert datetime.fromisoformat(header) == person.updated_at  # ISO with offset


def test_leads_exclude_converted_unless_both(make_case):
    case = make_case()
    default = raw_get(case, "Leads", {"fields": "Email", "per_page": 200}).json()["data"]
    both = raw_get(case, "Leads", {"fields": "Email", "per_page": 200,
                                   "converted": "both"}).json()["data"]
    assert len(both) == 120 and len(default) == 120 - 120 // 9
    got = ids(case.provider().iter_pages("Leads", "all"))
    assert set(got) == {sim.lead_id(p.id) for p in case.people if not sim.is_converted(p)}


def test_custom_views_are_sources(make_case):
    case = make_case()
    provider = case.provider()
    sources = provider.sources("Contacts")
    assert sources[0].id == "all"
    gold = next(s for s in sources if s.label == "Gold and Platinum members")
    got = {int(i) - sim.CONTACT_ID_BASE for i in ids(provider.iter_pages("Contacts", gold.id))}
    assert got == {p.id for p in case.people if p.loyalty_tier in ("Gold", "Platinum")}
    assert all(e["args"].get("cvid") == gold.id for e in case.state.log
               if e["path"] == "/crm/v8/Contacts")
    assert [s.id for s in provider.sources("Leads")][0] == "all"


def test_sources_list_all_records_once_without_zohos_all_view(make_case):
    provider = make_case().provider()
    for module, others in (("Leads", ["Web Download leads"]),
                           ("Contacts", ["Gold and Platinum members", "Newsletter readers"])):
        labels = [s.label for s in provider.sources(module)]
        assert labels == [f"All {module.lower()}", *others]


def test_records_are_normalised(make_case):
    case = make_case()
    records = {r.source_id: r for p in case.provider().iter_pages("Contacts", "all")
               for r in p.records}
    for person in case.people:
        rec = records[sim.contact_id(person.id)]
        assert len(rec.source_id) == 19 and rec.source_id.isdigit()
        assert rec.email == person.email and rec.last_name == person.last_name
        assert rec.phone == person.phone  # Phone or Mobile, whichever holds it
        assert rec.country == person.country
        assert rec.updated_at == person.updated_at and rec.updated_at.utcoffset() == \
            timedelta(hours=5, minutes=30)
        assert rec.consent == ("opted_out" if person.consent == "opted_out" else "unknown")
        assert rec.consent_at is None
        assert rec.fields["Loyalty_Tier"] == person.loyalty_tier
        assert rec.fields["Owner"]["id"].isdigit() and rec.fields["Owner"]["email"]
        assert rec.fields["Mailing_Country"] in (None, *sim.COUNTRY_NAMES.values())


def test_discover_fields_types_and_values(make_case):
    fields = {f.name: f for f in make_case().provider().discover_fields("Contacts")}
    assert fields["Loyalty_Tier"].type == "choice" and fields["Loyalty_Tier"].custom
    assert fields["Loyalty_Tier"].allowed_values == ("Bronze", "Silver", "Gold", "Platinum")
    assert fields["Birthday"].type == "date" and fields["Lifetime_Value"].type == "number"
    assert fields["Website"].type == "url" and fields["Email"].type == "email"
    assert fields["Mailing_Country"].type == "country" and not fields["Email"].custom
    assert fields["Owner"].type == "other"


def test_unknown_extra_field_is_a_schema_error(make_case):
    provider = make_case().provider()
    with pytest.raises(SchemaError) as info:
        list(provider.iter_pages("Contacts", "all", fields=["Loyalty_Tier", "Shoe_Size"]))
    assert info.value.missing == ("Shoe_Size",)
    with pytest.raises(ConfigurationError):
        list(provider.iter_pages("Deals", "all"))


def test_429_honours_retry_after_then_gives_up(make_case):
    case = make_case(n=450)
    case.state.inject_errors(2, 429, retry_after="7")
    assert len(ids(case.provider().iter_pages("Contacts", "all"))) == 450
    assert 7.0 in case.sleeps
    answer = raw_get(case, "Contacts", {"fields": "Email"})
    answer = answer if answer.status_code == 429 else raw_get(case, "Contacts", {"fields": "E"})
    assert answer.json()["code"] == "TOO_MANY_REQUESTS" and answer.headers["Retry-After"] == "7"
    case.state.inject_errors(1, 429, retry_after="30")
    with pytest.raises(RateLimited):
        case.provider().test_connection()


def test_demo_config_connects(make_case):
    case = make_case()
    config = sim.demo_config(case.app, case.url)
    Zoho(config["settings"], config["credentials"], allow_loopback=True).test_connection()
