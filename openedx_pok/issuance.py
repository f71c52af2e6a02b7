"""
The issuance state machine: claim, POST, store, refresh and reconcile. The only place where a credential is sent.

Exactly-once issuance rests on one compare-and-set: a credential moves from ``pending`` to ``requesting`` in a
single UPDATE (row-locked on MySQL, serialized on SQLite) that is committed before the POST is sent. Whoever wins
that UPDATE sends the POST; duplicate tasks, duplicate events and concurrent workers find the row no longer pending
and stop. Every outcome is written back to the row with a reason, so nothing is lost when POK misbehaves: transient
failures are retried with backoff and then left ``failed`` + ``retryable`` for the reconcile run to pick up.

Functions take row ids and plain values, re-read the row and are safe to run twice. They never enqueue: "try again
later" is the :class:`~openedx_pok.exceptions.RetryLater` exception, which the Celery layer (``tasks.py``) turns
into a delayed task, and :func:`reconcile_plan` returns the ids to work on instead of scheduling them.
"""
import logging
import random
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from openedx_pok import compat, configuration, media
from openedx_pok.exceptions import (
    CertificateNotReady,
    IssuanceError,
    PokApiError,
    PokAuthenticationError,
    PokConfigurationError,
    PokNotFoundError,
    RetryLater,
)
from openedx_pok.models import PokCertificate
from openedx_pok.payload import IssuanceContext, build_credential_payload
from openedx_pok.states import (
    CredentialStatus,
    current_status,
    is_web_url,
    local_status_for,
    transition,
    transition_many,
)

log = logging.getLogger(__name__)

# A row left "requesting" this long was abandoned by a crashed worker mid-POST.
STALE_REQUESTING = timedelta(minutes=10)
# Pending rows younger than this are left to the task already scheduled for them.
PENDING_GRACE = timedelta(minutes=2)


def backoff_seconds(tries, retry_after=None):
    """Seconds before the next try: POK's Retry-After when given, else capped exponential backoff, full jitter."""
    if retry_after is not None:
        return max(0.0, min(float(retry_after), settings.POK_RETRY_BACKOFF_MAX))
    ceiling = min(settings.POK_RETRY_BACKOFF_MAX, settings.POK_RETRY_BACKOFF_BASE * (2 ** max(0, tries - 1)))
    return random.uniform(ceiling / 2, ceiling) if ceiling else 0.0


def _hold(row, reason, retryable=False):
    log.info("POK: credential %s (user %s, course %s) held", row.id, row.user_id, row.course_key)
    transition(row.id, CredentialStatus.PENDING, status=CredentialStatus.HELD, status_reason=reason,
               retryable=retryable)
    return CredentialStatus.HELD


def _fail(row, reason, retryable, expected=CredentialStatus.PENDING):
    log.warning("POK: credential %s (user %s, course %s) failed (retryable=%s)",
                row.id, row.user_id, row.course_key, retryable)
    transition(row.id, expected, status=CredentialStatus.FAILED, status_reason=reason, retryable=retryable)
    return CredentialStatus.FAILED


def _retry_later(row, exc, tries, expected=CredentialStatus.PENDING):
    """Ask for another try after a transient POK failure, or give up as ``failed`` + retryable at the limit."""
    if tries > settings.POK_MAX_RETRIES:
        reason = _("POK was unavailable after {tries} tries: {error}").format(tries=tries, error=exc.message)
        return _fail(row, reason, retryable=True, expected=expected)
    delay = backoff_seconds(tries, getattr(exc, "retry_after", None))
    reason = _("Retrying after a temporary POK error: {error}").format(error=exc.message)
    if not transition(row.id, expected, status=CredentialStatus.PENDING, status_reason=reason):
        return CredentialStatus.PENDING
    log.info("POK: credential %s retry %s in %.1fs (%s)", row.id, tries, delay, type(exc).__name__)
    raise RetryLater(delay, tries=tries)


@dataclass(frozen=True)
class _Prepared:
    """What the claim and the POST need: the body to send and the facts recorded with the claim."""

    payload: dict
    setup: configuration.CourseSetup
    certificate: compat.CertificateInfo
    extra: dict = field(default_factory=dict)


