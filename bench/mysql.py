"""
``python -m bench.mysql [--sizes ROWS...] [--quick] [--keep]``: the plugin on MariaDB with 10,000 and 100,000
credentials (20,000 learners), on mysqlclient, the driver the LMS runs. ``make bench`` runs it after the SQLite parts.

It makes a scratch database ``bench_pok_<pid>`` on the MariaDB of the test settings (127.0.0.1:3306, root;
``POK_TEST_MYSQL_*`` override), migrates it, and for each size grows the load data (``bench.data``: set-based, a few
seconds for 100,000 rows, nothing issued) and measures, each against its baseline in the same run:

``admin_pages``
    The credential admin's list page: default page, later pages, each filter, each kind of search, each sort; SQL
    time, statements, rows read; the admin before issue 12 as the baseline (``bench.admin_pages``).
``lms_paths``
    Parts 1a, 1b and 2 of ``bench.run`` (the award path in the LMS, the worker, the certificate page mapped and
    unmapped, the status endpoint) with the big tables underneath, as ratios against the plugin-free LMS.
``reconcile``
    One run of the periodic reconcile over the load data's unfinished rows plus abandoned requests
    (``bench.reconcile_run``): statements, SQL time, rows read, broker messages; the smallest size is the baseline.

Each measurement is one function in :data:`MEASUREMENTS` taking a :class:`Context` and returning a JSON-ready dict;
add one there to measure another path at every size. Once per run it also measures what one connect costs with each
driver (``bench.db.connect_cost``): with ``CONN_MAX_AGE = 0`` every request pays it. ``POK_BENCH_MYSQL_DRIVER=pymysql``
runs the whole part on PyMySQL instead, for comparison.

Nothing asserts on time. Results are printed and written to ``var/bench/mariadb.json`` (``$POK_BENCH_DIR``
overrides the directory); the database is dropped at the end unless ``--keep``.
"""
import argparse
import json
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

DATABASE = f"bench_pok_{os.getpid()}"
# Before Django starts: the bench settings, on the scratch database (connected lazily, created in main()).
os.environ.update({"DJANGO_SETTINGS_MODULE": "bench.settings", "POK_BENCH_DB": "mysql", "POK_BENCH_MYSQL_DB": DATABASE})

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from bench import admin_pages, data, db, reconcile_run  # noqa: E402
from bench import run as lms_parts  # noqa: E402
from pok_simulator import PokSimulator  # noqa: E402

DEFAULT_SIZES = (10_000, 100_000)
QUICK_SIZES = (1_000, 5_000)
QUICK_USERS = 2_000
DEFAULT_REPEATS = 5
QUICK_REPEATS = 2


@dataclass(frozen=True)
class Context:
    """What a measurement gets: the size of the data set now in the database, and the run's options."""

    size: int
    users: int
    repeats: int
    learners: int
    views: int
    slow_sample: int
    admin_baseline: bool = True


def measure_admin(context):
    """The credential changelist, every case against the baseline admin (``bench.admin_pages``)."""
    return admin_pages.measure_admin_pages(context.size, context.repeats, context.users,
                                           baseline=context.admin_baseline)


def measure_lms_paths(context):
    """
    The award path, the worker and the certificate pages (mapped, unmapped, plugin removed) on the big tables.

    The hook for the LMS paths: ``bench.run.Bench`` parts with fresh learners of their own (``s<size>-...``) beside
    the load data, the same interleaving and warm-up as on SQLite, a new POK simulator per size.
    """
    with PokSimulator() as pok:
        bench = lms_parts.Bench(pok, context.learners, context.views, context.slow_sample, prefix=f"s{context.size}-")
        bench.setup()
        return {
            "issuance_time": bench.issuance_time(),
            "issuance_requests": bench.issuance_requests(),
            "page_views": bench.page_views(),
        }


def measure_reconcile(context):
    """One reconcile run over the unfinished rows of the load data, rolled back (``bench.reconcile_run``)."""
    return reconcile_run.measure_reconcile(context.size, context.repeats)


#: name -> function(Context) -> dict; run in this order at every size.
MEASUREMENTS = {
    "admin_pages": measure_admin,
    "lms_paths": measure_lms_paths,
    "reconcile": measure_reconcile,
}


def server_info():
    with connection.cursor() as cursor:
        cursor.execute("SELECT VERSION()")
        version = cursor.fetchone()[0]
    return {"server": version, "driver": settings.MYSQL_DRIVER}


# ---- report -----------------------------------------------------------------------------------------------------
def _cell(value, key, width, digits=1):
    if value is None:
        return f"{'-':>{width}}"
    return f"{value[key]:>{width}.{digits}f}" if isinstance(value[key], float) else f"{value[key]!s:>{width}}"


