"""
Celery entry points of the plugin, and the helpers that enqueue them. No business rules live here.

Each task takes ids and plain values, calls the state machine in ``issuance.py`` (or ``media.py``) and turns its
:class:`~openedx_pok.exceptions.RetryLater` into a delayed task. The registered task names are those of earlier
releases (``openedx_pok.tasks.issue_credential`` ...), so messages already queued in a broker keep working after an
upgrade. Enqueueing never raises: a broker outage must not break the LMS request that scheduled a task, and the row
keeps its state for the reconcile run to pick up.
"""
import logging
import threading

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from edx_django_utils.monitoring import set_code_owner_attribute

from openedx_pok import backfill, history, issuance, media
from openedx_pok import reconcile as reconciliation
from openedx_pok.exceptions import CourseSetupError, RetryLater
from openedx_pok.history import Cause
from openedx_pok.states import CredentialStatus, transition, transition_many

log = logging.getLogger(__name__)


def _task_options(countdown=0):
    options = {"countdown": countdown} if countdown else {}
    if settings.POK_CELERY_QUEUE:
        options["queue"] = settings.POK_CELERY_QUEUE
    return options


_publishing = threading.local()


def _publish_connection(app):
    """
    This thread's broker connection for publishing, with short socket timeouts.

    The LMS's own Celery connection waits for a broker as long as the operator configured (by default for ever): a
    broker that accepts connections and never answers would hold certificate generation and the certificate page.
    This connection gives up after ``POK_PUBLISH_TIMEOUT`` seconds instead, without a retry loop.
    """
    broker = (app.conf.broker_write_url or app.conf.broker_url, settings.POK_PUBLISH_TIMEOUT)
    connection = getattr(_publishing, "connection", None)
    if connection is not None and getattr(_publishing, "broker", None) != broker:
        _drop_publish_connection()  # the broker configuration changed (tests, a reloaded LMS): reconnect
        connection = None
    if connection is None:
        timeout = settings.POK_PUBLISH_TIMEOUT
        connection = app.connection_for_write(
            connect_timeout=timeout,
            transport_options={"socket_timeout": timeout, "socket_connect_timeout": timeout,
                               "read_timeout": timeout, "write_timeout": timeout},
        )
        _publishing.connection, _publishing.broker = connection, broker
    return connection


def _drop_publish_connection():
    connection = getattr(_publishing, "connection", None)
    _publishing.connection = None
    if connection is not None:
        try:
            connection.release()
        except Exception:
            log.debug("POK: closing a broken broker connection failed", exc_info=True)


def _publish(task, argument, kwargs, countdown=0):
    """
    Send ``task(argument, **kwargs)`` to the broker, bounded (``POK_PUBLISH_TIMEOUT``, no retry); raises on failure.

    Eager Celery (the demo, the tests) runs the task here instead, through the same call.
    """
    options = _task_options(countdown)
    if not task.app.conf.task_always_eager:
        options.update(retry=False, connection=_publish_connection(task.app))
    try:
        task.apply_async(args=[argument], kwargs=kwargs, **options)
    except Exception:
        _drop_publish_connection()
        raise


def _enqueue(task, row_id, countdown=0, **kwargs):
    """
    Send ``task`` for a credential to the broker; never raise, never wait long.

    A broker outage must not break or hold the LMS request that scheduled the task: a failure is logged and
    recorded on a pending row, and the row keeps its state for the reconcile run to pick up.
    """
    try:
        _publish(task, row_id, kwargs, countdown)
        return True
    except Exception:
        log.exception("POK: could not enqueue %s for credential %s; reconcile will catch up", task.name, row_id)
        transition(row_id, CredentialStatus.PENDING, status_reason=_(
            "The task queue could not be reached when this credential was scheduled; the reconcile run sends it."))
        return False


def enqueue_issuance(row_id, countdown=0, wait=0, tries=0):
    """Schedule :func:`issue_credential_task` for the credential."""
    _enqueue(issue_credential_task, row_id, countdown=countdown, wait=wait, tries=tries)


