"""`make run`: migrate, create the first admin, start Redis, a worker, the scheduler and the
web app on 127.0.0.1:5000, print the URL and first login; Ctrl+C stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.devserver import free_port, port_is_free, start_redis, stop  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _interrupt)
    host, port = "127.0.0.1", int(os.environ.get("TRIBUTARY_PORT", "5000"))
    env = dict(os.environ)
    env.setdefault("TRIBUTARY_ENV", "development")
    flask = [str(VENV_BIN / "flask"), "--app", "webapp"]
    procs: list[subprocess.Popen] = []
    redis = None
    try:
        if "TRIBUTARY_REDIS_URL" not in os.environ:
            redis_port = 6379 if port_is_free(6379) else free_port()
            redis = start_redis(redis_port, ROOT / "instance" / "redis")
            env["TRIBUTARY_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            print(f"Redis on 127.0.0.1:{redis_port}", flush=True)
        subprocess.run([*flask, "db", "upgrade"], env=env, check=True, cwd=ROOT)
        subprocess.run([*flask, "users", "ensure-admin"], env=env, check=True, cwd=ROOT)
        started = time.monotonic()
        procs.append(subprocess.Popen([sys.executable, "worker.py"], env=env, cwd=ROOT))
        procs.append(subprocess.Popen([*flask, "scheduler", "run"], env=env, cwd=ROOT))
        procs.append(subprocess.Popen(
            [str(VENV_BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
             "-b", f"{host}:{port}", "wsgi:app"], env=env, cwd=ROOT))
        url = f"http://{host}:{port}/"
        _wait_for(url + "login", procs)
        print(f"\nTributary is running at {url}  (ready in {time.monotonic() - started:.1f} s)")
        print("Sign in with the first login printed above (run `flask users create` for more).")
        print("Press Ctrl+C to stop.\n", flush=True)
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        print("A process stopped; shutting down.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            stop(proc)
        stop(redis)


def _wait_for(url: str, procs: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in procs):
            raise SystemExit("A process failed to start; see the output above.")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
