"""
The plugin's public Python API: pipeline steps, event receivers, views, admin and commands all come through here.

Functions here only read and write the database and schedule tasks after the surrounding transaction commits;
they never call POK, so they are safe on the LMS's request and certificate paths.
"""
import logging

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey

from openedx_pok import sharing, tasks
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate

log = logging.getLogger(__name__)


def as_course_key(course_key):
    """A CourseKey from a key or its string; None (logged) for anything invalid."""
    if isinstance(course_key, CourseKey):
        return course_key
    try:
        return CourseKey.from_string(str(course_key))
    except InvalidKeyError:
        log.warning("POK: ignoring invalid course key %r", course_key)
        return None


def get_course_mapping(course_key):
    """The enabled template mapping that applies to the course, or None when the course is not POK-enabled."""
    course_key = as_course_key(course_key)
    if course_key is None:
        return None
    mapping = CertificateTemplate.objects.for_course(course_key)
    return mapping if mapping is not None and mapping.enabled else None


def is_pok_enabled(course_key):
    """Whether learners who earn a certificate in this course get a POK credential."""
    return get_course_mapping(course_key) is not None


def get_credential(user_id, course_key):
    """The learner's credential record for the course, or None."""
    course_key = as_course_key(course_key)
    if course_key is None:
        return None
    return PokCertificate.objects.filter(user_id=user_id, course_key=course_key).first()


def _get_or_create(user_id, course_key):
    """One row per (learner, course), also when two processes create it at the same moment."""
    row = PokCertificate.objects.filter(user_id=user_id, course_key=course_key).first()
    if row is not None:
        return row
    try:
        with transaction.atomic():
            return PokCertificate.objects.create(user_id=user_id, course_key=course_key)
    except IntegrityError:
        return PokCertificate.objects.get(user_id=user_id, course_key=course_key)


def _schedule_issuance(row_id):
    # After commit: the task must see the row, and a rolled-back LMS transaction must not issue anything.
    transaction.on_commit(lambda: tasks.enqueue_issuance(row_id))


def request_issuance(user_id, course_key, grade=None):
    """
    Record that the learner earned a certificate in the course and schedule the POK credential.

    Idempotent: called for every filter run and every CERTIFICATE_CREATED event. Returns the row, or None when
    the course is not POK-enabled. A held credential (bad learner data) and a retryable failure are tried again,
    since a new award is a good moment to do so; a revoked one is re-issued as a new credential.
    """
    course_key = as_course_key(course_key)
    if course_key is None or user_id is None or not is_pok_enabled(course_key):
        return None
    row = _get_or_create(user_id, course_key)
    if grade is not None and row.grade != grade:
        PokCertificate.objects.filter(id=row.id).update(grade=grade)
        row.grade = grade

    if row.status == CredentialStatus.REVOKED:
        row = _reissue(row)
    elif row.status == CredentialStatus.HELD or (row.status == CredentialStatus.FAILED and row.retryable):
        if PokCertificate.objects.filter(id=row.id, status=row.status).update(
            status=CredentialStatus.PENDING, modified=timezone.now(),
        ):
            row.status = CredentialStatus.PENDING
    if row.status == CredentialStatus.PENDING:
        _schedule_issuance(row.id)
    return row


def _reissue(row):
    """Turn a revoked record into a new pending issuance; the old POK id is kept in the history."""
    previous = list(row.previous_credential_ids or [])
    if row.pok_credential_id:
        previous.append(row.pok_credential_id)
    updated = PokCertificate.objects.filter(id=row.id, status=CredentialStatus.REVOKED).update(
        status=CredentialStatus.PENDING, status_reason="", issuance=row.issuance + 1, pok_credential_id=None,
        pok_state="", view_url="", previous_credential_ids=previous, retryable=False, modified=timezone.now(),
    )
    if updated:
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
    row = PokCertificate.objects.filter(user_id=user_id, course_key=course_key).first()
    if row is None or row.status == CredentialStatus.REVOKED:
        return row
    if row.pok_credential_id:
        reason = _("{reason} Revoke credential {id} on POK as well.").format(reason=reason, id=row.pok_credential_id)
    PokCertificate.objects.filter(id=row.id).update(
        status=CredentialStatus.REVOKED, status_reason=reason, retryable=False, modified=timezone.now(),
    )
    log.info("POK: credential %s (user %s, course %s) revoked", row.id, user_id, course_key)
    row.refresh_from_db()
    return row


def retry(row):
    """Staff action: send a held or failed credential again. Returns True when it was scheduled."""
    if row.status not in (CredentialStatus.HELD, CredentialStatus.FAILED):
        return False
    if not PokCertificate.objects.filter(id=row.id, status=row.status).update(
        status=CredentialStatus.PENDING, status_reason="", retryable=False, modified=timezone.now(),
    ):
        return False
    _schedule_issuance(row.id)
    return True


def refresh(row):
    """Staff action: poll POK for a credential in progress now rather than at the next reconcile run."""
    if row.status != CredentialStatus.IN_PROGRESS or not row.pok_credential_id:
        return False
    transaction.on_commit(lambda: tasks.enqueue_refresh(row.id))
    return True


def reconcile(limit=None, inline=False, pending_grace=None):
    """Bring unfinished credentials forward (see :func:`openedx_pok.tasks.reconcile`)."""
    return tasks.reconcile(limit=limit, inline=inline, pending_grace=pending_grace)


# What a learner (or anyone with the certificate link) is told; internal states stay internal.
PUBLIC_EMITTED, PUBLIC_IN_PROGRESS, PUBLIC_DELAYED, PUBLIC_REVOKED = "emitted", "in_progress", "delayed", "revoked"


def public_status(row):
    """The learner-facing state of a credential: emitted, in_progress, delayed (held/failed) or revoked."""
    if row.status == CredentialStatus.EMITTED and tasks.is_web_url(row.view_url):
        return PUBLIC_EMITTED
    if row.status == CredentialStatus.REVOKED:
        return PUBLIC_REVOKED
    if row.status in (CredentialStatus.HELD, CredentialStatus.FAILED):
        return PUBLIC_DELAYED
    return PUBLIC_IN_PROGRESS


def status_payload(row):
    """What the status endpoint returns: no internal reasons, the POK page and share links once emitted."""
    state = public_status(row)
    emitted = state == PUBLIC_EMITTED
    return {
        "reference": str(row.uuid),
        "course_id": str(row.course_key),
        "status": state,
        "emitted": emitted,
        "view_url": row.view_url if emitted else None,
        "share": sharing.share_links(row) if emitted else [],
    }


def _at_most_once_per_period(key, schedule):
    """Run ``schedule`` after commit unless it ran for ``key`` in the last POK_REFRESH_ON_VIEW_SECONDS."""
    if not cache.add(f"openedx_pok:{key}", 1, settings.POK_REFRESH_ON_VIEW_SECONDS):
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
