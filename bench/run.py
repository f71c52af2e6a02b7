"""
``python -m bench.run [--quick] [--learners N] [--views N] [--no-mariadb] [--sizes ROWS...]``: what openedx-pok
costs the LMS, POK, a page view and the credential admin.

Part 1a times what the LMS spends on certificate generation (the ``CertificateCreationRequested`` filter and the
queueing of the LMS's generation task in a ``transaction.atomic()`` block, then that task as the LMS's worker runs it:
the ``GeneratedCertificate`` save, its openedx-events and the on-commit enqueue of the issuance task) with the plugin
removed, with the plugin on a course it does not handle, and with the
plugin on a POK course while the POK simulator answers in 0 ms and in 1000 ms. Celery is not eager (see
``bench.settings``), so, as in the LMS, the task only goes to a broker; POK latency must not show up here at all.

Part 1b then plays the worker: it takes every message off the in-memory broker, runs the tasks and counts what POK
received per issued credential.

Part 2 views the certificate page of an emitted credential (POK answering in 200 ms) with and without the plugin,
counts POK calls and database queries per view, and times the credential status endpoint for its owner.

Measurements interleave the configurations (a seeded shuffle per round) so that a slow moment of the machine or the
growing database is shared by all of them instead of landing on one. Nothing here asserts on time: the numbers are
printed as a table and written to ``var/bench/results.json`` (``$POK_BENCH_DIR`` overrides the directory).

These parts run on a fresh SQLite file. Then, unless ``--no-mariadb``, ``bench.mysql`` runs in its own process on
MariaDB with 10,000 and 100,000 credentials: the credential admin's list page and the same three parts again on the
big tables (see that module).
"""
import argparse
import gc
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import time
import timeit
from collections import Counter, defaultdict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

import django

# Forced, not setdefault: under test_settings Celery is eager, and the benchmark would time POK inside the LMS path.
os.environ["DJANGO_SETTINGS_MODULE"] = "bench.settings"
django.setup()

from django.conf import settings  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client, override_settings  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.urls import reverse  # noqa: E402
from django.utils.module_loading import import_string  # noqa: E402
from opaque_keys.edx.keys import CourseKey  # noqa: E402

from lms_sandbox.celery import app as celery_app  # noqa: E402
from lms_sandbox.factories import CourseOverviewFactory, OrganizationFactory, UserFactory  # noqa: E402
from lms_sandbox.generation import generate_certificate  # noqa: E402
from lms_sandbox.grades import CourseGrade  # noqa: E402
from lms_sandbox.models import GeneratedCertificate  # noqa: E402
from openedx_pok import api  # noqa: E402
from openedx_pok.apps import OpenedxPokConfig  # noqa: E402
from openedx_pok.course_setup import configuration  # noqa: E402
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate  # noqa: E402
from openedx_pok.settings.common import PIPELINE_STEPS  # noqa: E402
from pok_simulator import PokSimulator  # noqa: E402

SEED = 20261123
DEFAULT_LEARNERS = 100
DEFAULT_VIEWS = 100
QUICK_LEARNERS = 5
QUICK_VIEWS = 10
# Untimed runs per configuration first: imports, first queries, the broker connection and the client pool.
WARMUP = 2
# Credentials issued by the worker with POK at 1000 ms: enough to see the latency land there, each costs ~1 s.
SLOW_WORKER_SAMPLE = 3
QUICK_SLOW_WORKER_SAMPLE = 1
# A worker that re-enqueues forever would be a bug; stop draining instead of hanging the benchmark.
MAX_DRAIN_ROUNDS = 20

POK_COURSE = "course-v1:BenchX+POK101+2026"
PLAIN_COURSE = "course-v1:BenchX+PLAIN101+2026"
TEMPLATE_ID = "tpl-basic"


@dataclass(frozen=True)
class IssuanceConfig:
    """One way the LMS can be set up when a learner earns a certificate."""

    key: str
    label: str
    course: str
    plugin: bool
    latency: float


