"""`make demo` (scripts/demo.py) as a newcomer runs it: it comes up on its ports, the web app
and every simulator answer, the printed instructions are complete, and Ctrl+C (SIGINT)
stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import psutil

from tests.conftest import ROOT
from webapp.devserver import free_port

PROVIDERS = ("shopify", "zoho", "magento", "salesforce")


def _answers(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:  # a simulator's 401/404 still answers
        return exc.code


def test_demo_starts_answers_and_stops_everything_on_ctrl_c(tmp_path):
    ports = {name: free_port() for name in PROVIDERS}
    shop_port = free_port()
    web = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIBUTARY_")}
    env.update({
        "TRIBUTARY_PORT": str(web),
        "TRIBUTARY_DEMO_PEOPLE": "300",
        "TRIBUTARY_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite'}",
        "TRIBUTARY_DEMO_LOG_DIR": str(tmp_path / "logs"),
        "TRIBUTARY_SECRET_KEY": "demo-test-secret",
        "TRIBUTARY_ENCRYPTION_KEY": "yIb4bk3z0b2Xd6Yq7ZVfL1x8WlKuD9oF3hJm2nPqRs0=",
        "TRIBUTARY_WEB_WORKERS": "1",
        "PYTHONUNBUFFERED": "1",
        **{f"TRIBUTARY_DEMO_{name.upper()}_PORT": str(port) for name, port in ports.items()},
        "TRIBUTARY_DEMO_SHOP_PORT": str(shop_port),
    })
    proc = subprocess.Popen([sys.executable, "scripts/demo.py"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    family: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while not any("Press Ctrl+C to stop." in line for line in lines):
            assert proc.poll() is None, "".join(lines)
            assert time.monotonic() < deadline, "demo not ready in 90 s:\n" + "".join(lines)
            time.sleep(0.2)
        output = "".join(lines)
        assert f"Tributary demo is ready at http://127.0.0.1:{web}/" in output
        assert "Sign in: demo@example.com / " in output
        assert "tributary-demo.myshopify.com" in output and "shpat_" in output
        assert "Accounts server URL: http://127.0.0.1:" in output
        assert "Log in with Salesforce" in output and "Consumer Key:" in output
        for port in ports.values():
            assert f"http://127.0.0.1:{port}" in output

        assert _answers(f"http://127.0.0.1:{web}/login") == 200
        for name, port in ports.items():
            assert _answers(f"http://127.0.0.1:{port}/") < 500, name
        assert f"Demo shop (http://127.0.0.1:{shop_port})" in output
        assert _answers(f"http://127.0.0.1:{shop_port}/") == 200
        # The demo made its plugin sources: the shop's pages carry the snippet with a key.
        with urllib.request.urlopen(f"http://127.0.0.1:{shop_port}/", timeout=5) as resp:
            home = resp.read().decode()
        assert 'data-key="pk_' in home and "not connected to Tributary" not in home
        assert "Not connected to a plugin source yet" not in output

        family = psutil.Process(proc.pid).children(recursive=True)
        names = " ".join(_cmdline(p) for p in family)
        for part in ("worker.py", "scheduler", "gunicorn", "redis-server"):
            assert part in names, part

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        gone, alive = psutil.wait_procs(family, timeout=10)
        for child in alive:  # only when the demo failed to stop them: don't leak
            child.kill()
    assert not alive, [_cmdline(p) for p in alive]
    reader.join(timeout=5)
    assert "Stopping the demo" in "".join(lines)


def _cmdline(process: psutil.Process) -> str:
    """A child's command line; "" for one that has just exited (a work horse that finished
    its job and is not reaped yet is a zombie, whose command line cannot be read)."""
    try:
        return " ".join(process.cmdline())
    except (psutil.ZombieProcess, psutil.NoSuchProcess):
        return ""
