"""
What the LMS's paths decide and record: a learner's issuance request, a revocation, the certificate page, the
status a learner reads, and the operations that tie services to the Celery tasks (backfill, reconcile, retirement,
the legacy import).

Entry points (pipeline steps, receivers, views, admin, commands) call this module for these and the services
(``issuance``, ``course_setup``, ``pages``) for the rest; none of them reaches the POK client or a Celery task
itself, so the rules that protect the LMS (no HTTP on its paths, schedule after commit) hold in one place. Functions
here only read and write the database and schedule tasks after the surrounding transaction commits; none calls POK.
"""
import logging
from urllib.parse import urlencode

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse

from openedx_pok import caching, compat, tasks
from openedx_pok.course_setup import configuration
from openedx_pok.course_setup.payload import learner_fix, usable_grade
from openedx_pok.exceptions import IssuanceError
from openedx_pok.issuance import backfill as backfilling
from openedx_pok.issuance import events, history, retirement, staff_actions
from openedx_pok.issuance.history import Cause
from openedx_pok.issuance.states import (
    CredentialStatus,
    PublicStatus,
    guarded,
    new_issuance_fields,
    public_status,
    release_reason,
    transition,
)
from openedx_pok.keys import parse_course_key
from openedx_pok.legacy import importer
from openedx_pok.models import CertificateTemplate, PokCertificate
from openedx_pok.pages import media, render, sharing
from openedx_pok.pages.render import UNTOUCHED, CertificatePage, PageKind

log = logging.getLogger(__name__)

#: The registered Celery name of the issuance task (the benchmarks count its messages).
ISSUE_TASK_NAME = tasks.issue_credential_task.name


def as_course_key(course_key):
    """A CourseKey from a key or its string; None (logged) for anything invalid."""
    parsed = parse_course_key(course_key)
    if parsed is None:
        log.warning("POK: ignoring invalid course key %r", course_key)
    return parsed


def get_course_mapping(course_key):
    """The enabled template mapping that applies to the course, or None when the course is not POK-enabled."""
    course_key = as_course_key(course_key)
    if course_key is None:
        return None
    mapping = configuration.mapping_for(course_key)
    return mapping if mapping is not None and mapping.enabled else None


def is_pok_enabled(course_key):
    """Whether learners who earn a certificate in this course get a POK credential."""
    return get_course_mapping(course_key) is not None


def can_manage_course_credentials(user, course_key):
    """
    Whether ``user`` may see and act on the course's credentials (the instructor dashboard's POK tab): global staff
    everywhere, and the course's own staff and instructors, as the LMS's course access roles say; no one else (not
    a data researcher, not the staff of another course).
    """
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    if user.is_staff:
        return True
    course_key = as_course_key(course_key)
    return course_key is not None and compat.has_course_team_role(user, course_key)


def platform_name():
    """The site's platform name (the plugin's own pages name it in their title)."""
    return compat.get_platform_name()


def get_credential(user_id, course_key):
    """The learner's credential record for the course, or None."""
    course_key = as_course_key(course_key)
    if course_key is None:
        return None
    return PokCertificate.objects.filter(user_id=user_id, course_key=course_key).one()


def _get_or_create(user_id, course_key, grade, expect_new=False):
    """
    One row per (learner, course), also when two processes create it at the same moment. Returns (row, created).

    Only the call that created the row schedules its issuance, so one award starts one task chain although both the
    creation filter and the CERTIFICATE_CREATED event ask for it. The caller says which statement comes first:
    ``expect_new`` (the creation filter, a page without a record) tries the insert and reads only when the row was
    there already; otherwise (CERTIFICATE_CREATED, which almost always finds the filter's row) the read comes first.
    So an award costs one insert and one read. A savepoint guards the insert only inside a transaction, where a
    duplicate-key error must not break the LMS's.
    """
    if not expect_new:
        row = PokCertificate.objects.filter(user_id=user_id, course_key=course_key).one()
        if row is not None:
            return row, False
    try:
        with guarded():
            return PokCertificate.objects.create(user_id=user_id, course_key=course_key, grade=grade), True
    except IntegrityError:
        return PokCertificate.objects.get(user_id=user_id, course_key=course_key), False


