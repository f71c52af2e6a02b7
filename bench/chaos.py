"""
``python -m bench.chaos``: a chaos run (issue 22, item 18) through a real prefork Celery worker on Redis, on MariaDB.

``--learners`` learners (default 1,000) earn a certificate through the LMS path (``generate_certificate`` in
``transaction.atomic()``, then the LMS's generation task), spread evenly over ``--award-seconds``. POK (the
simulator) answers in 100 ms and answers 500 to ``--ambiguous-rate`` of the POSTs (default 5 %) *after* creating the
credential (its ``status_after_create`` fault, seeded): an ambiguous POST, which the plugin resends once, flagged as a
possible duplicate, and hands to staff the second time. While the learners are awarded, in this order:

1. the worker is killed with SIGKILL (its main process and its pool processes, as an OOM kill of its container) while
   a credential is ``requesting`` (POST on its way), and started again;
2. Redis is restarted (``--redis-down`` seconds down; nothing persisted, so every queued message, every retry the
   worker held and the Django cache are lost);
3. POK answers 503 to every request for ``--outage`` seconds (default 60);
4. right after the outage, while the backlog drains, every database connection of the worker is killed from another
   MariaDB session (``KILL CONNECTION`` for each of them, found in ``information_schema.processlist``).

Redis is a private ``redis-server --save "" --appendonly no`` on a free port, the run's broker and cache, the one
that is restarted: never the machine's shared Redis. The database is ``bench.worker``'s scratch database, dropped at
the end. This process plays the LMS and Celery beat: every ``--reconcile-every`` seconds it runs the reconcile task's
plan (``openedx_pok.tasks.reconcile``, whose work goes to the worker's queue) with the plugin's windows, or compressed
ones for a short run (``--stale-requesting``: a row left ``requesting`` by the killed worker counts as abandoned after
that long, 600 s in the plugin; ``--pending-grace``: a pending row whose task was lost is sent again after that long,
120 s in the plugin). Then it waits until every credential is settled (emitted, or failed or held for staff).

What it shows, against the goals of issue 22 item 18: every learner emitted, except the rows whose POST was
ambiguous twice (handed to staff, counted); a second POK credential for one learner only where the row is flagged
possible duplicate, and never more of them than ambiguous POSTs (the 500s after creation counted by the simulator,
plus the POSTs the SIGKILL cut); nothing failed or held for staff because of the outage, the kills or the restarts.

Results go to ``var/bench/chaos.json`` (``$POK_BENCH_DIR`` overrides the directory), the worker logs beside it; the exit
status is 1 when the run itself broke (no Redis or MariaDB, a worker that died by itself, credentials never settled),
0 otherwise: the figures are the result, ``tests/test_bench_chaos.py`` asserts the goals on them.
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivateRedis:
    """
    ``redis-server`` on a free port of 127.0.0.1 with nothing persisted: the run's broker and cache, restarted by the
    run. Its port is chosen when this module is imported (``bench.worker`` reads the broker URL at import); the server
    starts with :meth:`start`.
    """

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.log_path = None

    def start(self, log_dir, timeout=15):
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.log_path = Path(log_dir) / "chaos-redis.log"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--daemonize", "no", "--logfile", str(self.log_path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the private redis-server on port {self.port} did not start; see {self.log_path}")
            time.sleep(0.05)

    def ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        """SIGTERM: with nothing to save, Redis exits at once and everything it held is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


REDIS = PrivateRedis()
os.environ["POK_BENCH_REDIS_URL"] = REDIS.url  # before bench.worker reads it: the broker, the cache, the worker's

from bench import worker as harness  # noqa: E402  isort: skip - sets up Django on bench.worker_settings

import psutil  # noqa: E402
import redis  # noqa: E402
import yaml  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, Max, Q, Sum  # noqa: E402
from opaque_keys.edx.keys import CourseKey  # noqa: E402

from bench import db  # noqa: E402
from bench import run as lms_parts  # noqa: E402
from bench.outage import LMS_QUEUE, RECEIVED, award, route_lms_tasks_here  # noqa: E402
from lms_sandbox.models import CourseOverview  # noqa: E402
from openedx_pok import tasks  # noqa: E402
from openedx_pok.course_setup import configuration  # noqa: E402
from openedx_pok.issuance import outage  # noqa: E402
from openedx_pok.issuance import reconcile as reconciliation  # noqa: E402
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate  # noqa: E402
from pok_simulator import Fault, PokSimulator  # noqa: E402

