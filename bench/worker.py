"""
``python -m bench.worker [--quick]``: issuance through a real Celery worker on the real Redis broker, on MariaDB.

``make bench`` runs it after ``bench.run`` / ``bench.mysql``. It makes a scratch database ``bench_pok_worker_<pid>``
(mysqlclient, as the LMS), starts the POK simulator answering in 100 ms, and uses a queue and a cache key prefix of
its own on a scratch Redis database (``POK_BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/14``); the queue, the
cache keys and the database are removed at the end. The award and backfill parts run once per ``--load-rows`` size:
the credentials table first holds that many credentials of other learners (``bench.data``, grown from one size to
the next: 10,000 and 100,000 by default, ``bench.mysql``'s sizes; none with ``--quick``), so the worker issues
beside a big table. Three parts, each a median of ``--runs`` runs:

``award``
    The award path inside the LMS (``bench.run.Bench.award``: ``generate_certificate`` in ``transaction.atomic()``,
    then the LMS's generation task with the on-commit publish), plugin installed vs removed, interleaved, the publish
    going to Redis (no worker runs meanwhile; the queue is purged after). p50 each, p50 added, queries and the
    plugin's tasks per award.
``backfill``
    ``api.backfill`` (what ``manage.py lms pok_backfill --course KEY`` calls) for learners holding downloadable
    certificates in a mapped course without credentials, handed to a ``celery worker --pool=prefork`` subprocess
    (the pool Open edX's workers run) at each ``--concurrency``; the wall time until every credential is settled
    against the ideal (learners x 0.1 s / concurrency), POK requests per credential, duplicates (POK credentials of
    one learner beyond the first), and the CPU time of the worker's process tree per credential. After each run the
    same worker runs the floor over as many learners (``bench/worker_tasks.py``: one read and one POST per
    certificate, no plugin), the baseline the plugin's figures are read against.
``backfill_rss``
    Peak RSS (``ru_maxrss`` of the process, from ``wait4``) of ``pok_backfill --course KEY`` run as its own process
    at each ``--rss-sizes`` learner count (on a queue no worker reads, purged after), and of a dry run over one
    certificate as the floor (Django, the plugin and the command loaded). Flat: the largest within 10 % of the
    smallest.

Nothing asserts on time. Results go to ``var/bench/worker.json`` (``$POK_BENCH_DIR`` overrides the directory).
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from functools import partial

RUN_ID = uuid.uuid4().hex[:10]
DATABASE = f"bench_pok_worker_{os.getpid()}"
QUEUE = f"openedx-pok-bench-{RUN_ID}"
RSS_QUEUE = f"{QUEUE}-rss"  # the backfill whose memory is read publishes here, where no worker listens
CACHE_PREFIX = f"openedx-pok-bench-{RUN_ID}"
REDIS_URL = os.environ.get("POK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
os.environ.update({
    "DJANGO_SETTINGS_MODULE": "bench.worker_settings", "POK_BENCH_DB": "mysql", "POK_BENCH_MYSQL_DB": DATABASE,
    "POK_BENCH_REDIS_URL": REDIS_URL, "POK_BENCH_QUEUE": QUEUE, "POK_BENCH_CACHE_PREFIX": CACHE_PREFIX,
})

import django  # noqa: E402

django.setup()

import psutil  # noqa: E402
import redis  # noqa: E402
from celery.signals import after_task_publish  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from kombu import Exchange, Queue  # noqa: E402
from opaque_keys.edx.keys import CourseKey  # noqa: E402

from bench import data, db, worker_tasks  # noqa: E402
from bench import run as lms_parts  # noqa: E402
from lms_sandbox.celery import app as celery_app  # noqa: E402
from lms_sandbox.models import CourseOverview, GeneratedCertificate, UserProfile  # noqa: E402
from openedx_pok import api  # noqa: E402
from openedx_pok.course_setup import configuration  # noqa: E402
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate  # noqa: E402
from openedx_pok.tasks import BACKFILL_CHUNK_SIZE  # noqa: E402
from pok_simulator import PokSimulator  # noqa: E402

REPO_DIR = settings.REPO_DIR
POK_LATENCY = 0.1
ORG = "WorkerX"
LEARNERS, QUICK_LEARNERS = 1_000, 20
CONCURRENCY, QUICK_CONCURRENCY = (4, 8), (2,)
RUNS, QUICK_RUNS = 3, 1
RSS_SIZES, QUICK_RSS_SIZES = (1_000, 10_000), (20, 200)
AWARDS, QUICK_AWARDS = 300, 20
LOAD_ROWS = (10_000, 100_000)  # credentials in the table beside the measured ones, as bench.mysql's sizes
UNSETTLED = (CredentialStatus.PENDING, CredentialStatus.REQUESTING, CredentialStatus.IN_PROGRESS)
WORKER_START_TIMEOUT = 60
SUCCEEDED = re.compile(r"Task openedx_pok\.tasks\.issue_credentials?\[[^\]]+\] succeeded in ([0-9.]+)s")
FLOOR_SUCCEEDED = re.compile(r"Task bench\.worker_tasks\.post_only\[[^\]]+\] succeeded in ([0-9.]+)s")


# ---- data -------------------------------------------------------------------------------------------------------
def build_learners(count):
    """``count`` learners (user + profile with a name), set-based; returns the id before the first."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM auth_user")
        base = cursor.fetchone()[0]
    data._insert_select(get_user_model(), {  # noqa: SLF001 - the load data's own INSERT ... SELECT helper
        "id": f"{base} + s.seq", "password": "'!'", "is_superuser": "0", "username": "CONCAT('wlearner', s.seq)",
        "first_name": "'Ada'", "last_name": "CONCAT('Lovelace', s.seq)",
        "email": "CONCAT('wlearner', s.seq, '@example.com')", "is_staff": "0", "is_active": "1",
        "date_joined": "NOW(6)",
    }, 1, count)
    data._insert_select(UserProfile, {"user_id": f"{base} + s.seq",  # noqa: SLF001
                                      "name": "CONCAT('Ada Lovelace', s.seq)"}, 1, count)
    return base


