"""
Issuance through a real Celery worker process on the real Redis broker, on MariaDB/MySQL.

Every other test runs the tasks eagerly, inside the test process. This one checks what eager mode cannot: that the
task is only sent after the LMS transaction commits, that it is routed to ``POK_CELERY_QUEUE``, that its arguments
survive serialization, and that a separate process (own settings, own database connection, own POK client) issues
the credential exactly once although the LMS sends the task twice (creation filter and CERTIFICATE_CREATED).

As in the LMS (lms/djangoapps/certificates/generation_handler.py, openedx-platform Verawood) the certificate itself
is created by the LMS's ``generate_certificate`` task, queued 2 s ahead at once, not on commit; the worker runs it
too, so the plugin's first issuance task may find no certificate yet and waits for it, as it does in the LMS.

Needs MariaDB/MySQL (``POK_TEST_DB=mysql``: the worker process must see the test's committed rows, which an
in-memory SQLite database cannot share) and Redis on 127.0.0.1:6379 (``POK_TEST_REDIS_URL``). Without either it fails
instead of skipping, so a CI job that lacks a service cannot pass silently.
"""
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import kombu.pools
import pytest
import redis
from celery.signals import after_task_publish
from django.db import connection, transaction
from kombu import Exchange, Queue
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.celery import app
from lms_sandbox.factories import CourseOverviewFactory, OrganizationFactory, UserFactory
from lms_sandbox.generation import generate_certificate
from lms_sandbox.grades import CourseGrade
from lms_sandbox.models import GeneratedCertificate
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate

pytestmark = [pytest.mark.mysql, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

REPO_ROOT = Path(__file__).resolve().parents[1]
ISSUE_TASK = "openedx_pok.tasks.issue_credential"
GENERATE_TASK = "lms_sandbox.tasks.generate_certificate"
# Worker start-up (Django setup, broker connection) plus the issuance itself; normally a few seconds.
WORKER_TIMEOUT = 30
STOP_TIMEOUT = 15
# Statuses in which the worker has not finished with the credential yet.
UNSETTLED = (CredentialStatus.PENDING, CredentialStatus.REQUESTING, CredentialStatus.IN_PROGRESS)


def require_mysql():
    """Fail (not skip): the worker process can only share the test's data through a real database server."""
    assert connection.vendor == "mysql", (
        f"tests/test_celery_worker.py needs MariaDB/MySQL but runs on {connection.vendor}: "
        "run it with POK_TEST_DB=mysql (make test-mysql)."
    )


def require_redis(url):
    """A client of the broker's Redis database; fails the test with a clear message when Redis is not reachable."""
    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        error = f"{type(exc).__name__}: {exc}"
    else:
        return client
    # Outside the except block: the message says it all, the redis-py traceback would only bury it.
    pytest.fail(f"tests/test_celery_worker.py needs Redis at {url} ({error}). Start redis-server on 127.0.0.1:6379 "
                "or point POK_TEST_REDIS_URL at one.", pytrace=False)


def drop_broker_connections():
    """
    Forget the app's cached broker connection and producer pools, as Celery itself does after a fork.

    They are created on the first send and keep the broker URL of that moment: without this, a later test that points
    ``broker_url`` elsewhere (e.g. at a dead port to simulate an outage) would still publish to this test's Redis.
    """
    # kombu's process-wide registry would hand back the same (closed) pools for the same URL, so it is reset too.
    kombu.pools.reset()
    app._pool = None  # noqa: SLF001
    app.amqp._producer_pool = None  # noqa: SLF001


@contextmanager
def broker_mode(broker_url):
    """
    Make this process send tasks to the broker instead of running them eagerly; restore the app afterwards.

    The Celery app reads ``CELERY_TASK_ALWAYS_EAGER`` once, so overriding the Django setting would not reach it.
    """
    saved = app.conf.task_always_eager, app.conf.broker_url
    drop_broker_connections()
    app.conf.task_always_eager = False
    app.conf.broker_url = broker_url
    try:
        yield
    finally:
        app.conf.task_always_eager, app.conf.broker_url = saved
        drop_broker_connections()


@contextmanager
def lms_tasks_on(queue):
    """The LMS's own tasks (no route of their own) on the test's queue, which the test's one worker reads."""
    saved = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield
    finally:
        app.conf.task_default_queue = saved


@contextmanager
def published_tasks():
    """Record (task name, task id, routing key) of every task this process sends to the broker."""
    sent = []

    def record(sender=None, headers=None, routing_key=None, **kwargs):
        sent.append((sender, (headers or {}).get("id"), routing_key))

    after_task_publish.connect(record, weak=False)
    try:
        yield sent
    finally:
        after_task_publish.disconnect(record)


def remove_queue(queue):
    """
    Purge and delete the test's queue, bindings included, so no later run receives its tasks or keeps its keys.

    Declared first (as Celery declares a missing queue: a direct exchange of the same name) because kombu only deletes
    the bindings its channel knows of; going through kombu keeps this independent of its Redis key layout.
    """
    with app.connection_for_write() as conn:
        broker_queue = Queue(queue, Exchange(queue, type="direct"), routing_key=queue)(conn.default_channel)
        broker_queue.declare()
        broker_queue.purge()
        broker_queue.delete()


@contextmanager
def celery_worker(queue, broker_url, pok, log_path, concurrency=1, extra_env=None):
    """
    A real ``celery -A lms_sandbox.celery worker`` process on ``queue``, configured like the test process.

    ``concurrency`` above 1 runs a thread pool (as many LMS deployments do); ``extra_env`` adds settings switches.

    The worker reads the same ``test_settings`` through environment switches: the test's database (not the
    non-test name in the settings), the broker, no eager mode, and the simulator as the POK API. It is always
    stopped: SIGTERM for a warm shutdown, SIGKILL if that hangs.
    """
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "test_settings",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "POK_TEST_DB": "mysql",
        "POK_TEST_MYSQL_DB": db["NAME"],
        "POK_TEST_MYSQL_HOST": db["HOST"] or "127.0.0.1",
        "POK_TEST_MYSQL_PORT": str(db["PORT"] or "3306"),
        "POK_TEST_MYSQL_USER": db["USER"],
        "POK_TEST_MYSQL_PASSWORD": db["PASSWORD"],
        "POK_TEST_REDIS_URL": broker_url,
        "POK_TEST_CELERY_EAGER": "0",
        "POK_TEST_API_URL": pok.url,
        "POK_TEST_API_KEY": pok.api_key,
        "POK_TEST_CELERY_QUEUE": queue,
        **(extra_env or {}),
    }
    pool = "--pool=solo" if concurrency == 1 else "--pool=threads"
    command = [
        sys.executable, "-m", "celery", "-A", "lms_sandbox.celery", "worker", pool, f"--concurrency={concurrency}",
        "-Q", queue, "-n", f"{queue}@%h", "--loglevel=INFO", "--without-gossip", "--without-mingle",
        "--without-heartbeat",
    ]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)


