"""`make demo`: the four provider simulators (a few thousand generated people each) on fixed
loopback ports, Redis, a worker, the scheduler and the web app with loopback providers
allowed; OAuth apps stored so that "Connect with …" works; prints what to type to connect
each provider and the login. Ctrl+C stops everything.

Ports and sizes come from the environment: TRIBUTARY_PORT (web, 5000),
TRIBUTARY_DEMO_<PROVIDER>_PORT (8101 Shopify, 8102 Zoho, 8103 Magento, 8104 Salesforce),
TRIBUTARY_DEMO_SHOP_PORT (8105, the demo shop carrying the browser snippet),
TRIBUTARY_DEMO_PEOPLE (3000). The demo database (instance/demo.sqlite) starts empty each
time unless TRIBUTARY_DEMO_KEEP=1 or TRIBUTARY_DATABASE_URL names another database.
"""

from __future__ import annotations

import importlib
import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from devrun import Stack, _interrupt  # noqa: E402

from simulators import demo_shop, webhook_emitter  # noqa: E402
from simulators.dataset import generate  # noqa: E402
from simulators.server import serve  # noqa: E402
from webapp.devserver import port_is_free  # noqa: E402

DEMO_USER = "demo@example.com"
SIM_PORTS = {"shopify": 8101, "zoho": 8102, "magento": 8103, "salesforce": 8104}
SEEDS = {"shopify": 11, "zoho": 12, "magento": 13, "salesforce": 14}
SHOP_PORT = 8105
READY = "Tributary demo is ready at"
LOG_DIR = Path(os.environ.get("TRIBUTARY_DEMO_LOG_DIR") or ROOT / "instance" / "demo-logs")


def _port(name: str, default: int) -> int:
    return int(os.environ.get(f"TRIBUTARY_DEMO_{name.upper()}_PORT") or default)


def start_simulators(people: int) -> dict[str, tuple]:
    """{provider: (running server, app, demo config)} on the fixed ports."""
    started: dict[str, tuple] = {}
    for name, default in SIM_PORTS.items():
        port = _port(name, default)
        if not port_is_free(port):
            for running, _app, _cfg in started.values():
                running.stop()
            raise SystemExit(f"Port {port} for the {name} simulator is taken; set "
                             f"TRIBUTARY_DEMO_{name.upper()}_PORT to a free port.")
        module = importlib.import_module(f"simulators.{name}")
        options = {"bearer_allowed": True} if name == "magento" else {}
        app = module.create_app(generate(people, seed=SEEDS[name]), **options)
        running = serve(app, "127.0.0.1", port)
        started[name] = (running, app, module.demo_config(app, running.url))
    return started


def prepare_database(env: dict[str, str]) -> None:
    """The demo's own SQLite file, emptied each start (the simulators' tokens are new)."""
    if env.get("TRIBUTARY_DATABASE_URL"):
        return
    path = ROOT / "instance" / "demo.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    if env.get("TRIBUTARY_DEMO_KEEP") != "1":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    env["TRIBUTARY_DATABASE_URL"] = f"sqlite:///{path}"


def seed_workspace(sims: dict[str, tuple]) -> str:
    """OAuth apps matching the simulators, a demo login (new password each start) and a
    first list. Returns the password."""
    from sqlalchemy import select

    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import ContactList, User
    from webapp.security import hash_password
    from webapp.services import settings as settings_service

    app = create_app()
    password = secrets.token_urlsafe(9)
    with app.app_context():
        for name in ("shopify", "zoho", "salesforce"):
            state = sims[name][1].state
            errors = settings_service.save_oauth_app(
                name, {"client_id": state.client_id, "client_secret": state.client_secret})
            if errors:  # pragma: no cover - the simulators' ids are valid
                raise SystemExit(f"Could not store the {name} OAuth app: {errors}")
        user = db.session.scalar(select(User).where(User.email == DEMO_USER))
        if user is None:
            user = User(email=DEMO_USER, is_admin=True, password_hash="")
            db.session.add(user)
        user.password_hash = hash_password(password)
        if not db.session.scalar(select(ContactList.id).limit(1)):
            db.session.add(ContactList(name="Newsletter"))
        db.session.commit()
        db.engine.dispose()
    return password


def start_demo_shop(app_url: str):
    """The demo shop on its port, its pages loading the snippet from the app; keys come
    later (connect_plugin_demo), until then its pages say they are not connected."""
    port = _port("shop", SHOP_PORT)
    if not port_is_free(port):
        raise SystemExit(f"Port {port} for the demo shop is taken; set "
                         "TRIBUTARY_DEMO_SHOP_PORT to a free port.")
    return demo_shop.start(app_url.rstrip("/"), port=port)