def mapped_course(name, base, learners):
    """A course mapped to the simulator's template whose first ``learners`` learners hold a downloadable certificate.

    Written with SQL, not saved through the model: a save sends CERTIFICATE_CREATED, and the plugin would request
    the credentials at once; the backfill is for certificates that exist before the course issues credentials.
    """
    key = f"course-v1:{ORG}+{name}+2026"
    # Certificates shown as soon as earned: the backfill issues them at once instead of scheduling them.
    CourseOverview.objects.create(id=CourseKey.from_string(key), display_name=f"Backfill {name}", org=ORG,
                                  certificates_display_behavior="early_no_info")
    data._insert_select(GeneratedCertificate, {  # noqa: SLF001
        "user_id": f"{base} + s.seq", "course_id": f"'{key}'", "verify_uuid": f"MD5(CONCAT('{key}', s.seq))",
        "status": "'downloadable'", "mode": "'verified'", "grade": "'0.9'", "name": "CONCAT('Ada Lovelace', s.seq)",
        "download_url": "''", "created_date": "NOW(6)", "modified_date": "NOW(6)",
    }, 1, learners)
    CertificateTemplate.objects.create(course_key=CourseKey.from_string(key), template_id=lms_parts.TEMPLATE_ID)
    return key


# ---- the broker and the worker ----------------------------------------------------------------------------------
def remove_queue(name):
    """Purge and delete ``name`` (and its binding) on the broker; returns the messages purged."""
    with celery_app.connection_for_write() as conn:
        queue = Queue(name, Exchange(name, type="direct"), routing_key=name)(conn.default_channel)
        queue.declare()
        purged = queue.purge() or 0
        queue.delete()
        return purged


def remove_cache_keys():
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{CACHE_PREFIX}:*", count=1000))
    if keys:
        client.delete(*keys)


def child_env(pok, queue=QUEUE):
    """The environment of a worker or command process: these settings, this database, broker, queue, simulator."""
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.worker_settings", "POK_BENCH_QUEUE": queue,
            "POK_BENCH_API_URL": pok.url, "POK_BENCH_API_KEY": pok.api_key,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_DIR), os.environ.get("PYTHONPATH")]))}


