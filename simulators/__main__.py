"""Run one simulator alone: `python -m simulators PROVIDER --records N --port P`.

Prints the base URL and a provider config (settings + credentials) that connects to it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from .dataset import generate
from .server import serve

NAMES = ("shopify", "zoho", "magento", "salesforce")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulators", description=__doc__)
    parser.add_argument("provider", choices=NAMES)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)

    module = importlib.import_module(f"simulators.{args.provider}")
    app = module.create_app(generate(args.records, seed=args.seed))
    running = serve(app, args.host, args.port)
    config = module.demo_config(app, running.url)
    print(f"{args.provider} simulator with {args.records} people on {running.url}", flush=True)
    print(json.dumps(config), flush=True)
    try:
        running._thread.join()
    except KeyboardInterrupt:
        running.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
