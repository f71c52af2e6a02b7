"""
The wheel an LMS installs: the plugin with its templates, catalogs and migrations, and none of the test tooling.

Builds the wheel the way an image build does (``pip wheel . --no-deps``), from a copy of the checkout without build
leftovers: setuptools copies whatever an earlier build left in ``build/lib`` into the next wheel, so building in the
checkout itself could pass or fail on what an old build left there.
"""
import configparser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path, PurePosixPath

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
# Never part of a build: caches, virtualenvs, earlier builds' output, run-time state.
SKIPPED_ANYWHERE = {"__pycache__", ".git", ".venv", ".tox", "build", "dist", ".pytest_cache", ".ruff_cache",
                    "node_modules"}
SKIPPED_AT_ROOT = {"var", "test-artifacts"}
ENTRY_POINT = "openedx_pok.apps:OpenedxPokConfig"


def _skipped(directory, names):
    return {
        name for name in names
        if name in SKIPPED_ANYWHERE or name.endswith((".egg-info", ".pyc", ".sqlite3"))
        or (Path(directory) == ROOT and name in SKIPPED_AT_ROOT)
    }


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(the source the wheel was built from, the wheel's file names, the wheel, pip's output)."""
    source = tmp_path_factory.mktemp("source") / "openedx-pok"
    shutil.copytree(ROOT, source, ignore=_skipped)
    assert (source / "pok_simulator" / "__init__.py").exists()  # the tooling is there to be left out
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-cache-dir", "-w", str(out)],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("openedx_pok-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    return source, names, wheel, result.stdout + result.stderr


def files_under(source, folder, pattern="*"):
    """The wheel names of the files below ``openedx_pok/<folder>`` in the built source."""
    base = source / "openedx_pok" / folder
    return {
        str(PurePosixPath("openedx_pok", folder, *path.relative_to(base).parts))
        for path in base.rglob(pattern) if path.is_file()
    } if base.is_dir() else set()


def test_the_wheel_holds_the_plugin_and_no_test_tooling(built):
    source, names, _, _ = built
    assert {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")} == {"openedx_pok"}
    assert not [name for name in names if "pok_simulator" in name or "/testing/" in name or "test_utils" in name
                or "/tests/" in name or name.startswith(("tests/", "conftest"))]
    assert {name for name in names if name.endswith(".py")} == files_under(source, "", "*.py")


def test_the_wheel_carries_templates_static_files_migrations_and_compiled_catalogs(built):
    source, names, _, _ = built
    templates = files_under(source, "templates", "*.html")
    catalogs = {name for name in files_under(source, "locale", "*") if name.endswith("/LC_MESSAGES/django.mo")}
    migrations = files_under(source, "migrations", "*.py")
    assert "openedx_pok/templates/openedx_pok/status.html" in templates
    assert {"openedx_pok/locale/es_419/LC_MESSAGES/django.mo", "openedx_pok/locale/pt_BR/LC_MESSAGES/django.mo"} <= (
        catalogs)
    assert "openedx_pok/migrations/__init__.py" in migrations and len(migrations) > 1
    assert templates | files_under(source, "static") | catalogs | migrations <= names


def test_the_wheel_declares_the_lms_and_cms_plugin_entry_points(built):
    _, names, wheel, _ = built
    (entry_points_file,) = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
    entry_points = configparser.ConfigParser()
    with zipfile.ZipFile(wheel) as archive:
        entry_points.read_string(archive.read(entry_points_file).decode())
    assert entry_points["lms.djangoapp"]["openedx_pok"] == ENTRY_POINT
    assert entry_points["cms.djangoapp"]["openedx_pok"] == ENTRY_POINT


def test_the_build_prints_no_setuptools_warning_about_data_folders(built):
    _, _, _, output = built
    assert "absent from the `packages` configuration" not in output
    assert "Package would be ignored" not in output