class Worker:
    """
    ``celery -A lms_sandbox.celery worker --pool=prefork`` on the run's queue; stopped warm, killed if it hangs.

    With the options of Tutor's LMS worker (INFO logging, a prefetch of one, each pool process replaced after 100
    tasks, no gossip or mingle), so its per-process copies and connections are lost as often as in production.
    """

    def __init__(self, pok, concurrency):
        self.concurrency = concurrency
        self.log_path = settings.BENCH_DIR / f"worker-c{concurrency}.log"
        command = [sys.executable, "-m", "celery", "-A", "lms_sandbox.celery", "worker", "--pool=prefork",
                   f"--concurrency={concurrency}", "-Q", QUEUE, "-n", f"{QUEUE}-c{concurrency}@%h",
                   "--loglevel=INFO", "--prefetch-multiplier=1", "--max-tasks-per-child=100", "--without-gossip",
                   "--without-mingle", "--without-heartbeat", "--include", "bench.worker_tasks"]
        self.log = open(self.log_path, "wb")  # closed in stop()
        self.process = subprocess.Popen(command, cwd=REPO_DIR, env=child_env(pok), stdout=self.log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while b" ready." not in self.log_path.read_bytes():
            self.check_alive("starting")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the worker did not start in {WORKER_START_TIMEOUT} s; see {self.log_path}")
            time.sleep(0.2)

    def check_alive(self, doing):
        if self.process.poll() is not None:
            raise RuntimeError(f"the worker exited ({self.process.returncode}) while {doing}; see {self.log_path}")

    def cpu_seconds(self):
        """User + system CPU of the worker and its pool processes (those already gone included)."""
        main = psutil.Process(self.process.pid)
        times = main.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in main.children(recursive=True):
            try:
                times = child.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def task_seconds(self, pattern=SUCCEEDED):
        """Durations of the issuance (or floor) tasks logged so far ("succeeded in 0.123s")."""
        return [float(value) for value in pattern.findall(self.log_path.read_text(errors="replace"))]

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        self.log.close()


def process_cpu_seconds(process):
    times = process.cpu_times()
    return times.user + times.system


def mariadb_process():
    """The local MariaDB server process, to show its share of the CPU (None if it is not visible from here)."""
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in ("mariadbd", "mysqld"):
            return process
    return None


# ---- part: backfill through the worker --------------------------------------------------------------------------
def wait_settled(course, count, worker, timeout):
    """Poll until no credential of ``course`` is unsettled and ``count`` exist; returns the seconds waited."""
    deadline = time.monotonic() + timeout
    key = CourseKey.from_string(course)
    while True:
        rows = PokCertificate.objects.filter(course_key=key)
        if rows.count() >= count and not rows.filter(status__in=UNSETTLED).exists():
            return
        worker.check_alive("issuing")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{course}: credentials still unsettled after {timeout} s; see {worker.log_path}")
        time.sleep(0.05)


def backfill_once(pok, worker, course, learners):
    """One backfill of ``course`` through the worker; returns its figures."""
    pok.reset()
    pok.latency = POK_LATENCY
    tasks_before, server, harness = len(worker.task_seconds()), mariadb_process(), psutil.Process()
    cpu_before, server_before = worker.cpu_seconds(), process_cpu_seconds(server) if server else None
    harness_before = process_cpu_seconds(harness)
    started = time.perf_counter()
    report = api.backfill([course])
    published = time.perf_counter() - started
    wait_settled(course, learners, worker, timeout=60 + learners * POK_LATENCY * 3)
    wall = time.perf_counter() - started
    cpu = worker.cpu_seconds() - cpu_before
    statuses = dict(PokCertificate.objects.filter(course_key=CourseKey.from_string(course))
                    .values_list("status").annotate(n=Count("id")).values_list("status", "n"))
    per_learner = [len(pok.credentials_for(f"wlearner{n}@example.com")) for n in range(1, learners + 1)]
    task_times = worker.task_seconds()[tasks_before:]
    ideal = learners * POK_LATENCY / worker.concurrency
    result = {
        "learners": learners, "requested": report.requested, "wall_s": round(wall, 3), "ideal_s": round(ideal, 3),
        "ratio_to_ideal": round(wall / ideal, 3), "backfill_call_s": round(published, 3),
        "emitted": statuses.get(CredentialStatus.EMITTED, 0), "statuses": statuses,
        "posts": pok.count("issue_credential"), "template_gets": pok.count("get_template"),
        "pok_requests": pok.count(),
        "posts_per_credential": round(pok.count("issue_credential") / learners, 4),
        "pok_requests_per_credential": round(pok.count() / learners, 4),
        "duplicates": sum(max(0, n - 1) for n in per_learner),
        "learners_without_credential": sum(1 for n in per_learner if n == 0),
        "worker_cpu_ms_per_credential": round(cpu * 1000 / learners, 2),
        "task_median_ms": round(statistics.median(task_times) * 1000, 1) if task_times else None,
        "tasks_logged": len(task_times),
    }
    # This process: the backfill call itself (rows and messages), the POK simulator's threads (they share the
    # machine's two cores with the worker) and the polling above.
    result["harness_cpu_ms_per_credential"] = round((process_cpu_seconds(harness) - harness_before) * 1000 / learners,
                                                    2)
    if server is not None:
        result["mariadb_cpu_ms_per_credential"] = round(
            (process_cpu_seconds(server) - server_before) * 1000 / learners, 2)
    return result


def floor_once(pok, worker, course, learners):
    """The floor (``bench.worker_tasks.post_only``) over the certificates of ``course``; returns its figures."""
    pok.reset()
    pok.latency = POK_LATENCY
    ids = list(GeneratedCertificate.objects.filter(course_id=CourseKey.from_string(course))
               .order_by("id").values_list("id", flat=True))
    chunks = [ids[start:start + BACKFILL_CHUNK_SIZE] for start in range(0, len(ids), BACKFILL_CHUNK_SIZE)]
    tasks_before, cpu_before = len(worker.task_seconds(FLOOR_SUCCEEDED)), worker.cpu_seconds()
    started = time.perf_counter()
    for chunk in chunks:
        worker_tasks.post_only.apply_async(args=[chunk, pok.url, pok.api_key], queue=QUEUE)
    deadline = time.monotonic() + 60 + learners * POK_LATENCY * 3
    while len(worker.task_seconds(FLOOR_SUCCEEDED)) - tasks_before < len(chunks):
        worker.check_alive("running the floor")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{course}: the floor tasks did not finish; see {worker.log_path}")
        time.sleep(0.05)
    wall, cpu = time.perf_counter() - started, worker.cpu_seconds() - cpu_before
    ideal = learners * POK_LATENCY / worker.concurrency
    return {"learners": learners, "posts": pok.count("issue_credential"), "wall_s": round(wall, 3),
            "ratio_to_ideal": round(wall / ideal, 3), "worker_cpu_ms_per_credential": round(cpu * 1000 / learners, 2)}


def measure_backfill(pok, args, base, tag):
    """
    Per concurrency: a worker, a warm-up (pool processes connected, template cached), then the runs, each the
    plugin's backfill followed by the floor over as many learners (interleaved, so both see the same machine).
    """
    results = {}
    for concurrency in args.concurrency:
        worker = Worker(pok, concurrency)
        try:
            warm = mapped_course(f"{tag}WARM{concurrency}", base, concurrency * 4)
            backfill_once(pok, worker, warm, concurrency * 4)
            floor_once(pok, worker, warm, concurrency * 4)
            runs, floors = [], []
            for run in range(args.runs):
                runs.append(backfill_once(pok, worker, mapped_course(f"{tag}C{concurrency}R{run}", base,
                                                                     args.learners), args.learners))
                floors.append(floor_once(pok, worker, mapped_course(f"{tag}C{concurrency}F{run}", base,
                                                                    args.learners), args.learners))
        finally:
            worker.stop()
        summary = {key: statistics.median(each[key] for each in runs) for key in (
            "wall_s", "ratio_to_ideal", "posts_per_credential", "pok_requests_per_credential",
            "worker_cpu_ms_per_credential", "backfill_call_s", "harness_cpu_ms_per_credential")}
        summary.update({"ideal_s": runs[0]["ideal_s"], "duplicates": sum(run["duplicates"] for run in runs),
                        "emitted": sum(run["emitted"] for run in runs), "credentials": args.learners * len(runs),
                        "posts": sum(run["posts"] for run in runs),
                        "template_gets": sum(run["template_gets"] for run in runs)})
        floor = {key: statistics.median(each[key] for each in floors)
                 for key in ("wall_s", "ratio_to_ideal", "worker_cpu_ms_per_credential")}
        floor["posts"] = sum(each["posts"] for each in floors)
        summary["cpu_ratio_to_floor"] = round(summary["worker_cpu_ms_per_credential"]
                                              / floor["worker_cpu_ms_per_credential"], 2)
        results[str(concurrency)] = {"summary": summary, "runs": runs, "floor": floor, "floor_runs": floors,
                                     "pool": "prefork"}
    return results


# ---- part: peak memory of the backfill command ------------------------------------------------------------------
def command_peak_rss(pok, course, dry_run=False):
    """Run ``pok_backfill --course KEY`` as its own process; returns (peak RSS in MiB, seconds)."""
    command = [sys.executable, "-m", "django", "pok_backfill", "--course", course, *(["--dry-run"] if dry_run else [])]
    out_path = settings.BENCH_DIR / "backfill-command.out"
    started = time.perf_counter()
    with open(out_path, "wb") as out:
        process = subprocess.Popen(command, cwd=REPO_DIR, env=child_env(pok, RSS_QUEUE), stdout=out,
                                   stderr=subprocess.STDOUT)
        _pid, status, usage = os.wait4(process.pid, 0)  # this child's own rusage, not the maximum over all children
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"pok_backfill exited with {process.returncode}: {out_path.read_text(errors='replace')}")
    return round(usage.ru_maxrss / 1024, 1), round(time.perf_counter() - started, 2)  # Linux: ru_maxrss in KiB


