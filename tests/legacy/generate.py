"""
Build a database the way an LMS that ran the earlier openedx-pok (PyPI 21.0.1 or 22.0.0) left it, and dump it.

Runs **inside a throw-away virtualenv that holds the published package** (``tests/legacy/build.py`` makes it; never
in this project's own venv, whose editable ``openedx_pok`` would shadow the old one). The package's own migrations
create its tables, and its own code writes the rows: ``PokCertificate.objects.get_or_create`` as its creation filter
does before calling POK, then its ``update_certificate_from_response`` with the answers POK gives. So the schema and
the rows are the earlier plugin's, not an imitation. The LMS side is a stub of ``course_overviews`` (``lms_stub/``).

Output: one JSON file with the DDL of the tables this plugin's import reads (as the database itself reports it),
their rows, the users they reference and the ``django_migrations`` rows the earlier package recorded. The tests and
the benchmark load it into a database that already has this plugin's tables (see ``tests/legacy/__init__.py``).

Usage (normally through ``make legacy-fixtures``)::

    var/legacy/venv-21.0.1/bin/python tests/legacy/generate.py --version 21.0.1 --out x.json --sqlite /tmp/x.sqlite3
    var/legacy/venv-21.0.1/bin/python tests/legacy/generate.py --version 21.0.1 --out x.json --mysql-db scratch_db
"""
import argparse
import datetime
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
# The LMS stub first; never the project root (its openedx_pok is the new plugin).
_PROJECT = (HERE, HERE.parent.parent)
sys.path[:] = [str(HERE / "lms_stub")] + [p for p in sys.path if Path(p or ".").resolve() not in _PROJECT]

import django  # noqa: E402
from django.conf import settings  # noqa: E402

COURSE_OVERVIEWS_TABLE = "course_overviews_courseoverview"
TEMPLATES_TABLE = "openedx_pok_certificatetemplate"
CREDENTIALS_TABLE = "openedx_pok_pokcertificate"
DUMPED_TABLES = (COURSE_OVERVIEWS_TABLE, TEMPLATES_TABLE, CREDENTIALS_TABLE)

MAPPED = "course-v1:LegacyX+MAPPED+2025"
CHAIN = "course-v1:LegacyX+CHAIN+2025"
OTHER_NO_CREDENTIALS = "course-v1:OtherU+NOCREDS+2025"
FLAG_ONLY = "course-v1:OtherU+FLAGONLY+2025"
# The LMS only has valid keys here; a row of a course whose key no longer parses is what an import must survive.
BROKEN = "LegacyX-broken-course"

# (course, template id, emission type, page id) as staff entered them in the earlier plugin's admin.
TEMPLATES = (
    (MAPPED, "tpl-legacy-mapped", "pok", "page-legacy"),
    (CHAIN, "tpl-legacy-chain", "blockchain", None),
    (OTHER_NO_CREDENTIALS, "tpl-legacy-other", None, ""),
    (BROKEN, "tpl-legacy-broken", "pok", None),
)
COURSES = (MAPPED, CHAIN, OTHER_NO_CREDENTIALS, FLAG_ONLY, BROKEN)

POK_PAGE_ID = "page-from-settings"
EMISSION_DATE = "2025-06-01T12:00:00.000Z"


def _credential(pok_id, state, view_url=None, emission_type="pok"):
    """A POK credential answer (E6/E7) as POK returns it, with the parts the earlier plugin stores."""
    answer = {
        "id": pok_id,
        "state": state,
        "credential": {
            "title": "Legacy course", "emitter": "Legacy University", "emissionDate": EMISSION_DATE,
            "emissionType": emission_type, "tags": ["legacy", pok_id],
        },
        "receiver": {"email": "", "name": ""},
    }
    if view_url is not None:
        answer["viewUrl"] = view_url
    return answer


def _async(pok_id, state):
    """An asynchronous creation answer: only id and state (the case the 21.0.1 release fixed)."""
    return {"id": pok_id, "state": state}