ISSUANCE_CONFIGS = (
    IssuanceConfig("no_plugin", "plugin removed (baseline)", POK_COURSE, plugin=False, latency=0.0),
    IssuanceConfig("unmapped", "plugin, course not mapped to POK", PLAIN_COURSE, plugin=True, latency=0.0),
    IssuanceConfig("pok_0ms", "plugin, POK course, POK 0 ms", POK_COURSE, plugin=True, latency=0.0),
    IssuanceConfig("pok_1000ms", "plugin, POK course, POK 1000 ms", POK_COURSE, plugin=True, latency=1.0),
)
BASELINE = "no_plugin"


@dataclass(frozen=True)
class ViewConfig:
    """One way a certificate page can be served; ``expected`` is the status code that proves the setup is right."""

    key: str
    label: str
    plugin: bool
    emitted: bool
    expected: int


VIEW_CONFIGS = (
    ViewConfig("no_plugin", "same certificate, plugin removed (baseline)", plugin=False, emitted=True, expected=200),
    ViewConfig("unmapped", "plugin, course not mapped (page rendered)", plugin=True, emitted=False, expected=200),
    ViewConfig("emitted", "plugin, emitted credential (302 to POK)", plugin=True, emitted=True, expected=302),
)
VIEW_LATENCY = 0.2


@dataclass
class Samples:
    """Wall-clock samples of one configuration, in nanoseconds, plus the counters gathered alongside."""

    label: str
    times_ns: list = field(default_factory=list)
    pok_requests: int = 0

    def summary(self, baseline=None):
        """n, median and p95 in ms, and their ratios to the baseline's (None for the baseline itself)."""
        median, p95 = _ms(statistics.median(self.times_ns)), _ms(_p95(self.times_ns))
        result = {"label": self.label, "n": len(self.times_ns), "median_ms": median, "p95_ms": p95,
                  "pok_requests": self.pok_requests,
                  "samples_ms": [_ms(value) for value in self.times_ns]}
        if baseline is not None:
            result["ratio_median"] = round(median / baseline["median_ms"], 3)
            result["ratio_p95"] = round(p95 / baseline["p95_ms"], 3)
        return result


def _ms(nanoseconds):
    return round(nanoseconds / 1e6, 3)


def _p95(values):
    """95th percentile, interpolated between the two nearest samples (the max when there are few)."""
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[94]


@contextmanager
def plugin_removed():
    """
    The LMS as if openedx-pok were not installed: its pipeline steps out of the filter configuration and its
    openedx-events receivers disconnected. Other plugins' steps, if any, stay where they are.
    """
    filters = {}
    for filter_type, config in settings.OPEN_EDX_FILTERS_CONFIG.items():
        config = dict(config)
        config["pipeline"] = [step for step in config.get("pipeline", []) if step not in PIPELINE_STEPS.values()]
        filters[filter_type] = config
    receivers = OpenedxPokConfig.plugin_app["signals_config"]["lms.djangoapp"]["receivers"]
    disconnected = []
    try:
        for receiver in receivers:
            signal = import_string(receiver["signal_path"])
            # Django keys a receiver by its dispatch_uid and sender (the post_save ones have one).
            sender = import_string(receiver["sender_path"]) if receiver.get("sender_path") else None
            if not signal.disconnect(sender=sender, dispatch_uid=receiver["dispatch_uid"]):
                raise RuntimeError(f"receiver {receiver['dispatch_uid']} was not connected: the baseline would lie")
            disconnected.append((signal, sender, receiver))
        with override_settings(OPEN_EDX_FILTERS_CONFIG=filters):
            yield
    finally:
        for signal, sender, receiver in disconnected:
            function = import_string(f"openedx_pok.receivers.{receiver['receiver_func_name']}")
            signal.connect(function, sender=sender, dispatch_uid=receiver["dispatch_uid"])


@contextmanager
def plugin_state(installed):
    """Enter :func:`plugin_removed` unless the plugin stays installed."""
    if installed:
        yield
    else:
        with plugin_removed():
            yield


