"""Provider benchmark: records/s walking each simulator on loopback, and the sampler's peak
memory at 10,000 and 100,000 records (it streams, so memory must stay flat).

    .venv/bin/python bench/providers.py [--records 20000] [--sampler-records 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cryptography.fernet import Fernet  # noqa: E402

from bench.common import PeakRSS, Simulator  # noqa: E402
from webapp.providers import PROVIDER_NAMES, get_provider_class  # noqa: E402


def walk_rate(name: str, records: int) -> dict:
    sim = Simulator(name, records)
    try:
        cls = get_provider_class(name)
        client = cls(sim.config["settings"], sim.config["credentials"], allow_loopback=True)
        group = client.groups()[0].id
        source = client.sources(group)[0].id
        started = time.perf_counter()
        count = pages = 0
        for page in client.iter_pages(group, source):
            pages += 1
            count += len(page.records)
        elapsed = time.perf_counter() - started
    finally:
        sim.stop()
    return {"provider": name, "records": count, "pages": pages, "seconds": round(elapsed, 2),
            "records_per_s": round(count / elapsed)}


def sampler_peak_mb(name: str, records: int) -> dict:
    """Run `flask providers sample NAME --all` in a child process; its peak RSS in MB."""
    sim = Simulator(name, records)
    try:
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as cfg:
            json.dump(sim.config, cfg)
        env = {**os.environ, "TRIBUTARY_ALLOW_LOOPBACK_PROVIDERS": "1",
               "TRIBUTARY_ENV": "test", "TRIBUTARY_SECRET_KEY": "bench",
               "TRIBUTARY_DATABASE_URL": "sqlite://",
               "TRIBUTARY_ENCRYPTION_KEY": Fernet.generate_key().decode()}
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "webapp", "providers", "sample", name,
             "--config", cfg.name, "--all"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        # Polled RSS: a child's ru_maxrss starts from its parent's size at fork.
        with PeakRSS(proc.pid) as memory:
            _, stderr = proc.communicate()
        elapsed = time.perf_counter() - started
        summary = stderr.strip().splitlines()
        os.unlink(cfg.name)
    finally:
        sim.stop()
    if proc.returncode != 0:
        raise RuntimeError(f"sampler failed: {summary}")
    return {"provider": name, "records": records, "peak_mb": round(memory.peak_worker, 1),
            "seconds": round(elapsed, 1), "summary": summary[-1] if summary else ""}


def run(records: int = 20000, sampler_records: int = 100000) -> dict:
    walks = [walk_rate(name, records) for name in PROVIDER_NAMES]
    for w in walks:
        print(f"walk {w['provider']:<11} {w['records']:>7,} records in {w['pages']:>4} pages, "
              f"{w['seconds']:>6.2f} s  -> {w['records_per_s']:>7,} records/s", flush=True)
    memory = []
    for name in PROVIDER_NAMES:
        small = sampler_peak_mb(name, sampler_records // 10)
        large = sampler_peak_mb(name, sampler_records)
        memory.append({"provider": name, "small": small, "large": large})
        print(f"sampler {name:<11} peak RSS {small['peak_mb']:>6.1f} MB at "
              f"{small['records']:,} records, {large['peak_mb']:>6.1f} MB at "
              f"{large['records']:,} ({large['peak_mb'] - small['peak_mb']:+.1f} MB)", flush=True)
    return {"walks": walks, "sampler_memory": memory}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--sampler-records", type=int, default=100000)
    args = parser.parse_args(argv)
    run(args.records, args.sampler_records)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