def request_issuance(user_id, course_key, grade=None, expect_new=False):
    """
    Record that the learner earned a certificate in the course and schedule the POK credential.

    Idempotent: called for every filter run and every CERTIFICATE_CREATED event. Returns the row, or None when
    the course is not POK-enabled. A new row schedules its issuance once; a row already pending has its task (or
    reconcile sends it). A held credential (bad learner data) and a retryable failure are tried again, since a new
    award is a good moment to do so; a revoked one is re-issued as a new credential. A grade that is not a number in
    [0, 1] is not recorded (the certificate's own grade is used instead).

    ``expect_new``: the caller expects no record yet (the creation filter, which runs before anything exists; a
    certificate page that found none), so the insert is tried before the read; the result is the same either way.
    """
    course_key = as_course_key(course_key)
    if course_key is None or user_id is None or not is_pok_enabled(course_key):
        return None
    if grade is not None and usable_grade(grade) is None:
        log.warning("POK: ignoring unusable grade for user %s in %s", user_id, course_key)
        grade = None
    row, created = _get_or_create(user_id, course_key, grade, expect_new)
    if created:
        events.emit(events.REQUESTED, row)
    if grade is not None and row.grade != grade:
        PokCertificate.objects.filter(id=row.id).update(grade=grade)
        row.grade = grade

    schedule = created
    with history.recorded_as(Cause.LMS):
        if row.status == CredentialStatus.REVOKED:
            row = _reissue(row)
            schedule = row.status == CredentialStatus.PENDING
        elif row.status == CredentialStatus.HELD or (row.status == CredentialStatus.FAILED and row.retryable):
            if transition(row.id, row.status, status=CredentialStatus.PENDING, not_before=None):
                row.status = CredentialStatus.PENDING
                schedule = True
    if schedule and row.status == CredentialStatus.PENDING:
        tasks.schedule_issuance(row.id)
    return row


def _reissue(row):
    """Turn a revoked record into a new pending issuance (a new award); the old POK id is kept in the history."""
    if transition(row.id, CredentialStatus.REVOKED, **new_issuance_fields(row)):
        log.info("POK: credential %s re-issued after revocation (issuance %s)", row.id, row.issuance + 1)
    return PokCertificate.objects.get(id=row.id)


def revoke(user_id, course_key, reason):
    """
    Mark the learner's credential revoked so it is never shown again. Returns the row or None.

    POK has no known revocation endpoint: the reason recorded tells staff to revoke it on POK as well.
    """
    course_key = as_course_key(course_key)
    if course_key is None:
        return None
    row = PokCertificate.objects.filter(user_id=user_id, course_key=course_key).one()
    if row is None or row.status == CredentialStatus.REVOKED:
        return row
    with history.recorded_as(Cause.LMS):
        staff_actions.revoke_row(row, reason)
    log.info("POK: credential %s (user %s, course %s) revoked", row.id, user_id, course_key)
    row.refresh_from_db()
    return row



def reconcile(limit=None, inline=False, pending_grace=None):
    """Bring unfinished credentials forward (see :func:`openedx_pok.tasks.reconcile`); returns counts per action."""
    return tasks.reconcile(limit=limit, inline=inline, pending_grace=pending_grace)


def status_payload(row):
    """
    What the status endpoint returns: no internal reasons, the POK page and share links once emitted, and for a
    credential that waits for the course's certificate release, that date and a sentence saying so.
    """
    state = public_status(row)
    emitted = state == PublicStatus.EMITTED
    payload = {
        "reference": str(row.uuid),
        "course_id": str(row.course_key),
        "status": str(state),
        "emitted": emitted,
        "view_url": row.view_url if emitted else None,
        "share": sharing.share_links(row) if emitted else [],
    }
    if state == PublicStatus.SCHEDULED:
        payload["available_date"] = row.not_before.isoformat() if row.not_before else None
        payload["message"] = release_reason(row.not_before)
    return payload


def _at_most_once_per_period(key, schedule):
    """Run ``schedule`` after commit unless it ran for ``key`` in the last POK_REFRESH_ON_VIEW_SECONDS."""
    # A cache that is down schedules nothing: page views must not turn into a task each.
    if not caching.add(f"openedx_pok:{key}", 1, settings.POK_REFRESH_ON_VIEW_SECONDS, when_down=False):
        return False
    transaction.on_commit(schedule)
    return True