def schedule_issuance(row_id):
    """:func:`enqueue_issuance` once the current transaction commits (the task must see the row, and a rolled-back
    transaction must not issue anything)."""
    transaction.on_commit(lambda: enqueue_issuance(row_id))


def enqueue_refresh(row_id):
    """Schedule :func:`refresh_credential_task` for the credential."""
    _enqueue(refresh_credential_task, row_id)


def enqueue_image_caching(row_id):
    """Schedule :func:`cache_credential_image_task` (the embedded page works without the image meanwhile)."""
    _enqueue(cache_credential_image_task, row_id)


def run_issuance(row_id, wait=0, tries=0):
    """
    Run one issuance step here and now; a "retry later" becomes a delayed task. Returns the local status.

    Eager Celery (the demo, most tests) runs a delayed task at once: a pure wait (backoff, an account's
    Retry-After) would then spin, so there the row is left to the reconcile run, which honours the wait.
    """
    try:
        with history.recorded_as(Cause.ISSUANCE):
            return issuance.issue(row_id, wait=wait, tries=tries)
    except RetryLater as later:
        if later.waiting and issue_credential_task.app.conf.task_always_eager:
            log.info("POK: credential %s waits %.1fs; left to reconcile (eager Celery)", row_id, later.countdown)
        else:
            enqueue_issuance(row_id, countdown=later.countdown, wait=later.wait, tries=later.tries)
        return CredentialStatus.PENDING


# Rows per message when the reconcile run hands work to the workers: one message per row made publishing most of
# the run's time, one message for all would serialize the POSTs in one worker.
RECONCILE_CHUNK_SIZE = 20


def refresh(row_id):
    """Poll POK for one credential in progress (:func:`openedx_pok.issuance.refresh`); returns the local status."""
    with history.recorded_as(Cause.REFRESH):
        return issuance.refresh(row_id)


def _chunks(row_ids):
    return [row_ids[start:start + RECONCILE_CHUNK_SIZE] for start in range(0, len(row_ids), RECONCILE_CHUNK_SIZE)]


def _enqueue_chunk(task, row_ids, **kwargs):
    """Publish one message for a chunk of rows; on failure the rows stay as they are for the next reconcile run."""
    try:
        _publish(task, row_ids, kwargs)
        return True
    except Exception:
        log.exception("POK: could not enqueue %s for %s credentials; the next reconcile run retries",
                      task.name, len(row_ids))
        return False


# Rows per message of a backfill without a rate: one message per credential made the worker's own dispatching and a
# database connection per task a fifth of its CPU per credential; a few per message keep the workers evenly busy.
BACKFILL_CHUNK_SIZE = 5


def enqueue_issuance_chunks(row_ids):
    """Schedule the issuance of many new credentials, :data:`BACKFILL_CHUNK_SIZE` per message; never raises."""
    row_ids = list(row_ids)
    for start in range(0, len(row_ids), BACKFILL_CHUNK_SIZE):
        chunk = row_ids[start:start + BACKFILL_CHUNK_SIZE]
        if not _enqueue_chunk(issue_credentials_task, chunk):
            transition_many(chunk, CredentialStatus.PENDING, status_reason=_(
                "The task queue could not be reached when this credential was scheduled; the reconcile run sends it."))


def reconcile(limit=None, inline=False, pending_grace=None):
    """
    Bring unfinished credentials forward (see :func:`openedx_pok.reconcile.reconcile_plan`); returns counts.

    ``inline`` runs the work in this process (management command); otherwise it is published for the workers in
    chunks of rows.
    """
    with history.recorded_as(Cause.RECONCILE):
        plan = reconciliation.reconcile_plan(limit=limit, pending_grace=pending_grace)
    wait = settings.POK_CERTIFICATE_WAIT_RETRIES  # reconcile never waits for a certificate that is not there
    if inline:
        for row_id in plan.to_issue:
            run_issuance(row_id, wait=wait)
        for row_id in plan.to_refresh:
            refresh(row_id)
    else:
        for chunk in _chunks(plan.to_issue):
            _enqueue_chunk(issue_credentials_task, chunk, wait=wait)
        for chunk in _chunks(plan.to_refresh):
            _enqueue_chunk(refresh_credentials_task, chunk)
    return plan.counts


