"""
The chaos run (``python -m bench.chaos``, issue 22 item 18) with small numbers: 200 learners awarded over 30 s through
a real prefork Celery worker on a private Redis, on MariaDB; POK answers in 100 ms and 500 to 5 % of the POSTs after
creating the credential; meanwhile the worker is killed with SIGKILL and restarted, Redis is restarted, POK answers
503 to everything for 12 s, and the worker's database connections are killed. Every learner ends emitted except the
rows whose POST was ambiguous twice (handed to staff); a second POK credential only where the row is flagged possible
duplicate, never more of them than ambiguous POSTs; nothing for staff because of the outage, the kills or restarts.

Time is compressed to fit the suite (the full run, ``make bench-chaos``, uses the plugin's own values): the reconcile
run every 5 s, a row left ``requesting`` abandoned after 20 s and a lost pending task sent again after 10 s
(``openedx_pok.issuance.reconcile``'s 10 and 2 minutes), and in the operator's YAML ``POK_CERTIFICATE_WAIT_DELAY``
2 s and ``POK_RETRY_BACKOFF_BASE`` 5 s (15 and 30). Only counts are asserted, never times.

The run is a subprocess (its own settings: a MariaDB scratch database, the private Redis as broker and cache) that
starts the worker and the private ``redis-server`` itself. Needs MariaDB on 127.0.0.1:3306 (``POK_TEST_MYSQL_*``)
and Debian's ``redis-server``: without either the run exits with an error and the test fails, it does not skip.
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
LEARNERS, OUTAGE_SECONDS, CONCURRENCY = 200, 12, 4
COMPRESSED = ["--award-seconds", "30", "--reconcile-every", "5", "--stale-requesting", "20", "--pending-grace", "10",
              "--certificate-wait-delay", "2", "--backoff-base", "5"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("bench-chaos")
    completed = subprocess.run(
        [sys.executable, "-m", "bench.chaos", "--learners", str(LEARNERS), "--outage", str(OUTAGE_SECONDS),
         "--concurrency", str(CONCURRENCY), *COMPRESSED],
        cwd=REPO_DIR, env={**os.environ, "POK_BENCH_DIR": str(out_dir)}, capture_output=True, text=True,
        timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads((out_dir / "chaos.json").read_text(encoding="utf-8"))["result"], completed.stdout


def test_every_learner_is_emitted_except_the_rows_ambiguous_twice(results):
    result, stdout = results
    assert result["learners"] == LEARNERS
    assert result["emitted"] + result["staff_ambiguous_twice"] == LEARNERS, result["statuses"]
    assert set(result["statuses"]) <= {"emitted", "failed"}
    assert result["failed"] == result["needing_staff"] == result["staff_ambiguous_twice"]
    assert result["emitted_without_pok_credential"] == result["emitted_with_another_learners_id"] == 0
    assert "needing staff" in stdout and "ambiguous twice" in stdout


def test_nothing_reaches_staff_because_of_the_outage_the_kills_or_the_restarts(results):
    result, _stdout = results
    assert (result["staff_for_other_reasons"], result["held"]) == (0, 0), result["staff_reasons"]
    for reason in result["staff_reasons"]:
        assert "Check POK for this learner's credential" in reason
    assert result["events"]["outage"]["needing_staff_at_end"] == 0


def test_a_second_credential_only_where_flagged_and_never_more_than_the_ambiguous_posts(results):
    result, _stdout = results
    assert result["pok_500_after_create"] >= 1  # the fault campaign ran
    assert result["duplicates_not_flagged"] == 0
    assert result["duplicates"] <= result["ambiguous_posts"]
    assert result["duplicates"] <= result["ambiguous_attempts"] <= result["ambiguous_posts"]
    assert result["possible_duplicate_flags"] <= result["ambiguous_attempts"]
    assert all(result["goals"].values()), result["goals"]


def test_the_chaos_happened(results):
    result, _stdout = results
    events = result["events"]
    assert events["worker_sigkill"]["processes_killed"] >= 2  # the main process and its pool
    assert events["redis_restart"]["down_s"] > 0
    assert events["database_kill"]["connections_killed"] >= 1
    down = events["outage"]
    assert down["health_checks"] >= 1
    # Five requests in a row POK did not take pause the account; at most one more per worker process was on its way.
    assert down["posts"] + down["template_gets"] <= outage.PAUSE_AFTER_FAILURES + CONCURRENCY