def note_page_view(row):
    """
    The learner opened the page of a credential that is not ready: ask POK for news, at most once a minute.

    Enqueues a refresh (no POK call here) for a credential POK is working on; pending ones already have a task.
    """
    if row.status != CredentialStatus.IN_PROGRESS or not row.pok_credential_id:
        return False
    return _at_most_once_per_period(f"viewed:{row.id}", lambda: tasks.enqueue_refresh(row.id))


def note_missing_image(row):
    """The embedded page of an emitted credential had no cached image: fetch its location, at most once a minute."""
    return _at_most_once_per_period(f"image-wanted:{row.id}", lambda: tasks.enqueue_image_caching(row.id))


def get_credential_by_reference(reference):
    """The credential addressed by its public reference (the row UUID) or by the Open edX verify_uuid."""
    reference = str(reference or "").strip().lower()
    if len(reference) == 32 and all(ch in "0123456789abcdef" for ch in reference):
        row = PokCertificate.objects.filter(verify_uuid=reference).first()
        if row is not None:
            return row
    try:
        return PokCertificate.objects.filter(uuid=reference).first()
    except (ValueError, ValidationError):
        return None


# ------------------------------------------------------------------------------------------------------------------
# The certificate page: one decision, one frozen value (``render.CertificatePage``), rendered by ``render``.
# ------------------------------------------------------------------------------------------------------------------
def page_for_credential(row):
    """The page of an existing credential (emitted, on its way, delayed or revoked)."""
    state = public_status(row)
    common = {"reference": str(row.uuid), "title": row.title}
    if state == PublicStatus.REVOKED:
        return CertificatePage(kind=PageKind.INVALID, **common)
    if state == PublicStatus.DELAYED:
        if settings.POK_FALLBACK_TO_OPEN_EDX_CERTIFICATE:
            return UNTOUCHED
        return CertificatePage(kind=PageKind.NOTICE, learner_fix=_learner_fix(row), course_id=str(row.course_key),
                               **common)
    if state == PublicStatus.EMITTED:
        if settings.POK_CERTIFICATE_PAGE != "embed":
            return CertificatePage(kind=PageKind.REDIRECT, view_url=row.view_url, **common)
        # Only a location cached by a task is used: the page itself never asks POK.
        image_url = media.cached_image_location(row)
        if not image_url:
            note_missing_image(row)
        return CertificatePage(
            kind=PageKind.EMBED, view_url=row.view_url, emitter=row.emitter, image_url=image_url,
            share_links=tuple(sharing.share_links(row)),
            download_url=reverse("openedx_pok:credential-image", kwargs={"reference": row.uuid}), **common,
        )
    note_page_view(row)
    return CertificatePage(
        kind=PageKind.STATUS, status_url=reverse("openedx_pok:credential-status", kwargs={"reference": row.uuid}),
        **common,
    )


def _learner_fix(row):
    """
    What the learner viewing their own held credential can fix (their full name, their e-mail), read from their
    account as it is now: "" for anyone else (the page is public), and when staff must act. Only held pages pay for
    it (the learner's row and profile).
    """
    if row.status != CredentialStatus.HELD or render.viewer_id() != row.user_id or retirement.is_retired(row.receiver):
        return ""
    return learner_fix(compat.get_profile_name(row.user), row.user.email)


def learner_data_changed(user_id):
    """
    The learner changed their full name or e-mail (their account settings): their held credentials go again, so a
    credential held for that data follows by itself. One indexed read when nothing is held; one still held for
    another cause is held again with its reason, without a request to POK.
    """
    held = PokCertificate.objects.filter(user_id=user_id, status=CredentialStatus.HELD).values_list("id", "receiver")
    with history.recorded_as(Cause.LMS):
        for row_id, receiver in held:
            if not retirement.is_retired(receiver) and transition(
                    row_id, CredentialStatus.HELD, status=CredentialStatus.PENDING, not_before=None):
                log.info("POK: credential %s sent again after its learner changed their account", row_id)
                tasks.schedule_issuance(row_id)


