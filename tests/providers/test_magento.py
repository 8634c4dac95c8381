"""Magento 2 quirks and error paths, against the simulator."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from simulators.dataset import generate
from simulators.magento import create_app
from tests.providers.cases.magento import Case
from webapp.providers.base import AuthError, ConfigurationError, SchemaError
from webapp.providers.http import HostPolicy, HttpClient
from webapp.providers.magento import (
    Magento,
    encode_query,
    oauth1_header,
)

N = 120


@pytest.fixture(scope="module")
def server():
    case = Case(generate(N, seed=3))
    case.start()
    yield case
    case.stop()


@pytest.fixture
def case(server):
    reset(server)
    return server


def reset(case: Case, n: int = N, **options) -> None:
    """A fresh simulated store (new tokens, counters) behind the same running server."""
    case.people = generate(n, seed=3)
    case.app.state = create_app(case.people, **options).state
    case.saved_credentials = {}


def ids(pages) -> list[str]:
    return [r.source_id for p in pages for r in p.records]


def walk(provider, source="all", **kw):
    return list(provider.iter_pages("customers", source, **kw))


def signed_get(case: Case, path_and_query: str, **sign) -> requests.Response:
    """A raw GET signed like the client signs, for probing the simulator directly."""
    url = case.running.url + path_and_query
    creds = case.config()["credentials"]
    sign.setdefault("token", creds["access_token"])
    sign.setdefault("token_secret", creds["access_token_secret"])
    header = oauth1_header("GET", sign.pop("sign_url", url), creds, **sign)
    return requests.get(url, headers={"Authorization": header}, timeout=5)


CUSTOMERS = "/rest/V1/customers/search?"


# ------------------------------------------------------------------- pagination


@pytest.mark.parametrize("version,expected", [("2.3", "last"), ("2.4", "empty")])
def test_past_the_last_page_behaviour_by_version(case, version, expected):
    reset(case, version=version)
    query = encode_query([("searchCriteria[pageSize]", "50"),
                          ("searchCriteria[currentPage]", "99")])
    body = signed_get(case, CUSTOMERS + query).json()
    assert body["total_count"] == N
    if expected == "last":  # 2.3: the last page again
        assert [c["id"] for c in body["items"]] == list(range(101, N + 1))
    else:
        assert body["items"] == []
    # The client's walk is right either way: every customer exactly once.
    got = ids(walk(case.provider()))
    assert sorted(got, key=int) == [str(i) for i in range(1, N + 1)]


@pytest.mark.parametrize("version", ["2.3", "2.4"])
def test_small_searches_page_by_total_count_and_dedupe(case, version):
    reset(case, version=version, extra_groups=350)  # 354 groups: two pages of 300
    sources = case.provider().sources("customers")
    group_ids = [s.id for s in sources if s.id.startswith("group:")]
    assert len(group_ids) == len(set(group_ids)) == 353  # NOT LOGGED IN (0) left out
    assert case.state.api_requests == 3  # two group pages + websites, no empty-page probe


def test_page_size_over_300_is_refused(case):
    resp = signed_get(case, CUSTOMERS + encode_query([("searchCriteria[pageSize]", "301")]))
    assert resp.status_code == 400
    assert resp.json() == {"message": "Maximum SearchCriteria pageSize is %max",
                           "parameters": {"max": 300}}
    with pytest.raises(ConfigurationError):
        case.provider(page_size=301)
    provider = case.provider()
    provider.page_size = 301  # if it slipped through, the store's 400 is a plain error
    with pytest.raises(ConfigurationError) as info:
        walk(provider)
    assert "300" in info.value.detail


def test_missing_page_size_defaults_to_20_and_criteria_are_required(case):
    body = signed_get(case, CUSTOMERS + encode_query([("searchCriteria[currentPage]", "1")]))
    assert len(body.json()["items"]) == 20
    resp = signed_get(case, "/rest/V1/customers/search")
    assert resp.status_code == 400 and resp.json()["parameters"] == {
        "fieldName": "searchCriteria"}
    resp = signed_get(case, CUSTOMERS + encode_query([("searchCriteria[limit]", "5")]))
    assert resp.status_code == 400 and "not supported" in resp.json()["message"]


def test_same_second_cluster_larger_than_a_page(case):
    at = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
    case.touch(list(range(10, 110)), at)  # 100 customers in one second, pages of 30
    provider = case.provider(page_size=30)
    pages = walk(provider)
    got = ids(pages)
    assert len(got) == len(set(got)) == N
    assert pages[-1].done and pages[-1].high_water == at
    # resuming from any cursor inside the cluster neither skips nor repeats
    for k in range(len(pages) - 1):
        tail = ids(walk(case.provider(page_size=30), cursor=pages[k].cursor))
        assert sorted(ids(pages[: k + 1]) + tail, key=int) == sorted(got, key=int)


def test_changes_during_a_walk_skip_nothing(case):
    """currentPage paging would skip records here; the keyset walk does not."""
    provider = case.provider(page_size=25)
    pages = provider.iter_pages("customers", "all")
    first = next(pages)
    moved = [int(r.source_id) for r in first.records[:10]]
    case.touch(moved, datetime(2026, 9, 1, tzinfo=UTC))
    rest = ids(list(pages))
    seen = ids([first]) + rest
    assert set(seen) == {str(i) for i in range(1, N + 1)}
    assert sorted(rest, key=int)[:10] == sorted(map(str, moved), key=int)  # new versions


def test_since_is_inclusive_and_times_are_aware_utc(case):
    person = case.people[59]  # id 60: its second is its own
    pages = walk(case.provider(), since=person.updated_at)
    got = ids(pages)
    assert got[0] == str(person.id)
    assert all(p.updated_at >= person.updated_at for p in case.people if str(p.id) in got)
    assert len(got) == sum(p.updated_at >= person.updated_at for p in case.people)
    rec = pages[0].records[0]
    assert rec.updated_at.tzinfo is not None and rec.updated_at.utcoffset() == timedelta(0)


def test_sources_filter_by_group_and_website(case):
    provider = case.provider()
    labels = {s.id: s.label for s in provider.sources("customers")}
    assert labels["group:2"] == "Customer group: Wholesale"
    assert labels["website:2"] == "Website: EU Website"
    assert "group:0" not in labels and "website:0" not in labels
    wholesale = ids(walk(provider, "group:2"))
    assert set(wholesale) == {str(p.id) for p in case.people if "wholesale" in p.tags}
    eu = ids(walk(provider, "website:2"))
    assert set(eu) == {str(p.id) for p in case.people if p.id % 5 == 0}
    with pytest.raises(ConfigurationError):
        walk(provider, "tag:vip")


# ------------------------------------------------------------------------- auth


def test_bearer_refused_unless_the_store_allows_it(case):
    bearer = case.provider(auth_mode="bearer")
    with pytest.raises(AuthError) as info:
        bearer.test_connection()
    assert "Bearer" in info.value.reason
    assert case.state.auth_seen == ["bearer"]
    resp = requests.get(case.running.url + CUSTOMERS, timeout=5,
                        headers={"Authorization": f"Bearer {case.state.access_token}"})
    assert resp.status_code == 401
    assert resp.json() == {"message": "The consumer isn't authorized to access %resources.",
                           "parameters": {"resources": "Magento_Customer::customer"}}
    case.state.bearer_allowed = True
    assert ids(walk(bearer))
    assert set(case.state.auth_seen[2:]) == {"bearer"}


def test_oauth1_signed_requests_are_accepted(case):
    provider = case.provider()
    provider.test_connection()
    assert len(ids(walk(provider))) == N
    assert set(case.state.auth_seen) == {"oauth1"}


def test_bad_signature_is_refused(case):
    wrong = case.provider(credentials={"consumer_secret": "not-the-secret"})
    with pytest.raises(AuthError) as info:
        wrong.test_connection()
    assert "signature" in info.value.reason
    assert "not-the-secret" not in info.value.reason + info.value.detail
    # a signature over other query params than the ones sent
    query = encode_query([("searchCriteria[pageSize]", "5")])
    resp = signed_get(case, CUSTOMERS + query,
                      sign_url=case.running.url + CUSTOMERS + query.replace("5", "6"))
    assert resp.status_code == 401
    assert resp.json()["message"] == "The signature is invalid. Verify and try again."


def test_plus_for_space_breaks_the_signature(case):
    """Magento reads query params with rawurldecode: '+' is not a space when signing."""
    params = [("searchCriteria[filter_groups][0][filters][0][field]", "updated_at"),
              ("searchCriteria[filter_groups][0][filters][0][value]", "2026-01-01 00:00:00"),
              ("searchCriteria[filter_groups][0][filters][0][condition_type]", "gteq"),
              ("searchCriteria[pageSize]", "5")]
    good = encode_query(params)
    assert "%20" in good and "+" not in good
    assert signed_get(case, CUSTOMERS + good).status_code == 200
    plus = good.replace("%20", "+")
    resp = signed_get(case, CUSTOMERS + plus, sign_url=case.running.url + CUSTOMERS + good)
    assert resp.status_code == 401


def test_replayed_nonce_and_skewed_clock_are_refused(case):
    url = case.running.url + CUSTOMERS + encode_query([("searchCriteria[pageSize]", "1")])
    creds = case.config()["credentials"]
    header = oauth1_header("GET", url, creds, token=creds["access_token"],
                           token_secret=creds["access_token_secret"])
    assert requests.get(url, headers={"Authorization": header}, timeout=5).status_code == 200
    again = requests.get(url, headers={"Authorization": header}, timeout=5)
    assert again.status_code == 401 and "nonce" in again.json()["message"]
    provider = case.provider()
    provider.clock = lambda: time.time() - 3600
    with pytest.raises(AuthError) as info:
        provider.test_connection()
    assert "clock" in info.value.reason


def test_revoked_token_needs_reconnect_without_retries(case):
    provider = case.provider()
    case.expire_access_token()
    before = case.state.api_requests
    with pytest.raises(AuthError) as info:
        walk(provider)
    assert "reconnect" in info.value.reason
    assert case.state.api_requests - before == 1  # one refused call, no retry
    assert case.token_requests() == 0 and case.saved_credentials == {}


# ------------------------------------------------------------- address and SSRF


def test_store_code_sits_in_the_path(case):
    provider = case.provider(store_code="de")
    provider.test_connection()
    walk(provider)
    assert case.state.store_codes_seen and set(case.state.store_codes_seen) == {"de"}
    with pytest.raises(ConfigurationError) as info:
        case.provider(store_code="nosuchstore").test_connection()
    assert "store code" in info.value.reason
    with pytest.raises(ConfigurationError):
        case.provider(store_code="../admin")


def test_base_url_resolving_to_private_address_is_refused(case):
    def resolver(addresses):
        return lambda host: addresses

    creds = case.config()["credentials"]
    for addresses in (["10.1.2.3"], ["127.0.0.1"], ["169.254.169.254"], ["8.8.8.8", "::1"]):
        policy = HostPolicy(public_https=True, resolver=resolver(addresses))
        provider = Magento({"base_url": "https://shop.example.com"}, creds,
                           http=HttpClient(policy, sleep=lambda s: None))
        with pytest.raises(ConfigurationError) as info:
            provider.test_connection()
        assert "private or local" in info.value.reason
    # without the explicit loopback switch the simulator's own address is refused too
    plain = Magento({"base_url": case.running.url}, creds)
    with pytest.raises(ConfigurationError):
        plain.test_connection()
    metadata = Magento({"base_url": "https://169.254.169.254"}, creds)
    with pytest.raises(ConfigurationError):
        metadata.test_connection()
    assert case.state.api_requests == 0


def test_an_address_that_is_not_magento_is_a_configuration_error(case):
    provider = case.provider(base_url=case.running.url + "/shop")
    with pytest.raises(ConfigurationError) as info:
        provider.test_connection()
    assert "base URL" in info.value.reason
    resp = signed_get(case, "/rest/V1/customerMetadata/customer")
    assert resp.status_code == 404
    assert resp.json() == {"message": "Request does not match any route."}


# ------------------------------------------------------------------ records


def test_option_ids_are_mapped_to_labels(case):
    records = {r.source_id: r for r in (r for p in walk(case.provider()) for r in p.records)}
    raw = signed_get(case, CUSTOMERS + encode_query([("searchCriteria[pageSize]", "300")]))
    raw_by_id = {str(c["id"]): c for c in raw.json()["items"]}
    tiered = [p for p in case.people if p.loyalty_tier]
    assert tiered
    for person in tiered:
        attrs = {a["attribute_code"]: a["value"] for a in
                 raw_by_id[str(person.id)]["custom_attributes"]}
        assert attrs["loyalty_tier"].isdigit()  # the API sends option ids
        assert records[str(person.id)].fields["loyalty_tier"] == person.loyalty_tier
    tagged = next(p for p in case.people if len(p.tags) == 2)
    assert records[str(tagged.id)].fields["interests"] == [t.title() for t in tagged.tags]
    assert records["1"].fields["gender"] == "Male" and records["4"].fields["gender"] is None
    assert records["2"].fields["group_id"] in (1, 2, 3)  # ids stay ids


def test_records_are_normalised(case):
    records = {r.source_id: r for p in walk(case.provider()) for r in p.records}
    for person in case.people:
        rec = records[str(person.id)]
        assert rec.email == person.email
        assert (rec.first_name, rec.last_name) == (person.first_name, person.last_name)
        assert rec.country == person.country
        assert rec.phone == (person.phone if person.country else None)
        assert rec.updated_at == person.updated_at
        if person.lifetime_value is not None:
            assert float(rec.fields["lifetime_value"]) == person.lifetime_value
    assert any(r.email is None for r in records.values())  # a missing email stays missing


@pytest.mark.parametrize("version", ["2.3", "2.4"])
def test_missing_is_subscribed_means_unknown(case, version):
    """2.4: is_subscribed true is subscribed, false is not_subscribed; 2.3 (absent): unknown."""
    reset(case, version=version)
    records = {r.source_id: r for p in walk(case.provider()) for r in p.records}
    subscribed = [p for p in case.people if p.consent == "subscribed"]
    assert subscribed
    for person in case.people:
        if version == "2.3":
            expected = "unknown"
        else:
            expected = "subscribed" if person.consent == "subscribed" else "not_subscribed"
        assert records[str(person.id)].consent == expected
        assert ("is_subscribed" in records[str(person.id)].fields) == (version == "2.4")


def test_field_discovery(case):
    fields = {f.name: f for f in case.provider().discover_fields("customers")}
    tier = fields["loyalty_tier"]
    assert tier.custom and tier.type == "choice"
    assert tier.allowed_values == ("Bronze", "Silver", "Gold", "Platinum")
    assert fields["interests"].type == "multi_choice"
    assert fields["lifetime_value"].type == "number"
    assert fields["website"].type == "url"
    assert fields["email"].type == "email" and not fields["email"].custom
    assert fields["dob"].type == "date" and fields["updated_at"].type == "datetime"
    assert fields["telephone"].type == "phone" and fields["country_id"].type == "country"
    assert "password_hash" not in fields and "rp_token" not in fields


def test_unknown_requested_field_is_a_schema_error(case):
    with pytest.raises(SchemaError) as info:
        walk(case.provider(), fields=["loyalty_tier", "shoe_size"])
    assert info.value.missing == ("shoe_size",)
    assert walk(case.provider(), fields=["loyalty_tier", "telephone"])


def test_server_errors_are_retried_gently(case):
    delays: list[float] = []
    provider = case.provider()
    provider.http.sleep = delays.append
    case.inject_errors(every=2, status=500)
    assert len(ids(walk(provider))) == N
    assert delays and all(d > 0 for d in delays)
