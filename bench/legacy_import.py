"""
``python -m bench.legacy_import [--rows N] [--batch-size N] [--keep]``: how long the upgrade from the earlier
openedx-pok takes on MariaDB, for 100,000 legacy credentials by default.

It makes a scratch database on the MariaDB of the test settings (127.0.0.1:3306, root; ``POK_TEST_MYSQL_*``
override), migrates this plugin up to just before the import, creates the earlier plugin's tables from the dump its
published 22.0.0 package made on MariaDB (``tests/legacy/fixtures``), and fills them set-based: one
``INSERT ... SELECT`` over MariaDB's ``seq_1_to_N`` sequence table each for the learners, 100 courses, their
templates and the N credentials (one per learner; 5 % without a POK id, 5 % processing, 5 % aborted, 5 % revoked,
the rest emitted). Then it times:

1. ``migrate``, which runs the data migration: the import as an operator meets it on upgrade;
2. ``pok_import_legacy`` on the imported database: the idempotent re-run (everything already present);
3. ``pok_import_legacy --dry-run``.

Statements are counted with a ``connection.execute_wrapper`` (no SQL kept in memory) and split by the table they
touch, which gives the queries per batch. Nothing asserts on time; the numbers are printed and written to
``var/bench/legacy_import.json`` (``$POK_BENCH_DIR`` overrides the directory). The scratch database is dropped at the
end unless ``--keep``.
"""
import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from io import StringIO
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
DATABASE = f"bench_pok_legacy_{os.getpid()}"
# Before django.setup(): the test settings on MariaDB, pointed at the scratch database.
os.environ.update({"DJANGO_SETTINGS_MODULE": "test_settings", "POK_TEST_DB": "mysql", "POK_TEST_MYSQL_DB": DATABASE})

import django  # noqa: E402

django.setup()  # connects lazily: the scratch database is created in main() before the first query

from django.core.management import call_command  # noqa: E402
from django.db import connection, connections  # noqa: E402
from waffle.models import Flag  # noqa: E402

from tests.legacy import create_schema, fixture  # noqa: E402
from tests.legacy.build import mysql_connection  # noqa: E402

COURSES = 100
BEFORE_IMPORT = "1003_credential_reliability"
MIGRATION_BATCH = 2000  # what the data migration uses (openedx_pok.legacy.importer.BATCH_SIZE)
# Every 20 learners: one without a POK id (the POST had failed), one processing, one aborted, one revoked, 16 emitted.
STATE = ("CASE s.seq % 20 WHEN 0 THEN NULL WHEN 1 THEN 'processing' WHEN 2 THEN 'aborted' WHEN 3 THEN 'revoked' "
         "ELSE 'emitted' END")


def fill(connection, rows):
    """The learners, courses, templates and ``rows`` legacy credentials, each in one INSERT ... SELECT."""
    seq = f"seq_1_to_{rows}"
    course = f"CONCAT('course-v1:BenchX+C', 1 + s.seq % {COURSES}, '+2026')"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, "  # noqa: S608
            "is_active, date_joined) SELECT '', 0, CONCAT('bench-', s.seq), '', '', "
            f"CONCAT('bench-', s.seq, '@example.com'), 0, 1, NOW(6) FROM {seq} s"
        )
        cursor.execute(
            "INSERT INTO course_overviews_courseoverview (id, display_name) "  # noqa: S608 - fixed names and numbers
            f"SELECT CONCAT('course-v1:BenchX+C', s.seq, '+2026'), 'Bench course' FROM seq_1_to_{COURSES} s"
        )
        cursor.execute(
            "INSERT INTO openedx_pok_certificatetemplate (created, modified, template_id, course_id, emission_type, "
            "page_id) SELECT NOW(6), NOW(6), CONCAT('tpl-', id), id, 'pok', NULL FROM course_overviews_courseoverview"
        )
        cursor.execute(
            "INSERT INTO openedx_pok_pokcertificate (created, modified, course_id, pok_certificate_id, state, "  # noqa: S608
            "view_url, emission_date, emission_type, title, emitter, tags, receiver_email, receiver_name, user_id, "
            "custom_parameters, page) "
            f"SELECT NOW(6), NOW(6), {course}, IF(s.seq % 20 = 0, NULL, CONCAT('pok-', s.seq)), {STATE}, "
            "IF(s.seq % 20 IN (0, 1, 2), NULL, CONCAT('https://app.pok.tech/credential/pok-', s.seq)), NOW(6), 'pok', "
            "'Bench course', 'Bench University', '[\"bench\"]', u.email, u.username, u.id, NULL, 'page-bench' "
            f"FROM {seq} s JOIN auth_user u ON u.username = CONCAT('bench-', s.seq)"
        )