def measure_rss(pok, args, base):
    floor, _seconds = command_peak_rss(pok, mapped_course("RSSFLOOR", base, 1), dry_run=True)
    sizes = {}
    for size in args.rss_sizes:
        runs = [command_peak_rss(pok, mapped_course(f"RSS{size}R{run}", base, size)) for run in range(args.runs)]
        sizes[str(size)] = {"peak_rss_mib": statistics.median(rss for rss, _s in runs),
                            "runs_mib": [rss for rss, _s in runs], "seconds": [s for _rss, s in runs]}
    purged = remove_queue(RSS_QUEUE)
    smallest, largest = sizes[str(min(args.rss_sizes))], sizes[str(max(args.rss_sizes))]
    ratio = round(largest["peak_rss_mib"] / smallest["peak_rss_mib"], 3)
    return {"floor_dry_run_one_certificate_mib": floor, "sizes": sizes, "ratio_largest_to_smallest": ratio,
            "flat": ratio <= 1.10, "tasks_purged": purged}


# ---- part: the award path ---------------------------------------------------------------------------------------
def measure_award(pok, args, tag):
    """Plugin vs plugin removed, interleaved, ``args.awards`` each per run; publish to Redis, no worker running."""
    configs = {config.key: config for config in lms_parts.ISSUANCE_CONFIGS if config.key in ("no_plugin", "pok_0ms")}
    bench = lms_parts.Bench(pok, args.awards * args.runs, 1, 0, prefix=f"award{tag}-")
    bench.setup()  # learners for all of bench.run's configurations; only two are used here
    queries, published = {}, []

    def record(sender=None, routing_key=None, **_kwargs):
        # The plugin's tasks only: the LMS's own generation task (bench.run.Bench.award runs it) is the LMS's.
        if str(sender).startswith("openedx_pok."):
            published.append((sender, routing_key))

    for index in range(lms_parts.WARMUP):
        for key, config in configs.items():
            captured = CaptureQueriesContext(connection) if index == lms_parts.WARMUP - 1 else None
            bench.award(config, bench.users[key][index], captured)
            if captured is not None:
                sql = [query["sql"] for query in captured.captured_queries]
                queries[key] = {"queries": len(sql), "plugin_queries": sum("openedx_pok_" in q for q in sql),
                                "sql": sql}
    after_task_publish.connect(record, weak=False)
    samples = {key: [] for key in configs}
    try:
        for index in range(lms_parts.WARMUP, lms_parts.WARMUP + args.awards * args.runs):
            for config in bench.order.sample(list(configs.values()), len(configs)):
                elapsed, _pok_requests = bench.award(config, bench.users[config.key][index])
                samples[config.key].append(elapsed / 1e6)
    finally:
        after_task_publish.disconnect(record)
    runs = []
    for run in range(args.runs):
        chunk = slice(run * args.awards, (run + 1) * args.awards)
        p50 = {key: statistics.median(values[chunk]) for key, values in samples.items()}
        runs.append({"p50_no_plugin_ms": round(p50["no_plugin"], 3), "p50_plugin_ms": round(p50["pok_0ms"], 3),
                     "p50_added_ms": round(p50["pok_0ms"] - p50["no_plugin"], 3)})
    awards = args.awards * args.runs
    return {
        "awards_per_configuration_per_run": args.awards, "runs": runs,
        "p50_no_plugin_ms": statistics.median(run["p50_no_plugin_ms"] for run in runs),
        "p50_plugin_ms": statistics.median(run["p50_plugin_ms"] for run in runs),
        "p50_added_ms": statistics.median(run["p50_added_ms"] for run in runs),
        "queries_per_award": {key: value["queries"] for key, value in queries.items()},
        "plugin_queries_per_award": queries["pok_0ms"]["plugin_queries"],
        "queries_added_per_award": queries["pok_0ms"]["queries"] - queries["no_plugin"]["queries"],
        "plugin_sql": [q for q in queries["pok_0ms"]["sql"] if "openedx_pok_" in q],
        "tasks_published_per_award": round(len(published) / awards, 3),
        "published_to": sorted({str(key) for _name, key in published}),
        "broker": REDIS_URL, "tasks_purged": remove_queue(QUEUE),
    }


