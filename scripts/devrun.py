"""`make run`: migrate, create the first admin, start Redis, a worker, a light worker for the
periodic jobs, the scheduler and the web app on 127.0.0.1:5000, print the URL and first
login; Ctrl+C stops everything.

The pieces (`Stack`) are importable: scripts/demo.py starts the same stack."""

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
FLASK = [str(VENV_BIN / "flask"), "--app", "webapp"]


def _interrupt(_signum, _frame):
    raise KeyboardInterrupt


class Stack:
    """Redis (unless TRIBUTARY_REDIS_URL is set), a worker, a periodic-jobs worker (so the
    tick and the sweep never wait behind an import), the scheduler and gunicorn, each
    child in its own process group so that stopping takes its own children (work horses,
    gunicorn workers) too."""

    def __init__(self, env: dict[str, str], host: str = "127.0.0.1", port: int = 5000):
        self.env, self.host, self.port = env, host, port
        self.procs: list[subprocess.Popen] = []
        self.redis: subprocess.Popen | None = None
        self._logs: list = []

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def start_redis(self, data_dir: Path) -> None:
        if "TRIBUTARY_REDIS_URL" in self.env:
            return
        redis_port = 6379 if port_is_free(6379) else free_port()
        self.redis = start_redis(redis_port, data_dir)
        self.env["TRIBUTARY_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
        print(f"Redis on 127.0.0.1:{redis_port}", flush=True)

    def flask(self, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run([*FLASK, *args], env=self.env, check=True, cwd=ROOT,
                              capture_output=capture, text=True)

    def spawn(self, cmd: list[str], **kwargs) -> subprocess.Popen:
        proc = subprocess.Popen(cmd, env=self.env, cwd=ROOT, start_new_session=True, **kwargs)
        self.procs.append(proc)
        return proc

    def start_services(self, log_dir: Path | None = None) -> None:
        """The workers, the scheduler and the web app (gunicorn); their output goes to the
        terminal, or to worker.log / periodic.log / plugins.log / scheduler.log / web.log in
        `log_dir`."""
        def output(name: str) -> dict:
            if log_dir is None:
                return {}
            log_dir.mkdir(parents=True, exist_ok=True)
            handle = open(log_dir / f"{name}.log", "a", buffering=1)  # noqa: SIM115
            self._logs.append(handle)
            return {"stdout": handle, "stderr": subprocess.STDOUT}

        self.spawn([sys.executable, "worker.py"], **output("worker"))
        self.spawn([sys.executable, "worker.py", "periodic", "--nice", "0"],
                   **output("periodic"))
        # Plugin events are processed within seconds even while an import runs.
        self.spawn([sys.executable, "worker.py", "plugins"], **output("plugins"))
        self.spawn([*FLASK, "scheduler", "run"], **output("scheduler"))
        self.spawn([str(VENV_BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py",
                    "-b", f"{self.host}:{self.port}", "wsgi:app"], **output("web"))

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(self.url + "login", self.procs, timeout)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        """SIGTERM every child's process group, then SIGKILL what is left after 10 s."""
        for proc in reversed(self.procs):
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)  # stragglers in the group (a work horse)
            if proc.poll() is None:
                proc.wait()
        self.procs.clear()
        stop(self.redis)
        self.redis = None
        for handle in self._logs:
            handle.close()
        self._logs.clear()


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def wait_for(url: str, procs: list[subprocess.Popen], timeout: float = 60) -> None:
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


def main() -> int:
    # SIGINT too: a shell starting us in the background hands SIGINT down ignored.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    env = dict(os.environ)
    env.setdefault("TRIBUTARY_ENV", "development")
    stack = Stack(env, "127.0.0.1", int(os.environ.get("TRIBUTARY_PORT", "5000")))
    try:
        stack.start_redis(ROOT / "instance" / "redis")
        stack.flask("db", "upgrade")
        stack.flask("users", "ensure-admin")
        started = time.monotonic()
        stack.start_services()
        stack.wait_ready()
        print(f"\nTributary is running at {stack.url}  "
              f"(ready in {time.monotonic() - started:.1f} s)")
        print("Sign in with the first login printed above (run `flask users create` for more).")
        print("Press Ctrl+C to stop.\n", flush=True)
        while stack.alive():
            time.sleep(0.5)
        print("A process stopped; shutting down.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
