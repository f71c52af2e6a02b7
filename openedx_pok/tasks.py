"""
Celery entry points of the plugin, and the helpers that enqueue them. No business rules live here.

Each task takes ids and plain values and calls the state machine in ``machine.py`` (or ``media.py``); its
:class:`~openedx_pok.exceptions.RetryLater` becomes Celery's ``self.retry(countdown=...)``. The registered task names
and their arguments are those of earlier releases (``openedx_pok.tasks.issue_credential`` ...), so messages already
queued in a broker keep working after an upgrade. Enqueueing never raises and never waits longer than
``POK_PUBLISH_TIMEOUT``: a broker outage must not break or hold the LMS request that scheduled a task, and the row
keeps its state for the reconcile run to pick up. ADR 0008 says what is Celery's here and what is ours, and why.
"""
import logging
from collections import Counter

import kombu.pools
from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils.translation import gettext as _
from edx_django_utils.monitoring import set_code_owner_attribute

from openedx_pok.exceptions import CourseSetupError, RetryLater
from openedx_pok.issuance import backfill, history, machine
from openedx_pok.issuance import reconcile as reconciliation
from openedx_pok.issuance.history import Cause
from openedx_pok.issuance.states import CredentialStatus, transition_many
from openedx_pok.pages import media

log = logging.getLogger(__name__)

# Rows per message when the reconcile run hands work to the workers: one message per row made publishing most of
# the run's time, one message for all would serialize the POSTs in one worker.
RECONCILE_CHUNK_SIZE = 20
# Rows per message of a backfill without a rate: one message per credential made the worker's own dispatching and a
# database connection per task a fifth of its CPU per credential; a few per message keep the workers evenly busy.
BACKFILL_CHUNK_SIZE = 5


def _publish(task, argument, kwargs, countdown=0):
    """
    Send ``task(argument, **kwargs)`` to the broker, or raise; eager Celery (the demo, the tests) runs it here.

    The LMS's own Celery connection waits for a broker as long as the operator configured (by default for ever): a
    broker that accepts connections and never answers would hold certificate generation and the certificate page.
    So the message goes through a producer from kombu's pools, where Celery takes its own
    (``kombu.pools.producers[app.connection_for_write()]``), for a connection whose connect and socket timeouts are
    ``POK_PUBLISH_TIMEOUT``, and without Celery's publish retries.
    """
    timeout = settings.POK_PUBLISH_TIMEOUT
    connection = task.app.connection_for_write(connect_timeout=timeout, transport_options={
        "socket_timeout": timeout, "socket_connect_timeout": timeout, "read_timeout": timeout,
        "write_timeout": timeout})
    options = {"countdown": countdown} if countdown else {}
    if settings.POK_CELERY_QUEUE:
        options["queue"] = settings.POK_CELERY_QUEUE
    with kombu.pools.producers[connection].acquire(block=True, timeout=timeout) as producer:
        task.apply_async(args=[argument], kwargs=kwargs, producer=producer, retry=False, **options)


def _send(task, argument, countdown=0, **kwargs):
    """:func:`_publish` that never raises: a failure is logged and False returned (ids only in the log)."""
    try:
        _publish(task, argument, kwargs, countdown)
        return True
    except Exception:
        log.exception("POK: could not enqueue %s for %s", task.name, argument)
        return False


def _not_queued(row_ids):
    """Say so on pending rows whose task never reached the broker: the reconcile run sends them."""
    transition_many(row_ids, CredentialStatus.PENDING, status_reason=_(
        "The task queue could not be reached when this credential was scheduled; the reconcile run sends it."))


def enqueue_issuance(row_id, countdown=0, wait=0, tries=0):
    """Schedule :func:`issue_credential_task` for the credential; never raises."""
    if not _send(issue_credential_task, row_id, countdown, wait=wait, tries=tries):
        _not_queued([row_id])


def schedule_issuance(row_id):
    """:func:`enqueue_issuance` once the current transaction commits (the task must see the row, and a rolled-back
    transaction must not issue anything)."""
    transaction.on_commit(lambda: enqueue_issuance(row_id))


def enqueue_issuance_chunks(row_ids):
    """Schedule the issuance of many new credentials, :data:`BACKFILL_CHUNK_SIZE` per message; never raises."""
    for chunk in _chunks(list(row_ids), BACKFILL_CHUNK_SIZE):
        if not _send(issue_credentials_task, chunk):
            _not_queued(chunk)


def enqueue_refresh(row_id):
    """Schedule :func:`refresh_credential_task` for the credential; never raises."""
    _send(refresh_credential_task, row_id)


def enqueue_image_caching(row_id):
    """Schedule :func:`cache_credential_image_task` (the embedded page works without the image meanwhile)."""
    _send(cache_credential_image_task, row_id)


def enqueue_backfill(course_keys):
    """Start :func:`backfill_courses_task` for the courses; False (logged) when the broker cannot be reached."""
    return _send(backfill_courses_task, [str(key) for key in course_keys])


def _issue(row_id, wait, tries, row=None):
    with history.recorded_as(Cause.ISSUANCE):
        return machine.issue(row_id, wait=wait, tries=tries, row=row)


def _left_to_reconcile(row_id, later, eager):
    """
    Eager Celery (the demo, the tests) runs a delayed task at once: a pure wait (backoff, an account's Retry-After)
    would then spin, so there the row is left to the reconcile run, which honours the wait.
    """
    if later.waiting and eager:
        log.info("POK: credential %s waits %.1fs; left to reconcile (eager Celery)", row_id, later.countdown)
    return later.waiting and eager


