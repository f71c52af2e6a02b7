"""
The worker benchmark (``python -m bench.worker``, a step of ``make bench``) runs end to end with tiny numbers, and
what it must never show holds: every backfilled learner gets exactly one credential through the real Celery worker
(one POST each, no duplicate), the award path publishes one task per award to the run's own Redis queue, and the
backfill command's peak memory is read.

Only counts are asserted, never times. The benchmark runs as a subprocess (it configures Django with its own
settings: MariaDB scratch database, Redis broker) and starts the worker itself. Needs MariaDB on 127.0.0.1:3306
(``POK_TEST_MYSQL_*``) and Redis (``POK_BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/14``): without either
the benchmark exits with an error and the test fails.
"""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openedx_pok.tasks import BACKFILL_CHUNK_SIZE

pytestmark = [pytest.mark.mysql, pytest.mark.redis]

REPO_DIR = Path(__file__).resolve().parent.parent
LEARNERS = 20
LOAD_ROWS = 300  # the second size: the parts run again beside credentials of other learners


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("bench-worker")
    completed = subprocess.run(
        [sys.executable, "-m", "bench.worker", "--quick", "--learners", str(LEARNERS), "--concurrency", "2",
         "--rss-sizes", "20", "50", "--awards", "5", "--load-rows", "0", str(LOAD_ROWS)],
        cwd=REPO_DIR, env={**os.environ, "POK_BENCH_DIR": str(out_dir)}, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads((out_dir / "worker.json").read_text(encoding="utf-8")), completed.stdout


def test_each_load_size_is_measured_beside_that_many_other_credentials(results):
    data, stdout = results
    assert list(data["sizes"]) == ["0", str(LOAD_ROWS)]
    assert data["sizes"]["0"]["build"] is None
    sizes = data["sizes"]
    assert sizes[str(LOAD_ROWS)]["credentials_in_table"] >= LOAD_ROWS + sizes["0"]["credentials_in_table"]
    assert f"=== {LOAD_ROWS} other credentials in the table ===" in stdout


@pytest.mark.parametrize("rows", ["0", str(LOAD_ROWS)])
def test_every_backfilled_learner_gets_exactly_one_credential(results, rows):
    data, _stdout = results
    (run,) = data["sizes"][rows]["backfill"]["2"]["runs"]
    assert run["requested"] == LEARNERS
    assert run["emitted"] == LEARNERS, run["statuses"]
    assert run["posts"] == LEARNERS  # one POST per credential
    assert run["duplicates"] == 0
    assert run["learners_without_credential"] == 0
    assert data["sizes"][rows]["backfill"]["2"]["pool"] == "prefork"
    # The floor ran on the same worker: one POST per learner.
    (floor,) = data["sizes"][rows]["backfill"]["2"]["floor_runs"]
    assert floor["posts"] == LEARNERS and floor["worker_cpu_ms_per_credential"] > 0


@pytest.mark.parametrize("rows", ["0", str(LOAD_ROWS)])
def test_the_award_path_publishes_one_task_per_award_to_redis(results, rows):
    data, _stdout = results
    award = data["sizes"][rows]["award"]
    assert award["broker"].startswith("redis://")
    assert award["published_to"] == [data["meta"]["queue"]]
    assert award["tasks_published_per_award"] == 1.0
    assert award["tasks_purged"] >= 5  # no worker ran: every published task was still on the queue


def test_the_backfill_command_memory_is_read_and_the_queues_are_left_empty(results):
    data, stdout = results
    rss = data["backfill_rss"]
    assert set(rss["sizes"]) == {"20", "50"}
    assert all(value["peak_rss_mib"] > 0 for value in rss["sizes"].values())
    # Messages: the backfill hands the workers BACKFILL_CHUNK_SIZE credentials per message; the dry run (the
    # floor) publishes nothing.
    assert rss["tasks_purged"] == math.ceil(20 / BACKFILL_CHUNK_SIZE) + math.ceil(50 / BACKFILL_CHUNK_SIZE) + 0
    assert "Peak RSS of pok_backfill" in stdout
