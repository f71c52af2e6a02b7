"""
The outage benchmark (``python -m bench.outage``, issue 22) with small numbers: 50 awards while POK answers 503 to
everything for 20 s, through a real prefork Celery worker on Redis, on MariaDB. After POK is back every credential is
emitted, none failed or waits for staff, none is duplicated or flagged as a possible duplicate, and the POSTs that
reached POK during the outage are a handful: the account paused after five requests POK did not take.

Only counts are asserted, never times. The benchmark runs as a subprocess (its own settings: a MariaDB scratch
database, Redis as broker and cache) and starts the worker itself. Needs MariaDB on 127.0.0.1:3306
(``POK_TEST_MYSQL_*``) and Redis (``POK_BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/14``): without either the
benchmark exits with an error and the test fails, it does not skip.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openedx_pok.issuance import outage

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.slow]

REPO_DIR = Path(__file__).resolve().parent.parent
AWARDS, OUTAGE_SECONDS, CONCURRENCY = 50, 20, 4


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("bench-outage")
    completed = subprocess.run(
        [sys.executable, "-m", "bench.outage", "--count", str(AWARDS), "--outage", str(OUTAGE_SECONDS),
         "--reconcile-every", "10", "--concurrency", str(CONCURRENCY)],
        cwd=REPO_DIR, env={**os.environ, "POK_BENCH_DIR": str(out_dir)}, capture_output=True, text=True,
        timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads((out_dir / "outage.json").read_text(encoding="utf-8"))["result"], completed.stdout


def test_every_credential_awarded_during_an_outage_is_emitted_once_after_it(results):
    result, stdout = results
    assert result["emitted"] == AWARDS, result["statuses"]
    assert (result["failed"], result["held"], result["learners_without_credential"]) == (0, 0, 0)
    assert (result["duplicates"], result["possible_duplicate_flags"], result["ambiguous_attempts"]) == (0, 0, 0)
    assert "POSTs during the outage" in stdout


def test_the_outage_pauses_the_account_and_hands_nothing_to_staff(results):
    result, _stdout = results
    at_end = result["at_end_of_outage"]
    assert at_end["paused_accounts"] == ["default"] and at_end["needing_staff"] == 0
    assert at_end["statuses"].get("failed", 0) == 0
    # Five requests in a row POK did not take pause the account; at most one more per worker process was on its way.
    assert outage.PAUSE_AFTER_FAILURES <= result["posts_during_outage"] <= outage.PAUSE_AFTER_FAILURES + CONCURRENCY
    assert result["health_checks_during_outage"] >= 1
    assert result["max_tries"] <= outage.PAUSE_AFTER_FAILURES  # waiting for the pause spent no try
    assert result["posts_total"] == result["posts_during_outage"] + AWARDS  # after it: one POST per credential
