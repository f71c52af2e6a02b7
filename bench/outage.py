"""
``python -m bench.outage [--count N] [--outage SECONDS]``: credentials awarded during a POK outage, through a real
Celery worker on Redis, on MariaDB (issue 22).

POK (the simulator) answers 503 to every request for ``--outage`` seconds (default 600, ten minutes; ``--retry-after``
adds that header, ``--refuse`` stops the simulator instead, so every connection is refused); meanwhile ``--count``
learners (default 1,000) earn a certificate through the LMS path (``generate_certificate`` in
``transaction.atomic()``, then the LMS's generation task), spread over the first ``--award-share`` of the outage. A
``celery worker --pool=prefork`` process with Tutor's options (``bench.worker.Worker``) runs the plugin's tasks, and
this process plays Celery beat: the reconcile task every ``--reconcile-every`` seconds (default 300, the Tutor
plugin's schedule). Then POK comes back and the run waits until every credential is settled.

What it shows, against the goals of issue 22: every credential emitted after recovery, none failed nor left to staff,
no duplicate (a second POK credential for a learner) and no possible-duplicate flag, and the POSTs that reached POK
during the outage (bounded by the account's pause: a few, not one per credential and try), with the health checks
(``GET /organization/me``), the Celery retries the waiting cost and how long the backlog took once POK was back.

The scratch database (``bench_pok_worker_<pid>``), queue and cache keys are ``bench.worker``'s, removed at the end.
Results go to ``var/bench/outage.json`` (``$POK_BENCH_DIR`` overrides the directory); the exit status is 1 when the
benchmark itself broke (no Redis, a worker that died, credentials never settled), 0 otherwise: the figures are the
result, the test (``tests/test_bench_outage.py``) asserts on them.
"""
import argparse
import re
import sys
import time
from datetime import UTC, datetime

from bench import worker as harness  # isort: skip - first: it sets up Django on bench.worker_settings

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count, Max, Sum
from opaque_keys.edx.keys import CourseKey

from bench import db
from bench import run as lms_parts
from lms_sandbox.celery import app as celery_app
from lms_sandbox.generation import generate_certificate
from lms_sandbox.grades import CourseGrade
from lms_sandbox.models import CourseOverview
from openedx_pok import tasks
from openedx_pok.course_setup import configuration
from openedx_pok.issuance import outage
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from pok_simulator import Fault, PokSimulator

COUNT, OUTAGE_SECONDS, RECONCILE_EVERY, AWARD_SHARE, CONCURRENCY = 1_000, 600, 300, 0.8, 4
POK_LATENCY = 0.05
SETTLE_TIMEOUT = 1_800  # after POK is back: the pause's last health check, then the backlog at the worker's pace
COURSE = "course-v1:OutageX+Outage+2026"
SETTLED = (CredentialStatus.EMITTED, CredentialStatus.FAILED, CredentialStatus.HELD, CredentialStatus.REVOKED)
# The LMS's generation task on a queue of this run (bench.settings routes it to one queue that every benchmark run on
# the same Redis shares): this process plays the LMS's worker for its own awards only.
LMS_QUEUE = f"{harness.QUEUE}-lms"
RECEIVED = re.compile(r"Task openedx_pok\.tasks\.issue_credentials?\[[^\]]+\] received")


def setup_course():
    key = CourseKey.from_string(COURSE)
    CourseOverview.objects.create(id=key, display_name="Credentials through an outage", org="OutageX",
                                  certificates_display_behavior="early_no_info")
    CertificateTemplate.objects.create(course_key=key, template_id=lms_parts.TEMPLATE_ID)
    return key


def award(user, course_key):
    """The LMS path of one award: the creation filter and its commit, then the LMS's generation task (played here)."""
    with transaction.atomic():
        generate_certificate(user, course_key, CourseGrade(percent=0.9, passed=True, letter_grade="Pass"))
    for task_name, args, kwargs in lms_parts.Bench.take_messages(LMS_QUEUE):
        celery_app.tasks[task_name].apply(args=args, kwargs=kwargs)


def route_lms_tasks_here():
    """The LMS's generation task to :data:`LMS_QUEUE` (both names of the setting: the Django one wins in Celery 5.6)."""
    routes = {"lms_sandbox.tasks.generate_certificate": {"queue": LMS_QUEUE}}
    celery_app.conf.task_routes = celery_app.conf.CELERY_TASK_ROUTES = routes
    celery_app.amqp.flush_routes()
    celery_app.amqp.__dict__.pop("router", None)  # Celery's cached router keeps the routes it was built with


