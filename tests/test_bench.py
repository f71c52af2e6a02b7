"""
The benchmark (``make bench``) runs end to end and its counts hold: one POST per credential, no POK call on the LMS's
certificate paths.

Only counts are asserted, never times: times depend on the machine, counts are the plugin's promises (see
docs/benchmarks.rst). The benchmark runs as a subprocess because it configures Django with its own settings
(non-eager Celery on an in-memory broker), which cannot be mixed with the test settings of this process.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_DIR = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench_results(tmp_path_factory):
    """Run ``python -m bench.run --quick`` once for this module, writing into a temporary directory."""
    out_dir = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "POK_BENCH_DIR": str(out_dir)}
    completed = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"], cwd=REPO_DIR, env=env, capture_output=True, text=True,
        timeout=300, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return json.loads((out_dir / "results.json").read_text(encoding="utf-8")), completed.stdout


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