# (learner, course, the POK answers the earlier plugin stored one after the other; None: the POST failed).
# One learner per case, except "emitted", who also has a credential in a second course.
CREDENTIALS = (
    ("emitted", MAPPED, [_async("pok-emitted", "pending"),
                         _credential("pok-emitted", "emitted", "https://app.pok.tech/credential/pok-emitted")]),
    ("emitted", CHAIN, [_credential("pok-second-course", "emitted", "https://app.pok.tech/credential/pok-second",
                                    emission_type="blockchain")]),
    ("emitted-no-url", MAPPED, [_credential("pok-no-url", "emitted")]),
    ("processing", MAPPED, [_async("pok-processing", "pending")]),
    ("waiting", CHAIN, [_async("pok-waiting", "processing"),
                        _credential("pok-waiting", "waitingForApproval", emission_type="blockchain")]),
    ("aborted", CHAIN, [_credential("pok-aborted", "aborted", emission_type="blockchain")]),
    ("rejected", CHAIN, [_credential("pok-rejected", "signatureRejected", emission_type="blockchain")]),
    ("revoked", MAPPED, [_credential("pok-revoked", "emitted", "https://app.pok.tech/credential/pok-revoked"),
                         _credential("pok-revoked", "revoked", "https://app.pok.tech/credential/pok-revoked")]),
    ("unknown-state", FLAG_ONLY, [_credential("pok-unknown-state", "someFutureState")]),
    ("unsafe-url", CHAIN, [_credential("pok-unsafe-url", "emitted", "javascript:alert(1)")]),
    ("foreign-host", CHAIN, [_credential("pok-foreign-host", "emitted", "https://pok.example.net/credential/phish")]),
    ("flag-only", FLAG_ONLY, [_credential("pok-flag-only", "emitted", "https://app.pok.tech/credential/pok-flag-only")]),
    ("no-pok-id", MAPPED, None),
    ("no-pok-id-chain", CHAIN, None),
    ("duplicate-pok-id", FLAG_ONLY, [_credential("pok-emitted", "emitted",
                                                 "https://app.pok.tech/credential/pok-emitted")]),
    ("invalid-course", BROKEN, [_credential("pok-invalid-course", "emitted",
                                            "https://app.pok.tech/credential/pok-invalid-course")]),
    ("user-gone", MAPPED, [_credential("pok-user-gone", "emitted", "https://app.pok.tech/credential/pok-user-gone")]),
)
# Timestamps are fixed so that a regenerated fixture differs only where the package's behaviour does.
BASE_TIME = datetime.datetime(2025, 6, 1, 12, 0, tzinfo=datetime.UTC)