def beat():
    """What Celery beat sends every period (README: the reconcile task), to the plugin's queue."""
    tasks.reconcile_credentials_task.apply_async(queue=harness.QUEUE)


def statuses(course_key):
    return dict(PokCertificate.objects.filter(course_key=course_key).values_list("status")
                .annotate(n=Count("id")).values_list("status", "n"))


def wait_settled(course_key, count, worker, timeout, every, last_beat):
    """Until ``count`` credentials of the course are settled; beats on the way. Returns the seconds waited."""
    started = time.monotonic()
    while True:
        rows = PokCertificate.objects.filter(course_key=course_key)
        if rows.count() >= count and rows.filter(status__in=SETTLED).count() >= count:
            return time.monotonic() - started
        worker.check_alive("settling the credentials")
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"credentials unsettled {timeout} s after POK came back: {statuses(course_key)}; "
                               f"see {worker.log_path}")
        if time.monotonic() - last_beat >= every:
            beat()
            last_beat = time.monotonic()
        time.sleep(0.5)


def start_outage(pok, args):
    if args.refuse:
        pok.stop()  # the port stays the simulator's: connections are refused until it listens again
        return
    headers = (("Retry-After", str(args.retry_after)),) if args.retry_after else ()
    pok.add_fault(Fault("respond", status=503, body='{"message": "POK is being deployed (simulated)"}',
                        headers=headers, times=None))


def end_outage(pok, args):
    if args.refuse:
        pok.start()
    else:
        pok.clear_faults()


def run(args, pok, worker, base):
    route_lms_tasks_here()
    course_key = setup_course()
    users = list(get_user_model().objects.filter(id__gt=base).order_by("id")[:args.count + 1])
    # Before the outage: one credential, so the template is cached and the worker warm (as on any day).
    award(users[0], course_key)
    wait_settled(course_key, 1, worker, 120, args.reconcile_every, time.monotonic())
    counts = {endpoint: pok.count(endpoint) for endpoint in ("issue_credential", "get_organization", "get_template")}
    log = worker.log_path.read_text(errors="replace")
    runs_before, retries_before = len(RECEIVED.findall(log)), log.count("retry: Retry in")
    start_outage(pok, args)
    started = last_beat = time.monotonic()
    window = args.outage * args.award_share
    for index, user in enumerate(users[1:]):
        due = started + window * index / args.count
        while (now := time.monotonic()) < due:
            if now - last_beat >= args.reconcile_every:
                beat()
                last_beat = now
            time.sleep(min(0.2, due - now))
        award(user, course_key)
        worker.check_alive("awarding")
    awarded_s = time.monotonic() - started
    while (now := time.monotonic()) < started + args.outage:
        if now - last_beat >= args.reconcile_every:
            beat()
            last_beat = now
        worker.check_alive("waiting out the outage")
        time.sleep(min(1.0, started + args.outage - now))
    during = {endpoint: pok.count(endpoint) - before for endpoint, before in counts.items()}
    rows = PokCertificate.objects.filter(course_key=course_key, user_id__in=[user.id for user in users[1:]])
    at_end = {"statuses": statuses(course_key), "paused_accounts": [name for name, _pause in outage.paused_accounts()],
              "needing_staff": rows.filter(status=CredentialStatus.FAILED, retryable=False).count(),
              "max_tries": rows.aggregate(m=Max("tries"))["m"]}
    end_outage(pok, args)
    recovered = time.monotonic()
    settle_s = wait_settled(course_key, args.count + 1, worker, SETTLE_TIMEOUT, args.reconcile_every, last_beat)
    per_learner = [len(pok.credentials_for(user.email)) for user in users[1:]]
    final = statuses(course_key)
    log = worker.log_path.read_text(errors="replace")
    return {
        "awards": args.count, "awarded_in_s": round(awarded_s, 1), "outage_s": args.outage,
        "emitted": rows.filter(status=CredentialStatus.EMITTED).count(),
        "failed": rows.filter(status=CredentialStatus.FAILED).count(),
        "held": rows.filter(status=CredentialStatus.HELD).count(),
        "duplicates": sum(max(0, n - 1) for n in per_learner),
        "learners_without_credential": sum(1 for n in per_learner if n == 0),
        "possible_duplicate_flags": rows.filter(possible_duplicate=True).count(),
        "ambiguous_attempts": rows.aggregate(s=Sum("ambiguous_attempts"))["s"] or 0,
        "posts_during_outage": during["issue_credential"],
        "health_checks_during_outage": during["get_organization"],
        "template_gets_during_outage": during["get_template"],
        "posts_total": pok.count("issue_credential") - counts["issue_credential"],
        "max_tries": rows.aggregate(m=Max("tries"))["m"],
        "at_end_of_outage": at_end,
        "settled_after_recovery_s": round(settle_s, 1),
        "recovery_started_s_after_outage": round(recovered - started - args.outage, 1),
        "issue_task_runs": len(RECEIVED.findall(log)) - runs_before,
        "celery_retries": log.count("retry: Retry in") - retries_before,
        "statuses": final,
    }