def wait_for(condition, process, what):
    """Poll ``condition`` until it holds; fail early if the worker died, late if it never holds."""
    deadline = time.monotonic() + WORKER_TIMEOUT
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            pytest.fail(f"the Celery worker exited with code {process.returncode} before {what}")
        time.sleep(0.2)
    pytest.fail(f"timed out after {WORKER_TIMEOUT}s waiting for {what}")


def test_worker_issues_the_credential_once_after_commit(pok, settings, tmp_path):
    require_mysql()
    broker_url = settings.CELERY_BROKER_URL
    client = require_redis(broker_url)
    queue = f"openedx-pok-test-{uuid.uuid4().hex[:12]}"
    settings.POK_CELERY_QUEUE = queue

    learner = UserFactory(profile__name="Ada Lovelace")
    OrganizationFactory(short_name="DemoX", name="Demo University")
    course = CourseOverviewFactory(id=CourseKey.from_string("course-v1:DemoX+WORKER+2026"),
                                   display_name="Credentials by Worker", org="DemoX")
    CertificateTemplate.objects.create(course_key=course.id, template_id="tpl-basic")
    log_path = tmp_path / "celery-worker.log"

    with broker_mode(broker_url), published_tasks() as sent, lms_tasks_on(queue):
        try:
            with transaction.atomic():
                certificate = generate_certificate(learner, course.id, CourseGrade(percent=0.9, letter_grade="Pass"))
                assert [name for name, _id, _key in sent] == [GENERATE_TASK], \
                    "the plugin sent a task before the LMS transaction committed, or the LMS did not queue its own"
            assert certificate is None  # the LMS's generation task has not run: no worker yet

            # Committed: the tasks wait in Redis, and with no worker running yet nothing can have reached POK.
            assert len(sent) > 1, "committing the award sent no issuance task"
            assert {(name, routing_key) for name, _id, routing_key in sent} == {(GENERATE_TASK, queue),
                                                                                (ISSUE_TASK, queue)}
            assert client.llen(queue) == len(sent)
            row = PokCertificate.objects.get(user=learner, course_key=course.id)
            assert row.status == CredentialStatus.PENDING
            assert pok.count("issue_credential") == 0

            # The production default waits 15 s per check; 1 s here is enough for the 2 s of the LMS's task.
            with celery_worker(queue, broker_url, pok, log_path,
                               extra_env={"POK_TEST_CERTIFICATE_WAIT_DELAY": "1"}) as worker:
                # Any settled state ends the wait, so a credential the worker failed or held fails fast with its reason.
                wait_for(lambda: PokCertificate.objects.filter(id=row.id).exclude(status__in=UNSETTLED).exists(),
                         worker, "the worker settled the credential")
                row.refresh_from_db()
                assert row.status == CredentialStatus.EMITTED, row.status_reason
                # Every task sent (the duplicate too) must have run before "exactly one POST" means anything.
                task_ids = [task_id for _name, task_id, _key in sent]
                wait_for(lambda: all(f"[{task_id}] succeeded" in log_path.read_text(errors="replace")
                                     for task_id in task_ids), worker, "every issuance task had run")

            row.refresh_from_db()
            certificate = GeneratedCertificate.objects.get(user=learner, course_id=course.id)
            assert certificate.status == "downloadable"
            assert pok.count("issue_credential") == 1
            assert len(pok.credentials_for(learner.email)) == 1
            assert row.attempts == 1 and row.ambiguous_attempts == 0
            assert row.verify_uuid == certificate.verify_uuid
            assert row.view_url == f"{pok.url}/view/{row.pok_credential_id}"
            posts = [request for request in pok.requests if request.endpoint == "issue_credential"]
            assert posts[0].idempotency_key == row.idempotency_key
        except BaseException:
            print(f"--- Celery worker log ({log_path}) ---")
            print(log_path.read_text(errors="replace") if log_path.exists() else "(the worker was not started)")
            raise
        finally:
            remove_queue(queue)