# ---- report -----------------------------------------------------------------------------------------------------
def print_report(results):
    meta = results["meta"]
    print(f"openedx-pok worker benchmark, {meta['date']}, {meta['machine']['cpus']} CPUs, {meta['server']}, "
          f"{meta['driver']}, broker {meta['broker']}, POK latency {POK_LATENCY * 1000:.0f} ms; machine speed: "
          f"sum(range(10_000)) in {meta['machine']['reference_loop_us']} us")
    for rows, size in results["sizes"].items():
        print(f"\n=== {int(rows):,} other credentials in the table ===")
        if "award" in size:
            print_award(size["award"])
        if "backfill" in size:
            print_backfill(size["backfill"])
    if "backfill_rss" in results:
        print_rss(results["backfill_rss"])


def print_award(part):
    print(f"\nAward path in the LMS (generate_certificate in transaction.atomic(), publish to Redis), "
          f"{part['awards_per_configuration_per_run']} interleaved awards x {len(part['runs'])} run(s):")
    print(f"  p50 plugin removed {part['p50_no_plugin_ms']:.2f} ms, plugin {part['p50_plugin_ms']:.2f} ms, "
          f"added {part['p50_added_ms']:.2f} ms (goal <= 5)")
    print(f"  queries per award: {part['queries_per_award']}, plugin's {part['plugin_queries_per_award']} "
          f"(goal <= 3), tasks published per award {part['tasks_published_per_award']} (goal 1)")


