"""Acknowledged means durable, under gunicorn as deployed: web workers killed with -9 and
Redis killed while events pour in; every acknowledged event is in the database exactly once,
and senders' retries of unanswered requests are de-duplicated."""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
from sqlalchemy import func, select

from tests.conftest import process_env
from tests.plugins.conftest import basic, make_source
from webapp.devserver import free_port, start_redis, stop
from webapp.extensions import db
from webapp.models.plugins import PluginEvent

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 1800
BATCH = 3


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of this test's own, so killing it leaves the session's Redis alone."""
    port = free_port()
    proc = start_redis(port, tmp_path / "redis")
    yield proc, f"redis://127.0.0.1:{port}/0"
    stop(proc)


@pytest.fixture
def gunicorn(app_config, own_redis):
    port = free_port()
    env = {**process_env(app_config), "TRIBUTARY_BIND": f"127.0.0.1:{port}",
           "TRIBUTARY_WEB_WORKERS": "2", "TRIBUTARY_REDIS_URL": own_redis[1]}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
         "--access-logfile", "/dev/null", "wsgi:app"], cwd=ROOT, env=env,
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/login")
            conn.getresponse().read()
            break
        except OSError:
            time.sleep(0.2)
    yield proc, port
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def _sender(port, key, batches, acked, lock):
    """Send each batch until it is acknowledged, like a Segment library retrying."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for batch in batches:
        body = json.dumps({"batch": batch})
        while True:
            try:
                conn.request("POST", "/v1/batch", body=body, headers={
                    **basic(key), "Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    with lock:
                        acked.update(e["messageId"] for e in batch)
                    time.sleep(0.02)  # a steady stream, so the kills land mid-way
                    break
            except (OSError, http.client.HTTPException):
                pass
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            time.sleep(0.05)
    conn.close()


def test_kill_9_of_web_workers_and_redis_loses_no_acknowledged_event(
        app, gunicorn, own_redis):
    proc, port = gunicorn
    source, keys = make_source("website")
    source_id = source.id
    events = [{"type": "track", "event": "Product Viewed", "anonymousId": f"a{n % 50}",
               "messageId": str(uuid.uuid4())} for n in range(EVENTS)]
    batches = [events[i:i + BATCH] for i in range(0, EVENTS, BATCH)]
    acked: set[str] = set()
    lock = threading.Lock()
    senders = [threading.Thread(target=_sender, args=(port, keys["server"], batches[i::6],
                                                      acked, lock)) for i in range(6)]
    for t in senders:
        t.start()
    rng = random.Random(11)
    killed = 0
    while any(t.is_alive() for t in senders) and killed < 4:
        time.sleep(rng.uniform(0.2, 0.5))
        children = psutil.Process(proc.pid).children()
        if children:
            os.kill(rng.choice(children).pid, signal.SIGKILL)  # gunicorn starts another
            killed += 1
        if killed == 2:
            own_redis[0].kill()  # the nudge fails; the answer must not
    for t in senders:
        t.join(120)
    assert not any(t.is_alive() for t in senders)
    assert killed >= 2
    assert len(acked) == EVENTS
    db.session.remove()
    keys_stored = list(db.session.scalars(select(PluginEvent.dedup_key).where(
        PluginEvent.source_id == source_id)))
    assert len(keys_stored) == len(set(keys_stored)) == EVENTS  # exactly once each
    assert set(keys_stored) == acked
    assert db.session.scalar(select(func.count(PluginEvent.id)).where(
        PluginEvent.status != "pending")) == 0
