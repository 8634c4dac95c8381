"""`make bench`: every benchmark in turn, each printing its figures.

    .venv/bin/python bench/run.py [NAME [--option ...]] ...
    make bench BENCH_ARGS="imports --sizes 100000 --db pg parallel"

Names: the keys of MODULES below; options after a name go to that benchmark. With no
names, runs the DEFAULT ones (the others load the machine for minutes or need their own
processes: run them by name). imports, parallel and undo measure PostgreSQL when
TRIBUTARY_BENCH_DATABASE_URL is set (and say how to start it when not).
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT = ("pages", "providers", "imports", "parallel", "load", "undo")
MODULES = {"pages": "bench.pages", "providers": "bench.providers",
           "imports": "bench.imports", "parallel": "bench.parallel", "load": "bench.load",
           "undo": "bench.undo", "fresh-run": "bench.fresh_run",
           "plugins-ack": "bench.plugins_ack", "plugins-process": "bench.plugins_process",
           "plugins-memory": "bench.plugins_memory",
           "commerce": "bench.commerce", "segments": "bench.segments"}


def _plan(argv: list[str]) -> list[tuple[str, list[str]]]:
    """[(benchmark, its options)] from `name --opt value name2 …`."""
    plan: list[tuple[str, list[str]]] = []
    for arg in argv:
        if arg in MODULES:
            plan.append((arg, []))
        elif plan:
            plan[-1][1].append(arg)
        else:
            raise SystemExit(f"unknown benchmark {arg!r}; choose from {', '.join(MODULES)}")
    return plan or [(name, []) for name in DEFAULT]


def main(argv: list[str]) -> int:
    for name, options in _plan(argv):
        print(f"\n=== bench: {name} ===", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(MODULES[name])
        module.main(options)  # each prints its own figures
        print(f"=== {name} done in {time.perf_counter() - started:.1f} s ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