def print_report(results):
    meta, r = results["meta"], results["result"]
    mode = "connections refused" if meta["refuse"] else (
        f"503 with Retry-After {meta['retry_after']}" if meta["retry_after"] else "503 to every request")
    print(f"openedx-pok outage benchmark, {meta['date']}, {meta['server']}, broker {meta['broker']}, prefork worker "
          f"x{meta['concurrency']}; POK down {meta['outage_s']} s ({mode}); beat every {meta['reconcile_every']} s")
    print(f"  {r['awards']} awards in {r['awarded_in_s']} s during the outage")
    print(f"  at the end of the outage: {r['at_end_of_outage']['statuses']}, paused accounts "
          f"{r['at_end_of_outage']['paused_accounts']}, needing staff {r['at_end_of_outage']['needing_staff']}, "
          f"max tries {r['at_end_of_outage']['max_tries']}")
    print(f"  POSTs during the outage: {r['posts_during_outage']} (health checks {r['health_checks_during_outage']}, "
          f"template GETs {r['template_gets_during_outage']}); POSTs in all {r['posts_total']}")
    print(f"  after recovery, in {r['settled_after_recovery_s']} s: emitted {r['emitted']}, failed {r['failed']}, "
          f"held {r['held']}, duplicates {r['duplicates']}, possible-duplicate flags {r['possible_duplicate_flags']}, "
          f"ambiguous attempts {r['ambiguous_attempts']}, max tries {r['max_tries']}")
    print(f"  issuance task runs {r['issue_task_runs']} (Celery retries logged {r['celery_retries']})")


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.outage", description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--count", type=int, default=COUNT, help="awards during the outage (default %(default)s)")
    parser.add_argument("--outage", type=float, default=OUTAGE_SECONDS,
                        help="seconds POK is down (default %(default)s)")
    parser.add_argument("--award-share", type=float, default=AWARD_SHARE,
                        help="the awards are spread over this share of the outage (default %(default)s)")
    parser.add_argument("--reconcile-every", type=float, default=RECONCILE_EVERY,
                        help="seconds between two reconcile runs, as Celery beat (default %(default)s)")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="worker processes (default %(default)s)")
    parser.add_argument("--retry-after", type=int, default=None, help="send Retry-After with every 503")
    parser.add_argument("--refuse", action="store_true", help="refuse connections instead of answering 503")
    args = parser.parse_args(argv)
    if args.count < 1 or args.outage <= 0 or not 0 < args.award_share <= 1:
        parser.error("--count and --outage must be positive, --award-share in (0, 1]")
    return args


def main(argv=None):
    """Create the scratch database, run, report; exit 1 only when the benchmark itself is broken."""
    args = parse_args(argv)
    redis.Redis.from_url(harness.REDIS_URL, socket_connect_timeout=2).ping()  # fails loudly without Redis
    settings.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    db.create_database(harness.DATABASE)
    try:
        call_command("migrate", verbosity=0)
        base = harness.build_learners(args.count + 1)
        with PokSimulator() as pok:
            pok.latency = POK_LATENCY
            settings.POK_API_URL, settings.POK_API_KEY = pok.url, pok.api_key
            configuration.reset_clients()
            worker = harness.Worker(pok, args.concurrency)
            try:
                result = run(args, pok, worker, base)
            finally:
                worker.stop()
        with connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            server = cursor.fetchone()[0]
    except RuntimeError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
        db.drop_database(harness.DATABASE)
        harness.remove_queue(harness.QUEUE)
        harness.remove_queue(LMS_QUEUE)
        harness.remove_cache_keys()
    results = {"meta": {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": lms_parts.machine(), "server": server,
        "driver": settings.MYSQL_DRIVER, "broker": harness.REDIS_URL, "queue": harness.QUEUE,
        "concurrency": args.concurrency, "outage_s": args.outage, "count": args.count,
        "reconcile_every": args.reconcile_every, "retry_after": args.retry_after, "refuse": args.refuse,
        "pok_latency_ms": POK_LATENCY * 1000, "pause_after_failures": outage.PAUSE_AFTER_FAILURES,
        "probe_delay_max_s": outage.PROBE_DELAY_MAX, "duration_s": round(time.perf_counter() - began, 1),
    }, "result": result}
    print_report(results)
    harness.write_results(results, "outage.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