def _prepare(row, wait):
    """
    Check the Open edX side and build the payload.

    Raises IssuanceError for anything the learner or staff must fix, RetryLater while the certificate is still being
    generated, and PokApiError from the template lookup.
    """
    certificate = compat.get_certificate(row.user, row.course_key)
    if certificate is not None and certificate.verify_uuid and certificate.verify_uuid != row.verify_uuid:
        # Recorded as soon as it is known, so the credential can be addressed by it even while held or pending.
        PokCertificate.objects.filter(id=row.id).update(verify_uuid=certificate.verify_uuid)
    if certificate is None or certificate.status == "generating":
        if wait < settings.POK_CERTIFICATE_WAIT_RETRIES:
            raise RetryLater(settings.POK_CERTIFICATE_WAIT_DELAY, wait=wait + 1)
        raise CertificateNotReady(
            _("The Open edX certificate does not exist yet; issuance resumes when it is created.")
        )
    if not certificate.is_downloadable:
        raise IssuanceError(
            _("The Open edX certificate is {status}: no credential is issued for it.").format(status=certificate.status)
        )
    setup = configuration.course_setup(row.course_key)
    template = configuration.template(setup.template_id)
    context = IssuanceContext(
        course=setup.course,
        certificate=certificate,
        template=template,
        email=row.user.email,
        profile_name=compat.get_profile_name(row.user),
        language=compat.get_language_preference(row.user),
        platform_name=compat.get_platform_name(),
        emission_type=setup.emission_type,
        date_format=settings.POK_DATE_FORMAT,
        skip_acceptance=settings.POK_SKIP_ACCEPTANCE,
        page_id=setup.page_id,
        grade=row.grade,
        tags=tuple(settings.POK_CREDENTIAL_TAGS) + (str(row.course_key),),
    )
    return _Prepared(payload=build_credential_payload(context), setup=setup, certificate=certificate)


def issue(row_id, wait=0, tries=0):
    """
    Issue the credential of row ``row_id`` if it is pending. Returns the resulting local status.

    ``wait`` counts the times the Open edX certificate was not there yet; ``tries`` counts transient POK failures
    of this issuance (both travel with RetryLater into the next task so a lost worker does not reset them to zero
    forever: the row's ``attempts`` column counts POSTs independently).
    """
    row = PokCertificate.objects.select_related("user").filter(id=row_id).first()
    if row is None or row.status != CredentialStatus.PENDING:
        return row.status if row else None
    try:
        prepared = _prepare(row, wait)
    except IssuanceError as exc:
        # A certificate that may still appear is retried by reconcile: an award event racing with the end of the
        # wait must not leave the credential held for good.
        return _hold(row, exc.reason, retryable=exc.retryable)
    except PokConfigurationError as exc:
        return _hold(row, _("POK is not configured: {error}").format(error=exc))
    except PokAuthenticationError as exc:
        return _fail(row, _("POK rejected the API key: {error}").format(error=exc.message), retryable=False)
    except PokApiError as exc:
        if exc.retryable:
            return _retry_later(row, exc, tries + 1)
        return _fail(row, _("POK refused the template lookup: {error}").format(error=exc.message), retryable=False)
    payload, certificate = prepared.payload, prepared.certificate

    # The claim: committed before the POST so no other worker can send one for this issuance.
    claimed = transition(
        row.id, CredentialStatus.PENDING,
        status=CredentialStatus.REQUESTING, attempts=F("attempts") + 1, requested_at=timezone.now(),
        status_reason="", retryable=False, template_id=prepared.setup.template_id,
        page_id=payload["customization"].get("page", ""), emission_type=prepared.setup.emission_type,
        title=payload["credential"]["title"], emitter=payload["credential"]["emitter"],
        tags=payload["credential"]["tags"], receiver=payload["receiver"],
        custom_parameters=payload["customization"]["template"]["customParameters"],
        emission_date=certificate.created or certificate.modified,
        verify_uuid=certificate.verify_uuid or row.verify_uuid,
    )
    if not claimed:
        return current_status(row.id)
    log.info("POK: issuing credential %s (user %s, course %s, attempt %s)",
             row.id, row.user_id, row.course_key, row.attempts + 1)
    try:
        credential = configuration.get_client().issue_credential(payload, idempotency_key=row.idempotency_key)
    except PokApiError as exc:
        return _after_post_failure(row, exc, tries + 1)
    return _store(row, credential, CredentialStatus.REQUESTING)


def _after_post_failure(row, exc, tries):
    if exc.ambiguous:
        PokCertificate.objects.filter(id=row.id).update(ambiguous_attempts=F("ambiguous_attempts") + 1)
        if not settings.POK_RETRY_AMBIGUOUS:
            reason = _("POK may have received the request but did not answer ({error}). Check POK for this "
                       "learner's credential before retrying.").format(error=exc.message)
            return _fail(row, reason, retryable=False, expected=CredentialStatus.REQUESTING)
    if exc.retryable:
        return _retry_later(row, exc, tries, expected=CredentialStatus.REQUESTING)
    return _fail(row, _("POK refused the credential: {error}").format(error=exc.message), retryable=False,
                 expected=CredentialStatus.REQUESTING)


def _store(row, credential, expected_status):
    """
    Record what POK answered. The POK id is stored whatever the local status became meanwhile (e.g. revoked
    during the POST), so a credential that exists on POK is never forgotten.
    """
    now = timezone.now()
    view_url = credential.view_url or ""
    if view_url and not is_web_url(view_url):
        # Never store a link learners could be sent to that is not a web page (e.g. a javascript: URL).
        log.warning("POK: credential %s came with a view URL that is not http(s); ignored", row.id)
        view_url = ""
    try:
        PokCertificate.objects.filter(id=row.id).update(
            pok_credential_id=credential.id, pok_state=credential.state, view_url=view_url,
            last_synced_at=now, modified=now,
        )
    except IntegrityError:
        reason = _("POK answered with credential id {id}, which another record already holds.").format(
            id=credential.id)
        return _fail(row, reason, retryable=False, expected=expected_status)
    status = local_status_for(credential.state, view_url)
    reason = ""
    if status == CredentialStatus.FAILED:
        reason = _("POK will not emit this credential (state {state}).").format(state=credential.state)
    elif status == CredentialStatus.REVOKED:
        reason = _("The credential was revoked on POK.")
    transition(row.id, expected_status, status=status, status_reason=reason, retryable=False)
    log.info("POK: credential %s is %s (POK id %s, state %s)", row.id, status, credential.id, credential.state)
    if status == CredentialStatus.EMITTED and settings.POK_CERTIFICATE_PAGE == "embed":
        media.cache_image_location(row.id)
    return status


