"""
``make demo`` end to end: ``python -m demo.run --no-serve`` in a subprocess, as a developer runs it.

The demo checks each claim it prints and exits non-zero when one does not hold, so these tests guard the whole
story a newcomer sees (certificate -> filter -> task -> POK credential -> redirect) against regressions anywhere in
the plugin or the sandbox LMS. Each run uses its own database directory (POK_DEMO_DIR) so a developer's demo
database is never touched, and the built-in POK simulator (POK_API_URL removed from the environment).
"""
import os
import re
import select
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

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


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _read_until(process, marker, deadline):
    """The demo's output up to and including the first line containing ``marker``."""
    lines = []
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            assert line, "the demo stopped:\n" + "".join(lines) + process.stderr.read()
            lines.append(line)
            if marker in line:
                return "".join(lines)
    raise AssertionError("the demo did not print " + repr(marker) + ":\n" + "".join(lines))


def test_the_served_demo_logs_in_as_its_learners_and_its_pok_is_reachable_from_another_shell(tmp_path):
    port = _free_port()
    env = {key: value for key, value in os.environ.items()
           if key not in ("POK_API_URL", "POK_API_KEY", "POK_DEMO_TEMPLATE_ID", "DJANGO_SETTINGS_MODULE")}
    env["POK_DEMO_DIR"] = str(tmp_path)
    process = subprocess.Popen([sys.executable, "-m", "demo.run", "--port", str(port)], cwd=REPO_DIR, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        output = _read_until(process, "From another shell", time.monotonic() + 120)  # a loaded CI machine
        output += process.stdout.readline()
        view_url = view_url_of(output)
        command = shlex.split(output.rstrip().splitlines()[-1])
        assignments = dict(word.split("=", 1) for word in command if re.match(r"^[A-Z_]+=", word))
        program = [word for word in command if not re.match(r"^[A-Z_]+=", word)]
        assert program[-2:] == ["django", "pok_sync"] and assignments["POK_DEMO_DIR"] == str(tmp_path)
        # A second shell: another process, with only what the demo printed, reaches the same database and POK.
        shell = {**env, **assignments}
        check = subprocess.run([*program[:-1], "pok_check", "--online"], cwd=REPO_DIR, env=shell,
                               capture_output=True, text=True, timeout=60, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "Simulated Org" in check.stdout, check.stdout

        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # runserver binds its port just after the demo prints its links
            try:
                requests.get(f"{base}/admin/login/", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        ada = requests.Session()
        answer = ada.get(f"{base}/demo/login-as/ada/", allow_redirects=False, timeout=10)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/certificates/course/")
        answer = ada.get(base + answer.headers["Location"], allow_redirects=False, timeout=10)
        assert (answer.status_code, answer.headers.get("Location")) == (302, view_url)  # her own page: her credential
        noname = requests.Session()
        answer = noname.get(f"{base}/demo/login-as/noname/", timeout=10)
        assert answer.status_code == 200 and "being prepared" in answer.text  # held: the notice, no redirect
        assert requests.get(f"{base}/demo/login-as/admin/", allow_redirects=False, timeout=10).status_code == 404
    finally:
        process.terminate()
        process.wait(timeout=30)