class StatementCounter:
    """A ``connection.execute_wrapper``: counts statements per table touched, keeps no SQL."""

    TABLES = ("openedx_pok_pokcertificate", "openedx_pok_certificatetemplate", "openedx_pok_credential",
              "openedx_pok_course_template_mapping", "auth_user")

    def __init__(self):
        self.counts = Counter()

    def __call__(self, execute, sql, params, many, context):
        head = sql.lstrip()[:40].split(" ", 1)[0].upper()
        table = next((t for t in self.TABLES if f"`{t}`" in sql[:400]), "other")
        self.counts[(head, table)] += 1
        return execute(sql, params, many, context)


def timed(connection, func):
    counter = StatementCounter()
    started = time.perf_counter()
    with connection.execute_wrapper(counter):
        result = func()
    return time.perf_counter() - started, counter.counts, result


def run(args):
    call_command("migrate", verbosity=0)
    call_command("migrate", "openedx_pok", BEFORE_IMPORT, verbosity=0)
    create_schema(connection, fixture("22.0.0", "mysql"))
    started = time.perf_counter()
    fill(connection, args.rows)
    results = {"rows": args.rows, "batch_size": args.batch_size, "migration_batch_size": MIGRATION_BATCH,
               "fill_seconds": round(time.perf_counter() - started, 2)}
    # The earlier flag on for everyone: a django-waffle Flag row, as in the LMS.
    Flag.objects.update_or_create(name="module_pok.enable", defaults={"everyone": True})
    seconds, counts, _ = timed(connection, lambda: call_command("migrate", "openedx_pok", verbosity=0))
    batches = -(-args.rows // MIGRATION_BATCH)
    per_batch = {f"{head} {table}": round(n / batches, 2) for (head, table), n in counts.items()
                 if table in ("openedx_pok_pokcertificate", "openedx_pok_credential", "auth_user")}
    results["migrate"] = {"seconds": round(seconds, 2), "rows_per_second": round(args.rows / seconds),
                          "batches": batches, "statements": sum(counts.values()),
                          "statements_per_batch": per_batch, "credentials_by_status": dict(_status_counts())}
    for label, extra in (("rerun", ()), ("dry_run", ("--dry-run",))):
        out = StringIO()
        seconds, counts, _ = timed(connection, lambda e=extra, o=out: call_command(
            "pok_import_legacy", *e, "--batch-size", str(args.batch_size), stdout=o))
        results[label] = {"seconds": round(seconds, 2), "rows_per_second": round(args.rows / seconds),
                          "statements": sum(counts.values()), "output": out.getvalue().splitlines()}
    results["machine"] = {"python": platform.python_version(), "django": django.get_version(),
                          "database": _server_version(), "cpus": os.cpu_count(), "platform": platform.platform()}
    return results


def _status_counts():
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, COUNT(*) FROM openedx_pok_credential GROUP BY status ORDER BY status")
        return cursor.fetchall()


def _server_version():
    with connection.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        return cursor.fetchone()[0]


def report(results):
    migrate, rerun, dry = results["migrate"], results["rerun"], results["dry_run"]
    print(f"Legacy import benchmark: {results['rows']:,} legacy credentials on {results['machine']['database']}, "
          f"batches of {results['migration_batch_size']:,} (migrate) / {results['batch_size']:,} (command)")
    print(f"  legacy rows created (set-based INSERT ... SELECT)  {results['fill_seconds']:8.2f} s")
    print(f"  migrate (the data migration imports)                {migrate['seconds']:8.2f} s  "
          f"{migrate['rows_per_second']:>8,} rows/s  {migrate['batches']} batches")
    print(f"  pok_import_legacy again (all already present)       {rerun['seconds']:8.2f} s  "
          f"{rerun['rows_per_second']:>8,} rows/s")
    print(f"  pok_import_legacy --dry-run                         {dry['seconds']:8.2f} s  "
          f"{dry['rows_per_second']:>8,} rows/s")
    print("  statements per batch during migrate: " + ", ".join(
        f"{name} {n:g}" for name, n in sorted(migrate["statements_per_batch"].items())))
    print("  credentials imported by status: " + ", ".join(
        f"{status} {n:,}" for status, n in sorted(migrate["credentials_by_status"].items())))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000, help="legacy credentials to import (default 100000)")
    parser.add_argument("--batch-size", type=int, default=MIGRATION_BATCH,
                        help="legacy rows per batch of the pok_import_legacy runs (the migration uses 2000)")
    parser.add_argument("--keep", action="store_true", help=f"keep the scratch database {DATABASE}")
    args = parser.parse_args(argv)
    server = mysql_connection()
    with server.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4")
    try:
        results = run(args)
    finally:
        connections.close_all()
        if not args.keep:
            with server.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
        server.close()
    report(results)
    out_dir = Path(os.environ.get("POK_BENCH_DIR") or REPO_DIR / "var" / "bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "legacy_import.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