def refresh(row_id):
    """Poll POK for a credential in progress and record its new state. Returns the local status."""
    row = PokCertificate.objects.filter(id=row_id).first()
    if row is None or row.status != CredentialStatus.IN_PROGRESS or not row.pok_credential_id:
        return row.status if row else None
    try:
        credential = configuration.get_client().get_credential(row.pok_credential_id)
    except PokNotFoundError:
        return _fail(row, _("The credential {id} no longer exists on POK.").format(id=row.pok_credential_id),
                     retryable=False, expected=CredentialStatus.IN_PROGRESS)
    except (PokApiError, PokConfigurationError) as exc:
        # Still in progress on our side; the next reconcile run polls again. Recorded so staff can see it.
        log.warning("POK: refresh of credential %s failed (%s)", row.id, type(exc).__name__)
        transition(row.id, CredentialStatus.IN_PROGRESS, modified=row.modified,
                   status_reason=_("Last refresh failed: {error}").format(error=getattr(exc, "message", str(exc))))
        return row.status
    return _store(row, credential, CredentialStatus.IN_PROGRESS)


@dataclass
class ReconcilePlan:
    """What a reconcile run found to do: the rows to (re)issue and to refresh, and how many were abandoned."""

    abandoned: int = 0
    to_issue: list = field(default_factory=list)
    to_refresh: list = field(default_factory=list)

    @property
    def counts(self):
        return {"abandoned": self.abandoned, "issued": len(self.to_issue), "refreshed": len(self.to_refresh)}


def _recover_abandoned(now, limit):
    """Requests left ``requesting`` by a crashed worker: counted as ambiguous, then re-sent or failed for staff."""
    resend, abandoned = [], 0
    for row in PokCertificate.objects.filter(status=CredentialStatus.REQUESTING,
                                             modified__lt=now - STALE_REQUESTING)[:limit]:
        PokCertificate.objects.filter(id=row.id).update(ambiguous_attempts=F("ambiguous_attempts") + 1)
        if settings.POK_RETRY_AMBIGUOUS:
            if transition(row.id, CredentialStatus.REQUESTING, status=CredentialStatus.PENDING,
                          status_reason=_("The previous request to POK was interrupted; sending it again.")):
                resend.append(row.id)
        else:
            _fail(row, _("The request to POK was interrupted and may have reached POK. Check POK for this "
                         "learner's credential before retrying."), retryable=False,
                  expected=CredentialStatus.REQUESTING)
        abandoned += 1
    return resend, abandoned


def reconcile_plan(limit=None, pending_grace=None):
    """
    Bring every unfinished credential forward, in bounded batches: returns the plan of what to issue and refresh.

    - ``requesting`` rows abandoned mid-POST are counted as ambiguous and sent again (or failed for staff when
      ambiguous retries are disabled);
    - ``pending`` rows older than a grace period, retryable failures and credentials held because the Open edX
      certificate was not there yet are (re)issued;
    - ``in_progress`` rows are polled on POK, the least recently polled first.
    ``pending_grace`` (default two minutes) leaves fresh pending rows to the task already scheduled for them.
    """
    limit = limit or settings.POK_SYNC_BATCH_SIZE
    grace = PENDING_GRACE if pending_grace is None else pending_grace
    now = timezone.now()
    plan = ReconcilePlan()
    resend, plan.abandoned = _recover_abandoned(now, limit)

    retryable = (CredentialStatus.FAILED, CredentialStatus.HELD)
    retryable_failures = list(PokCertificate.objects.filter(
        status__in=retryable, retryable=True,
    ).values_list("id", flat=True)[:limit])
    transition_many(retryable_failures, retryable, status=CredentialStatus.PENDING, modified=now)
    plan.to_issue = list(PokCertificate.objects.filter(
        Q(modified__lte=now - grace) | Q(id__in=retryable_failures + resend), status=CredentialStatus.PENDING,
    ).order_by("modified").values_list("id", flat=True)[:limit])
    plan.to_refresh = list(PokCertificate.objects.filter(status=CredentialStatus.IN_PROGRESS).exclude(
        Q(pok_credential_id__isnull=True) | Q(pok_credential_id=""),
    ).order_by(F("last_synced_at").asc(nulls_first=True)).values_list("id", flat=True)[:limit])
    log.info("POK: reconcile %s", plan.counts)
    return plan
