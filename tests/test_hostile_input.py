"""Hostile input never gets a 5xx: every route walked with out-of-range, negative and
non-numeric ids, NUL bytes, very long strings and bad query and form values (GET and POST
with a valid CSRF token). Also: the headers every page carries."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest
from werkzeug.datastructures import ImmutableMultiDict

from tests.conftest import PASSWORD, SignedIn, csrf_token_from
from tests.factories import make_user
from tests.route_walk import build, guard_network, make_samples, raw_url, rules
from tests.test_integrations_support import Sim

pytestmark = pytest.mark.usefixtures("app")

WEBAPP = Path(__file__).resolve().parent.parent / "webapp"

# Path values an id must refuse with 404 (2^63 and up, negative, zero, not a number).
BAD_IDS = ["9223372036854775808", "99999999999999999999", "-1", "0", "abc", "1.5", "%00",
           "1" * 400, "%F0%9F%98%80"]
BAD_STRINGS = ["%00", "x" * 3000, "..%2F..%2Fetc", "%3Cscript%3E", "shopify%00", "%FF"]
# Query and form values: out of range, garbage, NUL, huge, malformed URLs and ports.
BAD_VALUES = ["-1", "0", "99999999999999999999", "9223372036854775808", "garbage", "\x00",
              "%00", "x" * 10000, "1e999", "NaN", "😀", "http://[::1", "https://shop:99999",
              "https://shop:port/", "http://exa mple.com", "//", " "]


def _input_names() -> set[str]:
    """Every query/form name the app reads or its templates send: a new input is walked too."""
    names = {"page", "cursor", "limit", "after", "before", "next"}
    for path in WEBAPP.rglob("*.py"):
        text = path.read_text()
        names.update(re.findall(r'\b(?:args|form|values)\.get(?:list)?\(\s*"(\w+)"', text))
        names.update(re.findall(r'\b(?:args|form|values)\[\s*"(\w+)"\s*\]', text))
    for path in (WEBAPP / "templates").rglob("*.html"):
        text = path.read_text()
        names.update(re.findall(r'\bname="(\w+)"', text))
        names.update(re.findall(r'\b(?:input|select|textarea)\(\s*"(\w+)"', text))
    names.discard("csrf_token")
    return names


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


@pytest.fixture(scope="module")
def shop_sim():
    sim = Sim("shopify")
    yield sim
    sim.stop()


class _Walker:
    """Sends requests as a signed-in admin (or anonymously) and collects every 5xx."""

    def __init__(self, app):
        self.app = app
        self.user = make_user(email="boss@example.com", password=PASSWORD, is_admin=True)
        self.admin = self._sign_in()
        self.failures: list[str] = []
        self.count = 0

    def _sign_in(self) -> SignedIn:
        with self.app.app_context():
            return SignedIn(self.app.test_client(), self.user)

    def send(self, method: str, url: str, data: dict | None = None, *, anonymous=False,
             expect: int | None = None) -> None:
        self.count += 1
        with self.app.app_context():  # a fresh `g` per request, as in a real server
            if anonymous:  # from another address, so its failed sign-ins do not lock us out
                client = self.app.test_client()
                client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
                token = csrf_token_from(client.get("/login").get_data(as_text=True))
            else:
                client, token = self.admin.client, self.admin.csrf
            try:
                if method == "POST":
                    resp = client.post(url, data={**(data or {}), "csrf_token": token})
                else:
                    resp = client.get(url)
                resp.get_data()
                resp.close()
            except Exception as exc:  # noqa: BLE001  (TESTING propagates a 500's exception)
                frames = [f for f in traceback.extract_tb(exc.__traceback__)
                          if "/webapp/" in f.filename]
                where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
                self.failures.append(f"{method} {url[:120]} raised {type(exc).__name__}: "
                                     f"{str(exc)[:200]}{where}")
                return
        if resp.status_code >= 500 or (expect is not None and resp.status_code != expect):
            self.failures.append(f"{method} {url[:120]} -> {resp.status_code}")
        if "/logout" in url and method == "POST":
            self.admin = self._sign_in()


def test_hostile_ids_in_the_path_are_404(app, shop_sim, monkeypatch):
    guard_network(monkeypatch)
    walker = _Walker(app)
    samples = make_samples("ids", shop_sim.config())
    id_rules = 0
    for rule, method in rules(app):
        ids = [a for a in rule.arguments if a.endswith("_id")]
        strings = [a for a in rule.arguments if not a.endswith("_id")]
        if ids:
            id_rules += 1
        anonymous = rule.endpoint == "team.set_password"
        for bad in BAD_IDS:
            for hostile in ids:
                url = raw_url(rule, lambda name, h=hostile, b=bad: b if name == h
                              else str(samples.values[name]))
                walker.send(method, url, expect=404, anonymous=anonymous)
        for bad in BAD_STRINGS:
            for hostile in strings:
                url = raw_url(rule, lambda name, h=hostile, b=bad: b if name == h
                              else str(samples.values[name]))
                walker.send(method, url, anonymous=anonymous)
    assert id_rules >= 44
    assert walker.failures == [], "\n".join(walker.failures)


def test_hostile_query_and_form_values_never_5xx(app, shop_sim, monkeypatch):
    guard_network(monkeypatch)
    walker = _Walker(app)
    names = _input_names()
    assert {"shop", "base_url", "name", "email", "subscriber_limit"} <= names
    for n, (rule, method) in enumerate(rules(app)):
        if rule.endpoint == "static":
            continue
        samples = make_samples(f"q{n}", shop_sim.config())
        url = build(app, rule, samples.for_rule(rule))
        anonymous = rule.endpoint in ("auth.login", "team.set_password")
        for bad in BAD_VALUES:
            values = dict.fromkeys(names, bad)
            if method == "GET":
                query_url = build(app, rule, {**values, **samples.for_rule(rule)})
                walker.send("GET", query_url, anonymous=anonymous)
            else:
                walker.send("POST", url, values, anonymous=anonymous)
    assert walker.count > 500
    print(f"{walker.count} requests")
    assert walker.failures == [], "\n".join(walker.failures)



class _Recording(ImmutableMultiDict):
    """Query/form storage that notes which names a view reads."""

    read: set[str] = set()

    def get(self, key, default=None, type=None):
        _Recording.read.add(key)
        return super().get(key, default, type)

    def getlist(self, key, type=None):
        _Recording.read.add(key)
        return super().getlist(key, type)

    def __getitem__(self, key):
        _Recording.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        _Recording.read.add(key)
        return super().__contains__(key)


# One hostile input at a time among otherwise valid ones, so no earlier check hides it.
SINGLE_VALUES = ["-1", "99999999999999999999", "x" * 10000, "😀", "http://[::1",
                 "https://shop:99999"]


def _valid_inputs(samples, sim_url: str) -> dict:
    return {
        "name": "Walk", "email": "walk@example.com", "shop": "acme.myshopify.com",
        "api_base": sim_url, "base_url": "http://127.0.0.1:9", "access_token": "tok",
        "store_code": "default", "auth_mode": "bearer", "subscriber_limit": "5000",
        "extension_price": "10.00", "currency": "EUR", "time_zone": "Europe/Berlin",
        "length_days": "10", "type": "text", "format": "text", "how": "link",
        "password": "a long new password", "confirm": "a long new password",
        "entries": "walk@example.com", "group": "customers", "source": "all",
        "criteria": "add_update", "consent": "on", "run_hour": "3",
        "list_id": str(samples.values["list_id"]), "cycle_id": str(samples.values["cycle_id"]),
        "integration_id": str(samples.values["integration_id"]), "target": "email",
        "client_id": "id", "client_secret": "secret", "q": "ann", "at": "row",
        "data_centre": "eu", "environment": "production",
    }


def test_each_input_a_route_reads_hostile_alone_never_5xx(app, shop_sim, monkeypatch):
    """Per route: a valid request records the names the view reads; then each of them gets
    each hostile value while the others stay valid."""
    guard_network(monkeypatch)
    monkeypatch.setattr(app.request_class, "parameter_storage_class", _Recording)
    walker = _Walker(app)
    inputs_walked = 0
    for n, (rule, method) in enumerate(rules(app)):
        if rule.endpoint in ("static", "auth.logout"):
            continue
        samples = make_samples(f"s{n}", shop_sim.config())
        valid = _valid_inputs(samples, shop_sim.url)
        anonymous = rule.endpoint in ("auth.login", "team.set_password")
        _Recording.read = set()

        def send(values, rule=rule, method=method, samples=samples, anonymous=anonymous):
            if method == "GET":
                walker.send("GET", build(app, rule, {**values, **samples.for_rule(rule)}),
                            anonymous=anonymous)
            else:
                walker.send("POST", build(app, rule, samples.for_rule(rule)), values,
                            anonymous=anonymous)

        send(valid)
        for name in sorted(_Recording.read - {"csrf_token"}):
            inputs_walked += 1
            for bad in SINGLE_VALUES:
                send({**valid, name: bad})
    assert inputs_walked > 60
    print(f"{walker.count} requests")
    assert walker.failures == [], "\n".join(walker.failures)

def test_signed_in_pages_are_not_cached_and_static_files_are(app, signed_in):
    for url in ("/", "/lists/", "/team/", "/no-such-page"):
        assert signed_in.get(url).headers["Cache-Control"] == "no-store", url
    static = signed_in.get("/static/favicon.svg")
    assert static.status_code == 200 and static.mimetype == "image/svg+xml"
    assert "no-store" not in static.headers.get("Cache-Control", "")
    static.close()


def test_csp_forbids_base_and_pages_link_the_favicon(app, signed_in):
    for url in ("/", "/integrations/salesforce", "/login"):
        csp = signed_in.get(url).headers["Content-Security-Policy"]
        assert "base-uri 'none'" in csp, url
    html = signed_in.get("/").get_data(as_text=True)
    assert '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">' in html


BAD_ADDRESSES = ["http://[::1", "https://shop.example.com:99999", "https://shop.example.com:port",
                 "https://[not-ipv6]/", "https://shop.example.com:-1"]


@pytest.mark.parametrize("address", BAD_ADDRESSES)
def test_malformed_addresses_and_ports_in_connect_forms_are_form_errors(app, signed_in,
                                                                         address, monkeypatch):
    guard_network(monkeypatch)
    magento = signed_in.post("/integrations/magento/connect",
                             {"base_url": address, "access_token": "t"})
    assert magento.status_code == 422
    assert "Enter the store&#39;s address" in magento.get_data(as_text=True)
    shop = signed_in.post("/integrations/shopify/connect",
                          {"shop": address, "access_token": "shpat_x"})
    assert shop.status_code == 422
    assert "not a Shopify shop address" in shop.get_data(as_text=True)
    # The advanced API base override (loopback deployments only) is checked the same way.
    base = signed_in.post("/integrations/shopify/connect",
                          {"shop": "acme.myshopify.com", "access_token": "shpat_x",
                           "api_base": address})
    assert base.status_code == 422
    assert "Enter a full address such as" in base.get_data(as_text=True)


def test_nul_bytes_are_refused_in_plain_words(app, signed_in):
    for resp in (signed_in.get("/suppression/?q=a%00b"),
                 signed_in.post("/lists/", {"name": "a\x00b"})):
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400
        assert "characters that cannot be used" in html and "Bad Request" not in html
    # The CSRF check keeps its own words.
    resp = signed_in.client.post("/lists/", data={"name": "ok"})
    assert resp.status_code == 400 and "CSRF" in resp.get_data(as_text=True)
