"""Outbound HTTP security: hostile hosts are refused before any DNS lookup or connection
(policy, connect forms, OAuth callbacks), the connection goes to the address that was
checked (with SNI and certificate checks against the name), and a request the provider may
already have processed (a token refresh) is never sent twice."""

from __future__ import annotations

import ipaddress
import re
import time
from urllib.parse import urlencode

import pytest
import requests
import urllib3.util.connection
from sqlalchemy import func, select

from simulators.shopify import SHOP
from tests.imports.conftest import make_import, run_import  # noqa: F401 (fixtures)
from tests.security.servers import (
    Answer,
    FakeProvider,
    Listener,
    SocketGuard,
    TLSServer,
    dead_port,
    make_certificates,
    service_ports,
)
from tests.test_integrations_support import Sim, follow_to_callback
from webapp.extensions import db
from webapp.imports import credentials as creds_store
from webapp.models import ImportRun, Integration
from webapp.providers import salesforce as salesforce_mod
from webapp.providers import shopify as shopify_mod
from webapp.providers.base import (
    AuthError,
    ConfigurationError,
    ProviderError,
    SourceUnavailable,
)
from webapp.providers.http import (
    HostPolicy,
    HttpClient,
    is_public_address,
    parse_target,
    valid_hostname,
)
from webapp.providers.magento import Magento
from webapp.providers.salesforce import Salesforce
from webapp.providers.shopify import Shopify
from webapp.providers.zoho import host_policy as zoho_policy
from webapp.services import integrations as service

LEAKS = ("Traceback", "Exception", "Errno", "HTTPConnectionPool", "Max retries",
         "urllib3", "requests.", "NewConnectionError", "object at 0x")

# Host parts that must never be called, whatever provider they are offered to.
HOSTILE_HOSTS = (
    "evil.example\\.myshopify.com",
    "attacker.example\\.my.salesforce.com",
    "evil.example%5c.myshopify.com",
    "evil.example%2e.myshopify.com",
    "evil.example@acme.myshopify.com",
    "acme.myshopify.com@evil.example",
    "acme.myshopify.com:pass@evil.example",
    "acme.myshopify.com.",
    "myshopify.com.evil.example",
    "acme.myshopify.com.evil.example",
    "evilmyshopify.com",
    "\u0430cme.myshopify.com",  # Cyrillic a
    "acme.mysh\u043epify.com",  # Cyrillic o
    "acme.myshopify.com\uff0eevil.example",  # full-width dot
    "acme .myshopify.com",
    "acme\t.myshopify.com",
    "acme.myshopify.com\n",
    "acme.myshopify.com\x00.evil.example",
    "acme.myshopify.com\r\nHost: evil.example",
    "127.0.0.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "127.1",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[64:ff9b::7f00:1]",
    "[fe80::1%25eth0]",
    "100.100.100.200",
    "169.254.169.254",
    "10.0.0.1",
    "localhost",
    "acme.myshopify.com:8443",
    "acme.myshopify.com:0",
    "acme.myshopify.com#@evil.example",
    "acme.myshopify.com?@evil.example",
    "evil.example/acme.myshopify.com",
    "evil.example#.myshopify.com",
    "-acme.myshopify.com",
    "acme..myshopify.com",
    "ab--cd.myshopify.com",
    "xn--zz.myshopify.com",
)
# A valid A-label that looks like the real domain (myshópify.com).
LOOKALIKE = "acme." + "myshópify".encode("idna").decode() + ".com"
# Base URLs refused for any provider, Magento (any public https host) included.
HOSTILE_URLS = (
    *(f"https://{h}" for h in HOSTILE_HOSTS if h not in (
        "myshopify.com.evil.example", "acme.myshopify.com.evil.example", "evilmyshopify.com",
        "ab--cd.myshopify.com", "evil.example/acme.myshopify.com",
        "acme.myshopify.com#@evil.example", "acme.myshopify.com?@evil.example",
        "evil.example#.myshopify.com")),
    "http://shop.example.com",
    "ftp://shop.example.com",
    "https://shop.example.com:80",
    "https:///shop.example.com",
    "https:\\\\shop.example.com",
    "//shop.example.com",
    "https://shop.example.com\\@127.0.0.1",
    "https://127.0.0.1\\@shop.example.com",
    "https://[::ffff:a9fe:a9fe]",
    "https://0.0.0.0",
    "https://192.168.1.1",
    "https://172.16.0.1",
    "https://100.64.0.1",
    "https://224.0.0.1",
    "https://255.255.255.255",
)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": False}


