"""Page speed at 100,000 contacts on SQLite: server time of a list's contact pages at
different keyset positions, of searches (email prefix, name substring, no match) and of
filtered pages (a common and a rare status, consent, cycle; full pages with their count).

    .venv/bin/python bench/pages.py        # prints p50/p95/max and whether goals are met
    from bench.pages import run; run()     # the same figures as a dict
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

CONTACTS = 100_000
REQUESTS = 200
GOALS_MS = {"page": 50.0, "search": 100.0, "filtered": 100.0}  # p95 server time


def _figures(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered), 2),
        "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 2),
        "max_ms": round(ordered[-1], 2),
    }


def _timed(client, url: str, headers: dict | None = None) -> float:
    start = time.perf_counter()
    resp = client.get(url, headers=headers or {})
    elapsed = (time.perf_counter() - start) * 1000
    if resp.status_code != 200:
        raise RuntimeError(f"{url} answered {resp.status_code}")
    return elapsed


def run(contacts: int = CONTACTS, requests: int = REQUESTS, seed: int = 7) -> dict:
    """Seed a fresh SQLite database and measure; returns the figures."""
    from cryptography.fernet import Fernet
    from flask_migrate import upgrade
    from sqlalchemy import select, update

    from tests.factories import make_contacts, make_list, make_user
    from webapp import create_app
    from webapp.extensions import db
    from webapp.models import Contact

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({
            "ENV": "test", "DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite",
            "REDIS_URL": "redis://127.0.0.1:1/0", "SECRET_KEY": os.urandom(16).hex(),
            "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "PASSWORD_HASH_METHOD": "scrypt:1024:8:1", "WTF_CSRF_ENABLED": False,
        })
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            make_user("bench@example.com", "bench-password")
            other = make_list("Other")
            make_contacts(other, 5_000, prefix="other")
            lst = make_list("Big")
            started = time.perf_counter()
            make_contacts(lst, contacts)
            seed_s = time.perf_counter() - started
            ids = list(db.session.scalars(
                select(Contact.id).where(Contact.list_id == lst.id).order_by(Contact.id)))
            # Filters need variety: 1 in 10 unsubscribed (opted out), 1 in 3 consented.
            db.session.execute(update(Contact).where(Contact.list_id == lst.id,
                                                     Contact.id % 10 == 0)
                               .values(status="unsubscribed", consent_state="opted_out"))
            db.session.execute(update(Contact).where(Contact.list_id == lst.id,
                                                     Contact.id % 3 == 1)
                               .values(consent_state="subscribed", origin="import"))
            db.session.commit()
            list_id = lst.id
            db.session.remove()

        client = app.test_client()
        resp = client.post("/login", data={"email": "bench@example.com",
                                           "password": "bench-password"})
        assert resp.status_code == 302, "bench sign-in failed"
        base = f"/lists/{list_id}/contacts"
        htmx = {"HX-Request": "true"}
        for _ in range(5):  # warm caches and templates
            _timed(client, base)
            _timed(client, f"{base}?q=zzzz", htmx)

        pages = []
        for i in range(requests):
            cursor = ids[rng.randrange(len(ids))]
            kind = i % 3
            if kind == 0:
                pages.append(_timed(client, f"{base}?after={cursor}"))  # full page + count
            elif kind == 1:
                pages.append(_timed(client, f"{base}?before={cursor}", htmx))
            else:
                pages.append(_timed(client, f"{base}?after={cursor}", htmx))

        searches: dict[str, list[float]] = {"email_prefix": [], "name_substring": [],
                                            "no_match": []}
        for i in range(requests):
            n = rng.randrange(contacts)
            kind = ("email_prefix", "name_substring", "no_match")[i % 3]
            if kind == "email_prefix":
                q = f"person{n}@"[: rng.randrange(7, len(f"person{n}@") + 1)]
            elif kind == "name_substring":
                q = f"son {n}"  # "Person 12345" contains "son 12345"
            else:
                q = rng.choice(["zzzz", "nobody here", "qx7"])
            headers = htmx if i % 2 else None  # live search (partial) and full page
            searches[kind].append(_timed(client, f"{base}?q={q.replace(' ', '+')}", headers))

        filtered = []
        queries = ["status=subscribed", "status=unsubscribed", "consent=subscribed",
                   "origin=import&status=unsubscribed", "cycle=none"]
        for i in range(requests):
            query = queries[i % len(queries)]
            cursor = ids[rng.randrange(len(ids))]
            if i % 2:  # a filter change: rows and the count out of band
                filtered.append(_timed(client, f"{base}?{query}", htmx))
            else:  # paging a filtered view (full page, with the count)
                filtered.append(_timed(client, f"{base}?{query}&after={cursor}"))

    all_searches = [t for samples in searches.values() for t in samples]
    result = {
        "contacts": contacts,
        "seed_seconds": round(seed_s, 2),
        "page": _figures(pages),
        "search": _figures(all_searches),
        "search_by_kind": {kind: _figures(samples) for kind, samples in searches.items()},
    }
    result["filtered"] = _figures(filtered)
    for kind in GOALS_MS:
        result[kind]["goal_ms"] = GOALS_MS[kind]
        result[kind]["met"] = result[kind]["p95_ms"] <= GOALS_MS[kind]
    result["met"] = all(result[kind]["met"] for kind in GOALS_MS)
    return result


def main(argv: list[str] | None = None) -> int:
    result = run()
    print(f"contacts seeded: {result['contacts']:,} in {result['seed_seconds']} s")
    rows = [("list page", result["page"]), ("search (all)", result["search"])]
    rows += [(f"  {kind}", fig) for kind, fig in result["search_by_kind"].items()]
    rows.append(("filtered page", result["filtered"]))
    print(f"{'':16}{'n':>5}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}  goal")
    for label, fig in rows:
        goal = ""
        if "goal_ms" in fig:
            goal = f"p95 ≤ {fig['goal_ms']:.0f} ms: {'met' if fig['met'] else 'NOT MET'}"
        print(f"{label:16}{fig['n']:>5}{fig['p50_ms']:>9}{fig['p95_ms']:>9}{fig['max_ms']:>9}"
              f"  {goal}")
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