def configure(args):
    """Django settings of a minimal LMS: auth, the course_overviews stub and the earlier openedx-pok."""
    if args.mysql_db:
        import pymysql

        pymysql.install_as_MySQLdb()
        database = {
            "ENGINE": "django.db.backends.mysql", "NAME": args.mysql_db,
            "USER": os.environ.get("POK_TEST_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("POK_TEST_MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("POK_TEST_MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("POK_TEST_MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4"},
        }
    else:
        database = {"ENGINE": "django.db.backends.sqlite3", "NAME": args.sqlite}
    settings.configure(
        SECRET_KEY="legacy-fixture-generator",  # noqa: S106 - a throw-away database
        USE_TZ=True,
        TIME_ZONE="UTC",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "openedx.core.djangoapps.content.course_overviews.apps.CourseOverviewsStubConfig",
            "openedx_pok",
        ],
        DATABASES={"default": database},
        DEFAULT_AUTO_FIELD="django.db.models.AutoField",
        POK_PAGE_ID=POK_PAGE_ID,
        POK_TEMPLATE_ID="tpl-from-settings",
    )
    django.setup()


def check_package(version):
    """Fail unless the imported openedx_pok is the published one of ``version``, from the venv."""
    import openedx_pok

    location = Path(openedx_pok.__file__).resolve()
    if openedx_pok.__version__ != version or Path(sys.prefix).resolve() not in location.parents:
        raise SystemExit(f"expected the published openedx-pok {version}, got {openedx_pok.__version__} at {location}")


def populate():
    """Write the rows with the earlier package's own models and response handling."""

    from django.contrib.auth.models import User
    from openedx.core.djangoapps.content.course_overviews.models import CourseOverview

    from openedx_pok import filters
    from openedx_pok.models import CertificateTemplate, PokCertificate

    overviews = {key: CourseOverview.objects.create(id=key, display_name=f"Course {key}") for key in COURSES}
    templates = {}
    for course, template_id, emission_type, page_id in TEMPLATES:
        templates[course] = CertificateTemplate.objects.create(
            course=overviews[course], template_id=template_id, emission_type=emission_type, page_id=page_id,
        )
    users = {}
    for label, course, answers in CREDENTIALS:
        if label not in users:
            users[label] = User.objects.create(username=f"legacy-{label}", email=f"legacy-{label}@example.com")
        user = users[label]
        template = templates.get(course)
        # What the creation filter does first, before it calls POK: a row without a POK id.
        row, _created = PokCertificate.objects.get_or_create(user_id=user.id, course_id=course)
        client = SimpleNamespace(emission_type=template.emission_type if template else "pok")
        for answer in answers or ():
            filters.update_certificate_from_response(
                row, answer, client=client, course_title="Legacy course", organization="Legacy University",
                user=user,
            )
            row.page = template.page_id if template and template.page_id is not None else settings.POK_PAGE_ID
            row.save()
    for index, row in enumerate(PokCertificate.objects.order_by("id")):
        moment = BASE_TIME + datetime.timedelta(minutes=index)
        PokCertificate.objects.filter(id=row.id).update(created=moment, modified=moment)
        User.objects.filter(id=row.user_id).update(date_joined=BASE_TIME)
    CertificateTemplate.objects.update(created=BASE_TIME, modified=BASE_TIME)


def _json_value(value):
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
    if isinstance(value, bytes | bytearray):
        return value.decode()
    return value


def _rows(cursor, table, order_by):
    cursor.execute(f"SELECT * FROM {table} ORDER BY {order_by}")  # noqa: S608 - fixed table names
    columns = [column[0] for column in cursor.description]
    return {"columns": columns, "rows": [[_json_value(v) for v in row] for row in cursor.fetchall()]}


def schema(connection):
    """The CREATE statements of the dumped tables, exactly as the database reports them."""
    statements = []
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for table in DUMPED_TABLES:
                cursor.execute(
                    "SELECT sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL "
                    "ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, name", [table],
                )
                statements.extend(row[0] for row in cursor.fetchall())
        else:
            for table in DUMPED_TABLES:
                cursor.execute(f"SHOW CREATE TABLE {table}")
                ddl = cursor.fetchone()[1]
                # The counter is data, not schema; rows are inserted with their ids anyway.
                statements.append(" ".join(part for part in ddl.split(" ") if not part.startswith("AUTO_INCREMENT=")))
    return statements


def dump(connection, version):
    """Everything a test needs to recreate this database next to the new plugin's tables."""
    with connection.cursor() as cursor:
        tables = {
            "auth_user": _rows(cursor, "auth_user", "id"),
            COURSE_OVERVIEWS_TABLE: _rows(cursor, COURSE_OVERVIEWS_TABLE, "id"),
            TEMPLATES_TABLE: _rows(cursor, TEMPLATES_TABLE, "id"),
            CREDENTIALS_TABLE: _rows(cursor, CREDENTIALS_TABLE, "id"),
        }
        cursor.execute(
            "SELECT app, name FROM django_migrations WHERE app IN ('openedx_pok', 'course_overviews') ORDER BY id"
        )
        migrations = [list(row) for row in cursor.fetchall()]
        if connection.vendor == "sqlite":
            cursor.execute("SELECT sqlite_version()")
            server = f"SQLite {cursor.fetchone()[0]}"
        else:
            cursor.execute("SELECT VERSION()")
            server = f"MySQL/MariaDB {cursor.fetchone()[0]}"
    return {
        "package": "openedx-pok",
        "version": version,
        "engine": connection.vendor,
        "database": server,
        "django": django.get_version(),
        "generated_by": "tests/legacy/generate.py (make legacy-fixtures)",
        "schema": schema(connection),
        "tables": tables,
        "migrations": migrations,
    }


def to_text(data):
    """The dump as JSON with one table row per line, so that a regenerated fixture diffs row by row."""
    parts = []
    for key, value in data.items():
        if key == "tables":
            tables = []
            for name, table in value.items():
                rows = ",\n".join(f"    {json.dumps(row)}" for row in table["rows"])
                tables.append(f'  {json.dumps(name)}: {{\n   "columns": {json.dumps(table["columns"])},\n'
                              f'   "rows": [\n{rows}\n   ]\n  }}')
            parts.append(' "tables": {\n' + ",\n".join(tables) + "\n }")
        elif isinstance(value, list):
            items = ",\n".join(f"  {json.dumps(item)}" for item in value)
            parts.append(f" {json.dumps(key)}: [\n{items}\n ]")
        else:
            parts.append(f" {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--version", required=True, help="the openedx-pok version installed in this venv")
    parser.add_argument("--out", required=True, help="the JSON file to write")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--sqlite", help="a new SQLite file to build the database in")
    target.add_argument("--mysql-db", help="an empty MariaDB/MySQL database to build the database in")
    args = parser.parse_args(argv)
    configure(args)
    check_package(args.version)

    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    populate()
    Path(args.out).write_text(to_text(dump(connection, args.version)), encoding="utf-8")


if __name__ == "__main__":
    main()
