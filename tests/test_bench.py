"""
The benchmark (``make bench``) runs end to end and its counts hold: one POST per credential, no POK call on the LMS's
certificate paths; on MariaDB (``bench.mysql``), a credential admin list of a few statements that never joins the users
table and whose searches read a handful of rows.

Only counts are asserted, never times: times depend on the machine, counts are the plugin's promises (see
docs/benchmarks.rst). The benchmark runs as a subprocess because it configures Django with its own settings
(non-eager Celery on an in-memory broker), which cannot be mixed with the test settings of this process.
"""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from openedx_pok import tasks
from openedx_pok.issuance.states import CredentialStatus

REPO_DIR = Path(__file__).resolve().parent.parent


def run_bench(out_dir, module, *args):
    """Run ``python -m <module> --quick`` writing into ``out_dir``; returns its stdout."""
    env = {**os.environ, "POK_BENCH_DIR": str(out_dir)}
    completed = subprocess.run(
        [sys.executable, "-m", module, "--quick", *args], cwd=REPO_DIR, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


@pytest.fixture(scope="module")
def bench_results(tmp_path_factory):
    """Run the SQLite parts (``python -m bench.run --quick --no-mariadb``) once for this module."""
    out_dir = tmp_path_factory.mktemp("bench")
    stdout = run_bench(out_dir, "bench.run", "--no-mariadb")
    return json.loads((out_dir / "results.json").read_text(encoding="utf-8")), stdout


def test_bench_prints_the_tables(bench_results):
    _results, stdout = bench_results
    for heading in ("Part 1a.", "Part 1b.", "Part 2.", "plugin removed (baseline)", "POSTs per credential"):
        assert heading in stdout


def test_one_post_per_credential(bench_results):
    issuance = bench_results[0]["issuance_requests"]
    fast = issuance["pok_0ms"]
    assert fast["emitted"] == fast["credentials"], fast["statuses"]
    assert fast["posts_per_credential"] == 1.0
    assert fast["template_gets"] == 1  # the template definition is cached: one GET for the whole run
    assert issuance["all"]["posts_per_credential"] == 1.0
    assert issuance["all"]["emitted"] == issuance["all"]["credentials"]


def test_no_pok_call_on_the_lms_paths(bench_results):
    results = bench_results[0]
    assert results["issuance_time"]["pok_requests_during_generation"] == 0
    views = results["page_views"]["configurations"]
    assert views["emitted"]["pok_requests_per_view"] == 0
    assert all(view["pok_requests_per_view"] == 0 for view in views.values())
    assert results["page_views"]["status_endpoint"]["pok_requests_per_call"] == 0


def test_emitted_view_costs_one_plugin_query(bench_results):
    """Architecture principle 4: rendering an emitted credential costs one indexed query."""
    assert bench_results[0]["page_views"]["configurations"]["emitted"]["plugin_queries_per_view"] == 1


# ---- MariaDB: python -m bench.mysql --quick (1,000 and 5,000 credentials over 2,000 learners) ----------------------
# Searches that look learners or courses up first cost statements more: an email one (its index); a plain word three
# (usernames, the profiles' names, the course numbers of the credentials' course index).
# A plain word: usernames, names, course numbers, and (when one of them found something) whether it is a POK id.
LEARNER_LOOKUPS = {"search_email": 1, "search_username": 4, "search_username_prefix": 4, "search_surname": 4,
                   "search_course_number": 4, "search_nothing": 3}
# Searches that name one learner, one credential or nothing: a handful of index reads, whatever the size.
POINT_SEARCHES = {"search_user_id", "search_email", "search_pok_id", "search_reference", "search_verify_uuid"}
# A plain word also reads every learner's name (no index serves a part of a name) and one entry per course.
NAME_SEARCHES = {"search_username", "search_surname", "search_nothing"}


@pytest.fixture(scope="module")
def mariadb_results(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("bench-mariadb")
    stdout = run_bench(out_dir, "bench.mysql")
    return json.loads((out_dir / "mariadb.json").read_text(encoding="utf-8")), stdout


@pytest.mark.mysql
def test_mariadb_part_runs_on_mysqlclient(mariadb_results):
    results, stdout = mariadb_results
    assert results["meta"]["server"]["driver"].startswith("mysqlclient")
    assert set(results["connect"]) == {"mysqlclient", "pymysql"}
    assert list(results["sizes"]) == ["1000", "5000"]
    assert "credential admin list page" in stdout and "MariaDB, 5,000 credentials: Part 2." in stdout


FILTER_CHOICES = 2


@pytest.mark.mysql
def test_admin_list_statements_are_few_and_constant(mariadb_results):
    for size, parts in mariadb_results[0]["sizes"].items():
        pages = dict(parts["admin_pages"])
        counts = pages.pop("status_counts")["plugin"]
        # One bounded walk of the status index per status (COUNT of a LIMITed subquery), never the whole index.
        assert counts["queries"] == len(CredentialStatus.values) and counts["result_count"] > 0, size
        assert all(re.search(r"LIMIT \d+\) subquery", statement["sql"]) for statement in counts["sql"]), size
        for key, case in pages.items():
            now = case["plugin"]
            if case["expect"] is not None:
                assert now["result_count"] == case["expect"], (size, key)
            # One page (count, rows, learners), or several (count, page ids, rows, learners); + learner lookup;
            # + the choices of two filters (POK states, mapped courses and organizations).
            expected = (3 if now["result_count"] <= 100 else 4) + LEARNER_LOOKUPS.get(key, 0) + FILTER_CHOICES
            if now["result_count"] == 0:
                expected = 2 + LEARNER_LOOKUPS.get(key, 0) + FILTER_CHOICES  # count and (empty) rows: no learners
            assert now["queries"] == expected, (size, key, [statement["sql"] for statement in now["sql"]])


@pytest.mark.mysql
def test_admin_list_never_joins_the_users_table(mariadb_results):
    for parts in mariadb_results[0]["sizes"].values():
        pages = parts["admin_pages"]
        assert not [key for key, case in pages.items() if case["plugin"]["joins_auth_user"]]
        assert pages["default"]["baseline"]["joins_auth_user"]  # the check sees the former admin's join


@pytest.mark.mysql
def test_admin_searches_use_an_index(mariadb_results):
    """Rows the server read for one request: a handful for a point search, the whole join before."""
    for size, parts in mariadb_results[0]["sizes"].items():
        pages = parts["admin_pages"]
        for key in POINT_SEARCHES:
            assert pages[key]["plugin"]["rows_read"] <= 50, (size, key, pages[key]["plugin"]["sql"])
            assert pages[key]["baseline"]["rows_read"] >= int(size), (size, key)
        learners = mariadb_results[0]["meta"]["users"]
        for key in NAME_SEARCHES:  # the names of the learners (and a few LMS-path ones), never the credentials
            assert pages[key]["plugin"]["rows_read"] <= learners + 1000, (size, key, pages[key]["plugin"]["sql"])
        # The filters of issue 10 walk their index: the matching entries, the page, the filter choices; never the table.
        for key in ("pok_state", "course", "account", "emitted_last_month"):
            plugin = pages[key]["plugin"]
            assert plugin["rows_read"] <= 2 * plugin["result_count"] + 500, (size, key, plugin["sql"])
        # A course's credentials: read through the course index, not the table (per result: the bounded count's
        # index entry and its subquery row, the page's id, the row, its learner).
        course = pages["search_course"]["plugin"]
        assert course["rows_read"] <= 5 * course["result_count"] + 10, (size, course["sql"])


@pytest.mark.mysql
def test_lms_paths_on_mariadb_keep_their_counts(mariadb_results):
    for parts in mariadb_results[0]["sizes"].values():
        lms = parts["lms_paths"]
        assert lms["issuance_time"]["pok_requests_during_generation"] == 0
        assert lms["issuance_requests"]["pok_0ms"]["posts_per_credential"] == 1.0
        assert lms["issuance_requests"]["all"]["emitted"] == lms["issuance_requests"]["all"]["credentials"]
        assert lms["page_views"]["configurations"]["emitted"]["plugin_queries_per_view"] == 1


@pytest.mark.mysql
def test_reconcile_run_is_set_based_chunked_and_the_same_at_every_size(mariadb_results):
    """Issue 12.5: a few statements per run whatever the rows, messages in chunks, no sort of every unfinished row."""
    results, stdout = mariadb_results
    runs = {size: parts["reconcile"] for size, parts in results["sizes"].items()}
    assert "one reconcile run" in stdout
    for size, run in runs.items():
        counts = run["counts"]
        assert counts["abandoned"] == run["abandoned_made"] > 0, size
        assert counts["issued"] > 0 and counts["refreshed"] > 0, size
        # Two UPDATEs for the abandoned rows (resent, given up) and one for the due retryable failures, each with
        # its history INSERT: not one or two per row.
        assert run["updates"] == 3, (size, [statement["sql"] for statement in run["sql"]])
        chunk = tasks.RECONCILE_CHUNK_SIZE
        assert run["messages"] == -(-counts["issued"] // chunk) + -(-counts["refreshed"] // chunk), size
        assert run["rows_published"] == counts["issued"] + counts["refreshed"], size
        assert run["messages"] < run["rows_published"], size  # several rows per message, never one each
        assert run["filesorts"] == 0, (size, [statement["explain"] for statement in run["sql"]])
    statements = {size: run["statements"] for size, run in runs.items()}
    assert len(set(statements.values())) == 1, statements