@shared_task(name="openedx_pok.tasks.issue_credential", ignore_result=True, acks_late=True)
@set_code_owner_attribute
def issue_credential_task(row_id, wait=0, tries=0):
    """Issue one credential (:func:`openedx_pok.issuance.issue`)."""
    run_issuance(row_id, wait=wait, tries=tries)


@shared_task(name="openedx_pok.tasks.refresh_credential", ignore_result=True)
@set_code_owner_attribute
def refresh_credential_task(row_id):
    """Poll POK for one credential in progress (:func:`openedx_pok.issuance.refresh`)."""
    refresh(row_id)


@shared_task(name="openedx_pok.tasks.cache_credential_image", ignore_result=True)
@set_code_owner_attribute
def cache_credential_image_task(row_id):
    """Cache an emitted credential's image location (:func:`openedx_pok.media.cache_image_location`)."""
    media.cache_image_location(row_id)


@shared_task(name="openedx_pok.tasks.issue_credentials", ignore_result=True, acks_late=True)
@set_code_owner_attribute
def issue_credentials_task(row_ids, wait=0):
    """Issue a chunk of credentials found by the reconcile run, one after the other."""
    for row_id in row_ids:
        run_issuance(row_id, wait=wait)


@shared_task(name="openedx_pok.tasks.refresh_credentials", ignore_result=True)
@set_code_owner_attribute
def refresh_credentials_task(row_ids):
    """Poll POK for a chunk of credentials in progress found by the reconcile run."""
    for row_id in row_ids:
        refresh(row_id)


@shared_task(name="openedx_pok.tasks.reconcile_credentials", ignore_result=True)
@set_code_owner_attribute
def reconcile_credentials_task(limit=None):
    """Periodic task (see README: beat schedule): enqueue issuance and refreshes of unfinished credentials."""
    from openedx_pok import catalog  # noqa: PLC0415 - issue 9: templates and pages synced at most hourly

    catalog.sync_if_due()  # never raises: the reconcile below always runs
    return reconcile(limit=limit)


# The backfill of earlier certificates in the background (the course mappings admin's action).


def enqueue_backfill(course_keys):
    """Start :func:`backfill_courses_task` for the courses; False (logged) when the broker cannot be reached."""
    task, kwargs = backfill_courses_task, {"course_keys": [str(key) for key in course_keys]}
    try:
        if task.app.conf.task_always_eager:
            task.apply_async(kwargs=kwargs, **_task_options())
        else:
            task.apply_async(kwargs=kwargs, retry=False, connection=_publish_connection(task.app), **_task_options())
        return True
    except Exception:
        _drop_publish_connection()
        log.exception("POK: could not start the backfill of %s courses", len(course_keys))
        return False


@shared_task(name="openedx_pok.tasks.backfill_courses", ignore_result=True)
@set_code_owner_attribute
def backfill_courses_task(course_keys):
    """Request credentials for the earlier certificates of the courses (:func:`openedx_pok.backfill.run`)."""
    try:
        courses = backfill.resolve_courses(course_keys)
    except CourseSetupError as exc:  # a mapping disabled since the admin started it
        log.warning("POK: background backfill not run: %s", exc.reason)
        return None
    with history.recorded_as(Cause.BACKFILL):
        report = backfill.run(courses, schedule=enqueue_issuance, schedule_many=enqueue_issuance_chunks)
    log.info("POK: background backfill of %s courses: %s", len(courses), report.counts)
    return report.counts