@pytest.fixture
def guard(app, monkeypatch):
    return SocketGuard(monkeypatch, service_ports(app))


def _no_resolver(host: str) -> list[str]:
    pytest.fail(f"the policy looked up {host!r}")


def _count_integrations() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count(Integration.id)))


def _assert_plain(html: str) -> None:
    for word in LEAKS:
        assert word not in html, f"{word!r} leaked into the page"


# ------------------------------------------------------------------ the policy


def test_table_is_large_enough():
    assert len(HOSTILE_HOSTS) >= 30 and len(HOSTILE_URLS) >= 30


@pytest.mark.parametrize("host", [h for h in HOSTILE_HOSTS + (LOOKALIKE,)
                                  if h != "acme.myshopify.com?@evil.example"])  # a query
def test_hostile_hosts_refused_by_the_pattern_policies(host, guard):
    for policy in (shopify_mod.Shopify.host_policy(False),
                   salesforce_mod.host_policy(False), zoho_policy(allow_loopback=False)):
        policy._resolve = _no_resolver
        with pytest.raises(ConfigurationError):
            policy.check(f"https://{host}/admin/shop.json")
        with pytest.raises(ConfigurationError):
            HttpClient(policy).request("GET", f"https://{host}/admin/shop.json")
    assert guard.lookups == [] and guard.connects == []


@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_hostile_urls_refused_by_the_open_policy(url, guard):
    policy = HostPolicy(public_https=True, resolver=_no_resolver)
    with pytest.raises(ConfigurationError):
        policy.check(url)
    with pytest.raises(ConfigurationError):
        HttpClient(policy).request("GET", url)
    assert guard.lookups == [] and guard.connects == []


def test_the_backslash_bypass_is_closed():
    """urlsplit reads the host of these URLs as the allowed name, urllib3 as the attacker's."""
    for url in ("https://attacker.example\\.my.salesforce.com/services/oauth2/token",
                "https://evil.example\\.myshopify.com/admin/oauth/access_token"):
        with pytest.raises(ConfigurationError) as info:
            parse_target(url)
        assert "backslash" in info.value.reason
    with pytest.raises(ConfigurationError):
        salesforce_mod.instance_base("https://attacker.example\\.my.salesforce.com")
    with pytest.raises(ConfigurationError):
        salesforce_mod.login_base("attacker.example\\.my.salesforce.com")
    with pytest.raises(ConfigurationError):
        shopify_mod.normalize_shop("evil.example\\.myshopify.com")


def test_grammar_accepts_real_hosts_and_rebuilds_the_url():
    for url, host in (("https://ACME.myshopify.com/admin/api/2025-10/shop.json",
                       "acme.myshopify.com"),
                      ("https://na1.my.salesforce.com", "na1.my.salesforce.com"),
                      ("https://xn--bcher-kva.example/rest/V1/", "xn--bcher-kva.example"),
                      ("https://shop.example.com/rest/V1/x?searchCriteria%5Bpage%5D=1",
                       "shop.example.com")):
        target = parse_target(url)
        assert target.host == host and target.port == 443
        assert target.url == url.replace("ACME", "acme")
    assert valid_hostname("a-b.example.com") and not valid_hostname("example")
    assert not valid_hostname("2130706433") and not valid_hostname("1.2.3.4.5")


@pytest.mark.parametrize("addr", [
    "127.0.0.1", "10.1.2.3", "172.16.5.4", "192.168.0.1", "100.100.100.200", "100.64.0.1",
    "169.254.169.254", "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::",
    "fe80::1", "fc00::1", "fd00:ec2::254", "::ffff:127.0.0.1", "::ffff:10.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b:1::a00:1", "2002:7f00:1::1", "2001::1", "ff02::1",
    "198.18.0.1", "192.0.2.1",
])
def test_non_public_addresses(addr):
    assert not is_public_address(addr)