LEARNERS, AWARD_SECONDS, OUTAGE_SECONDS, CONCURRENCY = 1_000, 240, 60, 4
AMBIGUOUS_RATE, SEED = 0.05, 22
RECONCILE_EVERY = 300  # the Tutor plugin's beat schedule
STALE_REQUESTING = reconciliation.STALE_REQUESTING.total_seconds()
PENDING_GRACE = reconciliation.PENDING_GRACE.total_seconds()
REDIS_DOWN = 3
POK_LATENCY = 0.1
# When each event happens, as a share of the award window: the outage starts at OUTAGE_AT; the database connections
# are killed once it is over, while the backlog drains.
KILL_WORKER_AT, RESTART_REDIS_AT, OUTAGE_AT = 0.15, 0.3, 0.4
# Exits of the worker by itself (not the SIGKILL) the supervisor restarts before the run counts as broken.
MAX_WORKER_EXITS = 3
EVENT_WAIT = 30  # seconds an event waits for its moment (a credential requesting, a worker connection)
# The 500-after-create fault is queued with this many uses, so the simulator's count of what is left tells how many
# POSTs it answered (a fault with times=None keeps no count).
FAULT_USES = 10 ** 9
COURSE = "course-v1:ChaosX+Chaos+2026"
OUTAGE_ENDPOINTS = ("issue_credential", "get_organization", "get_template")
FINAL = Q(status=CredentialStatus.EMITTED) | Q(status=CredentialStatus.REVOKED) | Q(
    status__in=(CredentialStatus.FAILED, CredentialStatus.HELD), retryable=False)


def setup_course():
    key = CourseKey.from_string(COURSE)
    CourseOverview.objects.create(id=key, display_name="Credentials through chaos", org="ChaosX",
                                  certificates_display_behavior="early_no_info")
    CertificateTemplate.objects.create(course_key=key, template_id=lms_parts.TEMPLATE_ID)
    return key


def statuses(rows):
    return dict(rows.order_by().values_list("status").annotate(n=Count("id")).values_list("status", "n"))


def database_connection_id():
    with connection.cursor() as cursor:
        cursor.execute("SELECT CONNECTION_ID()")
        return cursor.fetchone()[0]