def _preview_page(course_key, language):
    try:
        setup = configuration.course_setup(course_key)
        details = {"template_id": setup.template_id, "emission_type": setup.mapping.get_emission_type_display()}
    except IssuanceError as exc:
        details = {"template_id": "-", "problem": exc.reason}
    url = reverse("openedx_pok:preview-image", kwargs={"course_id": str(course_key)})
    return CertificatePage(kind=PageKind.PREVIEW, preview_image_url=f"{url}?{urlencode({'language': language})}",
                           **details)


def certificate_page(context):
    """
    What the certificate page of this render context shows: a :class:`CertificatePage`.

    Reads the database only (no query for a course without a mapping, one indexed query for an emitted credential)
    and never calls POK. A POK-enabled course whose learner has no record yet (a certificate from before the
    plugin) gets its issuance scheduled and the status page; a course that is not POK-enabled, or a context that
    cannot be read, is left untouched.
    """
    inputs = render.context_inputs(context)
    if inputs is None:
        return UNTOUCHED
    course_key, user_id, is_preview = inputs
    if configuration.mapping_for(course_key) is None:
        # Most courses of an LMS are not mapped: their pages cost no query at all (the mappings are cached).
        return UNTOUCHED
    if is_preview:
        if not is_pok_enabled(course_key):
            return UNTOUCHED
        return _preview_page(course_key, context.get("user_language") or "")
    row = get_credential(user_id, course_key)
    if row is None:
        row = request_issuance(user_id, course_key, expect_new=True)
        if row is None:
            return UNTOUCHED
    _follow_verify_uuid(row, context.get("certificate_id_number"))
    if row.status == CredentialStatus.SCHEDULED:
        _released_on_view(row)
    return page_for_credential(row)


def _follow_verify_uuid(row, verify_uuid):
    """The certificate's public id as the page shows it: two racing generation tasks of the LMS may have replaced it
    after the credential read it. Compared in memory; written only when it differs."""
    if isinstance(verify_uuid, str) and len(verify_uuid) == 32 and verify_uuid != row.verify_uuid:
        PokCertificate.objects.filter(id=row.id).update(verify_uuid=verify_uuid)
        row.verify_uuid = verify_uuid


def _released_on_view(row):
    """The LMS shows the certificate of a credential waiting for its course's release (before, it shows "invalid"):
    released, so the credential goes out now, not at the next reconcile run."""
    with history.recorded_as(Cause.LMS):
        if transition(row.id, CredentialStatus.SCHEDULED, status=CredentialStatus.PENDING, not_before=None,
                      status_reason=""):
            row.status, row.not_before = CredentialStatus.PENDING, None
            tasks.schedule_issuance(row.id)


# ------------------------------------------------------------------------------------------------------------------
# Operations: the legacy import, learner retirement, the backfill.
# ------------------------------------------------------------------------------------------------------------------
def import_legacy(dry_run=False, batch_size=None):
    """
    Import the earlier openedx-pok's course templates and credentials, as the data migration does on upgrade
    (``pok_import_legacy``); returns the :class:`~openedx_pok.legacy.report.ImportReport`. ``dry_run`` writes nothing.
    """
    report = importer.import_legacy(CertificateTemplate, PokCertificate, dry_run=dry_run,
                                  batch_size=batch_size or importer.BATCH_SIZE)
    if not dry_run:
        configuration.forget_mappings()  # bulk inserts send no post_save: the cached mappings would be stale
    return report


def retire_learner(user_id):
    """The USER_RETIRE_LMS_MISC receiver's work: :func:`openedx_pok.issuance.retirement.retire_learner`."""
    with history.recorded_as(Cause.RETIREMENT):
        return retirement.retire_learner(user_id)


def backfill(course_keys=(), orgs=(), background=False, actor_id=None, **options):
    """
    ``pok_backfill``, the admin's backfill in the background and a course team's from the instructor dashboard
    (``actor_id``: the staff member, named on the history lines it writes); see
    :func:`openedx_pok.issuance.backfill.backfill`.
    """
    with history.recorded_as(Cause.BACKFILL, actor_id):
        return backfilling.backfill(course_keys, orgs, tasks.enqueue_issuance, tasks.enqueue_backfill, background,
                                    schedule_many=tasks.enqueue_issuance_chunks, **options)

