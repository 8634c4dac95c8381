"""`make bench`: every benchmark in turn, each printing its figures.

    .venv/bin/python bench/run.py [pages] [providers] [imports] [fresh-run]

With no names, runs pages, providers and imports (fresh-run clones and installs from
scratch: run it by name).
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT = ("pages", "providers", "imports")
MODULES = {"pages": "bench.pages", "providers": "bench.providers",
           "imports": "bench.imports", "fresh-run": "bench.fresh_run"}


def main(names: list[str]) -> int:
    for name in names or DEFAULT:
        print(f"\n=== bench: {name} ===", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(MODULES[name])
        module.main([])  # each prints its own figures
        print(f"=== {name} done in {time.perf_counter() - started:.1f} s ===", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