class Chaos:
    """The run: awards on schedule, the events on theirs, beat; what happened is written to ``self.events``."""

    def __init__(self, args, pok, course_key, users):
        self.args, self.pok, self.course_key, self.users = args, pok, course_key, users
        self.rows = PokCertificate.objects.filter(course_key=course_key)
        self.worker = harness.Worker(pok, args.concurrency)
        self.worker_logs = []
        self.worker_exits = []
        self.events = {}
        self.answered_500 = 0
        self.outage_counts = {}
        self.last_beat = time.monotonic()
        self.started = None

    # ---- beat --------------------------------------------------------------------------------------------------
    def beat(self):
        """What Celery beat sends every period: the reconcile task's plan, its work sent to the worker's queue."""
        if time.monotonic() - self.last_beat >= self.args.reconcile_every:
            self.last_beat = time.monotonic()
            tasks.reconcile(pending_grace=timedelta(seconds=self.args.pending_grace))

    def elapsed(self):
        return round(time.monotonic() - self.started, 1)

    # ---- the ambiguous POSTs --------------------------------------------------------------------------------------
    def add_ambiguous_fault(self, seed):
        self.pok.add_fault(Fault("status_after_create", endpoint="issue_credential", status=500,
                                 probability=self.args.ambiguous_rate, seed=seed, times=FAULT_USES))

    def take_ambiguous_count(self):
        """Count the 500s after creation the queued fault answered, and drop it (with any other fault)."""
        for fault, remaining in self.pok.faults:
            if fault.kind == "status_after_create":
                self.answered_500 += FAULT_USES - remaining
        self.pok.clear_faults()

    # ---- the worker and its supervisor ---------------------------------------------------------------------------
    def replace_worker(self):
        """Keep the log of the worker that is gone, start a new one (on the same queue)."""
        self.worker.log.close()
        kept = self.worker.log_path.with_name(f"chaos-worker-{len(self.worker_logs) + 1}.log")
        self.worker.log_path.replace(kept)
        self.worker_logs.append(kept)
        self.worker = harness.Worker(self.pok, self.args.concurrency)
        return kept

    def supervise(self, doing):
        """
        As the LMS worker's supervisor (Tutor's ``restart: unless-stopped``, a Kubernetes pod): a worker that exited
        by itself is started again, and counted with its last words. More than :data:`MAX_WORKER_EXITS` is a broken
        run.
        """
        if self.worker.process.poll() is None:
            return
        code, at = self.worker.process.returncode, self.elapsed()
        # No worker runs now: a credential still requesting had its POST cut (or never sent) by the exit.
        requesting = self.rows.filter(status=CredentialStatus.REQUESTING).count()
        kept = self.replace_worker()
        lines = [line for line in kept.read_text(errors="replace").splitlines() if "CRITICAL" in line]
        self.worker_exits.append({"at_s": at, "while": doing, "returncode": code, "requesting": requesting,
                                  "critical": lines[-1][:300] if lines else None, "log": str(kept)})
        if len(self.worker_exits) > MAX_WORKER_EXITS:
            raise RuntimeError(f"the worker exited {len(self.worker_exits)} times by itself; see {kept}")

    # ---- the events ----------------------------------------------------------------------------------------------
    def kill_worker(self):
        """SIGKILL the worker's main and pool processes while a POST is on its way, then start a new worker."""
        planned = self.elapsed()
        deadline = time.monotonic() + EVENT_WAIT
        while not self.rows.filter(status=CredentialStatus.REQUESTING).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        main = psutil.Process(self.worker.process.pid)
        processes = [main, *main.children(recursive=True)]
        for process in processes:
            try:
                process.send_signal(signal.SIGKILL)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(processes, timeout=10)
        self.worker.process.wait(timeout=10)
        killed_at = self.elapsed()
        requesting = list(self.rows.filter(status=CredentialStatus.REQUESTING).values_list("id", flat=True))
        began = time.monotonic()
        self.replace_worker()
        self.events["worker_sigkill"] = {"at_s": killed_at, "waited_s": round(killed_at - planned, 1),
                                         "processes_killed": len(processes),
                                         "requesting_at_kill": len(requesting), "requesting_ids": requesting,
                                         "restart_s": round(time.monotonic() - began, 1)}

    def restart_redis(self):
        """Stop the private Redis (its queues, the worker's held retries and the cache are lost), then start it."""
        client = redis.Redis.from_url(REDIS.url)
        queued = sum(client.llen(key) for key in client.scan_iter(match=f"{harness.QUEUE}*")
                     if client.type(key) == b"list")
        unacked = client.hlen("unacked")
        client.close()
        at = self.elapsed()
        REDIS.stop()
        time.sleep(self.args.redis_down)
        REDIS.start(settings.BENCH_DIR)
        self.events["redis_restart"] = {"at_s": at, "down_s": round(self.elapsed() - at, 1),
                                        "messages_queued_lost": queued, "messages_unacked_lost": unacked}
        self.supervise("Redis was restarted")

    def start_outage(self):
        self.take_ambiguous_count()
        self.outage_counts = {endpoint: self.pok.count(endpoint) for endpoint in OUTAGE_ENDPOINTS}
        self.pok.add_fault(Fault("respond", status=503, body='{"message": "POK is being deployed (simulated)"}',
                                 times=None))
        self.events["outage"] = {"start_s": self.elapsed(), "seconds": self.args.outage}

    def end_outage(self):
        self.pok.clear_faults()
        self.add_ambiguous_fault(self.args.seed + 1)
        event = self.events["outage"]
        event["end_s"] = self.elapsed()
        during = {endpoint: self.pok.count(endpoint) - before for endpoint, before in self.outage_counts.items()}
        event.update(posts=during["issue_credential"], health_checks=during["get_organization"],
                     template_gets=during["get_template"])
        event["paused_accounts_at_end"] = [name for name, _pause in outage.paused_accounts()]
        event["needing_staff_at_end"] = self.rows.filter(status=CredentialStatus.FAILED, retryable=False).count()

    def kill_database_connections(self):
        """``KILL CONNECTION`` every connection of the worker to the run's database, from another MariaDB session."""
        own, planned = database_connection_id(), self.elapsed()
        began = time.monotonic()
        with db.connect() as killer:
            cursor = killer.cursor()
            query = "SELECT ID, COMMAND FROM information_schema.PROCESSLIST WHERE DB = %s AND ID NOT IN (%s, %s)"
            # Several of the worker's processes at work if that comes within a few seconds, else whichever is there.
            while True:
                cursor.execute(query, (harness.DATABASE, own, killer.thread_id()))
                found = cursor.fetchall()
                waited = time.monotonic() - began
                if len(found) >= 2 or (found and waited > 3) or waited > EVENT_WAIT:
                    break
                time.sleep(0.005)
            killed = 0
            for connection_id, _command in found:
                try:
                    cursor.execute(f"KILL CONNECTION {int(connection_id)}")
                    killed += 1
                except killer.OperationalError:  # it ended by itself between the SELECT and the KILL
                    pass
        at = self.elapsed()
        self.events["database_kill"] = {"at_s": at, "waited_s": round(at - planned, 1), "connections_killed": killed,
                                        "in_a_query": sum(1 for _id, command in found if command == "Query")}

    # ---- the run -------------------------------------------------------------------------------------------------
    def run(self):
        # Before the chaos: one credential, so that the template is cached and the worker warm (as on any day).
        award(self.users[0], self.course_key)
        self.wait_final(1, 120)
        counts = {endpoint: self.pok.count(endpoint) for endpoint in ("issue_credential", "get_organization")}
        self.add_ambiguous_fault(self.args.seed)
        window, count = self.args.award_seconds, self.args.learners
        self.started = time.monotonic()
        # Planned offsets; an event that waits for its moment (a POST on its way) delays the ones after it, and the
        # outage lasts its seconds from whenever it started.
        schedule = [(window * KILL_WORKER_AT, self.kill_worker), (window * RESTART_REDIS_AT, self.restart_redis),
                    (window * OUTAGE_AT, self.start_outage), (self.outage_over, self.end_outage),
                    (self.pause_over, self.kill_database_connections)]
        for index, user in enumerate(self.users[1:]):
            due = self.started + window * index / count
            while (now := time.monotonic()) < due or self.event_due(schedule):
                if self.event_due(schedule):
                    schedule.pop(0)[1]()
                    continue
                self.beat()
                self.supervise("awarding")
                time.sleep(min(0.1, max(0.0, due - now)))
            award(user, self.course_key)
            self.supervise("awarding")
        awarded_s = self.elapsed()
        while schedule:  # the awards ended before the events: they still happen, in order
            if self.event_due(schedule):
                schedule.pop(0)[1]()
            else:
                self.beat()
                self.supervise("waiting for the events")
                time.sleep(0.1)
        settle_s = self.wait_final(count + 1, self.args.settle_timeout)
        self.take_ambiguous_count()
        self.worker_logs.append(self.worker.log_path)
        return self.figures(counts, awarded_s, settle_s)

    def event_due(self, schedule):
        """Whether the next event is due: at its planned offset, or when its condition says so."""
        if not schedule:
            return False
        at = schedule[0][0]
        return at() if callable(at) else time.monotonic() >= self.started + at

    def outage_over(self):
        return self.elapsed() >= self.events["outage"]["start_s"] + self.args.outage

    def pause_over(self):
        """The account's pause ended (its backlog drains now), or it is taking longer than any health check wait."""
        return not outage.paused_accounts() or self.elapsed() >= self.events["outage"]["end_s"] + EVENT_WAIT

    def wait_final(self, count, timeout):
        """Until ``count`` credentials of the course are settled for good; beats on the way. Returns seconds waited."""
        started = time.monotonic()
        while self.rows.filter(FINAL).count() < count:
            self.supervise("settling the credentials")
            if time.monotonic() - started > timeout:
                raise RuntimeError(f"credentials unsettled {timeout} s after the awards: {statuses(self.rows)}; "
                                   f"see {self.worker.log_path}")
            self.beat()
            time.sleep(0.2)
        return time.monotonic() - started

    def figures(self, counts, awarded_s, settle_s):
        users = self.users[1:]
        rows = self.rows.filter(user_id__in=[user.id for user in users])
        by_user = {row["user_id"]: row for row in rows.values(
            "user_id", "status", "retryable", "possible_duplicate", "ambiguous_attempts", "pok_credential_id",
            "status_reason")}
        duplicates = unflagged = stored_elsewhere = without = 0
        for user in users:
            ids = [credential["id"] for credential in self.pok.credentials_for(user.email)]
            row = by_user[user.id]
            duplicates += max(0, len(ids) - 1)
            unflagged += len(ids) > 1 and not row["possible_duplicate"]
            if row["status"] == CredentialStatus.EMITTED:
                without += not ids
                stored_elsewhere += row["pok_credential_id"] not in ids
        staff = [row for row in by_user.values() if row["status"] in (CredentialStatus.FAILED, CredentialStatus.HELD)
                 and not row["retryable"]]
        reasons = {}
        for row in staff:
            reasons[row["status_reason"]] = reasons.get(row["status_reason"], 0) + 1
        # POSTs whose answer the plugin may not have received: the 500s after creation and the POSTs the worker's
        # deaths cut (an upper bound: a row requesting when its worker died may not have sent its POST yet).
        cut = self.events["worker_sigkill"]["requesting_at_kill"] + sum(exit_["requesting"] for exit_ in
                                                                          self.worker_exits)
        ambiguous_posts = self.answered_500 + cut
        logs = "".join(path.read_text(errors="replace") for path in self.worker_logs)
        emitted = rows.filter(status=CredentialStatus.EMITTED).count()
        ambiguous_twice = sum(1 for row in staff if row["ambiguous_attempts"] >= 2 and row["status"] == "failed")
        result = {
            "learners": len(users), "awarded_in_s": awarded_s, "settled_after_awards_s": round(settle_s, 1),
            "events": self.events, "worker_exits": self.worker_exits, "statuses": statuses(rows),
            "emitted": emitted,
            "failed": rows.filter(status=CredentialStatus.FAILED).count(),
            "held": rows.filter(status=CredentialStatus.HELD).count(),
            "needing_staff": len(staff), "staff_ambiguous_twice": ambiguous_twice,
            "staff_for_other_reasons": len(staff) - ambiguous_twice, "staff_reasons": reasons,
            "duplicates": duplicates, "duplicates_not_flagged": unflagged,
            "possible_duplicate_flags": rows.filter(possible_duplicate=True).count(),
            "emitted_without_pok_credential": without, "emitted_with_another_learners_id": stored_elsewhere,
            "ambiguous_attempts": rows.aggregate(s=Sum("ambiguous_attempts"))["s"] or 0,
            "pok_500_after_create": self.answered_500,
            "ambiguous_posts": ambiguous_posts, "posts_cut_by_worker_deaths_at_most": cut,
            "posts_total": self.pok.count("issue_credential") - counts["issue_credential"],
            "health_checks_total": self.pok.count("get_organization") - counts["get_organization"],
            "max_tries": rows.aggregate(m=Max("tries"))["m"],
            "issue_task_runs": len(RECEIVED.findall(logs)),
            "celery_retries": logs.count("retry: Retry in"),
            "stores_retried_after_a_database_error": logs.count("POK: storing credential"),
            "tasks_that_raised": logs.count("raised unexpected"),
        }
        result["goals"] = {
            "every_learner_emitted_or_ambiguous_twice": emitted + ambiguous_twice == len(users),
            "nothing_for_staff_because_of_the_chaos": result["staff_for_other_reasons"] == 0 and result["held"] == 0,
            "duplicates_only_where_flagged": unflagged == 0,
            "duplicates_within_ambiguous_posts": duplicates <= ambiguous_posts,
            "emitted_rows_point_at_their_learners_credential": without == 0 and stored_elsewhere == 0,
        }
        return result


