"""RQ worker entry point (systemd runs it): `python worker.py [QUEUE ...]`.

The worker pushes one app context for its lifetime; each forked work horse drops the
pooled database connections it inherited before running a job.
"""

from __future__ import annotations

import sys

from rq import Worker

from webapp import create_app
from webapp.background import queue_names, redis_connection
from webapp.extensions import db


class AppWorker(Worker):
    def main_work_horse(self, job, queue):
        db.engine.dispose(close=False)
        return super().main_work_horse(job, queue)


def main(argv: list[str]) -> None:
    app = create_app()
    with app.app_context():
        names = argv or queue_names()
        worker = AppWorker(names, connection=redis_connection())
        worker.work(with_scheduler=False)


if __name__ == "__main__":
    main(sys.argv[1:])
