"""Workers yield the CPU to the web app: the worker and its work horses run at nice
WORKER_NICE, and a worker that leads its own session (as under systemd) gives that session the
same weight, since Linux shares the CPU between sessions (autogroups) before nice values count."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest

from simulators.dataset import generate
from tests.imports import workers
from tests.imports.test_workers import make_integration_import, run_row, wait_for
from tests.providers.cases import load_case
from webapp.imports.runs import start_run

from .conftest import ROOT

AUTOGROUP = "/proc/self/autogroup"
REPORT = ("import os, worker; worker.lower_cpu_priority({nice}); "
          "print(os.getpriority(os.PRIO_PROCESS, 0)); print(open('/proc/self/autogroup').read())")


def _autogroup(path: str = AUTOGROUP) -> str:
    """A process's autogroup as the kernel names it ('/autogroup-123 nice 7'); empty for a
    process in the root autogroup (one whose session goes back to boot, as in some CI
    containers), which has no nice value of its own."""
    with open(path) as f:
        return f.read().strip()


def _autogroup_nice(path: str = AUTOGROUP) -> int:
    return int(_autogroup(path).split()[-1])


def _lowered(nice: int, **popen) -> tuple[int, str]:
    out = subprocess.run([sys.executable, "-c", REPORT.format(nice=nice)], cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=30, **popen).stdout
    priority, autogroup = out.split("\n", 1)
    return int(priority), autogroup.strip()


def test_a_session_leader_lowers_its_nice_value_and_its_session_weight():
    priority, autogroup = _lowered(7, start_new_session=True)
    assert (priority, autogroup.split()[-1]) == (7, "7")


def test_a_process_sharing_a_session_lowers_only_its_own_nice_value():
    before = _autogroup()
    priority, autogroup = _lowered(7)
    assert priority == 7
    assert autogroup == before == _autogroup()  # the session (pytest's) is left alone


def test_a_priority_lowered_further_already_is_kept():
    code = ("import os, worker; os.nice(15); worker.lower_cpu_priority(7); "
            "print(os.getpriority(os.PRIO_PROCESS, 0))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, timeout=30).stdout
    assert int(out) == 15


@pytest.mark.redis
def test_the_work_horse_of_an_import_runs_at_the_worker_priority(app, app_config,
                                                                 database_url, redis_url):
    people = generate(3000, seed=5)
    case = load_case("shopify")(people)
    running, _sim, config = workers.start_simulator("shopify", people, delay=0.3)
    env = workers.worker_env(database_url, redis_url, app_config, TRIBUTARY_WORKER_NICE="6")
    worker = workers.start_worker(env)
    try:
        imp = make_integration_import("shopify", config, case.group, case.source)
        run_id = start_run(imp.id).id
        wait_for(lambda: run_row(run_id).pages >= 1, 60, "the worker never got going")
        horses = psutil.Process(worker.pid).children()
        assert horses, "no work horse while the import runs"
        horse = horses[0]
        assert psutil.Process(worker.pid).nice() == 6
        assert horse.nice() == 6
        assert os.getsid(horse.pid) == worker.pid  # the worker leads the horse's session
        assert _autogroup_nice(f"/proc/{horse.pid}/autogroup") == 6
    finally:
        workers.stop_worker(worker)
        running.stop()
