"""Salesforce client against its simulator: OAuth with PKCE, session refresh and rotation,
quota, SOQL strictness, query locators, Leads, fields and settings checks."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from simulators import salesforce as sim
from simulators.dataset import generate
from tests.providers.cases.salesforce import Case
from webapp.providers.base import AuthError, ConfigurationError, RateLimited, SchemaError
from webapp.providers.http import HttpClient
from webapp.providers.salesforce import (
    Salesforce,
    authorize_url,
    build_soql,
    exchange_code,
    host_policy,
    make_pkce,
    new_state,
    verify_callback,
)

N = 450  # three batches of 200


@pytest.fixture
def make_case():
    started: list[Case] = []

    def make(n: int = N, **options) -> Case:
        case = Case(generate(n, seed=7), **options)
        case.start()
        started.append(case)
        return case

    yield make
    for case in started:
        case.stop()


@pytest.fixture
def case(make_case) -> Case:
    return make_case()


def ids(pages) -> list[str]:
    return [r.source_id for p in pages for r in p.records]


def quiet_http() -> HttpClient:
    return HttpClient(host_policy(allow_loopback=True), sleep=lambda _s: None)


def api_get(case: Case, path: str, **params) -> requests.Response:
    token = case.state.access_token
    return requests.get(f"{case.running.url}/services/data/v62.0/{path}", params=params,
                        headers={"Authorization": f"Bearer {token}"}, timeout=5)


# ---------------------------------------------------------------------- OAuth + PKCE


def login(case: Case, challenge: str, state: str, redirect: str = "https://app.test/cb"):
    url = authorize_url(case.running.url, case.state.client_id, redirect, state, challenge,
                        allow_loopback=True)
    resp = requests.get(url, allow_redirects=False, timeout=5)
    assert resp.status_code == 302
    location = resp.headers["Location"]
    assert location.startswith(redirect + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_pkce_good_verifier_connects(case):
    verifier, challenge = make_pkce()
    state = new_state()
    params = login(case, challenge, state)
    code = verify_callback(params, state)
    result = exchange_code(case.running.url, case.state.client_id, case.state.client_secret,
                           code, "https://app.test/cb", verifier, http=quiet_http(),
                           allow_loopback=True)
    settings, creds = result["settings"], result["credentials"]
    assert settings["instance_url"] == case.running.url
    assert settings["org_id"] == sim.ORG_ID and settings["user_id"] == sim.USER_ID
    assert creds["access_token"] in case.state.access_tokens
    assert creds["refresh_token"] in case.state.refresh_tokens
    provider = Salesforce(settings, creds, http=quiet_http(), allow_loopback=True)
    provider.test_connection()


def test_pkce_wrong_or_missing_verifier_is_refused(case):
    verifier, challenge = make_pkce()
    state = new_state()
    for bad in ("x" * 64, ""):
        code = verify_callback(login(case, challenge, state), state)
        with pytest.raises(AuthError) as info:
            exchange_code(case.running.url, case.state.client_id, case.state.client_secret,
                          code, "https://app.test/cb", bad, http=quiet_http(),
                          allow_loopback=True)
        assert "verifier" in info.value.reason
        assert info.value.detail == "invalid code verifier"
    # A code is single use: the good verifier cannot redeem the refused code afterwards.
    with pytest.raises(AuthError):
        exchange_code(case.running.url, case.state.client_id, case.state.client_secret,
                      code, "https://app.test/cb", verifier, http=quiet_http(),
                      allow_loopback=True)


def test_authorize_without_challenge_is_refused_by_simulator(case):
    url = (f"{case.running.url}/services/oauth2/authorize?response_type=code&client_id="
           f"{case.state.client_id}&redirect_uri=https://app.test/cb&state=s1")
    resp = requests.get(url, allow_redirects=False, timeout=5)
    query = parse_qs(urlsplit(resp.headers["Location"]).query)
    assert query["error"] == ["invalid_request"] and query["state"] == ["s1"]


def test_authorize_url_production_sandbox_and_my_domain():
    prod = authorize_url("login.salesforce.com", "cid", "https://app.test/cb", "st", "ch")
    assert prod.startswith("https://login.salesforce.com/services/oauth2/authorize?")
    assert "scope=api%20refresh_token" in prod
    query = parse_qs(urlsplit(prod).query)
    assert query["code_challenge"] == ["ch"] and query["code_challenge_method"] == ["S256"]
    assert query["state"] == ["st"] and query["response_type"] == ["code"]
    sandbox = authorize_url("test.salesforce.com", "cid", "https://app.test/cb", "st", "ch")
    assert sandbox.startswith("https://test.salesforce.com/services/oauth2/authorize?")
    mine = authorize_url("https://acme--dev.sandbox.my.salesforce.com", "cid", "u", "s", "c")
    assert urlsplit(mine).hostname == "acme--dev.sandbox.my.salesforce.com"
    for bad in ("evil.example.com", "login.salesforce.com.evil.io",
                "http://login.salesforce.com", "http://127.0.0.1:8000"):
        with pytest.raises(ConfigurationError):
            authorize_url(bad, "cid", "https://app.test/cb", "st", "ch")


def test_callback_state_and_errors_are_checked():
    with pytest.raises(AuthError):
        verify_callback({"code": "c", "state": "other"}, "expected")
    with pytest.raises(AuthError) as info:
        verify_callback({"error": "access_denied", "state": "s"}, "s")
    assert "declined" in info.value.reason
    assert verify_callback({"code": "c", "state": "s"}, "s") == "c"


# ------------------------------------------------------------------ session refresh


def test_refresh_rotates_and_saves_refresh_token(case):
    provider = case.provider()
    old = provider.credentials["refresh_token"]
    case.expire_access_token()
    assert len(ids(provider.iter_pages("Contact", "all"))) == N
    new = case.saved_credentials["refresh_token"]
    assert new != old and provider.credentials["refresh_token"] == new
    assert old not in case.state.refresh_tokens  # the rotated-out token is dead
    assert case.saved_credentials["access_token"] == case.state.access_token
    case.expire_access_token()  # the saved one renews again
    provider.test_connection()
    assert case.state.refresh_requests == 2


def test_refresh_without_rotation_keeps_token(make_case):
    case = make_case(rotate_refresh=False)
    provider = case.provider()
    old = provider.credentials["refresh_token"]
    case.expire_access_token()
    provider.test_connection()
    assert case.saved_credentials["refresh_token"] == old


def test_session_dies_after_n_requests_refreshed_once_and_walk_continues(make_case):
    case = make_case(session_max_requests=2)
    provider = case.provider()
    # Calls: describe, query (token 1) | more (401 -> refresh), more, more... (token 2)
    entered = []

    @contextmanager
    def lock():
        entered.append(1)
        yield

    provider.refresh_lock = lock
    got = ids(provider.iter_pages("Contact", "all"))
    assert sorted(got) == sorted(case.expected_ids())
    assert case.state.refresh_requests == 1
    assert entered == [1]


def test_dead_refresh_token_is_auth_error_once(case):
    provider = case.provider()
    case.kill_refresh_token()
    with pytest.raises(AuthError) as info:
        provider.test_connection()
    assert "Reconnect" in info.value.reason
    assert case.state.refresh_requests == 1


# ---------------------------------------------------------------------- limits


def test_daily_quota_exhausted_is_rate_limited_without_looping(case):
    provider = case.provider()
    case.state.quota_exhausted = True
    before = case.state.api_requests
    with pytest.raises(RateLimited) as info:
        list(provider.iter_pages("Contact", "all"))
    assert "daily" in info.value.reason
    assert case.state.api_requests - before == 1
    assert case.state.refresh_requests == 0


def test_quota_running_out_mid_walk_keeps_a_resumable_cursor(make_case):
    case = make_case(daily_limit=3)  # describe + query + one queryMore
    pages = []
    with pytest.raises(RateLimited):
        for page in case.provider().iter_pages("Contact", "all"):
            pages.append(page)
    assert len(pages) == 2
    case.state.daily_limit = 15000  # next day
    rest = list(case.provider().iter_pages("Contact", "all", cursor=pages[-1].cursor))
    assert sorted(ids(pages) + ids(rest)) == sorted(case.expected_ids())


def test_limit_info_header_is_read(case):
    provider = case.provider()
    provider.test_connection()
    assert provider.api_usage == (case.state.api_usage, 15000)


def test_api_disabled_says_why(case):
    case.state.api_disabled = True
    with pytest.raises(ConfigurationError) as info:
        case.provider().test_connection()
    assert "API access is not enabled" in info.value.reason


# ---------------------------------------------------------------------- SOQL + fields


def test_unknown_requested_field_is_schema_error_before_querying(case):
    provider = case.provider()
    before = len(case.state.queries)
    with pytest.raises(SchemaError) as info:
        list(provider.iter_pages("Contact", "all", fields=["Email", "Shoe_Size__c"]))
    assert info.value.missing == ("Shoe_Size__c",)
    assert len(case.state.queries) == before


def test_invalid_field_from_server_is_schema_error_with_the_field(case):
    provider = case.provider()
    provider.discover_fields("Contact")  # the mapping page cached the old describe
    case.state.drop_field("Contact", "Loyalty_Tier__c")
    with pytest.raises(SchemaError) as info:
        list(provider.iter_pages("Contact", "all", fields=["Loyalty_Tier__c"]))
    assert info.value.missing == ("Loyalty_Tier__c",)
    assert "Loyalty_Tier__c" in info.value.reason


def test_vanished_default_custom_field_is_dropped_and_walk_continues(case):
    provider = case.provider()
    provider.discover_fields("Contact")
    case.state.drop_field("Contact", "Website__c")
    pages = list(provider.iter_pages("Contact", "all"))
    assert len(ids(pages)) == N
    assert all("Website__c" not in r.fields for p in pages for r in p.records)


def test_simulator_soql_is_strict(case):
    quoted = api_get(case, "query", q="SELECT Id FROM Contact WHERE SystemModstamp >= "
                                      "'2026-01-01T00:00:00Z'")
    assert quoted.status_code == 400
    assert quoted.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert "should not be enclosed in quotes" in quoted.json()[0]["message"]
    mixed = api_get(case, "query", q="SELECT Id FROM Lead WHERE IsConverted = false AND "
                                     "DoNotCall = true OR DoNotCall = false")
    assert mixed.json()[0]["errorCode"] == "MALFORMED_QUERY"
    unknown = api_get(case, "query", q="SELECT Id, Shoe__c FROM Contact")
    assert unknown.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Shoe__c' on entity 'Contact'" in unknown.json()[0]["message"]
    contact_converted = api_get(case, "query", q="SELECT Id FROM Contact WHERE IsConverted "
                                                 "= false")
    assert contact_converted.json()[0]["errorCode"] == "INVALID_FIELD"
    assert api_get(case, "query", q="SELECT Id FROM Contact LIMIT 1").status_code == 200
    assert "Sforce-Limit-Info" in quoted.headers


def test_built_query_escapes_strings_and_uses_keyset():
    soql = build_soql("Lead", ["Id"], since=datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=UTC),
                      after={"t": "2026-02-01T00:00:00.000+0000", "id": "00Q5g0000000001EAA"},
                      lead_source="O'Brien \\ Co")
    assert "SystemModstamp >= 2026-01-02T03:04:05Z" in soql
    assert ("(SystemModstamp > 2026-02-01T00:00:00Z OR (SystemModstamp = 2026-02-01T00:00:00Z"
            " AND Id > '00Q5g0000000001EAA'))") in soql
    assert "LeadSource = 'O\\'Brien \\\\ Co'" in soql
    assert "IsConverted = false" in soql
    assert sim.parse_soql(soql).obj == "Lead"  # the simulator's strict parser accepts it


def test_next_records_url_is_followed_verbatim(case):
    pages = list(case.provider().iter_pages("Contact", "all"))
    assert len(pages) == 3
    assert case.state.issued_next_urls
    assert case.state.requested_next_urls == case.state.issued_next_urls
    assert case.state.batch_headers == ["batchSize=200"]


def test_expired_query_locator_resumes_from_keyset(case):
    pages = case.provider().iter_pages("Contact", "all")
    first = next(pages)
    case.state.expire_locators()
    rest = list(pages)
    got = ids([first, *rest])
    assert len(got) == len(set(got)) == N
    assert len(case.state.queries) == 2 and "Id >" in case.state.queries[1]


def test_leads_exclude_converted_and_filter_by_lead_source(case):
    provider = case.provider()
    got = set(ids(provider.iter_pages("Lead", "all")))
    assert got == {sim.lead_id(p.id) for p in case.people if not sim.is_converted(p)}
    assert len(got) < N
    sources = {s.id for s in provider.sources("Lead")}
    assert {"all", "leadsource:Web", "leadsource:Partner Referral"} <= sources
    web = set(ids(provider.iter_pages("Lead", "leadsource:Web")))
    assert web == {sim.lead_id(p.id) for p in case.people
                   if not sim.is_converted(p) and p.id % 6 == 0}
    with pytest.raises(ConfigurationError):
        list(provider.iter_pages("Lead", "listview:xyz"))


def test_records_are_normalised(case):
    records = {r.source_id: r for p in case.provider().iter_pages("Contact", "all")
               for r in p.records}
    for person in case.people:
        rec = records[sim.contact_id(person.id)]
        assert rec.country == person.country
        assert rec.updated_at == person.updated_at
        assert rec.email == person.email and rec.last_name == person.last_name
        assert rec.fields["Loyalty_Tier__c"] == person.loyalty_tier
        assert "Id" not in rec.fields and "attributes" not in rec.fields
    by_name = [p for p in case.people if p.country and p.id % 3]  # the org holds names
    assert by_name
    for person in by_name:
        rec = records[sim.contact_id(person.id)]
        assert rec.fields["MailingCountry"] == sim.COUNTRY_NAMES[person.country]
        assert rec.country == person.country


def test_discover_fields_types_and_compounds(case):
    fields = {f.name: f for f in case.provider().discover_fields("Lead")}
    assert "Name" not in fields and "Address" not in fields  # compound: not selectable
    assert fields["Country"].type == "text" and fields["Email"].type == "email"
    assert fields["Loyalty_Tier__c"].type == "choice" and fields["Loyalty_Tier__c"].custom
    assert fields["Loyalty_Tier__c"].allowed_values == sim.TIERS
    assert fields["Lifetime_Value__c"].type == "number"
    assert fields["Birthday__c"].type == "date" and fields["Website__c"].type == "url"
    assert fields["IsConverted"].type == "boolean" and not fields["IsConverted"].custom


def test_hosts_are_allow_listed(case):
    creds = case.config()["credentials"]
    with pytest.raises(ConfigurationError):
        Salesforce({"instance_url": "https://evil.example.com"}, creds)
    with pytest.raises(ConfigurationError):
        Salesforce({"instance_url": case.running.url}, creds)  # loopback needs the setting
    ok = Salesforce({"login_host": "test.salesforce.com",
                     "instance_url": "https://acme--dev.sandbox.my.salesforce.com"}, creds)
    assert ok.login == "https://test.salesforce.com" and ok.api_version == "v62.0"
