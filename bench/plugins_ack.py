"""Acknowledgement of plugin events: gunicorn as deployed (deploy/gunicorn.conf.py), SQLite,
a real Redis, an open-loop load generator on loopback sending one event per request.

    python bench/plugins_ack.py [--seconds 60] [--rate 500] [--burst-rate 1000]
                                [--burst-seconds 10] [--senders 32]

Phases: the tracking API (/v1/track, server key) at --rate for --seconds, then a burst at
--burst-rate for --burst-seconds; the same for Shopify webhooks (HMAC-signed customer
bodies). Each prints p50/p99 acknowledgement and lost = sent - stored (the database count).
Then the floor: a bare WSGI app (bench/plugins_floor.py) that verifies the key or HMAC and
inserts the raw body with plain sqlite3, under the same gunicorn and load, and our ratio.
Goals (issue 11): ≥ 500 events/s for 60 s with p99 ≤ 100 ms and p50 ≤ 10 ms, 0 lost; a
1,000/s burst for 10 s with 0 lost.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import sqlite_env  # noqa: E402

GOALS = {"p50_ms": 10.0, "p99_ms": 100.0}
SHOPIFY_SECRET = "bench-shopify-custom-app-secret"


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return 0.0
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 1)


def track_request(key: str):
    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()

    def make(n: int):
        body = json.dumps({"userId": f"u{n % 5000}", "event": "Product Viewed",
                           "messageId": str(uuid.uuid4()),
                           "properties": {"sku": f"SKU-{n % 300}", "price": 19.5},
                           "context": {"page": {"url": "https://shop.example/p"}},
                           "timestamp": "2026-12-01T10:00:00Z"}).encode()
        return "/v1/track", body, {"Authorization": auth, "Content-Type": "application/json"}
    return make


def shopify_request(source_id: int):
    def make(n: int):
        body = json.dumps({"id": 7000000 + n, "email": f"person{n}@example.com",
                           "first_name": "Ann", "last_name": f"Lee {n}",
                           "created_at": "2026-12-01T05:00:00-05:00",
                           "updated_at": "2026-12-01T05:00:00-05:00", "state": "enabled",
                           "note": None, "verified_email": True, "tags": "",
                           "currency": "USD", "addresses": []},
                          separators=(",", ":")).encode()
        sig = base64.b64encode(hmac.new(SHOPIFY_SECRET.encode(), body,
                                        hashlib.sha256).digest()).decode()
        return f"/hooks/shopify/{source_id}", body, {
            "X-Shopify-Hmac-Sha256": sig, "X-Shopify-Topic": "customers/create",
            "X-Shopify-Webhook-Id": str(uuid.uuid4()), "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": "2026-12-01T10:00:00.000Z",
            "X-Shopify-Shop-Domain": "bench.myshopify.com", "X-Shopify-API-Version": "2025-01",
            "Content-Type": "application/json"}
    return make


def drive(port: int, make, rate: float, seconds: float, senders: int) -> dict:
    """Open loop: request n is due at start + n/rate; each sender thread keeps one
    keep-alive connection and takes the next due request. Latency is measured from the
    moment the request was due (a late send counts against us)."""
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(total))
    start = time.perf_counter() + 0.2

    def sender():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, codes = [], {}
        while True:
            with lock:
                n = next(counter, None)
            if n is None:
                break
            path, body, headers = make(n)
            due = start + n / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                conn.request("POST", path, body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                code = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                code = 0
            mine.append((time.perf_counter() - due) * 1000)
            codes[code] = codes.get(code, 0) + 1
        with lock:
            latencies.extend(mine)
            for code, k in codes.items():
                statuses[code] = statuses.get(code, 0) + k
        conn.close()

    threads = [threading.Thread(target=sender, daemon=True) for _ in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    return {"sent": total, "ok": statuses.get(200, 0), "statuses": statuses,
            "rate": round(total / elapsed, 1), "p50_ms": round(statistics.median(latencies), 2)
            if latencies else 0.0, "p99_ms": _pct(latencies, 0.99)}


def _gunicorn(target: str, env: dict, port: int) -> subprocess.Popen:
    env = {**env, "TRIBUTARY_BIND": f"127.0.0.1:{port}"}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
         "--access-logfile", "/dev/null", target], cwd=ROOT, env=env,
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _cpu_seconds(proc: subprocess.Popen) -> float:
    """CPU time used so far by gunicorn and its workers (user + system)."""
    import psutil

    total = 0.0
    try:
        parent = psutil.Process(proc.pid)
        for p in [parent, *parent.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                continue
    except psutil.NoSuchProcess:
        pass
    return total


def _measured(proc: subprocess.Popen, port: int, make, rate: float, seconds: float,
              senders: int) -> dict:
    """`drive`, plus the server's CPU milliseconds per request (load-independent: what
    bounds the rate the two cores can sustain)."""
    before = _cpu_seconds(proc)
    figures = drive(port, make, rate, seconds, senders)
    figures["cpu_ms_per_request"] = round(
        (_cpu_seconds(proc) - before) * 1000 / max(1, figures["sent"]), 2)
    return figures


def _wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/")
            conn.getresponse().read()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer")


def _stop(proc: subprocess.Popen) -> None:
    import signal

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)


def _phases(rate, seconds, burst_rate, burst_seconds):
    return (("sustained", rate, seconds), ("burst", burst_rate, burst_seconds))


def run(seconds: float = 60, rate: float = 500, burst_rate: float = 1000,
        burst_seconds: float = 10, senders: int = 32) -> dict:
    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from bench import plugins_floor
    from tests.factories import make_list
    from webapp import create_app
    from webapp.devserver import free_port, start_redis, stop
    from webapp.extensions import db
    from webapp.models.plugins import PluginEvent, PluginSource
    from webapp.plugins import keys
    from webapp.security import encrypt

    tmp = Path(tempfile.mkdtemp(prefix="tributary-ack-"))
    redis_port = free_port()
    redis = start_redis(redis_port, tmp / "redis")
    env = sqlite_env(tmp, "ack.sqlite", redis_port)
    result: dict = {"ours": {}, "floor": {}}
    procs: list[subprocess.Popen] = []
    try:
        app = create_app({"DATABASE_URL": env["TRIBUTARY_DATABASE_URL"],
                          "REDIS_URL": env["TRIBUTARY_REDIS_URL"], "ENV": "test",
                          "SECRET_KEY": env["TRIBUTARY_SECRET_KEY"],
                          "ENCRYPTION_KEY": env["TRIBUTARY_ENCRYPTION_KEY"]})
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            lst = make_list("Bench plugin list")
            site = PluginSource(kind="website", name="Bench site", list_id=lst.id)
            shop = PluginSource(kind="shopify", name="Bench shop", list_id=lst.id,
                                secret_encrypted=encrypt(SHOPIFY_SECRET))
            db.session.add_all([site, shop])
            db.session.flush()
            server_key = keys.create(site, "server").secret
            db.session.commit()
            site_id, shop_id = site.id, shop.id

            def stored(source_id: int) -> int:
                db.session.remove()
                return db.session.scalar(select(func.count(PluginEvent.id)).where(
                    PluginEvent.source_id == source_id))

            port = free_port()
            procs.append(_gunicorn("wsgi:app", env, port))
            _wait_port(port)
            for label, make, source_id in (("tracking API", track_request(server_key), site_id),
                                           ("Shopify webhooks", shopify_request(shop_id),
                                            shop_id)):
                drive(port, make, 50, 1, 4)  # warm every worker up
                base = stored(source_id)
                for phase, r, s in _phases(rate, seconds, burst_rate, burst_seconds):
                    figures = _measured(procs[-1], port, make, r, s, senders)
                    now = stored(source_id)
                    figures["stored"] = now - base
                    figures["lost"] = figures["ok"] - figures["stored"]
                    base = now
                    result["ours"][f"{label} {phase}"] = figures
                    _print(f"{label}, {phase}", r, s, figures)
            _stop(procs.pop())

        floor_db = tmp / "floor.sqlite"
        plugins_floor.create(str(floor_db))
        floor_env = {**env, "FLOOR_DB": str(floor_db), "FLOOR_SHOPIFY_SECRET": SHOPIFY_SECRET,
                     "FLOOR_KEY_DIGEST": hashlib.sha256(server_key.encode()).hexdigest()}
        port = free_port()
        procs.append(_gunicorn("bench.plugins_floor:app", floor_env, port))
        _wait_port(port)
        for label, make in (("tracking API", track_request(server_key)),
                            ("Shopify webhooks", shopify_request(shop_id))):
            drive(port, make, 50, 1, 4)
            base = plugins_floor.count(str(floor_db))
            figures = _measured(procs[-1], port, make, rate, seconds, senders)
            figures["stored"] = plugins_floor.count(str(floor_db)) - base
            figures["lost"] = figures["ok"] - figures["stored"]
            result["floor"][label] = figures
            _print(f"floor: {label}, sustained", rate, seconds, figures)
    finally:
        for proc in procs:
            _stop(proc)
        stop(redis)
    for label in ("tracking API", "Shopify webhooks"):
        ours, floor = result["ours"][f"{label} sustained"], result["floor"][label]
        ratio = {k: round(ours[k] / floor[k], 2) if floor[k] else None
                 for k in ("p50_ms", "p99_ms")}
        result.setdefault("ratio", {})[label] = ratio
        print(f"  ratio to the floor ({label}): p50 ×{ratio['p50_ms']}, "
              f"p99 ×{ratio['p99_ms']}")
    sustained = [v for k, v in result["ours"].items() if k.endswith("sustained")]
    result["met"] = (all(v["p50_ms"] <= GOALS["p50_ms"] and v["p99_ms"] <= GOALS["p99_ms"]
                         and v["rate"] >= rate * 0.98 for v in sustained)
                     and all(v["lost"] == 0 and v["ok"] == v["sent"]
                             for v in result["ours"].values()))
    print(f"  goals (p50 ≤ {GOALS['p50_ms']:g} ms, p99 ≤ {GOALS['p99_ms']:g} ms, "
          f"≥ {rate:g}/s, 0 lost): {'met' if result['met'] else 'NOT met'}")
    return result


def _print(label: str, rate: float, seconds: float, f: dict) -> None:
    print(f"  {label}: {f['sent']} events at {rate:g}/s for {seconds:g} s → achieved "
          f"{f['rate']}/s, acknowledged {f['ok']}, stored {f['stored']}, lost {f['lost']}, "
          f"p50 {f['p50_ms']} ms, p99 {f['p99_ms']} ms, server CPU "
          f"{f.get('cpu_ms_per_request', 0)} ms per request, statuses {f['statuses']}",
          flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--burst-rate", type=float, default=1000)
    parser.add_argument("--burst-seconds", type=float, default=10)
    parser.add_argument("--senders", type=int, default=32)
    args = parser.parse_args(argv)
    print(f"plugin acknowledgement: gunicorn as deployed, SQLite, {os.cpu_count()} CPUs "
          "(shared with whatever else runs now)", flush=True)
    run(args.seconds, args.rate, args.burst_rate, args.burst_seconds, args.senders)
    return 0


if __name__ == "__main__":
    sys.exit(main())