@contextmanager
def gc_paused():
    """
    A collection in the middle of one sample would be charged to whichever configuration happened to be running:
    collections wait until the sample is over (the setup's objects are frozen, so they stay cheap).
    """
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class Bench:
    """Runs the three parts against one simulator and one fresh database; each part returns a JSON-ready dict."""

    def __init__(self, pok, learners, views, slow_sample, prefix=""):
        self.pok = pok
        self.prefix = prefix  # of the learners' usernames: bench.mysql runs the parts again on the same database
        self.learners = learners
        self.views = views
        self.slow_sample = slow_sample
        self.order = random.Random(SEED)
        self.config_of_user = {}
        self.users = {}

    # ---- setup ------------------------------------------------------------------------------------------------
    def setup(self):
        """Two courses of one organization, one mapped to a POK template; a fresh set of learners per config."""
        settings.POK_API_URL = self.pok.url
        settings.POK_API_KEY = self.pok.api_key
        cache.clear()
        configuration.reset_clients()
        if not CertificateTemplate.objects.filter(course_key=CourseKey.from_string(POK_COURSE)).exists():
            OrganizationFactory(short_name="BenchX", name="Bench University")
            for course_id, title in ((POK_COURSE, "Verifiable Credentials 101"), (PLAIN_COURSE, "Plain Certificates")):
                CourseOverviewFactory(id=CourseKey.from_string(course_id), display_name=title, org="BenchX")
            CertificateTemplate.objects.create(course_key=CourseKey.from_string(POK_COURSE), template_id=TEMPLATE_ID)
        for config in ISSUANCE_CONFIGS:
            users = [
                UserFactory(username=f"{self.prefix}{config.key}-{index}", first_name=f"Ada{index}",
                            last_name="Lovelace",
                            profile__name=f"Ada{index} Lovelace")
                for index in range(WARMUP + self.learners)
            ]
            self.users[config.key] = users
            self.config_of_user.update({user.id: config.key for user in users})
        gc.collect()
        gc.freeze()

    # ---- part 1a ----------------------------------------------------------------------------------------------
    def award(self, config, user, captured=None):
        """
        Earn a certificate the way the LMS path does it; returns the nanoseconds the LMS spent and POK calls.

        ``captured``: a CaptureQueriesContext to count the SQL of this award (only for untimed awards: capturing
        costs time of its own).
        """
        self.pok.latency = config.latency
        grade = CourseGrade(percent=0.9, passed=True, letter_grade="Pass")
        course_key = CourseKey.from_string(config.course)
        with plugin_state(config.plugin), captured if captured is not None else nullcontext():
            before = self.pok.count()
            with gc_paused():
                start = time.perf_counter_ns()
                with transaction.atomic():
                    generate_certificate(user, course_key, grade)
                # The LMS's worker, two seconds later in the LMS: the generation task saves the certificate.
                for task_name, args, kwargs in self.take_messages(settings.BENCH_LMS_QUEUE):
                    celery_app.tasks[task_name].apply(args=args, kwargs=kwargs)
                elapsed = time.perf_counter_ns() - start
            pok_requests = self.pok.count() - before
        certificate = GeneratedCertificate.objects.filter(user=user, course_id=course_key).first()
        if certificate is None or certificate.status != "downloadable":
            raise RuntimeError(f"{config.key}: the certificate is {certificate and certificate.status}; "
                               "the benchmark is broken")
        return elapsed, pok_requests

    def issuance_time(self):
        """Part 1a: LMS time inside certificate generation, per configuration, interleaved."""
        samples = {config.key: Samples(config.label) for config in ISSUANCE_CONFIGS}
        queries = {}
        for index in range(WARMUP):
            for config in ISSUANCE_CONFIGS:
                captured = CaptureQueriesContext(connection) if index == WARMUP - 1 else None
                self.award(config, self.users[config.key][index], captured)
                if captured is not None:
                    queries[config.key] = [query["sql"] for query in captured.captured_queries]
        for index in range(WARMUP, WARMUP + self.learners):
            for config in self.order.sample(ISSUANCE_CONFIGS, len(ISSUANCE_CONFIGS)):
                elapsed, pok_requests = self.award(config, self.users[config.key][index])
                samples[config.key].times_ns.append(elapsed)
                samples[config.key].pok_requests += pok_requests
        self.pok.latency = 0.0
        baseline = samples[BASELINE].summary()
        result = {key: (value.summary(baseline) if key != BASELINE else baseline) for key, value in samples.items()}
        for key, sql in queries.items():
            result[key]["queries"] = len(sql)
            result[key]["plugin_queries"] = sum(1 for statement in sql if "openedx_pok_" in statement)
            result[key]["sql"] = sql
        slow, fast = result["pok_1000ms"], result["pok_0ms"]
        return {
            "what": "wall time of the LMS path: generate_certificate() (filter, queue) in transaction.atomic(), "
                    "then the LMS's generation task (save, events, on_commit)",
            "configurations": result,
            "baseline": BASELINE,
            "latency_ratio_median_1000ms_vs_0ms": round(slow["median_ms"] / fast["median_ms"], 3),
            "latency_ratio_p95_1000ms_vs_0ms": round(slow["p95_ms"] / fast["p95_ms"], 3),
            "pok_requests_during_generation": sum(value.pok_requests for value in samples.values()),
        }

    # ---- part 1b ----------------------------------------------------------------------------------------------
    @staticmethod
    def take_messages(queue=None):
        """Everything on the plugin's queue (or ``queue``), as (task name, args, kwargs), the way a worker gets it."""
        messages = []
        queue = queue or settings.POK_CELERY_QUEUE or celery_app.conf.task_default_queue
        with celery_app.connection_for_read() as broker:
            channel = broker.default_channel
            while (message := channel.basic_get(queue, no_ack=True)) is not None:
                args, kwargs, _embed = message.decode()
                messages.append((message.headers["task"], args, kwargs))
        return messages

    def work(self, messages):
        """Run the tasks of ``messages`` as a worker would, then whatever they enqueued in turn (retries)."""
        ran = 0
        for _round in range(MAX_DRAIN_ROUNDS):
            for task_name, args, kwargs in messages:
                celery_app.tasks[task_name].apply(args=args, kwargs=kwargs)
                ran += 1
            messages = self.take_messages()
            if not messages:
                return ran
        raise RuntimeError("tasks keep re-enqueueing themselves; see the credential rows for the reason")

    def issue_group(self, messages_by_row, row_ids):
        """Issue the credentials of ``row_ids``; returns POK request deltas, worker ns per credential and statuses."""
        before = {endpoint: self.pok.count(endpoint) for endpoint in ("issue_credential", "get_template")}
        total_before = self.pok.count()
        worker_ns, tasks_run = [], 0
        for row_id in row_ids:
            start = time.perf_counter_ns()
            tasks_run += self.work(messages_by_row.pop(row_id))
            worker_ns.append(time.perf_counter_ns() - start)
        statuses = Counter(PokCertificate.objects.filter(id__in=row_ids).values_list("status", flat=True))
        credentials = len(row_ids)
        posts = self.pok.count("issue_credential") - before["issue_credential"]
        template_gets = self.pok.count("get_template") - before["get_template"]
        total = self.pok.count() - total_before
        return {
            "credentials": credentials,
            "emitted": statuses.get(CredentialStatus.EMITTED, 0),
            "statuses": dict(statuses),
            "tasks_run": tasks_run,
            "posts": posts,
            "template_gets": template_gets,
            "requests": total,
            "posts_per_credential": round(posts / credentials, 4),
            "template_gets_per_credential": round(template_gets / credentials, 4),
            "requests_per_credential": round(total / credentials, 4),
            "worker_median_ms": _ms(statistics.median(worker_ns)),
        }

    def issuance_requests(self):
        """Part 1b: drain the broker like a worker and count POK requests per issued credential."""
        messages = self.take_messages()
        messages_by_row = defaultdict(list)
        for message in messages:
            if message[0] != api.ISSUE_TASK_NAME:
                raise RuntimeError(f"unexpected task on the broker: {message[0]}")
            messages_by_row[message[1][0]].append(message)
        # This run's learners only: on MariaDB the table also holds the load data (bench.data).
        rows = dict(PokCertificate.objects.filter(user_id__in=list(self.config_of_user))
                    .values_list("id", "user_id"))
        by_config = defaultdict(list)
        for row_id in sorted(rows):
            by_config[self.config_of_user[rows[row_id]]].append(row_id)
        unexpected = set(by_config) - {"pok_0ms", "pok_1000ms"}
        if unexpected or set(messages_by_row) != set(rows):
            raise RuntimeError(f"credential rows or tasks where none belong: {sorted(unexpected)}")

        # The template cache starts empty, so the first credential pays the one template GET of the run.
        cache.clear()
        self.pok.latency = 0.0
        fast = self.issue_group(messages_by_row, by_config["pok_0ms"])
        self.pok.latency = 1.0
        slow_rows = by_config["pok_1000ms"][:self.slow_sample]
        slow = self.issue_group(messages_by_row, slow_rows)
        self.pok.latency = 0.0
        rest = self.issue_group(messages_by_row, by_config["pok_1000ms"][self.slow_sample:]) \
            if len(by_config["pok_1000ms"]) > self.slow_sample else None
        credentials = len(rows)
        everything = {
            "credentials": credentials,
            "emitted": PokCertificate.objects.filter(id__in=list(rows), status=CredentialStatus.EMITTED).count(),
            "posts_per_credential": round(self.pok.count("issue_credential") / credentials, 4),
            "template_gets_per_credential": round(self.pok.count("get_template") / credentials, 4),
            "requests_per_credential": round(self.pok.count() / credentials, 4),
        }
        return {
            "what": "POK requests while a worker runs every task the LMS enqueued (simulator counts)",
            "tasks_enqueued": len(messages),
            "tasks_enqueued_per_credential": round(len(messages) / credentials, 4),
            "pok_0ms": fast,
            "pok_1000ms_sample": slow,
            "pok_1000ms_rest": rest,
            "all": everything,
        }

    # ---- part 2 -----------------------------------------------------------------------------------------------
    def certificate_for(self, config_key, emitted):
        """A downloadable certificate of a learner of ``config_key`` (with an emitted credential when asked)."""
        users = self.users[config_key]
        if emitted:
            row = PokCertificate.objects.filter(user__in=users, status=CredentialStatus.EMITTED).order_by("id").first()
            if row is None:
                raise RuntimeError("no emitted credential to view: issuance failed, see part 1b")
            return GeneratedCertificate.objects.get(user_id=row.user_id, course_id=row.course_key), row
        return GeneratedCertificate.objects.filter(user__in=users).order_by("id").first(), None

    def view(self, client, config, url):
        """One certificate page view; returns (ns, POK requests, response)."""
        with plugin_state(config.plugin):
            before = self.pok.count()
            with gc_paused():
                start = time.perf_counter_ns()
                response = client.get(url)
                elapsed = time.perf_counter_ns() - start
            pok_requests = self.pok.count() - before
        if response.status_code != config.expected:
            raise RuntimeError(f"{config.key}: HTTP {response.status_code}, expected {config.expected}")
        return elapsed, pok_requests, response

    @staticmethod
    def queries(func):
        """Run ``func`` once and return (all SQL queries, queries on the plugin's tables)."""
        with CaptureQueriesContext(connection) as captured:
            func()
        plugin = [query["sql"] for query in captured.captured_queries if "openedx_pok_" in query["sql"]]
        return len(captured.captured_queries), plugin

    def page_views(self):
        """Part 2: certificate page views with POK at 200 ms, and the credential status endpoint."""
        self.pok.latency = VIEW_LATENCY
        emitted_certificate, row = self.certificate_for("pok_0ms", emitted=True)
        plain_certificate, _row = self.certificate_for("unmapped", emitted=False)
        urls = {}
        for config in VIEW_CONFIGS:
            certificate = emitted_certificate if config.emitted else plain_certificate
            urls[config.key] = reverse("lms_sandbox:render_cert_by_uuid",
                                       kwargs={"certificate_uuid": certificate.verify_uuid})
        client = Client()
        samples = {config.key: Samples(config.label) for config in VIEW_CONFIGS}
        queries = {}
        for config in VIEW_CONFIGS:
            for _warm in range(WARMUP):
                _ns, _requests, response = self.view(client, config, urls[config.key])
            if config.expected == 302 and response["Location"] != row.view_url:
                raise RuntimeError(f"the page redirects to {response['Location']}, not to the credential")
            total, plugin = self.queries(lambda config=config: self.view(client, config, urls[config.key]))
            queries[config.key] = {"queries_per_view": total, "plugin_queries_per_view": len(plugin),
                                   "plugin_sql": plugin}
        for _index in range(self.views):
            for config in self.order.sample(VIEW_CONFIGS, len(VIEW_CONFIGS)):
                elapsed, pok_requests, _response = self.view(client, config, urls[config.key])
                samples[config.key].times_ns.append(elapsed)
                samples[config.key].pok_requests += pok_requests
        baseline = samples["no_plugin"].summary()
        result = {}
        for key, value in samples.items():
            summary = baseline if key == "no_plugin" else value.summary(baseline)
            summary.update(queries[key])
            summary["pok_requests_per_view"] = round(value.pok_requests / len(value.times_ns), 4)
            result[key] = summary
        status = self.status_endpoint(row)
        self.pok.latency = 0.0
        return {
            "what": "wall time of Django's test Client GET /certificates/<verify_uuid>, POK latency 200 ms",
            "pok_latency_ms": VIEW_LATENCY * 1000,
            "configurations": result,
            "baseline": "no_plugin",
            "status_endpoint": status,
        }

    def status_endpoint(self, row):
        """``GET /pok/credentials/<uuid>/status`` by the credential's owner, logged in (session + user + row)."""
        client = Client()
        client.force_login(row.user)
        # Positional: the URL's parameter name is the plugin's business, the credential's UUID is the reference.
        url = reverse("openedx_pok:credential-status", args=[str(row.uuid)])
        samples = Samples("status endpoint, owner logged in")

        def call():
            response = client.get(url)
            if response.status_code != 200 or not response.json()["emitted"]:
                raise RuntimeError(f"status endpoint answered {response.status_code}: {response.content[:200]!r}")
            return response

        for _warm in range(WARMUP):
            call()
        total, plugin = self.queries(call)
        for _index in range(self.views):
            before = self.pok.count()
            with gc_paused():
                start = time.perf_counter_ns()
                call()
                samples.times_ns.append(time.perf_counter_ns() - start)
            samples.pok_requests += self.pok.count() - before
        summary = samples.summary()
        summary.update({"queries_per_call": total, "plugin_queries_per_call": len(plugin), "plugin_sql": plugin,
                        "pok_requests_per_call": round(samples.pok_requests / len(samples.times_ns), 4)})
        return summary


