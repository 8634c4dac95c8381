"""Time from `make run` on a fresh clone to the sign-in page answering.

Clones the committed HEAD into a temporary folder, runs `make run` there (which creates the
virtual environment, installs, fetches htmx, migrates and starts everything), and measures
until http://127.0.0.1:PORT/login answers 200; then stops it with Ctrl+C (SIGINT).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from webapp.devserver import free_port  # noqa: E402


def run(timeout: float = 900) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "tributary"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("TRIBUTARY_", "VIRTUAL_ENV"))}
        env["TRIBUTARY_PORT"] = str(port)
        started = time.perf_counter()
        proc = subprocess.Popen(["make", "run"], cwd=clone, env=env, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        url = f"http://127.0.0.1:{port}/login"
        answered = None
        try:
            while time.perf_counter() - started < timeout:
                if proc.poll() is not None:
                    raise RuntimeError("make run exited:\n" + proc.stdout.read()[-3000:])
                try:
                    with urllib.request.urlopen(url, timeout=1) as resp:
                        if resp.status == 200:
                            answered = time.perf_counter() - started
                            break
                except OSError:
                    time.sleep(0.5)
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    if answered is None:
        raise RuntimeError("the sign-in page did not answer in time")
    print(f"make run on a fresh clone -> sign-in page answering: {answered:.1f} s")
    return {"fresh_make_run_seconds": round(answered, 1)}


def main(argv: list[str] | None = None) -> int:
    run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
