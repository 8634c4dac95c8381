"""Shopify quirks, error paths and OAuth, against the simulator over real HTTP."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from simulators import shopify as sim
from simulators.dataset import generate
from tests.providers.cases.shopify import Case
from webapp.providers import get_provider_class
from webapp.providers.base import AuthError, ConfigurationError, RateLimited, SchemaError
from webapp.providers.shopify import (
    CallbackError,
    Shopify,
    authorize_url,
    callback_hmac,
    exchange_code,
    normalize_shop,
    verify_callback,
)

SECRET = sim.CLIENT_SECRET


class FakeClock:
    """The simulator's clock; the client's retry sleep advances it (no real waiting)."""

    def __init__(self):
        self.now = time.time()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def make_case():
    started: list[Case] = []

    def make(n: int = 120, **options) -> Case:
        case = Case(generate(n, seed=3), **options)
        case.start()
        started.append(case)
        return case

    yield make
    for case in started:
        case.stop()


@pytest.fixture
def case(make_case):
    return make_case()


def api(case: Case, resource: str) -> str:
    return f"{case.config['settings']['api_base']}/admin/api/{sim.API_VERSION}/{resource}"


def token_headers(case: Case) -> dict:
    return {"X-Shopify-Access-Token": case.config["credentials"]["access_token"]}


def all_records(provider, source="all", **kw):
    return [r for page in provider.iter_pages("customers", source, **kw) for r in page.records]


# ------------------------------------------------------------------ pagination quirks


def test_page_info_with_a_filter_is_rejected_like_shopify(case):
    first = requests.get(api(case, "customers.json"), params={"limit": 10},
                         headers=token_headers(case), timeout=5)
    next_url = requests.utils.parse_header_links(first.headers["Link"])[0]["url"]
    bad = requests.get(next_url, params={"updated_at_min": "2026-01-01T00:00:00Z"},
                       headers=token_headers(case), timeout=5)
    assert bad.status_code == 400
    message = bad.json()["errors"]["updated_at_min"]
    assert message.startswith("updated_at_min cannot be passed when page_info is present.")
    garbled = requests.get(api(case, "customers.json"), params={"page_info": "zzz"},
                           headers=token_headers(case), timeout=5)
    assert garbled.status_code == 400 and garbled.json() == {
        "errors": {"page_info": "Invalid value."}}


def test_limit_over_250_is_rejected_and_the_client_refuses_it(case):
    resp = requests.get(api(case, "customers.json"), params={"limit": 251},
                        headers=token_headers(case), timeout=5)
    assert resp.status_code == 400 and "limit" in resp.json()["errors"]
    with pytest.raises(ConfigurationError):
        case.provider(page_size=251)


def test_walk_follows_link_headers_with_only_page_info_and_limit(case):
    since = datetime(2026, 1, 2, tzinfo=UTC)
    pages = list(case.provider(page_size=25).iter_pages("customers", "all", since=since))
    assert len(pages) > 3 and pages[-1].done and not any(p.done for p in pages[:-1])
    expected = {str(p.id) for p in case.people if p.updated_at >= since}
    got = [r.source_id for p in pages for r in p.records]
    assert sorted(got) == sorted(expected) and len(got) == len(set(got))
    assert case.state.counters["rest"] == len(pages)
    assert case.state.ignored_params == []  # nothing Shopify would silently ignore


def test_resume_asks_since_id_with_the_walks_filter(case):
    since = datetime(2026, 2, 1, tzinfo=UTC)
    provider = case.provider(page_size=20)
    pages = list(provider.iter_pages("customers", "all", since=since))
    cursor = pages[1].cursor
    assert cursor["last_id"] and cursor["since"]
    resumed = list(case.provider(page_size=20).iter_pages("customers", "all", cursor=cursor))
    head = [r.source_id for p in pages[:2] for r in p.records]
    tail = [r.source_id for p in resumed for r in p.records]
    assert not set(head) & set(tail)
    assert sorted(head + tail) == sorted(r.source_id for p in pages for r in p.records)
    assert resumed[-1].high_water == pages[-1].high_water


def test_timestamps_keep_the_shop_offset_and_compare_as_aware(make_case):
    case = make_case(shop_offset=timedelta(hours=9, minutes=30))
    raw = requests.get(api(case, "customers.json"), params={"limit": 1},
                       headers=token_headers(case), timeout=5).json()["customers"][0]
    assert raw["updated_at"].endswith("+09:30")
    records = {r.source_id: r for r in all_records(case.provider())}
    for person in case.people:
        rec = records[str(person.id)]
        assert rec.updated_at.utcoffset() == timedelta(hours=9, minutes=30)
        assert rec.updated_at == person.updated_at
        assert rec.consent_at == person.consent_at or rec.consent_at is None


@pytest.mark.parametrize("exclusive", [False, True])
def test_since_is_inclusive_whichever_way_updated_at_min_works(make_case, exclusive):
    case = make_case(exclusive_min=exclusive)
    target = case.people[60]
    got = all_records(case.provider(), since=target.updated_at)
    expected = {str(p.id) for p in case.people if p.updated_at >= target.updated_at}
    assert {r.source_id for r in got} == expected and str(target.id) in expected


def test_a_record_changed_behind_the_walk_is_caught_next_run(case):
    provider = case.provider(page_size=20)
    pages = provider.iter_pages("customers", "all")
    assert next(pages).records
    changed_at = datetime.fromtimestamp(int(time.time()) + 5, UTC)
    case.touch([3], changed_at)  # id 3 was on the first page, already passed
    case.touch([110], changed_at + timedelta(seconds=10))  # still ahead of the walk
    rest = list(pages)
    assert "110" in {r.source_id for p in rest for r in p.records}
    mark = rest[-1].high_water
    assert mark < changed_at  # the walk's start, not the largest timestamp seen
    again = {r.source_id for r in all_records(case.provider(), since=mark)}
    assert {"3", "110"} <= again


# ------------------------------------------------------------------ rate limits


def test_leaky_bucket_header_and_429_shape(make_case):
    clock = FakeClock()
    case = make_case(bucket=True, clock=clock)
    case.state.fill_bucket(40)
    resp = requests.get(api(case, "customers.json"), headers=token_headers(case), timeout=5)
    assert resp.status_code == 429
    assert resp.headers["Retry-After"] == "2.0"
    assert resp.json() == {"errors": "Exceeded 2 calls per second for api client. Reduce "
                                     "request rates to resume uninterrupted service."}
    clock.now += 1
    ok = requests.get(api(case, "customers.json"), headers=token_headers(case), timeout=5)
    assert ok.status_code == 200 and ok.headers["X-Shopify-Shop-Api-Call-Limit"] == "39/40"


def test_client_paces_itself_by_the_call_limit_header(make_case):
    clock = FakeClock()
    case = make_case(n=600, bucket=True, clock=clock)
    provider = case.provider(page_size=10, http=case.http(sleep=clock.sleep))
    ids = [r.source_id for r in all_records(provider, fields=[])]
    assert sorted(ids, key=int) == [str(p.id) for p in case.people]
    assert case.state.counters["rest"] == 60
    assert case.state.counters["throttled"] == 0  # paused before the bucket overflowed
    assert clock.slept and provider.call_limit[1] == 40


def test_client_waits_out_a_full_bucket(make_case):
    clock = FakeClock()
    case = make_case(bucket=True, clock=clock)
    case.state.fill_bucket(40)
    provider = case.provider(http=case.http(sleep=clock.sleep))
    assert len(all_records(provider)) == len(case.people)
    assert case.state.counters["throttled"] == 1 and 2.0 in clock.slept


def test_rate_limit_beyond_budget_is_rate_limited(case):
    case.inject_errors(every=1, status=429)
    with pytest.raises(RateLimited):
        all_records(case.provider())


@pytest.mark.parametrize("status", [200, 429])
def test_graphql_throttled_is_waited_out(case, status):
    case.state.graphql_throttle_status = status
    case.state.throttle_next_graphql = 1
    fields = case.provider().discover_fields("customers")
    assert "custom.loyalty_tier" in {f.name for f in fields}
    assert case.state.counters["throttled"] == 1
    assert case.sleeps  # waited before asking again


def test_graphql_throttled_forever_ends_rate_limited(case):
    case.state.throttle_next_graphql = 10_000
    with pytest.raises(RateLimited):
        case.provider().discover_fields("customers")


# ------------------------------------------------------------------ errors


def test_bad_token_is_401_with_shopify_body_and_an_auth_error(case):
    resp = requests.get(api(case, "shop.json"), headers={"X-Shopify-Access-Token": "shpat_x"},
                        timeout=5)
    assert resp.status_code == 401
    assert resp.json() == {"errors": "[API] Invalid API key or access token (unrecognized "
                                     "login or wrong password)"}
    provider = case.provider(credentials={"access_token": "shpat_wrong-secret-value"})
    with pytest.raises(AuthError) as info:
        provider.test_connection()
    assert "bad or revoked token" in info.value.reason
    assert "wrong-secret" not in str(info.value) + info.value.detail
    assert case.state.counters["refresh"] == 0


def test_unknown_shop_is_a_configuration_error(case):
    base = case.config["settings"]["api_base"].replace(sim.SHOP, "nobody.myshopify.com")
    provider = Shopify({"shop": "nobody.myshopify.com", "api_base": base},
                       case.config["credentials"], http=case.http(), allow_loopback=True)
    with pytest.raises(ConfigurationError) as info:
        provider.test_connection()
    assert "unknown shop" in info.value.reason


def test_missing_scope_is_reported(make_case):
    case = make_case(scopes=("read_orders",))
    with pytest.raises(ConfigurationError) as info:
        case.provider().test_connection()
    assert "missing scope" in info.value.reason
    with pytest.raises(ConfigurationError):
        all_records(case.provider())


def test_test_connection_passes_on_a_good_setup(case):
    assert case.provider().test_connection() is None


def test_unknown_group_or_source_and_host_rules(case):
    provider = case.provider()
    with pytest.raises(ConfigurationError):
        list(provider.iter_pages("orders", "all"))
    with pytest.raises(ConfigurationError):
        list(provider.iter_pages("customers", "segment:1"))
    with pytest.raises(ConfigurationError):  # api_base only with allow_loopback
        Shopify(case.config["settings"], case.config["credentials"])
    with pytest.raises(ConfigurationError):
        normalize_shop("evil.example.com")
    assert normalize_shop(" https://My-Shop.myshopify.com/ ") == "my-shop.myshopify.com"
    assert normalize_shop("my-shop") == "my-shop.myshopify.com"
    assert get_provider_class("shopify") is Shopify


# ------------------------------------------------------------------ fields and sources


def test_metafields_are_discovered_and_read(case):
    fields = {f.name: f for f in case.provider().discover_fields("customers")}
    tier = fields["custom.loyalty_tier"]
    assert tier.custom and tier.type == "choice"
    assert tier.allowed_values == ("Bronze", "Silver", "Gold", "Platinum")
    assert fields["custom.birthday"].type == "date"
    assert fields["custom.lifetime_value"].type == "number"
    assert fields["default_address.country_code"].type == "country"
    assert not fields["email"].custom
    records = {r.source_id: r for r in all_records(case.provider())}
    for person in case.people:
        got = records[str(person.id)].fields
        assert got["custom.loyalty_tier"] == person.loyalty_tier
        assert got["custom.birthday"] == (person.birthday.isoformat() if person.birthday
                                          else None)
        assert got["custom.lifetime_value"] == person.lifetime_value
        assert got["tags"] == person.tags


def test_unknown_field_is_a_schema_error_and_no_fields_means_no_graphql(case):
    with pytest.raises(SchemaError) as info:
        all_records(case.provider(), fields=["custom.gone", "email"])
    assert info.value.missing == ("custom.gone",)
    before = case.state.counters["graphql"]
    records = all_records(case.provider(), fields=["note"])
    assert records and case.state.counters["graphql"] == before
    assert "custom.loyalty_tier" not in records[0].fields
    only = all_records(case.provider(), fields=["custom.website"])
    assert "custom.website" in only[0].fields and "custom.birthday" not in only[0].fields


def test_tag_sources_filter_client_side(case):
    sources = {s.id for s in case.provider().sources("customers")}
    assert {"all", "tag:vip", "tag:newsletter"} <= sources
    got = {r.source_id for r in all_records(case.provider(), "tag:vip")}
    assert got == {str(p.id) for p in case.people if "vip" in p.tags}


def test_consent_states_map_per_the_table(make_case):
    case = make_case(n=400)
    records = {r.source_id: r for r in all_records(case.provider())}
    seen = set()
    mapping = {"subscribed": "subscribed", "unsubscribed": "opted_out",
               "redacted": "opted_out", "invalid": "opted_out", "pending": "unknown",
               "not_subscribed": "not_subscribed", None: "unknown"}
    for person in case.people:
        state = sim.consent_state(person)
        seen.add(state)
        rec = records[str(person.id)]
        assert rec.consent == mapping[state], (person.id, state)
        assert rec.fields["email_marketing_consent.state"] == state
    assert seen == set(mapping)


# ------------------------------------------------------------------ OAuth


def _callback(case: Case, state: str = "nonce-1") -> dict:
    url = authorize_url(sim.SHOP, sim.CLIENT_ID, "https://app.example.com/cb", state,
                        api_base=case.config["settings"]["api_base"], allow_loopback=True)
    resp = requests.get(url, allow_redirects=False, timeout=5)
    assert resp.status_code == 302
    return {k: v[0] for k, v in parse_qs(urlsplit(resp.headers["Location"]).query).items()}


def test_authorize_url_has_the_documented_shape():
    url = authorize_url("shop-1.myshopify.com", "cid", "https://app.example.com/cb", "st8")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https", "shop-1.myshopify.com", "/admin/oauth/authorize")
    assert parse_qs(parts.query) == {"client_id": ["cid"],
                                     "scope": ["read_customers,read_orders"],
                                     "redirect_uri": ["https://app.example.com/cb"],
                                     "state": ["st8"]}


def test_callback_hmac_good_bad_tampered_and_bad_shop(case):
    params = _callback(case)
    assert set(params) == {"code", "hmac", "host", "shop", "state", "timestamp"}
    assert verify_callback(params, SECRET, expected_state="nonce-1") == sim.SHOP
    with pytest.raises(CallbackError):
        verify_callback(params, "another-secret")
    with pytest.raises(CallbackError):
        verify_callback({**params, "shop": "other.myshopify.com"}, SECRET)
    with pytest.raises(CallbackError):
        verify_callback({**params, "hmac": "0" * 64}, SECRET)
    with pytest.raises(CallbackError):
        verify_callback({**params, "state": "x"}, SECRET, expected_state="x")  # hmac breaks
    with pytest.raises(CallbackError):
        verify_callback(params, SECRET, expected_state="another-nonce")
    evil = {**params, "shop": "evil.example.com"}
    evil["hmac"] = callback_hmac(evil, SECRET)
    with pytest.raises(CallbackError):
        verify_callback(evil, SECRET)
    old = {**params, "timestamp": str(int(time.time()) - 7200)}
    old["hmac"] = callback_hmac(old, SECRET)
    with pytest.raises(CallbackError):
        verify_callback(old, SECRET)


def test_code_exchange_gives_expiring_rotating_credentials(case):
    params = _callback(case)
    kw = {"api_base": case.config["settings"]["api_base"], "allow_loopback": True}
    creds = exchange_code(params["shop"], params["code"], sim.CLIENT_ID, SECRET, **kw)
    assert creds["access_token"].startswith("shpat_")
    assert creds["refresh_token"].startswith("shprt_")
    expires = datetime.fromisoformat(creds["expires_at"])
    assert timedelta(minutes=55) < expires - datetime.now(UTC) <= timedelta(hours=1)
    provider = Shopify(case.config["settings"], creds, http=case.http(), allow_loopback=True)
    provider.test_connection()
    with pytest.raises(AuthError) as info:  # a code is single-use
        exchange_code(params["shop"], params["code"], sim.CLIENT_ID, SECRET, **kw)
    assert "used or expired" in info.value.reason
    with pytest.raises(AuthError):
        exchange_code(params["shop"], _callback(case)["code"], sim.CLIENT_ID, "bad", **kw)


def _raw_refresh(case: Case, refresh_token: str) -> requests.Response:
    return requests.post(
        f"{case.config['settings']['api_base']}/admin/oauth/access_token",
        data={"client_id": sim.CLIENT_ID, "client_secret": SECRET,
              "grant_type": "refresh_token", "refresh_token": refresh_token}, timeout=5)


def test_refresh_rotates_and_the_old_refresh_token_dies(case):
    old = case.config["credentials"]["refresh_token"]
    locks = []

    class Lock:
        def __enter__(self):
            locks.append("in")

        def __exit__(self, *exc):
            locks.append("out")

    provider = case.provider()
    provider.refresh_lock = Lock
    case.expire_access_token()
    assert all_records(provider)
    assert locks == ["in", "out"]
    new = case.saved_credentials["refresh_token"]
    assert new != old and provider.credentials["refresh_token"] == new
    # the new access token has been used, so the old refresh token is dead
    resp = _raw_refresh(case, old)
    assert resp.status_code == 400 and resp.json() == {"error": "invalid_grant"}
    assert _raw_refresh(case, new).status_code == 200


def test_refresh_token_grace_until_the_new_access_token_is_used(make_case):
    graceful = make_case(refresh_grace=True)
    old = graceful.config["credentials"]["refresh_token"]
    first = _raw_refresh(graceful, old).json()
    assert _raw_refresh(graceful, old).status_code == 200  # replacement not used yet
    strict = make_case(refresh_grace=False)
    old = strict.config["credentials"]["refresh_token"]
    assert _raw_refresh(strict, old).status_code == 200
    assert _raw_refresh(strict, old).json() == {"error": "invalid_grant"}
    assert first["expires_in"] == 3600


def test_token_near_expiry_is_refreshed_before_the_call(case):
    creds = {**case.config["credentials"],
             "expires_at": (datetime.now(UTC) + timedelta(seconds=30)).isoformat()}
    provider = case.provider(credentials=creds)
    provider.test_connection()
    assert case.state.counters["refresh"] == 1
    assert case.saved_credentials["access_token"] != creds["access_token"]


def test_a_token_refused_after_refresh_is_not_refreshed_again(case):
    case.state.reject_tokens = True
    with pytest.raises(AuthError):
        case.provider().test_connection()
    assert case.state.counters["refresh"] == 1
    assert case.state.counters["api"] == 2


def test_dead_refresh_token_needs_reconnect_once(case):
    case.kill_refresh_token()
    provider = case.provider()
    with pytest.raises(AuthError) as info:
        provider.test_connection()
    assert "reconnect" in info.value.reason
    assert case.state.counters["refresh"] == 1
    assert case.config["credentials"]["refresh_token"] not in info.value.reason