# ---- report -----------------------------------------------------------------------------------------------------
def machine():
    """Where the numbers come from: they mean little without the CPU, the Python and the database."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "django": django.get_version(),
        "sqlite": sqlite3.sqlite_version,
        "reference_loop_us": reference_loop_us(),
    }


def reference_loop_us():
    """
    The machine's speed at plain Python: the best of 5 timings of ``sum(range(10_000))``, in microseconds.

    Absolute figures (ms of CPU per credential, ms added to an award) scale with it; runs on different machines
    compare through it, runs on one machine through their baselines.
    """
    return round(min(timeit.repeat("sum(range(10_000))", repeat=5, number=200)) / 200 * 1e6, 1)


def _ratio(value):
    return "-" if value is None else f"{value:.2f}"


def print_report(results):
    """The same numbers as the JSON, as tables a person can read."""
    meta = results["meta"]
    print(f"openedx-pok benchmark, {meta['date']}, {meta['machine']['cpu']} ({meta['machine']['cpus']} CPUs), "
          f"Python {meta['machine']['python']}, Django {meta['machine']['django']}, "
          f"SQLite {meta['machine']['sqlite']}, sum(range(10_000)) in {meta['machine']['reference_loop_us']} us")
    print_parts(results)


def print_parts(results, where=""):
    """Parts 1a, 1b and 2 as tables; ``where`` prefixes each heading (bench.mysql: "MariaDB, 100,000 rows: ")."""
    part = results["issuance_time"]
    print(f"\n{where}Part 1a. LMS time inside certificate generation")
    print("  (transaction.atomic(): creation filter + certificate save + events + on_commit enqueue)")
    header = (f"{'configuration':<40} {'n':>4} {'median ms':>10} {'p95 ms':>9} {'ratio med':>10} {'ratio p95':>10} "
              f"{'queries':>8} {'plugin q':>9}")
    print(header)
    print("-" * len(header))
    for value in part["configurations"].values():
        print(f"{value['label']:<40} {value['n']:>4} {value['median_ms']:>10.2f} {value['p95_ms']:>9.2f} "
              f"{_ratio(value.get('ratio_median', 1.0)):>10} {_ratio(value.get('ratio_p95', 1.0)):>10} "
              f"{value['queries']:>8} {value['plugin_queries']:>9}")
    print(f"POK 1000 ms vs POK 0 ms: median ratio {part['latency_ratio_median_1000ms_vs_0ms']:.2f}, "
          f"p95 ratio {part['latency_ratio_p95_1000ms_vs_0ms']:.2f} (goal ~1: POK latency never reaches the LMS)")
    print(f"POK requests during certificate generation: {part['pok_requests_during_generation']} (goal 0)")
    print("  (ratios: median / p95 over the baseline's; queries: all SQL of one generation, savepoints included;")
    print("   plugin q: those on openedx_pok tables)")

    part = results["issuance_requests"]
    fast, slow, everything = part["pok_0ms"], part["pok_1000ms_sample"], part["all"]
    print(f"\n{where}Part 1b. POK requests per issued credential ({fast['credentials']} credentials of the POK 0 ms "
          "run; the worker drains the broker)")

    def line(label, value, note=""):
        print(f"  {label:<38}{value:<11}{note}".rstrip())

    line("POSTs per credential", f"{fast['posts_per_credential']:.3f}", "(goal 1.0)")
    line("template GETs per credential", f"{fast['template_gets_per_credential']:.3f}",
         f"(cached: 1/{fast['credentials']} = {1 / fast['credentials']:.3f})")
    line("total POK requests per credential", f"{fast['requests_per_credential']:.3f}")
    line("emitted", f"{fast['emitted']}/{fast['credentials']}")
    line(f"all {everything['credentials']} credentials of the run", f"{everything['posts_per_credential']:.3f}",
         f"POSTs per credential, {everything['requests_per_credential']:.3f} requests, "
         f"{everything['emitted']} emitted")
    line("tasks enqueued per credential", f"{part['tasks_enqueued_per_credential']:.2f}",
         "(broker messages / credential rows)")
    line("worker time per credential, POK 0 ms", f"{fast['worker_median_ms']:.1f} ms", "(median)")
    line("worker time per credential, 1000 ms", f"{slow['worker_median_ms']:.1f} ms",
         f"(median of {slow['credentials']}: POK latency lands in the worker, not the LMS)")

    part = results["page_views"]
    print(f"\n{where}Part 2. Certificate page views, POK latency {part['pok_latency_ms']:.0f} ms "
          "(test Client GET /certificates/<verify_uuid>)")
    header = (f"{'configuration':<44} {'n':>4} {'median ms':>10} {'p95 ms':>9} {'ratio med':>10} {'POK/view':>9} "
              f"{'queries':>8} {'plugin q':>9}")
    print(header)
    print("-" * len(header))
    for value in part["configurations"].values():
        print(f"{value['label']:<44} {value['n']:>4} {value['median_ms']:>10.2f} {value['p95_ms']:>9.2f} "
              f"{_ratio(value.get('ratio_median', 1.0)):>10} {value['pok_requests_per_view']:>9.2f} "
              f"{value['queries_per_view']:>8} {value['plugin_queries_per_view']:>9}")
    status = part["status_endpoint"]
    print(f"{'GET /pok/credentials/<uuid>/status (owner)':<44} {status['n']:>4} {status['median_ms']:>10.2f} "
          f"{status['p95_ms']:>9.2f} {'-':>10} {status['pok_requests_per_call']:>9.2f} {status['queries_per_call']:>8} "
          f"{status['plugin_queries_per_call']:>9}")
    print("  (queries: all SQL of one request; plugin q: those on openedx_pok tables)")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="What openedx-pok costs the LMS, POK and a certificate view (see docs/benchmarks.rst).",
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"small sizes for tests ({QUICK_LEARNERS} learners, {QUICK_VIEWS} views)")
    parser.add_argument("--learners", type=int, default=None, metavar="N",
                        help=f"learners per issuance configuration (default {DEFAULT_LEARNERS})")
    parser.add_argument("--views", type=int, default=None, metavar="N",
                        help=f"page views per view configuration (default {DEFAULT_VIEWS})")
    parser.add_argument("--no-mariadb", action="store_true",
                        help="skip the MariaDB part (python -m bench.mysql: admin list and LMS paths at 10,000 and "
                             "100,000 credentials)")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, metavar="ROWS",
                        help="credential counts of the MariaDB part (default: those of bench.mysql)")
    args = parser.parse_args(argv)
    args.learners = args.learners or (QUICK_LEARNERS if args.quick else DEFAULT_LEARNERS)
    args.views = args.views or (QUICK_VIEWS if args.quick else DEFAULT_VIEWS)
    if args.learners < 1 or args.views < 1:
        parser.error("--learners and --views must be at least 1")
    return args


def fresh_database():
    """Delete the previous run's SQLite file (and its WAL) and migrate, so each run starts from the same state."""
    settings.BENCH_DIR.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        path = settings.BENCH_DB_PATH.with_name(settings.BENCH_DB_PATH.name + suffix)
        path.unlink(missing_ok=True)
    call_command("migrate", verbosity=0)


