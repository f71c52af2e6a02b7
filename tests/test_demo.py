"""
``make demo`` end to end: ``python -m demo.run --no-serve`` in a subprocess, as a developer runs it.

The demo checks each claim it prints and exits non-zero when one does not hold, so these tests guard the whole
story a newcomer sees (certificate -> filter -> task -> POK credential -> redirect) against regressions anywhere in
the plugin or the sandbox LMS. Each run uses its own database directory (POK_DEMO_DIR) so a developer's demo
database is never touched, and the built-in POK simulator (POK_API_URL removed from the environment).
"""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
VIEW_URL_LINE = re.compile(r"^Credential view URL: (http://127\.0\.0\.1:\d+/view/[0-9a-f-]{36})$", re.M)


def run_demo(tmp_path, *args):
    env = {key: value for key, value in os.environ.items()
           if key not in ("POK_API_URL", "POK_API_KEY", "POK_DEMO_TEMPLATE_ID", "DJANGO_SETTINGS_MODULE")}
    env["POK_DEMO_DIR"] = str(tmp_path)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "demo.run", "--no-serve", *args],
        cwd=REPO_DIR, env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stderr, result.stderr
    assert elapsed < 20, f"the demo took {elapsed:.1f} s"
    assert (tmp_path / "db.sqlite3").exists()
    return result.stdout


def view_url_of(output):
    """The credential view URL, from the line the demo promises to print last."""
    matches = VIEW_URL_LINE.findall(output)
    assert len(matches) == 1, output
    return matches[0]


def test_demo_issues_a_credential_and_redirects_the_certificate_page(tmp_path):
    output = run_demo(tmp_path)
    view_url = view_url_of(output)
    assert output.rstrip().splitlines()[-1] == f"Credential view URL: {view_url}"
    assert f"HTTP: 302 Location: {view_url}" in output
    assert "POST /credential x1 " in output
    assert "custom parameters sent: {'grade': '92%', 'platform': 'Demo Academy'}" in output
    assert "plugin row: held: " in output
    assert "CERTIFICATE_REVOKED -> plugin row: revoked: " in output


def test_demo_with_asynchronous_emission_polls_with_pok_sync(tmp_path):
    output = run_demo(tmp_path, "--async-polls", "2")
    view_url = view_url_of(output)
    assert "pok_sync run 1: " in output and "-> in_progress (POK state processing)" in output
    assert "pok_sync run 2: " in output and "-> emitted (POK state emitted)" in output
    assert "pok_sync run 3: " not in output
    assert f"HTTP: 302 Location: {view_url}" in output