def print_report(results):
    meta, r = results["meta"], results["result"]
    events = r["events"]
    print(f"openedx-pok chaos run, {meta['date']}, {meta['server']}, private Redis {meta['broker']}, prefork worker "
          f"x{meta['concurrency']}; POK {meta['pok_latency_ms']:.0f} ms, {meta['ambiguous_rate']:.0%} of POSTs "
          f"answered 500 after creating the credential; beat every {meta['reconcile_every']} s (stale requesting "
          f"{meta['stale_requesting_s']} s, pending grace {meta['pending_grace_s']} s), certificate wait "
          f"{meta['certificate_wait_delay_s']} s, backoff base {meta['retry_backoff_base_s']} s")
    print(f"  {r['learners']} awards in {r['awarded_in_s']} s; settled {r['settled_after_awards_s']} s after the last")
    kill, restart, down, dbkill = (events["worker_sigkill"], events["redis_restart"], events["outage"],
                                   events["database_kill"])
    timeline = [
        (kill["at_s"], f"worker SIGKILL ({kill['processes_killed']} processes, {kill['requesting_at_kill']} "
                       f"credentials requesting), restarted in {kill['restart_s']} s"),
        (restart["at_s"], f"Redis restarted ({restart['down_s']} s down; messages lost: "
                          f"{restart['messages_queued_lost']} queued, {restart['messages_unacked_lost']} unacked)"),
        (down["start_s"], f"to {down['end_s']} s POK 503 outage: {down['posts']} POSTs, {down['health_checks']} "
                          f"health checks, {down['template_gets']} template GETs; paused at its end "
                          f"{down['paused_accounts_at_end']}, needing staff {down['needing_staff_at_end']}"),
        (dbkill["at_s"], f"KILL CONNECTION: {dbkill['connections_killed']} worker connections "
                         f"({dbkill['in_a_query']} in a query) once the account's pause was over"),
        *((exit_["at_s"], f"the worker exited by itself ({exit_['returncode']}, {exit_['requesting']} credentials "
                          f"requesting) while {exit_['while']}, restarted as its supervisor would: {exit_['critical']}")
          for exit_ in r["worker_exits"]),
    ]
    for at, text in sorted(timeline, key=lambda item: item[0]):
        print(f"  t={at} s {text}")
    print(f"  emitted {r['emitted']}, needing staff {r['needing_staff']} (ambiguous twice "
          f"{r['staff_ambiguous_twice']}, other reasons {r['staff_for_other_reasons']}), held {r['held']}; "
          f"statuses {r['statuses']}")
    print(f"  ambiguous POSTs {r['ambiguous_posts']} (500 after create {r['pok_500_after_create']}, cut by the "
          f"worker's deaths <= {r['posts_cut_by_worker_deaths_at_most']}); ambiguous attempts counted "
          f"{r['ambiguous_attempts']}, possible-duplicate flags {r['possible_duplicate_flags']}, duplicates "
          f"{r['duplicates']} (not flagged {r['duplicates_not_flagged']})")
    print(f"  POSTs {r['posts_total']}, health checks {r['health_checks_total']}, max tries {r['max_tries']}, issuance "
          f"task runs {r['issue_task_runs']} (Celery retries logged {r['celery_retries']}); stores retried after a "
          f"database error {r['stores_retried_after_a_database_error']}, tasks that raised {r['tasks_that_raised']}")
    print("  goals: " + ", ".join(f"{name} {'yes' if met else 'NO'}" for name, met in r["goals"].items()))


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__.strip().split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=LEARNERS, help="awards (default %(default)s)")
    parser.add_argument("--award-seconds", type=float, default=None,
                        help="the awards are spread over this many seconds (default: 0.24 s per learner)")
    parser.add_argument("--outage", type=float, default=OUTAGE_SECONDS,
                        help="seconds POK answers 503 to everything (default %(default)s)")
    parser.add_argument("--ambiguous-rate", type=float, default=AMBIGUOUS_RATE,
                        help="share of POSTs answered 500 after creating the credential (default %(default)s)")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the ambiguous POSTs (default %(default)s)")
    parser.add_argument("--redis-down", type=float, default=REDIS_DOWN,
                        help="seconds Redis is down when restarted (default %(default)s)")
    parser.add_argument("--reconcile-every", type=float, default=RECONCILE_EVERY,
                        help="seconds between two reconcile runs, as Celery beat (default %(default)s)")
    parser.add_argument("--stale-requesting", type=float, default=STALE_REQUESTING,
                        help="seconds after which a row left requesting is abandoned (default: the plugin's, "
                             "%(default)s)")
    parser.add_argument("--pending-grace", type=float, default=PENDING_GRACE,
                        help="seconds before the reconcile run sends a pending row again (default: the plugin's, "
                             "%(default)s)")
    parser.add_argument("--certificate-wait-delay", type=float, default=settings.POK_CERTIFICATE_WAIT_DELAY,
                        help="POK_CERTIFICATE_WAIT_DELAY of the run, in the operator's YAML (default: the plugin's, "
                             "%(default)s)")
    parser.add_argument("--backoff-base", type=float, default=settings.POK_RETRY_BACKOFF_BASE,
                        help="POK_RETRY_BACKOFF_BASE of the run, in the operator's YAML (default: the plugin's, "
                             "%(default)s)")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="worker processes (default %(default)s)")
    parser.add_argument("--settle-timeout", type=float, default=None,
                        help="seconds to wait for the credentials after the awards (default: from the windows)")
    args = parser.parse_args(argv)
    if args.award_seconds is None:
        args.award_seconds = max(args.learners * AWARD_SECONDS / LEARNERS, args.outage / 0.5)
    if args.learners < 1 or args.outage <= 0 or not 0 < args.ambiguous_rate < 1:
        parser.error("--learners and --outage must be positive, --ambiguous-rate in (0, 1)")
    if args.award_seconds * OUTAGE_AT + args.outage >= args.award_seconds:
        parser.error("the outage must end inside the award window: raise --award-seconds or shorten --outage")
    if args.settle_timeout is None:
        # The abandoned rows wait for the stale window and a beat; a resend after a 500 waits its backoff (30 s).
        args.settle_timeout = 300 + args.stale_requesting + args.pending_grace + 3 * args.reconcile_every
    return args


