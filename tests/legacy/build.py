"""
``python -m tests.legacy.build`` (``make legacy-fixtures``): regenerate the databases of the earlier openedx-pok.

For each published version (21.0.1 and 22.0.0) it makes a throw-away virtualenv under ``var/legacy/`` (ignored by
git, reused while its stamp matches) with ``openedx-pok==<version> --no-deps`` plus Django and the few libraries the
package imports, then runs ``tests/legacy/generate.py`` in it, once on a new SQLite file and once on a scratch
MariaDB/MySQL database (127.0.0.1:3306 by default, the ``POK_TEST_MYSQL_*`` variables of the test settings apply).
The results are the committed fixtures ``tests/legacy/fixtures/openedx-pok-<version>-<engine>.json``.

22.0.0 declares ``Requires-Python >=3.12``; its migrations and models are plain Python 3.11 code (and identical to
21.0.1's), so it is installed with ``--ignore-requires-python`` into the project's Python 3.11.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_DIR = HERE.parent.parent
VENV_ROOT = Path(os.environ.get("POK_LEGACY_VENV_DIR") or REPO_DIR / "var" / "legacy")
FIXTURES_DIR = HERE / "fixtures"
VERSIONS = ("21.0.1", "22.0.0")
ENGINES = ("sqlite", "mysql")
# What the earlier package imports to run its migrations and its response handling, pinned like this project.
LIBRARIES = ("django", "django-model-utils", "edx-django-utils", "edx-opaque-keys[django]", "requests", "pymysql")
CONSTRAINTS = REPO_DIR / "requirements" / "test.txt"


def fixture_path(version, engine):
    """Where the dump of ``version`` on ``engine`` ("sqlite" or "mysql") lives."""
    return FIXTURES_DIR / f"openedx-pok-{version}-{engine}.json"


def _run(command, **kwargs):
    completed = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, command))} failed:\n{completed.stdout}\n{completed.stderr}")
    return completed


def ensure_venv(version, python=None):
    """A venv with the published ``openedx-pok==version``; rebuilt when the recipe changed. Returns its python."""
    venv = VENV_ROOT / f"venv-{version}"
    stamp = venv / ".openedx-pok-legacy"
    recipe = "\n".join((version, *LIBRARIES, CONSTRAINTS.read_text(encoding="utf-8")))
    python_bin = venv / "bin" / "python"
    if stamp.exists() and python_bin.exists() and stamp.read_text(encoding="utf-8") == recipe:
        return python_bin
    shutil.rmtree(venv, ignore_errors=True)
    _run([python or sys.executable, "-m", "venv", str(venv)])
    pip = [str(python_bin), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*pip, "-c", str(CONSTRAINTS), *LIBRARIES])
    _run([*pip, "--no-deps", "--ignore-requires-python", f"openedx-pok=={version}"])
    stamp.write_text(recipe, encoding="utf-8")
    return python_bin


def mysql_connection(database=None):
    """A PyMySQL connection to the server the test settings use."""
    import pymysql

    return pymysql.connect(
        host=os.environ.get("POK_TEST_MYSQL_HOST", "127.0.0.1"),
        port=int(os.environ.get("POK_TEST_MYSQL_PORT", "3306")),
        user=os.environ.get("POK_TEST_MYSQL_USER", "root"),
        password=os.environ.get("POK_TEST_MYSQL_PASSWORD", ""),
        database=database, charset="utf8mb4", autocommit=True,
    )


def generate(version, engine, out):
    """Run the generator of ``version`` on a fresh database of ``engine`` and write the dump to ``out``."""
    python_bin = ensure_venv(version)
    command = [str(python_bin), str(HERE / "generate.py"), "--version", version, "--out", str(out)]
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "DJANGO_SETTINGS_MODULE")}
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            _run([*command, "--sqlite", str(Path(tmp) / "legacy.sqlite3")], env=env, cwd=tmp)
        return
    database = f"pok_legacy_fixture_{version.replace('.', '_')}_{os.getpid()}"
    server = mysql_connection()
    try:
        with server.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE {database} CHARACTER SET utf8mb4")
        with tempfile.TemporaryDirectory() as tmp:
            _run([*command, "--mysql-db", database], env=env, cwd=tmp)
    finally:
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS {database}")
        server.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n", 1)[0])
    parser.add_argument("--versions", nargs="+", default=VERSIONS, choices=VERSIONS)
    parser.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES)
    args = parser.parse_args(argv)
    FIXTURES_DIR.mkdir(exist_ok=True)
    for version in args.versions:
        for engine in args.engines:
            out = fixture_path(version, engine)
            generate(version, engine, out)
            print(f"wrote {out.relative_to(REPO_DIR)}")


if __name__ == "__main__":
    main()
