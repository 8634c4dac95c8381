"""RQ worker entry point (systemd runs it): `python worker.py [--burst] [QUEUE ...]`.

The worker pushes one app context for its lifetime; each forked work horse drops the
pooled database connections it inherited before running a job.
"""

from __future__ import annotations

import argparse
import sys

from rq import Worker

from webapp import create_app
from webapp.background import queue_names, redis_connection
from webapp.extensions import db


class AppWorker(Worker):
    """An RQ worker whose work horses start with fresh database connections."""

    def main_work_horse(self, job, queue):
        db.engine.dispose(close=False)
        return super().main_work_horse(job, queue)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="worker.py", description=__doc__)
    parser.add_argument("queues", nargs="*", help="queues to listen on (default: all)")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", help="worker name (default: host and pid)")
    args = parser.parse_args(argv)
    app = create_app({"LOAD_MIGRATIONS": False})
    with app.app_context():
        worker = AppWorker(
            args.queues or queue_names(), connection=redis_connection(), name=args.name
        )
        worker.work(burst=args.burst, with_scheduler=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