def print_admin(size, part):
    print(f"\nMariaDB, {size:,} credentials: credential admin list page, before (the admin of commit 88ac1ec) and now")
    header = (f"{'':<38}{'SQL ms':^16}{'wall ms':^16}{'queries':^9}{'rows read':^17}\n"
              f"{'page':<38}{'before':>8}{'now':>8}{'before':>8}{'now':>8}{'bef':>5}{'now':>4}{'before':>9}{'now':>8}"
              f"{'results':>9}")
    print("\n".join(line.rstrip() for line in header.splitlines()))
    print("-" * len(header.splitlines()[1]))
    for value in part.values():
        before, now = value["baseline"], value["plugin"]
        results = now["result_count"] if now else "-"
        print(f"{value['label']:<38}{_cell(before, 'sql_median_ms', 8)}{_cell(now, 'sql_median_ms', 8)}"
              f"{_cell(before, 'wall_median_ms', 8)}{_cell(now, 'wall_median_ms', 8)}"
              f"{_cell(before, 'queries', 5)}{_cell(now, 'queries', 4)}{_cell(before, 'rows_read', 9)}"
              f"{_cell(now, 'rows_read', 8)}{results!s:>9}")
    joins = [key for key, value in part.items() if value["plugin"] and value["plugin"]["joins_auth_user"]]
    print(f"  statements joining auth_user now: {', '.join(joins) or 'none'} (before: the page query of every case)")
    print("  (SQL ms: median over the requests of the summed statement times; wall ms: the whole view, template")
    print("   rendering included; rows read: InnoDB handler reads of one request)")


#: The admin's budget per case: SQL ms of one request at every size (issue 23).
ADMIN_SQL_BUDGET_MS = 50


def print_admin_growth(results):
    """
    The plugin's admin at the smallest and the largest size, per case: SQL ms, statements, rows read and the ratio
    large / small of each. Flat is the goal: the same statements, rows read not growing, SQL within the budget.
    """
    sizes = {int(size): parts["admin_pages"] for size, parts in results["sizes"].items() if "admin_pages" in parts}
    if len(sizes) < 2:
        return
    small, large = min(sizes), max(sizes)
    print(f"\nMariaDB: the credential admin (now) at {small:,} and {large:,} credentials, and large / small")
    header = (f"{'page':<38}{'SQL ms':>8}{'SQL ms':>8}{'ratio':>7}{'queries':>9}{'rows read':>11}{'rows read':>11}"
              f"{'ratio':>7}")
    print(header)
    print("-" * len(header))
    over = []
    for key, case in sizes[large].items():
        before, after = sizes[small][key]["plugin"], case["plugin"]
        if before is None or after is None:
            continue
        sql_ratio = after["sql_median_ms"] / before["sql_median_ms"] if before["sql_median_ms"] else 0
        rows_ratio = after["rows_read"] / before["rows_read"] if before["rows_read"] else 0
        queries = f"{before['queries']}/{after['queries']}"
        print(f"{case['label']:<38}{before['sql_median_ms']:>8.1f}{after['sql_median_ms']:>8.1f}{sql_ratio:>7.2f}"
              f"{queries:>9}{before['rows_read']:>11}{after['rows_read']:>11}{rows_ratio:>7.2f}")
        for size, ms in ((small, before["sql_median_ms"]), (large, after["sql_median_ms"])):
            if ms > ADMIN_SQL_BUDGET_MS:
                over.append(f"{case['label']} at {size:,}")
    print(f"  cases over {ADMIN_SQL_BUDGET_MS} ms of SQL: {'; '.join(over) or 'none'}")


def print_reconcile(results):
    """One line per size, and each figure as a ratio to the smallest size (the baseline: flat is 1.00)."""
    sizes = {int(size): parts["reconcile"] for size, parts in results["sizes"].items() if "reconcile" in parts}
    if not sizes:
        return
    base = sizes[min(sizes)]
    print(f"\nMariaDB: one reconcile run (batch {base['batch_size']}; {base['abandoned_made']} abandoned requests "
          "made, retryable failures due), rolled back after each run")
    header = (f"{'credentials':>11} {'abandoned':>9} {'issued':>7} {'refreshed':>9} {'statements':>10} "
              f"{'UPDATEs':>7} {'SQL ms':>7} {'wall ms':>8} {'rows read':>9} {'messages':>8} {'filesorts':>9}")
    print(header)
    print("-" * len(header))
    for size, part in sorted(sizes.items()):
        counts = part["counts"]
        print(f"{size:>11,} {counts['abandoned']:>9} {counts['issued']:>7} {counts['refreshed']:>9} "
              f"{part['statements']:>10} {part['updates']:>7} {part['sql_median_ms']:>7.1f} "
              f"{part['wall_median_ms']:>8.1f} {part['rows_read']:>9} {part['messages']:>8} {part['filesorts']:>9}")
    largest = sizes[max(sizes)]
    print(f"  largest / smallest: SQL ms {largest['sql_median_ms'] / base['sql_median_ms']:.2f}, rows read "
          f"{largest['rows_read'] / base['rows_read']:.2f}, statements {largest['statements']} vs {base['statements']}"
          " (goal: flat)")


