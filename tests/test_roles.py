"""Roles: every route × (anonymous, member, admin) from the app's url_map; the Team page
(add, reset, deactivate, roles, the last-admin rules) and set-password links."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, SignedIn, csrf_token_from
from tests.factories import make_user
from tests.route_walk import build, guard_network, make_samples, rules
from tests.test_integrations_support import Sim
from webapp.extensions import db
from webapp.models import User
from webapp.security import verify_password

pytestmark = pytest.mark.usefixtures("app")

PUBLIC, MEMBER, ADMIN = "public", "member", "admin"

# Who may use each endpoint. A route missing here fails test_every_route_is_in_the_table.
ACCESS = {
    "static": PUBLIC,
    "auth.login": PUBLIC,
    "team.set_password": PUBLIC,
    "auth.logout": MEMBER,
    "account.index": MEMBER, "account.change_password": MEMBER,
    "account.sign_out_everywhere": MEMBER,
    "dashboard.index": MEMBER,
    "status.index": MEMBER,
    "lists.index": MEMBER, "lists.create": MEMBER, "lists.show": MEMBER, "lists.row": MEMBER,
    "lists.edit": MEMBER, "lists.rename": MEMBER, "lists.confirm_delete": MEMBER,
    "lists.delete": MEMBER,
    "contacts.index": MEMBER, "contacts.export": MEMBER, "contacts.show": MEMBER,
    "contacts.unsubscribe": MEMBER, "contacts.resubscribe": MEMBER,
    "cycles.index": MEMBER, "cycles.create": MEMBER, "cycles.edit": MEMBER,
    "cycles.delete": MEMBER,
    "fields.index": MEMBER, "fields.create": MEMBER, "fields.edit": MEMBER,
    "fields.delete": MEMBER,
    "suppression.index": MEMBER, "suppression.add": MEMBER, "suppression.remove": MEMBER,
    "integrations.index": MEMBER, "integrations.show": MEMBER,
    "integrations.connect_form": MEMBER, "integrations.connect": MEMBER,
    "integrations.oauth_start": MEMBER, "integrations.oauth_callback": MEMBER,
    "integrations.confirm_disconnect": MEMBER, "integrations.disconnect": MEMBER,
    "imports_setup.new": MEMBER, "imports_setup.edit": MEMBER,
    "imports_setup.sources": MEMBER, "imports_setup.list_options": MEMBER,
    "imports_setup.forecast": MEMBER, "imports_setup.consent_counts": MEMBER,
    "imports_setup.mapping": MEMBER,
    "imports_setup.samples": MEMBER, "imports_setup.assign": MEMBER,
    "imports_setup.create_field": MEMBER, "imports_setup.ignore": MEMBER,
    "imports_setup.undo": MEMBER,
    "imports_setup.preview": MEMBER, "imports_setup.start": MEMBER,
    "recurring.row": MEMBER, "recurring.stop": MEMBER, "recurring.resume": MEMBER,
    "recurring.import_now": MEMBER,
    "runs.index": MEMBER, "runs.show": MEMBER, "runs.progress": MEMBER, "runs.cancel": MEMBER,
    "runs.rejects_csv": MEMBER,
    "undo.confirm": MEMBER, "undo.start": MEMBER, "undo.progress": MEMBER,
    "settings.index": ADMIN, "settings.save": ADMIN, "settings.save_oauth_app": ADMIN,
    "settings.delete_oauth_app": ADMIN,
    "plugin_log.index": MEMBER, "plugin_log.source_log": MEMBER, "plugin_log.show": MEMBER,
    "plugin_log.event_export": MEMBER, "plugin_log.replay": MEMBER,
    "plugin_log.export_contact": MEMBER, "plugin_log.erase_contact": MEMBER,
    "team.index": ADMIN, "team.add": ADMIN, "team.reset": ADMIN, "team.deactivate": ADMIN,
    "team.reactivate": ADMIN, "team.make_admin": ADMIN, "team.remove_admin": ADMIN,
    # Plugin imports: receivers authenticate by key or signature, not sign-in.
    "receivers.shopify": PUBLIC, "receivers.woocommerce": PUBLIC, "receivers.batch": PUBLIC,
    "receivers.identify": PUBLIC, "receivers.track": PUBLIC, "receivers.page": PUBLIC,
    "plugins.new": MEMBER, "plugins.show": MEMBER, "plugins.save": MEMBER,
    "plugins.enable": MEMBER, "plugins.disable": MEMBER, "plugins.rotate": MEMBER,
    "plugins.revoke": MEMBER, "plugin_history.start": MEMBER, "plugin_history.progress": MEMBER,
    "plugin_try.index": MEMBER,
    "commerce.dashboard": MEMBER, "commerce.products": MEMBER, "commerce.orders": MEMBER,
    "commerce.carts": MEMBER, "commerce.order": MEMBER, "commerce.product": MEMBER,
    "commerce.cart": MEMBER, "commerce.api_keys": ADMIN, "commerce.revoke_api_key": ADMIN,
    "commerce_api.recommendations": PUBLIC,
    "segments.index": MEMBER, "segments.new": MEMBER, "segments.create": MEMBER,
    "segments.edit": MEMBER, "segments.update": MEMBER, "segments.builder": MEMBER,
    "segments.preview": MEMBER, "segments.delete": MEMBER,
    "automations.index": MEMBER, "automations.create": MEMBER, "automations.show": MEMBER,
    "automations.update": MEMBER, "automations.switch": MEMBER,
    "automations.dry_run": MEMBER, "automations.delete": MEMBER,
}


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ALLOW_LOOPBACK_PROVIDERS": True}


@pytest.fixture(scope="module")
def shop_sim():
    sim = Sim("shopify")
    yield sim
    sim.stop()


ADMIN_PREFIXES = ("/settings", "/team")

# Valid forms (and query strings) for the routes whose success needs one; `t` keeps names
# unique per request.
POST_DATA = {
    "lists.create": lambda t: {"name": f"New {t}"},
    "lists.rename": lambda t: {"name": f"Renamed {t}"},
    "cycles.create": lambda t: {"name": f"New {t}", "length_days": "10"},
    "cycles.edit": lambda t: {"name": f"Renamed {t}", "length_days": "12"},
    "fields.create": lambda t: {"name": f"new_{t}", "type": "text", "format": "text"},
    "fields.edit": lambda t: {"type": "text", "format": "text"},
    "suppression.add": lambda t: {"entries": f"no-{t}@example.com"},
    "settings.save": lambda t: {"name": "Acme", "subscriber_limit": "5000",
                                "extension_price": "10.00", "currency": "EUR",
                                "time_zone": "Europe/Berlin"},
    "settings.save_oauth_app": lambda t: {"client_id": "app-id", "client_secret": "app-secret"},
    "team.add": lambda t: {"email": f"new-{t}@example.com", "how": "link"},
    "team.reset": lambda t: {"how": "password"},
    "team.set_password": lambda t: {"password": "a long new password", "confirm":
                                    "a long new password"},
    "plugins.rotate": lambda t: {"kind": "server", "once": f"walk{t}".ljust(32, "0")},
    "segments.create": lambda t: {"name": f"Segment new {t}", "op": "and", "g0_op": "and",
                                  "g0_c0_type": "origin", "g0_c0_origin": "plugin"},
    "segments.update": lambda t: {"name": f"Segment renamed {t}", "op": "or", "g0_op": "and",
                                  "g0_c0_type": "consent", "g0_c0_state": "subscribed"},
    "automations.switch": lambda t: {"on": "1"},
}
QUERY = {"imports_setup.sources": "?group=customers"}

# Answers other than 2xx/3xx that are right here: the view ran and refused, in plain words,
# input that needs a provider round trip this walk does not make (forms tested elsewhere).
EXPECTED = {
    ("integrations.connect", "POST"): 422,  # no token given
    ("integrations.oauth_start", "POST"): 422,  # no shop given
    ("integrations.oauth_callback", "GET"): 400,  # no pending sign-in
    ("imports_setup.new", "POST"): 422,  # empty set-up form
    ("imports_setup.edit", "POST"): 422,
    ("imports_setup.assign", "POST"): 404,  # no such source column
    ("imports_setup.create_field", "POST"): 404,
    ("imports_setup.start", "POST"): 422,  # nothing mapped yet
    ("account.change_password", "POST"): 422,  # no current password given
    ("contacts.resubscribe", "POST"): 422,  # no written evidence of consent given
    ("plugins.new", "POST"): 422,  # empty set-up form
    ("plugins.save", "POST"): 422,
    # Receivers without a signature or key refuse (JSON), whoever asks; the sample source
    # is a website, so the store webhooks do not know it.
    ("receivers.shopify", "POST"): 404, ("receivers.woocommerce", "POST"): 404,
    ("receivers.batch", "POST"): 401, ("receivers.identify", "POST"): 401,
    ("receivers.track", "POST"): 401, ("receivers.page", "POST"): 401,
    ("commerce_api.recommendations", "GET"): 401,  # no workspace API key sent
    ("automations.create", "POST"): 422,  # no segment chosen (forms tested in commerce/)
    ("automations.update", "POST"): 422,
}


SIGN_OUTS = {"auth.logout", "account.sign_out_everywhere"}


def _sign_in(app, email: str, admin: bool) -> SignedIn:
    user = make_user(email=email, password=PASSWORD, is_admin=admin)
    with app.app_context():  # a fresh `g`: the test's app context would carry the last user
        return SignedIn(app.test_client(), user)


def test_every_route_is_in_the_table(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - ACCESS.keys() == set(), "routes without an expected role"
    assert ACCESS.keys() - endpoints == set(), "table rows for routes that do not exist"


class _Anonymous:
    """A client that is not signed in but holds a CSRF token (as the sign-in page gives)."""

    def __init__(self, client):
        self.client = client
        self.csrf = csrf_token_from(client.get("/login").get_data(as_text=True))

    def get(self, url):
        return self.client.get(url)

    def post(self, url, data):
        return self.client.post(url, data={**data, "csrf_token": self.csrf})


def _anonymous(app) -> _Anonymous:
    return _Anonymous(app.test_client())


def _is_login_redirect(resp) -> bool:
    return resp.status_code == 302 and "/login" in resp.headers.get("Location", "")


def test_every_route_by_role(app, shop_sim, monkeypatch):
    """Anonymous: sent to sign in; member: 403 on admin routes, answered elsewhere; admin:
    answered everywhere. Each request gets fresh rows, so a delete cannot starve the next."""
    guard_network(monkeypatch)
    signed = {"member": _sign_in(app, "member@example.com", admin=False),
              "admin": _sign_in(app, "boss@example.com", admin=True)}
    visitor = make_user(email="visitor@example.com", password=PASSWORD)
    problems, walked = [], 0
    for n, (rule, method) in enumerate(rules(app)):
        access = ACCESS[rule.endpoint]
        for who in ("anonymous", "member", "admin"):
            tag = f"{n}{who[:2]}"
            samples = make_samples(tag, shop_sim.config())
            url = build(app, rule, samples.for_rule(rule)) + QUERY.get(rule.endpoint, "")
            data = POST_DATA.get(rule.endpoint, lambda _t: {})(tag)
            if rule.endpoint == "auth.login":
                data = {"email": (signed[who].user if who in signed else visitor).email,
                        "password": PASSWORD}
            with app.app_context():  # fresh `g` per request, as in a real server
                client = signed.get(who) or _anonymous(app)
                resp = client.post(url, data) if method == "POST" else client.get(url)
                resp.get_data()  # a streamed body is read inside its context
                resp.close()
            walked += 1
            status = resp.status_code
            if who == "member" and resp.mimetype == "text/html" and status != 403:
                html = resp.get_data(as_text=True)
                for prefix in ADMIN_PREFIXES:  # no links or forms that would answer 403
                    if re.search(rf'(?:href|action|hx-get|hx-post)="{prefix}', html):
                        problems.append(f"member {method} {url} links to {prefix}")
            if who == "anonymous" and access != PUBLIC:
                ok = _is_login_redirect(resp)
            elif who == "member" and access == ADMIN:
                ok = status == 403
            else:
                expected = EXPECTED.get((rule.endpoint, method))
                ok = status == expected if expected else 200 <= status < 400
                # Signing out is the only answer that rightly leads to the sign-in page.
                ok = ok and (rule.endpoint in SIGN_OUTS or not _is_login_redirect(resp))
            if not ok:
                problems.append(f"{who} {method} {rule.endpoint} {url} -> {status}")
            if rule.endpoint == "auth.login" and who in signed:
                # Signing in again rotates the CSRF token: pick up the new one.
                with app.app_context():
                    page = signed[who].client.get("/").get_data(as_text=True)
                    signed[who].csrf = csrf_token_from(page)
            if rule.endpoint in SIGN_OUTS and who in signed:
                with app.app_context():
                    signed[who] = SignedIn(app.test_client(), signed[who].user)
    assert walked > 150
    assert problems == [], "\n".join(problems)


# --- the Team page -------------------------------------------------------------------------


@pytest.fixture
def admin(app):
    return _sign_in(app, "boss@example.com", admin=True)


def _fresh(app, fn, *args, **kwargs):
    """Call a client in a fresh app context (a fresh `g`), as each real request gets."""
    with app.app_context():
        return fn(*args, **kwargs)


def _can_sign_in(app, email: str, password: str) -> bool:
    def attempt():
        client = app.test_client()
        token = csrf_token_from(client.get("/login").get_data(as_text=True))
        resp = client.post("/login", data={"email": email, "password": password,
                                           "csrf_token": token})
        return resp.status_code == 302 and client.get("/").status_code == 200
    return _fresh(app, attempt)


def _user(email: str) -> User:
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


def _text(resp) -> str:
    return resp.get_data(as_text=True)


def test_members_get_a_plain_words_403_and_no_admin_links(app):
    member = _sign_in(app, "member@example.com", admin=False)
    home = _fresh(app, member.get, "/")
    assert 'href="/team/"' not in _text(home) and 'href="/settings/"' not in _text(home)
    for url in ("/team/", "/settings/"):
        resp = _fresh(app, member.get, url)
        assert resp.status_code == 403
        assert "This page is for workspace administrators" in _text(resp)
        assert "Traceback" not in _text(resp) and "Forbidden" not in _text(resp)
    resp = _fresh(app, member.post, "/settings/", {"name": "Hijacked"})
    assert resp.status_code == 403
    # Connect forms name Settings for the OAuth app without linking members to a 403.
    for provider in ("shopify", "zoho", "salesforce"):
        html = _text(_fresh(app, member.get, f"/integrations/{provider}"))
        assert "Settings (ask an administrator of your team)" in html
        assert 'href="/settings/' not in html
    admin = _sign_in(app, "boss@example.com", admin=True)
    assert 'href="/settings/#oauth-apps"' in _text(_fresh(app, admin.get, "/integrations/zoho"))


def test_admins_see_team_and_settings_in_the_nav(app, admin):
    html = _text(_fresh(app, admin.get, "/"))
    assert 'href="/team/"' in html and 'href="/settings/"' in html


def test_team_page_lists_email_role_state_and_last_sign_in(app, admin):
    make_user(email="ann@example.com", password=PASSWORD)
    gone = make_user(email="gone@example.com", password=PASSWORD, active=False)
    assert not gone.is_active
    html = _text(_fresh(app, admin.get, "/team/"))
    assert "ann@example.com" in html and "gone@example.com" in html
    assert "Administrator" in html and "Member" in html
    assert "deactivated" in html
    boss = _user("boss@example.com")
    assert boss.last_login_at is not None
    assert boss.last_login_at.strftime("%Y-%m-%d %H:%M UTC") in html


def test_add_member_with_a_one_time_password_shown_once(app, admin):
    resp = _fresh(app, admin.post, "/team/", {"email": " Ann@Example.com ", "how": "password"})
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    password = re.search(r'id="one-time-password">([^<]+)<', _text(resp)).group(1)
    assert len(password) >= 12
    ann = _user("ann@example.com")
    assert not ann.is_admin and ann.active
    assert password not in ann.password_hash and verify_password(ann, password)
    assert password not in _text(_fresh(app, admin.get, "/team/"))
    assert _can_sign_in(app, "ann@example.com", password)


def test_add_admin_with_a_set_password_link(app, admin):
    resp = _fresh(app, admin.post, "/team/", {"email": "cy@example.com", "how": "link",
                                              "role": "admin"})
    link = re.search(r'id="set-password-link">([^<]+)<', _text(resp)).group(1)
    token = link.rsplit("/", 1)[1]
    cy = _user("cy@example.com")
    assert cy.is_admin
    # Stored hashed, never the token itself.
    assert cy.password_token_hash != token and token not in cy.password_token_hash
    assert "invited" in _text(_fresh(app, admin.get, "/team/"))

    client = app.test_client()
    page = _fresh(app, client.get, f"/set-password/{token}")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    csrf = csrf_token_from(_text(page))
    short = _fresh(app, client.post, f"/set-password/{token}",
                   data={"password": "short", "confirm": "short", "csrf_token": csrf})
    assert short.status_code == 422 and "at least 12 characters" in _text(short)
    differ = _fresh(app, client.post, f"/set-password/{token}",
                    data={"password": "a long new password", "confirm": "a long new pass",
                          "csrf_token": csrf})
    assert differ.status_code == 422 and "differ" in _text(differ)
    done = _fresh(app, client.post, f"/set-password/{token}",
                  data={"password": "a long new password", "confirm": "a long new password",
                        "csrf_token": csrf})
    assert done.status_code == 303 and done.headers["Location"].endswith("/login")
    assert _can_sign_in(app, "cy@example.com", "a long new password")
    # Single use.
    again = _fresh(app, client.get, f"/set-password/{token}")
    assert again.status_code == 404 and "expired or was already used" in _text(again)


def test_an_expired_link_does_not_work(app, admin):
    resp = _fresh(app, admin.post, "/team/", {"email": "dee@example.com", "how": "link"})
    token = re.search(r'/set-password/([^<"]+)', _text(resp)).group(1)
    dee = _user("dee@example.com")
    dee.password_token_expires_at = dee.password_token_expires_at - timedelta(hours=73)
    db.session.commit()
    assert _fresh(app, app.test_client().get, f"/set-password/{token}").status_code == 404
    assert "link expired" in _text(_fresh(app, admin.get, "/team/"))


def test_add_member_refuses_bad_or_taken_emails_and_a_missing_choice(app, admin):
    for data, words in (({"email": "not-an-email", "how": "link"}, "such as ann@example.com"),
                        ({"email": "boss@example.com", "how": "link"}, "on the team already"),
                        ({"email": "eve@example.com"}, "Choose a one-time password")):
        resp = _fresh(app, admin.post, "/team/", data)
        assert resp.status_code == 422 and words in _text(resp)
    assert _user("eve@example.com") is None


def test_reset_password_both_ways_stops_the_old_password(app, admin):
    make_user(email="ann@example.com", password=PASSWORD)
    ann_id = _user("ann@example.com").id
    resp = _fresh(app, admin.post, f"/team/{ann_id}/reset", {"how": "password"})
    password = re.search(r'id="one-time-password">([^<]+)<', _text(resp)).group(1)
    assert not _can_sign_in(app, "ann@example.com", PASSWORD)
    assert _can_sign_in(app, "ann@example.com", password)
    resp = _fresh(app, admin.post, f"/team/{ann_id}/reset", {"how": "link"})
    assert "/set-password/" in _text(resp)
    assert not _can_sign_in(app, "ann@example.com", password)
    assert "password reset (link not used yet)" in _text(_fresh(app, admin.get, "/team/"))


def test_deactivated_user_is_signed_out_and_cannot_sign_in(app, admin):
    ann = _sign_in(app, "ann@example.com", admin=False)
    assert _fresh(app, ann.get, "/lists/").status_code == 200
    resp = _fresh(app, admin.post, f"/team/{ann.user.id}/deactivate")
    assert resp.status_code == 303
    gone = _fresh(app, ann.get, "/lists/")
    assert _is_login_redirect(gone)
    assert not _can_sign_in(app, "ann@example.com", PASSWORD)
    _fresh(app, admin.post, f"/team/{ann.user.id}/reactivate")
    assert _can_sign_in(app, "ann@example.com", PASSWORD)


def test_an_admin_cannot_deactivate_themselves(app, admin):
    resp = _fresh(app, admin.post, f"/team/{admin.user.id}/deactivate")
    assert resp.status_code == 303
    assert _user("boss@example.com").active
    assert "cannot deactivate yourself" in _text(_fresh(app, admin.get, "/team/"))


def test_the_last_active_admin_keeps_the_role(app, admin):
    resp = _fresh(app, admin.post, f"/team/{admin.user.id}/remove-admin")
    assert resp.status_code == 303
    assert _user("boss@example.com").is_admin
    assert "last active administrator" in _text(_fresh(app, admin.get, "/team/"))
    # A deactivated admin does not count as the one left.
    other = make_user(email="old@example.com", password=PASSWORD, is_admin=True, active=False)
    _fresh(app, admin.post, f"/team/{admin.user.id}/remove-admin")
    assert _user("boss@example.com").is_admin
    # Nor can the last active admin be deactivated by anyone (the service refuses).
    from webapp.services import team
    from webapp.services.errors import FormError

    with pytest.raises(FormError, match="last active administrator"):
        team.set_active(_user("boss@example.com"), False, acting=other)


def test_make_and_remove_admin(app, admin):
    ann = _sign_in(app, "ann@example.com", admin=False)
    assert _fresh(app, ann.get, "/team/").status_code == 403
    _fresh(app, admin.post, f"/team/{ann.user.id}/make-admin")
    assert _user("ann@example.com").is_admin
    assert _fresh(app, ann.get, "/team/").status_code == 200
    # With a second admin, the first may step down; they land on the dashboard.
    resp = _fresh(app, admin.post, f"/team/{admin.user.id}/remove-admin")
    assert resp.status_code == 303 and resp.headers["Location"] == "/"
    assert not _user("boss@example.com").is_admin
    assert _fresh(app, admin.get, "/team/").status_code == 403
    assert _fresh(app, ann.post, f"/team/{ann.user.id}/remove-admin").status_code == 303
    assert _user("ann@example.com").is_admin  # now the last one


def test_users_cli_keeps_working(app):
    runner = app.test_cli_runner()
    out = runner.invoke(args=["users", "create", "cli@example.com", "--admin"])
    assert out.exit_code == 0 and "with password:" in out.output
    make_user(email="gone@example.com", password=PASSWORD, active=False)
    listing = runner.invoke(args=["users", "list"]).output
    assert "cli@example.com\tadmin" in listing
    assert "gone@example.com\tmember\tdeactivated" in listing
    assert runner.invoke(args=["users", "ensure-admin"]).output == ""  # users exist already
    short = runner.invoke(args=["users", "create", "short@example.com", "--password", "short"])
    assert short.exit_code != 0 and "at least 12 characters" in short.output