def operator_settings(args):
    """
    The plugin's waits of the run, in the operator's YAML (``LMS_CFG``, what Tutor writes) that the worker's settings
    read, and in this process's settings: the plugin's own values unless a short run compresses them.
    """
    tokens = {}
    if os.environ.get("LMS_CFG"):
        tokens = yaml.safe_load(Path(os.environ["LMS_CFG"]).read_text(encoding="utf-8")) or {}
    tokens.update({"POK_CERTIFICATE_WAIT_DELAY": args.certificate_wait_delay,
                   "POK_RETRY_BACKOFF_BASE": args.backoff_base})
    path = settings.BENCH_DIR / "chaos-lms.yml"
    path.write_text(yaml.safe_dump(tokens), encoding="utf-8")
    os.environ["LMS_CFG"] = str(path)
    settings.POK_CERTIFICATE_WAIT_DELAY = args.certificate_wait_delay
    settings.POK_RETRY_BACKOFF_BASE = args.backoff_base


def main(argv=None):
    """Start the private Redis, create the scratch database, run, report; exit 1 only when the run itself broke."""
    args = parse_args(argv)
    settings.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    # The plugin's windows in this process, where the reconcile plan is made (compressed for a short run).
    reconciliation.STALE_REQUESTING = timedelta(seconds=args.stale_requesting)
    operator_settings(args)
    try:
        REDIS.start(settings.BENCH_DIR)
        db.create_database(harness.DATABASE)
    except Exception as exc:  # noqa: BLE001 - no Redis or no MariaDB: the run cannot happen, and says why
        REDIS.stop()
        print(f"chaos run failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    chaos = None
    try:
        call_command("migrate", verbosity=0)
        base = harness.build_learners(args.learners + 1)
        users = list(get_user_model().objects.filter(id__gt=base).order_by("id")[:args.learners + 1])
        route_lms_tasks_here()
        course_key = setup_course()
        with PokSimulator() as pok:
            pok.latency = POK_LATENCY
            settings.POK_API_URL, settings.POK_API_KEY = pok.url, pok.api_key
            configuration.reset_clients()
            chaos = Chaos(args, pok, course_key, users)
            try:
                result = chaos.run()
            finally:
                chaos.worker.stop()
        with connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            server = cursor.fetchone()[0]
    except RuntimeError as exc:
        print(f"chaos run failed: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
        db.drop_database(harness.DATABASE)
        REDIS.stop()
    results = {"meta": {
        "date": datetime.now(UTC).isoformat(timespec="seconds"), "machine": lms_parts.machine(), "server": server,
        "driver": settings.MYSQL_DRIVER, "broker": REDIS.url, "queue": harness.QUEUE, "lms_queue": LMS_QUEUE,
        "concurrency": args.concurrency, "learners": args.learners, "award_seconds": args.award_seconds,
        "outage_s": args.outage, "ambiguous_rate": args.ambiguous_rate, "seed": args.seed,
        "redis_down_s": args.redis_down, "reconcile_every": args.reconcile_every,
        "stale_requesting_s": args.stale_requesting, "pending_grace_s": args.pending_grace,
        "pok_latency_ms": POK_LATENCY * 1000, "retry_backoff_base_s": args.backoff_base,
        "certificate_wait_delay_s": args.certificate_wait_delay,
        "pause_after_failures": outage.PAUSE_AFTER_FAILURES, "worker_logs": [str(p) for p in chaos.worker_logs],
        "duration_s": round(time.perf_counter() - began, 1),
    }, "result": result}
    print_report(results)
    harness.write_results(results, "chaos.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