def print_backfill(part):
    header = (f"{'concurrency':>11} {'learners':>8} {'wall s':>8} {'ideal s':>8} {'x ideal':>8} {'POST/cred':>10} "
              f"{'POK req/cred':>13} {'dups':>5} {'emitted':>8} {'CPU ms/cred':>12}")
    print("\nBackfill through a prefork Celery worker on Redis (medians of the runs; goals x ideal <= 1.2, "
          "CPU <= 10 ms); floor: a task that only reads each certificate and POSTs (bench/worker_tasks.py):")
    print(header)
    print("-" * len(header))
    for concurrency, value in part.items():
        s, floor = value["summary"], value["floor"]
        print(f"{concurrency:>11} {s['credentials'] // len(value['runs']):>8} {s['wall_s']:>8.2f} {s['ideal_s']:>8.2f} "
              f"{s['ratio_to_ideal']:>8.2f} {s['posts_per_credential']:>10.3f} "
              f"{s['pok_requests_per_credential']:>13.3f} {s['duplicates']:>5} "
              f"{s['emitted']:>4}/{s['credentials']:<3} {s['worker_cpu_ms_per_credential']:>12.1f}")
        print(f"{'  floor':>11} {'':>8} {floor['wall_s']:>8.2f} {'':>8} {floor['ratio_to_ideal']:>8.2f} {'':>10} "
              f"{'':>13} {'':>5} {'':>8} {floor['worker_cpu_ms_per_credential']:>12.1f}  "
              f"(plugin / floor CPU: {s['cpu_ratio_to_floor']:.2f})")