def main(argv=None):
    """Run all parts, print the tables and write the JSON; exit 1 only when the benchmark itself is broken."""
    args = parse_args(argv)
    random.seed(SEED)  # the retry jitter of the tasks; the interleaving order has its own seeded generator
    fresh_database()
    started = time.perf_counter()
    with PokSimulator() as pok:
        bench = Bench(pok, args.learners, args.views,
                      QUICK_SLOW_WORKER_SAMPLE if args.quick else SLOW_WORKER_SAMPLE)
        try:
            bench.setup()
            results = {
                "issuance_time": bench.issuance_time(),
                "issuance_requests": bench.issuance_requests(),
                "page_views": bench.page_views(),
            }
        except RuntimeError as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    results["meta"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "learners": args.learners,
        "views": args.views,
        "quick": args.quick,
        "seed": SEED,
        "warmup": WARMUP,
        "duration_s": round(time.perf_counter() - started, 1),
        "database": "SQLite file, WAL, synchronous=NORMAL",
        "celery": "CELERY_TASK_ALWAYS_EAGER=False, broker memory://",
    }
    results = {"meta": results.pop("meta"), **results}
    connection.close()  # checkpoints the WAL, so var/bench holds one self-contained database to inspect
    print_report(results)
    out = settings.BENCH_DIR / "results.json"
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nWritten to {out} in {results['meta']['duration_s']} s.")
    if args.no_mariadb:
        return 0
    return run_mariadb_part(args, results, out)


def run_mariadb_part(args, results, out):
    """
    The MariaDB part in its own process (``python -m bench.mysql``): Django is configured once per process, and this
    one is on SQLite. Its results go into this run's JSON under ``mariadb``.
    """
    command = [sys.executable, "-m", "bench.mysql", "--learners", str(args.learners), "--views", str(args.views)]
    if args.quick:
        command.append("--quick")
    if args.sizes:
        command += ["--sizes", *map(str, args.sizes)]
    print(f"\n{'=' * 100}\nMariaDB part: {' '.join(command[1:])}", flush=True)
    completed = subprocess.run(command, check=False)
    if completed.returncode != 0:
        print("benchmark failed: the MariaDB part exited with an error (see above)", file=sys.stderr)
        return 1
    results["mariadb"] = json.loads((settings.BENCH_DIR / "mariadb.json").read_text(encoding="utf-8"))
    out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