def test_public_addresses():
    for addr in ("93.184.216.34", "8.8.8.8", "2606:4700::1111"):
        assert is_public_address(addr)
    assert ipaddress.ip_address("100.100.100.200").is_private is False  # why is_global is used


def test_host_resolving_to_a_private_address_is_refused_before_connecting(guard):
    for answers in (["10.0.0.5"], ["100.100.100.200"], ["93.184.216.34", "127.0.0.1"],
                    ["::ffff:127.0.0.1"], ["64:ff9b::a9fe:a9fe"], []):
        policy = HostPolicy(public_https=True, resolver=lambda host, a=answers: list(a))
        with pytest.raises(ProviderError) as info:
            HttpClient(policy, sleep=lambda s: None).request("GET", "https://shop.example.com/")
        assert info.value.kind in ("configuration", "unavailable")
    assert guard.connects == []


def test_connection_goes_to_the_address_that_was_checked(monkeypatch):
    """A resolver that answers differently the second time (DNS rebinding) cannot move the
    connection: the host is looked up once and every attempt connects to that address."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["10.0.0.1"]])
    lookups: list[str] = []

    def resolver(host):
        lookups.append(host)
        return next(answers)

    connected: list[tuple] = []

    def fake_connect(address, *args, **kwargs):
        connected.append(address)
        raise ConnectionRefusedError(111, "refused")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", fake_connect)
    policy = HostPolicy(("*.myshopify.com",), resolver=resolver)
    client = HttpClient(policy, sleep=lambda s: None, max_attempts=3)
    with pytest.raises(SourceUnavailable):
        client.request("GET", "https://acme.myshopify.com/admin/api/2025-10/shop.json")
    assert lookups == ["acme.myshopify.com"]
    assert connected == [("93.184.216.34", 443)] * 3


def test_pinned_tls_keeps_sni_host_header_and_certificate_check(tmp_path, monkeypatch):
    ca, cert, key = make_certificates(tmp_path, "acme.myshopify.com")
    server = TLSServer(cert, key)
    real = urllib3.util.connection.create_connection
    connected: list[tuple] = []

    def to_test_server(address, *args, **kwargs):
        connected.append(address)
        assert address == ("127.0.0.1", 443)
        return real(("127.0.0.1", server.port), *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", to_test_server)
    try:
        policy = HostPolicy(("*.myshopify.com",), allow_loopback=True,
                            resolver=lambda host: ["127.0.0.1"])
        client = HttpClient(policy, sleep=lambda s: None)
        client.session.verify = ca
        resp = client.request("GET", "https://acme.myshopify.com/admin/shop.json")
        assert resp.status == 200 and resp.json() == {"ok": True}
        assert server.sni == ["acme.myshopify.com"]
        assert server.hosts == ["acme.myshopify.com"]
        assert connected == [("127.0.0.1", 443)]
        # the certificate is checked against the name, not the address connected to
        other = HttpClient(HostPolicy(("*.myshopify.com",), allow_loopback=True,
                                      resolver=lambda host: ["127.0.0.1"]),
                           sleep=lambda s: None)
        other.session.verify = ca
        with pytest.raises(SourceUnavailable) as info:
            other.request("GET", "https://other.myshopify.com/admin/shop.json")
        assert "secure connection could not be verified" in info.value.reason
        assert other.requests_made == 1  # a certificate failure is not retried
    finally:
        server.stop()


# ---------------------------------------------------------- the connect forms


def _post_each(signed_in, url: str, values: list[dict]) -> None:
    """Post each form; values that differ only by surrounding spaces are trimmed by the form
    (and are then fine), so they are left out here."""
    for data in values:
        if any(isinstance(v, str) and v != v.strip() for v in data.values()):
            continue
        resp = signed_in.post(url, data)
        html = resp.get_data(as_text=True)
        _assert_plain(html)
        if any(isinstance(v, str) and "\x00" in v for v in data.values()):
            # NUL bytes are refused app-wide before any view runs, in plain words.
            assert resp.status_code == 400, (data, resp.status_code, html[:300])
            assert "characters that cannot be used here" in html
            continue
        assert resp.status_code == 422, (data, resp.status_code, html[:300])
        assert 'class="field-error"' in html or "field-error" in html or "connect-error" in html


def test_shopify_forms_refuse_hostile_shops(signed_in, app, guard):
    app.config.update(SHOPIFY_CLIENT_ID="cid", SHOPIFY_CLIENT_SECRET="secret")
    # A bare name such as "localhost" or "2130706433" means name.myshopify.com: a real shop.
    shops = [*(h for h in HOSTILE_HOSTS if not re.fullmatch(r"[a-z0-9-]+", h)), LOOKALIKE,
             *(f"https://{h}" for h in HOSTILE_HOSTS[:12])]
    _post_each(signed_in, "/integrations/shopify/connect",
               [{"shop": s, "access_token": "shpat_x"} for s in shops])
    _post_each(signed_in, "/integrations/shopify/oauth/start", [{"shop": s} for s in shops])
    assert guard.lookups == [] and guard.connects == [] and _count_integrations() == 0


def test_magento_form_refuses_hostile_base_urls(signed_in, guard):
    urls = [*HOSTILE_URLS, "https://shop.example.com/?x=1", "https://shop.example.com/#x"]
    _post_each(signed_in, "/integrations/magento/connect",
               [{"base_url": u, "access_token": "t"} for u in urls])
    assert guard.lookups == [] and guard.connects == [] and _count_integrations() == 0


def test_salesforce_form_refuses_hostile_my_domains(signed_in, app, guard):
    app.config.update(SALESFORCE_CLIENT_ID="cid", SALESFORCE_CLIENT_SECRET="secret")
    domains = [*HOSTILE_HOSTS, "evil.example/.my.salesforce.com",
               "attacker.example\\.my.salesforce.com", "acme.my.salesforce.com.",
               "acme.my.salesforce.com.evil.example", "acme.my.salesforce.com:8443",
               "x@acme.my.salesforce.com", "acme%2emy.salesforce.com", ".my.salesforce.com"]
    _post_each(signed_in, "/integrations/salesforce/oauth/start",
               [{"environment": "my_domain", "my_domain": d} for d in domains])
    assert guard.lookups == [] and guard.connects == []
    # the good form still works (and still makes no request: it only redirects)
    resp = signed_in.post("/integrations/salesforce/oauth/start",
                          {"environment": "my_domain", "my_domain": "acme.my.salesforce.com"})
    assert resp.headers["Location"].startswith("https://acme.my.salesforce.com/services/")


def test_zoho_form_refuses_hostile_data_centres(signed_in, app, guard):
    app.config.update(ZOHO_CLIENT_ID="1000.X", ZOHO_CLIENT_SECRET="s")
    values = ["us\\", "eu.evil.example", "../us", "us ", "accounts.zoho.com", "",
              "https://evil.example", "us\x00", "zoho.com"]
    _post_each(signed_in, "/integrations/zoho/oauth/start",
               [{"data_centre": v} for v in values])
    assert guard.lookups == [] and guard.connects == []


def _pending_state(signed_in, provider: str) -> str:
    import json

    from webapp.security import decrypt

    with signed_in.client.session_transaction() as sess:
        return json.loads(decrypt(sess[service.SESSION_PREFIX + provider]))["state"]


def test_shopify_callback_with_a_hostile_shop_is_refused(signed_in, app, guard):
    app.config.update(SHOPIFY_CLIENT_ID="cid", SHOPIFY_CLIENT_SECRET="secret")
    for shop in (*HOSTILE_HOSTS, LOOKALIKE):
        resp = signed_in.post("/integrations/shopify/oauth/start", {"shop": SHOP})
        assert resp.status_code == 303
        params = {"code": "c0de", "shop": shop, "state": _pending_state(signed_in, "shopify"),
                  "timestamp": str(int(time.time()))}
        params["hmac"] = shopify_mod.callback_hmac(params, "secret")  # genuinely signed
        resp = signed_in.get("/integrations/shopify/oauth/callback?" + urlencode(params))
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400, (shop, html[:300])
        _assert_plain(html)
    assert guard.lookups == [] and guard.connects == [] and _count_integrations() == 0


def test_zoho_callback_with_a_hostile_accounts_server_is_refused(signed_in, app, guard):
    app.config.update(ZOHO_CLIENT_ID="1000.X", ZOHO_CLIENT_SECRET="s")
    servers = [*(f"https://{h}" for h in HOSTILE_HOSTS),
               "https://accounts.zoho.com\\@evil.example", "https://accounts.zoho.com.evil.example",
               "https://accounts.zoho.com:8443", "http://accounts.zoho.com",
               "https://accounts.zoho.com/../evil", "https://evil.example/accounts.zoho.com"]
    for server in servers:
        signed_in.post("/integrations/zoho/oauth/start", {"data_centre": "eu"})
        query = urlencode({"code": "1000.c", "state": _pending_state(signed_in, "zoho"),
                           "location": "eu", "accounts-server": server})
        resp = signed_in.get(f"/integrations/zoho/oauth/callback?{query}")
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400, (server, html[:300])
        _assert_plain(html)
    assert guard.lookups == [] and guard.connects == [] and _count_integrations() == 0


@pytest.fixture
def salesforce_sim():
    sim = Sim("salesforce")
    yield sim
    sim.stop()


def test_salesforce_callback_with_a_hostile_instance_is_refused(signed_in, app, guard,
                                                                salesforce_sim):
    """The token answer names the org's API host; a hostile one is refused before use. The
    only connection made is the token request to the (loopback) sign-in simulator."""
    app.config.update(ALLOW_LOOPBACK_PROVIDERS=True,
                      SALESFORCE_CLIENT_ID=salesforce_sim.app.state.client_id,
                      SALESFORCE_CLIENT_SECRET=salesforce_sim.app.state.client_secret)
    guard.allow(salesforce_sim.url)
    instances = [*(f"https://{h}" for h in HOSTILE_HOSTS
                   if h not in ("127.0.0.1", "127.1", "[::1]")),
                 "https://na1.salesforce.com.evil.example", "https://na1.salesforce.com:8443",
                 "http://na1.salesforce.com", "https://na1.salesforce.com/services/evil",
                 "https://evil.example"]
    for instance in instances:
        salesforce_sim.app.state.instance_url = instance
        resp = signed_in.post("/integrations/salesforce/oauth/start",
                              {"environment": "production", "login_host": salesforce_sim.url})
        assert resp.status_code == 303, resp.get_data(as_text=True)[:300]
        callback = follow_to_callback(resp.headers["Location"])
        resp = signed_in.get(callback)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400, (instance, html[:300])
        assert "The sign-in was refused" in html
        _assert_plain(html)
    assert guard.lookups == [] and guard.connects == [] and _count_integrations() == 0


# ------------------------------------------------- plain words on every error path


@pytest.fixture
def fake():
    server = FakeProvider()
    yield server
    server.stop()


@pytest.fixture
def quick_connect(monkeypatch):
    """The real connect-time client, with sub-second timeouts and no waits between tries."""
    real = service.interactive_http

    def quick(provider):
        http = real(provider)
        http.timeout = (0.5, 0.5)
        http.sleep = lambda s: None
        return http

    monkeypatch.setattr(service, "interactive_http", quick)


def _connect_error(signed_in, provider: str, data: dict, htmx: bool = False) -> str:
    resp = signed_in.post(f"/integrations/{provider}/connect", data, htmx=htmx)
    html = resp.get_data(as_text=True)
    assert resp.status_code == (200 if htmx else 422), html[:500]
    _assert_plain(html)
    return html


def test_every_connect_error_path_speaks_plain_words(signed_in, app, fake, quick_connect):
    app.config["ALLOW_LOOPBACK_PROVIDERS"] = True
    silent, hangup = Listener("silent"), Listener("hangup")
    try:
        magento_bases = {
            "dead address": f"http://127.0.0.1:{dead_port()}",
            "refused over https": f"https://127.0.0.1:{dead_port()}",
            "TLS failure": "https://" + fake.url.removeprefix("http://"),
            "timeout": f"http://127.0.0.1:{silent.port}",
            "broken off": f"http://127.0.0.1:{hangup.port}",
        }
        expected = {
            "dead address": "nothing answers at that address",
            "refused over https": "nothing answers at that address",
            "TLS failure": "secure connection could not be verified",
            "timeout": "did not answer in time",
            "broken off": "broke off",
        }
        for case, base in magento_bases.items():
            for htmx in (False, True):
                html = _connect_error(signed_in, "magento",
                                      {"base_url": base, "access_token": "t"}, htmx)
                assert expected[case] in html, (case, html[:800])
        answers = {
            "bad JSON": (Answer(200, "<html>not json</html>"), "not like a Magento store"),
            "401": (Answer(401, '{"message": "The consumer isn\'t authorized"}'),
                    "Magento refused"),
            "403": (Answer(403, '{"message": "Forbidden"}'), "refused access"),
            "500": (Answer(500, "Traceback (most recent call last): Exception [Errno 5]"),
                    "kept failing"),
            "lost": (Answer(lose="close"), "broke off"),
        }
        for case, (answer, words) in answers.items():
            fake.answer = answer
            html = _connect_error(signed_in, "magento",
                                  {"base_url": fake.url, "access_token": "t"})
            assert words in html, (case, html[:800])
            fake.answer = answer
            html = _connect_error(signed_in, "shopify", {
                "shop": SHOP, "access_token": "shpat_x", "api_base": fake.url})
            assert "The connection test failed" in html, (case, html[:800])
        for base in HOSTILE_URLS[:10]:
            _connect_error(signed_in, "magento", {"base_url": base, "access_token": "t"})
        fake.answer = Answer()
        _connect_error(signed_in, "shopify", {"shop": SHOP, "access_token": "shpat_x",
                                              "api_base": f"http://127.0.0.1:{dead_port()}"})
    finally:
        silent.stop()
        hangup.stop()
    assert _count_integrations() == 0


def test_transport_errors_never_carry_exception_text():
    policy = HostPolicy(public_https=True, allow_loopback=True)
    client = HttpClient(policy, sleep=lambda s: None, max_attempts=2, timeout=(0.5, 0.5))
    with pytest.raises(SourceUnavailable) as info:
        client.request("GET", f"http://127.0.0.1:{dead_port()}/rest/V1/store")
    for word in LEAKS + ("111", "refused)"):
        assert word not in info.value.reason
    with pytest.raises(SourceUnavailable) as info:
        Magento({"base_url": f"http://127.0.0.1:{dead_port()}"}, {"access_token": "t"},
                allow_loopback=True, http=client).test_connection()
    assert "could not be reached" in info.value.reason


# ------------------------------------------------------ never repeat a processed POST


def _http(**kw) -> HttpClient:
    return HttpClient(HostPolicy(public_https=True, allow_loopback=True),
                      sleep=lambda s: None, timeout=(1.0, 0.5), **kw)


@pytest.mark.parametrize("answer", [
    Answer(500), Answer(502), Answer(503), Answer(504), Answer(lose="close"),
    Answer(lose="slow"),
])
def test_post_is_not_repeated_once_it_may_have_been_processed(fake, answer):
    fake.answer = answer
    client = _http()
    with pytest.raises(SourceUnavailable) as info:
        client.request("POST", fake.url + "/oauth/token", data={"grant_type": "refresh_token"})
    assert len(fake.requests) == 1
    assert "not repeated automatically" in info.value.reason


@pytest.mark.parametrize("answer", [
    Answer(429, headers={"Retry-After": "0"}), Answer(503, headers={"Retry-After": "0"}),
])
def test_post_is_repeated_when_the_provider_says_it_did_not_process_it(fake, answer):
    fake.answer = answer
    client = _http(max_attempts=3)
    with pytest.raises(ProviderError):
        client.request("POST", fake.url + "/oauth/token", data={"a": "b"})
    assert len(fake.requests) == 3


def test_post_is_repeated_when_it_never_left():
    client = _http(max_attempts=3)
    with pytest.raises(SourceUnavailable) as info:
        client.request("POST", f"http://127.0.0.1:{dead_port()}/oauth/token", data={"a": "b"})
    assert client.requests_made == 3
    assert "not repeated" not in info.value.reason


@pytest.mark.parametrize("answer", [Answer(500), Answer(503), Answer(lose="close"),
                                    Answer(lose="slow")])
def test_get_is_still_retried(fake, answer):
    fake.answer = answer
    client = _http(max_attempts=3)
    with pytest.raises(SourceUnavailable):
        client.request("GET", fake.url + "/shop.json")
    assert len(fake.requests) == 3


@pytest.fixture
def salesforce_org():
    sim = Sim("salesforce")
    yield sim
    sim.stop()


@pytest.mark.parametrize("mode", ["close", "slow", "500"])
def test_salesforce_lost_refresh_answer_is_not_retried(salesforce_org, mode):
    """The org rotates the refresh token, the answer is lost: one token request, a clear
    SourceUnavailable (not AuthError, so no needs-reconnect)."""
    st = salesforce_org.app.state
    config = salesforce_org.config()
    credentials = {**config["credentials"], "access_token": ""}
    st.lose_token_answers, st.lose_mode = 1, mode
    provider = Salesforce(config["settings"], credentials, http=_http(), allow_loopback=True)
    before = st.token_requests
    with pytest.raises(SourceUnavailable) as info:
        provider.test_connection()
    assert not isinstance(info.value, AuthError)
    assert st.token_requests - before == 1
    assert "next run tries again" in info.value.reason


@pytest.fixture
def shopify_shop():
    sim = Sim("shopify")
    yield sim
    sim.stop()


@pytest.mark.parametrize("mode", ["close", "slow", "500"])
def test_shopify_lost_refresh_answer_then_a_later_run_recovers(shopify_shop, mode):
    st = shopify_shop.app.state
    config = shopify_shop.config()
    expired = {**config["credentials"], "expires_at": "2000-01-01T00:00:00+00:00"}
    st.lose_token_answers, st.lose_mode = 1, mode
    saved: list[dict] = []
    provider = Shopify(config["settings"], expired, http=_http(), allow_loopback=True,
                       on_credentials=saved.append)
    with pytest.raises(SourceUnavailable):
        provider.test_connection()
    assert st.counters["refresh"] == 1 and saved == []
    # the next run starts from the stored credentials and gets through (Shopify keeps a
    # used refresh token until its replacement access token is first used)
    again = Shopify(config["settings"], expired, http=_http(), allow_loopback=True,
                    on_credentials=saved.append)
    again.test_connection()
    assert st.counters["refresh"] == 2 and len(saved) == 1


def test_lost_refresh_answer_fails_the_run_without_needing_reconnect(
        salesforce_org, make_import, run_import):  # noqa: F811 (fixtures)
    st = salesforce_org.app.state
    config = salesforce_org.config()
    imp = make_import(provider="salesforce", settings=config["settings"],
                      secrets={**config["credentials"], "access_token": ""},
                      group="Contact", source="all")
    st.lose_token_answers, st.lose_mode = 1, "close"

    def factory(integration, **kw):
        return Salesforce(integration.settings, creds_store.load(integration), http=_http(),
                          allow_loopback=True, **kw)

    run = run_import(imp, factory)
    integration = db.session.get(Integration, imp.integration_id)
    assert run.status == "failed" and run.error_kind == "unavailable"
    assert "next run tries again" in run.error
    assert integration.status == "connected"
    assert st.refresh_requests == 1
    assert db.session.scalar(select(func.count(ImportRun.id))) == 1


def test_requests_session_ignores_proxy_environment(monkeypatch, fake):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    resp = _http().request("GET", fake.url + "/x")
    assert resp.status == 200 and fake.requests == [("GET", "/x")]
    assert requests.Session().trust_env is True  # only our clients opt out


def test_callback_error_codes_are_not_echoed_when_they_are_not_codes(signed_in, app, guard):
    app.config.update(SALESFORCE_CLIENT_ID="cid", SALESFORCE_CLIENT_SECRET="secret")
    signed_in.post("/integrations/salesforce/oauth/start", {"environment": "production"})
    query = urlencode({"state": _pending_state(signed_in, "salesforce"),
                       "error": "Traceback: Exception [Errno 111] HTTPConnectionPool"})
    resp = signed_in.get(f"/integrations/salesforce/oauth/callback?{query}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "did not grant access (unexpected answer)" in html
    _assert_plain(html)