def run_issuance(row_id, wait=0, tries=0, row=None):
    """
    Run one issuance step here and now (``pok_sync``, a chunk of rows); returns the local status. ``row``: the
    credential as :func:`~openedx_pok.issuance.machine.read_rows` read it already (None: read here).

    There is no task of its own to retry: a "retry later" hands the row to :func:`issue_credential_task`, delayed.
    """
    try:
        return _issue(row_id, wait, tries, row)
    except RetryLater as later:
        if not _left_to_reconcile(row_id, later, issue_credential_task.app.conf.task_always_eager):
            enqueue_issuance(row_id, countdown=later.countdown, wait=later.wait, tries=later.tries)
        return CredentialStatus.PENDING


def refresh(row_id):
    """Poll POK for one credential in progress (:func:`~openedx_pok.issuance.machine.refresh`); the local status."""
    with history.recorded_as(Cause.REFRESH):
        return machine.refresh(row_id)


def _chunks(row_ids, size):
    return [row_ids[start:start + size] for start in range(0, len(row_ids), size)]


def reconcile(limit=None, inline=False, pending_grace=None):
    """
    Bring unfinished credentials forward (see :func:`openedx_pok.issuance.reconcile.reconcile_plan`); returns counts,
    and when ``inline`` where the credentials ended (``issued_now`` / ``refreshed_now``: status -> count).

    ``inline`` runs the work in this process (management command); otherwise it is published for the workers in
    chunks of rows (a chunk the broker refuses stays as it is for the next run).
    """
    with history.recorded_as(Cause.RECONCILE):
        plan = reconciliation.reconcile_plan(limit=limit, pending_grace=pending_grace)
    wait = settings.POK_CERTIFICATE_WAIT_RETRIES  # reconcile never waits for a certificate that is not there
    counts = plan.counts
    if inline:
        # Where each credential ended (status -> count), for the command to say what happened.
        counts["issued_now"] = Counter(str(run_issuance(row_id, wait=wait)) for row_id in plan.to_issue)
        counts["refreshed_now"] = Counter(str(refresh(row_id)) for row_id in plan.to_refresh)
    else:
        for chunk in _chunks(plan.to_issue, RECONCILE_CHUNK_SIZE):
            _send(issue_credentials_task, chunk, wait=wait)
        for chunk in _chunks(plan.to_refresh, RECONCILE_CHUNK_SIZE):
            _send(refresh_credentials_task, chunk)
    return counts


# max_retries=None: the state machine counts its tries on the row (POK_MAX_RETRIES, POK_CERTIFICATE_WAIT_RETRIES).
@shared_task(bind=True, name="openedx_pok.tasks.issue_credential", ignore_result=True, acks_late=True,
             max_retries=None)
@set_code_owner_attribute
def issue_credential_task(self, row_id, wait=0, tries=0):
    """Issue one credential (:func:`openedx_pok.issuance.machine.issue`); "retry later" is Celery's retry."""
    try:
        _issue(row_id, wait, tries)
    except RetryLater as later:
        kwargs = {"wait": later.wait, "tries": later.tries}
        if not self.request.is_eager:
            raise self.retry(args=[row_id], kwargs=kwargs, countdown=later.countdown) from None
        if not _left_to_reconcile(row_id, later, eager=True):
            # Celery's eager retry, without the Retry it raises into the caller under task_eager_propagates.
            self.apply(args=[row_id], kwargs=kwargs)


@shared_task(name="openedx_pok.tasks.refresh_credential", ignore_result=True)
@set_code_owner_attribute
def refresh_credential_task(row_id):
    """Poll POK for one credential in progress (:func:`openedx_pok.issuance.machine.refresh`)."""
    refresh(row_id)


@shared_task(name="openedx_pok.tasks.cache_credential_image", ignore_result=True)
@set_code_owner_attribute
def cache_credential_image_task(row_id):
    """Cache an emitted credential's image location (:func:`openedx_pok.pages.media.cache_image_location`)."""
    media.cache_image_location(row_id)


@shared_task(name="openedx_pok.tasks.issue_credentials", ignore_result=True, acks_late=True)
@set_code_owner_attribute
def issue_credentials_task(row_ids, wait=0):
    """
    Issue a chunk of credentials found by the reconcile run or a backfill, one after the other, their rows read in
    one statement (a read per credential, of every column, was a sixth of an issuance's CPU).
    """
    with machine.message(row_ids) as rows:
        for row_id in row_ids:
            run_issuance(row_id, wait=wait, row=rows.get(row_id))


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
    from openedx_pok.course_setup import catalog  # noqa: PLC0415 - issue 9: templates and pages synced at most hourly

    catalog.sync_if_due()  # never raises: the reconcile below always runs
    return reconcile(limit=limit)


@shared_task(name="openedx_pok.tasks.backfill_courses", ignore_result=True)
@set_code_owner_attribute
def backfill_courses_task(course_keys):
    """Request credentials for the earlier certificates of the courses (:func:`openedx_pok.issuance.backfill.run`)."""
    try:
        courses = backfill.resolve_courses(course_keys)
    except CourseSetupError as exc:  # a mapping disabled since the admin started it
        log.warning("POK: background backfill not run: %s", exc.reason)
        return None
    with history.recorded_as(Cause.BACKFILL):
        report = backfill.run(courses, schedule=enqueue_issuance, schedule_many=enqueue_issuance_chunks)
    log.info("POK: background backfill of %s courses: %s", len(courses), report.counts)
    return report.counts