@dataclass
class DemoPluginKeys:
    """What the demo's plugin sources gave: the website source's public and server keys,
    and each store source's delivery URL with the secret its webhooks are signed with."""

    public_key: str = ""
    server_key: str = ""
    shopify_url: str = ""
    shopify_secret: str = ""
    woocommerce_url: str = ""
    woocommerce_secret: str = ""


def create_demo_plugin_sources(app_url: str, shop_url: str) -> DemoPluginKeys:
    """The demo's plugin sources, made with the same services as the set-up page: a
    "Demo shop" website source on the first list whose allowed origins hold the demo shop
    and the app itself (for the try-it page), with a shop history (orders, carts, visits),
    and a WooCommerce source. Returns their keys for the shop and the webhook emitter.
    (A Shopify source needs a connected Shopify store: set it up from the app.)"""
    from sqlalchemy import select
    from werkzeug.datastructures import MultiDict

    from webapp import create_app
    from webapp.commerce.demo import seed_history
    from webapp.extensions import db
    from webapp.models import ContactList
    from webapp.plugins import sources

    app = create_app()
    keys = DemoPluginKeys()
    with app.test_request_context("/", base_url=app_url):
        list_id = db.session.scalar(select(ContactList.id).order_by(ContactList.id).limit(1))
        base = [("list_id", str(list_id)), ("add_events", "signed_up"),
                ("add_events", "form_submitted")]
        site = sources.create("website", MultiDict(base + [
            ("name", "Demo shop"), ("allowed_origins", f"{shop_url}\n{app_url}")]))
        made = {k.kind: k.secret for k in site.new_keys}
        keys.public_key, keys.server_key = made["public"], made["server"]
        seed_history(site.source.id)
        _demo_automation()
        woo = sources.create("woocommerce", MultiDict(base + [("name", "Demo WooCommerce")]))
        keys.woocommerce_url = sources.delivery_url(woo.source)
        keys.woocommerce_secret = {k.kind: k.secret for k in woo.new_keys}["signing"]
        db.session.remove()
        db.engine.dispose()
    return keys


def _demo_automation() -> None:
    """A segment "Bought in the last 30 days" and an automation, switched on, that adds
    those buyers to a "Customers" list; evaluated once so the demo shows it fired."""
    from webapp.commerce import automations, segments
    from webapp.extensions import db
    from webapp.models import Automation, ContactList

    customers = ContactList(name="Customers")
    db.session.add(customers)
    db.session.flush()
    segment = segments.save("Bought in the last 30 days", {"op": "and", "items": [
        {"op": "and", "items": [{"type": "purchased", "what": "anything", "days": 30}]}]})
    db.session.flush()
    row = Automation(name="Buyers join Customers", segment_id=segment.id,
                     action=automations.clean_action({"action": "add_to_list",
                                                      "list_id": str(customers.id)}))
    db.session.add(row)
    automations.switch(row, True)
    db.session.commit()
    automations.evaluate_all()
    db.session.commit()


def connect_plugin_demo(shop, app_url: str, keys: DemoPluginKeys, people: int = 3,
                        every: float = 20.0, stop: threading.Event | None = None):
    """Point the demo shop at the website source's keys and start a thread that sends
    store webhooks (a few sign-ups, carts and orders) to each store source now and then
    every `every` seconds, so a newcomer sees events arrive within a minute."""
    shop.configure(app_url, keys.public_key, keys.server_key)
    stop = stop or threading.Event()

    def emit() -> None:
        woo = None
        if keys.woocommerce_url:
            woo = webhook_emitter.WooCommerceEmitter(keys.woocommerce_url,
                                                     keys.woocommerce_secret, webhook_id=1)
            woo.ping()
        shopify = (webhook_emitter.ShopifyEmitter(keys.shopify_url, keys.shopify_secret,
                                                  time_factor=0.01, sleep=stop.wait)
                   if keys.shopify_url else None)
        round_ = 0
        while not stop.is_set():
            pool = webhook_emitter.sample_people(people * (round_ + 1), seed=21)[-people:]
            sends = []
            if woo is not None:
                sends += [(woo, t, p) for t, p in webhook_emitter.woo_scenario("mixed", pool,
                                                                                round_)]
            if shopify is not None:
                sends += [(shopify, t, p) for t, p in webhook_emitter.shopify_scenario(
                    "mixed", pool, round_)]
            for emitter, topic, payload in sends:
                if stop.is_set():
                    return
                emitter.send(topic, payload)
            round_ += 1
            stop.wait(every)

    thread = threading.Thread(target=emit, daemon=True, name="demo-webhooks")
    thread.start()
    return stop, thread