def print_report(results):
    meta = results["meta"]
    print(f"openedx-pok MariaDB benchmark, {meta['date']}, {meta['server']['server']}, {meta['server']['driver']}, "
          f"{meta['users']:,} learners, sum(range(10_000)) in {meta['machine']['reference_loop_us']} us")
    drivers = results["connect"]
    print("\nOne connect + SELECT 1 + close (each request pays it with CONN_MAX_AGE = 0):")
    for driver, value in drivers.items():
        print(f"  {driver:<12} median {value['median_ms']:>7.2f} ms   max {value['max_ms']:>7.2f} ms  (n={value['n']})")
    for size, parts in results["sizes"].items():
        build = parts["build"]
        steps = ", ".join(f"{key.removesuffix('_s')} {value} s" for key, value in build.items() if key != "total_s")
        print(f"\n{'=' * 100}\nMariaDB, {int(size):,} credentials: load data grown in {build['total_s']:.1f} s "
              f"({steps})")
        if "admin_pages" in parts:
            print_admin(int(size), parts["admin_pages"])
        if "lms_paths" in parts:
            lms_parts.print_parts(parts["lms_paths"], where=f"MariaDB, {int(size):,} credentials: ")
    print_admin_growth(results)
    print_reconcile(results)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.mysql", description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=None, metavar="ROWS",
                        help=f"credential counts, ascending (default {' '.join(map(str, DEFAULT_SIZES))})")
    parser.add_argument("--users", type=int, default=None, help=f"learners of the load data (default {data.USERS})")
    parser.add_argument("--repeats", type=int, default=None, help="timed requests per admin page and admin")
    parser.add_argument("--learners", type=int, default=None, help="learners per configuration of the LMS paths")
    parser.add_argument("--views", type=int, default=None, help="certificate page views per configuration")
    parser.add_argument("--only", choices=sorted(MEASUREMENTS), nargs="+", default=None,
                        help="run only these measurements")
    parser.add_argument("--quick", action="store_true",
                        help=f"small sizes for tests ({' and '.join(map(str, QUICK_SIZES))} rows, {QUICK_USERS} "
                             "learners)")
    parser.add_argument("--keep", action="store_true", help=f"keep the scratch database {DATABASE}")
    parser.add_argument("--no-admin-baseline", dest="admin_baseline", action="store_false",
                        help="measure the plugin's admin only, not the former one (minutes at a million credentials)")
    args = parser.parse_args(argv)
    args.sizes = sorted(args.sizes or (QUICK_SIZES if args.quick else DEFAULT_SIZES))
    args.users = args.users or (QUICK_USERS if args.quick else data.USERS)
    args.repeats = args.repeats or (QUICK_REPEATS if args.quick else DEFAULT_REPEATS)
    args.learners = args.learners or (lms_parts.QUICK_LEARNERS if args.quick else lms_parts.DEFAULT_LEARNERS)
    args.views = args.views or (lms_parts.QUICK_VIEWS if args.quick else lms_parts.DEFAULT_VIEWS)
    if min(args.sizes) < 100 or args.users < 100:
        parser.error("--sizes and --users must be at least 100")
    return args


def run(args):
    call_command("migrate", verbosity=0)
    # With POK_BENCH_MYSQL_DRIVER=pymysql, PyMySQL stands in for MySQLdb in this process: mysqlclient is not measured.
    drivers = db.DRIVERS if settings.MYSQL_DRIVER.startswith("mysqlclient") else ("pymysql",)
    results = {"connect": {driver: db.connect_cost(driver, DATABASE) for driver in drivers}, "sizes": {}}
    measurements = {name: MEASUREMENTS[name] for name in (args.only or MEASUREMENTS)}
    for size in args.sizes:
        parts = {"build": data.build(size, users=args.users)}
        slow_sample = lms_parts.QUICK_SLOW_WORKER_SAMPLE if args.quick else lms_parts.SLOW_WORKER_SAMPLE
        context = Context(size=size, users=args.users, repeats=args.repeats, learners=args.learners,
                          views=args.views, slow_sample=slow_sample, admin_baseline=args.admin_baseline)
        for name, measure in measurements.items():
            started = time.perf_counter()
            parts[name] = measure(context)
            parts[f"{name}_s"] = round(time.perf_counter() - started, 1)
        results["sizes"][str(size)] = parts
    return results


def main(argv=None):
    """Create the scratch database, measure every size, report; exit 1 only when the benchmark itself is broken."""
    args = parse_args(argv)
    random.seed(lms_parts.SEED)
    started = time.perf_counter()
    db.create_database(DATABASE)
    try:
        results = run(args)
        results["meta"] = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": lms_parts.machine(),
            "server": server_info(),
            "database": DATABASE,
            "sizes": args.sizes,
            "users": args.users,
            "repeats": args.repeats,
            "quick": args.quick,
            "duration_s": round(time.perf_counter() - started, 1),
        }
    except RuntimeError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
        if not args.keep:
            db.drop_database(DATABASE)
    results = {"meta": results.pop("meta"), **results}
    print_report(results)
    settings.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    out = settings.BENCH_DIR / "mariadb.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nWritten to {out} in {results['meta']['duration_s']} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