def print_rss(part):
    sizes = ", ".join(f"{int(size):,} learners {value['peak_rss_mib']:.1f} MiB"
                      for size, value in part["sizes"].items())
    print(f"\nPeak RSS of pok_backfill: {sizes}; ratio {part['ratio_largest_to_smallest']:.3f} "
          f"({'flat' if part['flat'] else 'NOT flat'}; floor, dry run of one certificate: "
          f"{part['floor_dry_run_one_certificate_mib']:.1f} MiB)")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.worker", description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one run with tiny numbers (a smoke test)")
    parser.add_argument("--learners", type=int, help=f"learners per backfill run (default {LEARNERS})")
    parser.add_argument("--concurrency", type=int, nargs="+", help="worker concurrencies (default 4 8)")
    parser.add_argument("--runs", type=int, help=f"runs per figure, median reported (default {RUNS})")
    parser.add_argument("--rss-sizes", type=int, nargs="+", help="learner counts of the memory runs")
    parser.add_argument("--awards", type=int, help=f"awards per configuration per run (default {AWARDS})")
    parser.add_argument("--only", nargs="+", choices=("award", "backfill", "backfill_rss"), default=None)
    parser.add_argument("--load-rows", type=int, nargs="+", default=None,
                        help="credentials of other learners already in the table, one measurement per size "
                             "(bench.data; default 10000 100000, --quick: 0)")
    args = parser.parse_args(argv)
    args.load_rows = sorted(set(args.load_rows if args.load_rows is not None else ((0,) if args.quick else LOAD_ROWS)))
    args.learners = args.learners or (QUICK_LEARNERS if args.quick else LEARNERS)
    args.concurrency = args.concurrency or (QUICK_CONCURRENCY if args.quick else CONCURRENCY)
    args.runs = args.runs or (QUICK_RUNS if args.quick else RUNS)
    args.rss_sizes = sorted(args.rss_sizes or (QUICK_RSS_SIZES if args.quick else RSS_SIZES))
    args.awards = args.awards or (QUICK_AWARDS if args.quick else AWARDS)
    return args


def run(args):
    call_command("migrate", verbosity=0)
    base = build_learners(max(args.learners, *args.rss_sizes))
    parts = args.only or ("award", "backfill", "backfill_rss")
    results = {"sizes": {}}
    with PokSimulator() as pok:
        settings.POK_API_URL, settings.POK_API_KEY = pok.url, pok.api_key
        configuration.reset_clients()
        for rows in args.load_rows:  # ascending: the load data grows from one size to the next
            size = {"rows": rows, "build": data.build(rows) if rows else None}
            size["credentials_in_table"] = PokCertificate.objects.count()  # the load + earlier sizes' own
            for name in ("award", "backfill"):
                if name in parts:
                    started = time.perf_counter()
                    measure = measure_award if name == "award" else partial(measure_backfill, base=base)
                    size[name] = measure(pok, args, tag=f"L{rows}")
                    size[f"{name}_s"] = round(time.perf_counter() - started, 1)
            results["sizes"][str(rows)] = size
        if "backfill_rss" in parts:  # the command's memory depends on the learners it backfills, not on the load
            started = time.perf_counter()
            results["backfill_rss"] = measure_rss(pok, args, base)
            results["backfill_rss_s"] = round(time.perf_counter() - started, 1)
    return results


def main(argv=None):
    """Create the scratch database, measure, report; exit 1 only when the benchmark itself is broken."""
    args = parse_args(argv)
    redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()  # fails loudly without Redis
    settings.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    db.create_database(DATABASE)
    try:
        results = run(args)
        with connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            server = cursor.fetchone()[0]
    except RuntimeError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
        db.drop_database(DATABASE)
        for queue in (QUEUE, RSS_QUEUE):
            remove_queue(queue)
        remove_cache_keys()
    results = {"meta": {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": lms_parts.machine(), "server": server,
        "driver": settings.MYSQL_DRIVER, "broker": REDIS_URL, "queue": QUEUE, "pok_latency_ms": POK_LATENCY * 1000,
        "quick": args.quick, "learners": args.learners, "concurrency": args.concurrency, "runs": args.runs,
        "rss_sizes": args.rss_sizes, "awards": args.awards, "load_rows": args.load_rows,
        "duration_s": round(time.perf_counter() - started, 1),
    }, **results}
    print_report(results)
    write_results(results, "worker.json")
    return 0


def write_results(results, name):
    """The run's figures to ``$POK_BENCH_DIR/<name>`` (bench.outage and bench.chaos write theirs the same way)."""
    out = settings.BENCH_DIR / name
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nWritten to {out} in {results['meta']['duration_s']} s.")


if __name__ == "__main__":
    sys.exit(main())