def instructions(web: str, sims: dict[str, tuple], password: str, people: int,
                 shop_url: str = "", shop_connected: bool = False) -> str:
    shopify, zoho, magento, salesforce = (sims[n] for n in SIM_PORTS)
    shop_token = shopify[1].state.issue_tokens(expiring=False)["access_token"]
    mag = magento[1].state
    lines = [
        "",
        f"{READY} {web}",
        f"  Sign in: {DEMO_USER} / {password}",
        f"  Each simulator holds {people:,} generated people (every 97th is named "
        "<img src=x onerror=alert(1)>: it must show as text).",
        "",
        "Connect a provider: Integrations → its tile → Details, then:",
        "",
        f"  Shopify ({shopify[0].url})",
        "    With an Admin API access token:",
        f"      Shop domain:                {shopify[1].state.shop}",
        f"      Admin API access token:     {shop_token}",
        f"      Advanced (testing) → API base URL: {shopify[0].url}",
        "    or With the Tributary app: the same shop domain and API base URL, then",
        "      \"Connect with Shopify\" (the demo store approves at once).",
        f"    The demo store has {len(shopify[1].state.orders)} past orders: once it is "
        "connected, a",
        "    Shopify plugin source's page offers Import order history.",
        "",
        f"  Zoho CRM ({zoho[0].url})",
        "    Data centre:                  United States (zoho.com)",
        f"    Advanced (testing) → Accounts server URL: {zoho[0].url}",
        "    then \"Connect with Zoho\" (the demo account approves at once).",
        "",
        f"  Magento 2 ({magento[0].url})",
        f"    Store address:                {magento[0].url}",
        "    Access token as a Bearer token:",
        f"      Access Token:               {mag.access_token}",
        "    or OAuth 1.0a signatures:",
        f"      Consumer Key:               {mag.consumer_key}",
        f"      Consumer Secret:            {mag.consumer_secret}",
        f"      Access Token:               {mag.access_token}",
        f"      Access Token Secret:        {mag.access_token_secret}",
        "",
        f"  Salesforce ({salesforce[0].url})",
        "    Production (login.salesforce.com), then",
        f"    Advanced (testing) → Login host URL: {salesforce[0].url}",
        "    then \"Log in with Salesforce\" (the demo org approves at once).",
        "",
        "After connecting: set up the import for a list, assign the fields, Import; watch the",
        "progress on the integration's page and the figures under Import statistics.",
        "",
        f"  Demo shop ({shop_url}): pages carrying the browser snippet; sign up, add to",
        "    cart and order there, then see the events in the plugin source's event log.",
        *(["    (Not connected to a plugin source yet: its pages send nothing.)"]
          if not shop_connected else []),
        "",
        f"Logs of the worker, the scheduler and the web app: {LOG_DIR}",
        "Press Ctrl+C to stop.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    # SIGINT too: a shell starting us in the background hands SIGINT down ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    people = int(os.environ.get("TRIBUTARY_DEMO_PEOPLE") or 3000)
    web_port = int(os.environ.get("TRIBUTARY_PORT") or 5000)
    if not port_is_free(web_port):
        raise SystemExit(f"Port {web_port} is taken; set TRIBUTARY_PORT to a free port.")
    env = dict(os.environ)
    env.setdefault("TRIBUTARY_ENV", "development")
    env["TRIBUTARY_ALLOW_LOOPBACK_PROVIDERS"] = "1"
    prepare_database(env)
    stack = Stack(env, "127.0.0.1", web_port)
    sims: dict[str, tuple] = {}
    shop = None
    emitting = threading.Event()
    try:
        started = time.monotonic()
        sims = start_simulators(people)
        for name, (running, _app, _cfg) in sims.items():
            print(f"{name} simulator on {running.url}", flush=True)
        shop = start_demo_shop(stack.url)
        print(f"demo shop on {shop[0].url}", flush=True)
        stack.start_redis(ROOT / "instance" / "redis-demo")
        stack.flask("db", "upgrade", capture=True)
        os.environ.update({k: v for k, v in env.items() if k.startswith("TRIBUTARY_")})
        password = seed_workspace(sims)
        stack.start_services(log_dir=LOG_DIR)
        stack.wait_ready()
        keys = create_demo_plugin_sources(stack.url, shop[0].url)
        connect_plugin_demo(shop[1], stack.url, keys, stop=emitting)
        print(instructions(stack.url, sims, password, people, shop[0].url, True), flush=True)
        print(f"(ready in {time.monotonic() - started:.1f} s)", flush=True)
        while stack.alive():
            time.sleep(0.5)
        print("A process stopped; shutting down.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nStopping the demo…", flush=True)
        return 0
    finally:
        emitting.set()
        stack.stop()
        for running, _app, _cfg in sims.values():
            running.stop()
        if shop is not None:
            shop[1].close()
            shop[0].stop()


if __name__ == "__main__":
    sys.exit(main())
