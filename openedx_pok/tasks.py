"""
Celery tasks: the only place where the plugin talks to POK.

Exactly-once issuance rests on one compare-and-set: a credential moves from ``pending`` to ``requesting`` in a
single UPDATE (row-locked on MySQL, serialized on SQLite) that is committed before the POST is sent. Whoever wins
that UPDATE sends the POST; duplicate tasks, duplicate events and concurrent workers find the row no longer pending
and stop. Every outcome is written back to the row with a reason, so nothing is lost when POK misbehaves: transient
failures are retried with backoff and then left ``failed`` + ``retryable`` for the reconcile run to pick up.

Tasks take ids and plain values only, re-read the row and are safe to run twice.
"""
import hashlib
import logging
import random
from datetime import timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from openedx_pok import compat
from openedx_pok.client import PokApiClient, fetch_image, host_allowed
from openedx_pok.compat import CertificateInfo
from openedx_pok.exceptions import (
    PokApiError,
    PokAuthenticationError,
    PokConfigurationError,
    PokNotFoundError,
)
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from openedx_pok.payload import IssuanceContext, PayloadError, build_credential_payload, build_preview_payload
from openedx_pok.states import local_status_for

log = logging.getLogger(__name__)

# A row left "requesting" this long was abandoned by a crashed worker mid-POST.
STALE_REQUESTING = timedelta(minutes=10)
# Pending rows younger than this are left to the task already scheduled for them.
PENDING_GRACE = timedelta(minutes=2)


@lru_cache(maxsize=8)
def _cached_client(api_url, api_key, timeout, connect_timeout):
    return PokApiClient(api_url, api_key, timeout=timeout, connect_timeout=connect_timeout)


def get_client():
    """A pooled client for the configured POK account (one per process and configuration)."""
    return _cached_client(
        settings.POK_API_URL, settings.POK_API_KEY, settings.POK_TIMEOUT, settings.POK_CONNECT_TIMEOUT,
    )


def _digest(*parts):
    """A stable cache-key fragment (the same in every worker process, unlike ``hash``)."""
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:32]


def get_template(client, template_id):
    """
    The template definition, cached so that issuing a credential costs one POST and no template GET.

    The cache key includes the API URL so a sandbox and a production account never share entries.
    """
    key = f"openedx_pok:template:{_digest(client.api_url, template_id)}"
    template = cache.get(key)
    if template is None:
        template = client.get_template(template_id)
        cache.set(key, template, settings.POK_TEMPLATE_CACHE_TIMEOUT)
    return template


def backoff_seconds(tries, retry_after=None):
    """Seconds before the next try: POK's Retry-After when given, else capped exponential backoff, full jitter."""
    if retry_after is not None:
        return max(0.0, min(float(retry_after), settings.POK_RETRY_BACKOFF_MAX))
    ceiling = min(settings.POK_RETRY_BACKOFF_MAX, settings.POK_RETRY_BACKOFF_BASE * (2 ** max(0, tries - 1)))
    return random.uniform(ceiling / 2, ceiling) if ceiling else 0.0


def _task_options(countdown=0):
    options = {"countdown": countdown} if countdown else {}
    if settings.POK_CELERY_QUEUE:
        options["queue"] = settings.POK_CELERY_QUEUE
    return options


def _enqueue(task, credential_id, countdown=0, **kwargs):
    """
    Send ``task`` for a credential to the broker; never raise.

    A broker outage must not break the LMS request that scheduled the task: the row keeps its state and the
    reconcile run picks it up later, so the failure is logged, not lost.
    """
    try:
        task.apply_async(args=[credential_id], kwargs=kwargs, **_task_options(countdown))
    except Exception:  # pylint: disable=broad-except
        log.exception("POK: could not enqueue %s for credential %s; reconcile will catch up", task.name, credential_id)


def enqueue_issuance(credential_id, countdown=0, wait=0, tries=0):
    """Schedule :func:`issue` for the credential."""
    _enqueue(issue_credential, credential_id, countdown=countdown, wait=wait, tries=tries)


def enqueue_refresh(credential_id):
    """Schedule :func:`refresh` for the credential."""
    _enqueue(refresh_credential, credential_id)


def enqueue_image_caching(credential_id):
    """Schedule :func:`cache_image_location` for the credential (the embedded page works without the image)."""
    _enqueue(cache_credential_image, credential_id)


def _update(credential_id, expected_status, **fields):
    """Compare-and-set: write ``fields`` only if the row is still in ``expected_status``. Returns True on success."""
    fields.setdefault("modified", timezone.now())
    return bool(PokCertificate.objects.filter(id=credential_id, status=expected_status).update(**fields))


def _hold(row, reason, retryable=False):
    log.info("POK: credential %s (user %s, course %s) held", row.id, row.user_id, row.course_key)
    _update(row.id, CredentialStatus.PENDING, status=CredentialStatus.HELD, status_reason=reason, retryable=retryable)
    return CredentialStatus.HELD


class CertificateNotReady(PayloadError):
    """The Open edX certificate is not there (yet): held, but retried by reconcile, since it may still come."""


def _fail(row, reason, retryable, expected=CredentialStatus.PENDING):
    log.warning("POK: credential %s (user %s, course %s) failed (retryable=%s)",
                row.id, row.user_id, row.course_key, retryable)
    _update(row.id, expected, status=CredentialStatus.FAILED, status_reason=reason, retryable=retryable)
    return CredentialStatus.FAILED


def _retry_later(row, exc, tries, expected=CredentialStatus.PENDING):
    """Schedule another try after a transient POK failure, or give up as ``failed`` + retryable at the limit."""
    if tries > settings.POK_MAX_RETRIES:
        reason = _("POK was unavailable after {tries} tries: {error}").format(tries=tries, error=exc.message)
        return _fail(row, reason, retryable=True, expected=expected)
    delay = backoff_seconds(tries, getattr(exc, "retry_after", None))
    reason = _("Retrying after a temporary POK error: {error}").format(error=exc.message)
    if _update(row.id, expected, status=CredentialStatus.PENDING, status_reason=reason):
        log.info("POK: credential %s retry %s in %.1fs (%s)", row.id, tries, delay, type(exc).__name__)
        enqueue_issuance(row.id, countdown=delay, tries=tries)
    return CredentialStatus.PENDING


def course_setup(course_key):
    """(mapping, template id, CourseInfo) of a POK-enabled course; PayloadError saying what is missing otherwise."""
    mapping = CertificateTemplate.objects.for_course(course_key)
    if mapping is None or not mapping.enabled:
        raise PayloadError(_("The course is not mapped to a POK template (or its mapping is disabled)."))
    template_id = mapping.template_id or settings.POK_DEFAULT_TEMPLATE_ID
    if not template_id:
        raise PayloadError(_("No POK template is set for this course (course mapping or POK_DEFAULT_TEMPLATE_ID)."))
    course = compat.get_course(course_key)
    if course is None:
        raise PayloadError(_("The course {course} does not exist in Open edX.").format(course=course_key))
    return mapping, template_id, course


def _template(template_id):
    """The template definition (cached); a template deleted on POK becomes a PayloadError staff can act on."""
    try:
        return get_template(get_client(), template_id)
    except PokNotFoundError as exc:
        raise PayloadError(
            _("The POK template {template} does not exist (was it deleted on POK?).").format(template=template_id)
        ) from exc


def _gather(row, wait):
    """
    Check the Open edX side and build the payload. Returns (payload, mapping, certificate) or a final status.

    Raises PayloadError for anything the learner or staff must fix, and PokApiError from the template lookup.
    """
    certificate = compat.get_certificate(row.user, row.course_key)
    if certificate is not None and certificate.verify_uuid and certificate.verify_uuid != row.verify_uuid:
        # Recorded as soon as it is known, so the credential can be addressed by it even while held or pending.
        PokCertificate.objects.filter(id=row.id).update(verify_uuid=certificate.verify_uuid)
    if certificate is None or certificate.status == "generating":
        if wait < settings.POK_CERTIFICATE_WAIT_RETRIES:
            enqueue_issuance(row.id, countdown=settings.POK_CERTIFICATE_WAIT_DELAY, wait=wait + 1)
            return CredentialStatus.PENDING
        raise CertificateNotReady(
            _("The Open edX certificate does not exist yet; issuance resumes when it is created.")
        )
    if not certificate.is_downloadable:
        raise PayloadError(
            _("The Open edX certificate is {status}: no credential is issued for it.").format(status=certificate.status)
        )
    mapping, template_id, course = course_setup(row.course_key)
    template = _template(template_id)
    context = IssuanceContext(
        course=course,
        certificate=certificate,
        template=template,
        email=row.user.email,
        profile_name=compat.get_profile_name(row.user),
        language=compat.get_language_preference(row.user),
        platform_name=compat.get_platform_name(),
        emission_type=mapping.emission_type,
        date_format=settings.POK_DATE_FORMAT,
        skip_acceptance=settings.POK_SKIP_ACCEPTANCE,
        page_id=mapping.page_id or settings.POK_DEFAULT_PAGE_ID,
        grade=row.grade,
        tags=tuple(settings.POK_CREDENTIAL_TAGS) + (str(row.course_key),),
    )
    return build_credential_payload(context), mapping, certificate, template_id


def issue(credential_id, wait=0, tries=0):
    """
    Issue the credential of row ``credential_id`` if it is pending. Returns the resulting local status.

    ``wait`` counts the times the Open edX certificate was not there yet; ``tries`` counts transient POK failures
    of this issuance (both travel in the task arguments so a lost worker does not reset them to zero forever: the
    row's ``attempts`` column counts POSTs independently).
    """
    row = PokCertificate.objects.select_related("user").filter(id=credential_id).first()
    if row is None or row.status != CredentialStatus.PENDING:
        return row.status if row else None
    try:
        gathered = _gather(row, wait)
    except PayloadError as exc:
        # A certificate that may still appear is retried by reconcile: an award event racing with the end of the
        # wait must not leave the credential held for good.
        return _hold(row, exc.reason, retryable=isinstance(exc, CertificateNotReady))
    except PokConfigurationError as exc:
        return _hold(row, _("POK is not configured: {error}").format(error=exc))
    except PokAuthenticationError as exc:
        return _fail(row, _("POK rejected the API key: {error}").format(error=exc.message), retryable=False)
    except PokApiError as exc:
        if exc.retryable:
            return _retry_later(row, exc, tries + 1)
        return _fail(row, _("POK refused the template lookup: {error}").format(error=exc.message), retryable=False)
    if not isinstance(gathered, tuple):
        return gathered
    payload, mapping, certificate, template_id = gathered

    # The claim: committed before the POST so no other worker can send one for this issuance.
    claimed = _update(
        row.id, CredentialStatus.PENDING,
        status=CredentialStatus.REQUESTING, attempts=F("attempts") + 1, requested_at=timezone.now(),
        status_reason="", retryable=False, template_id=template_id, page_id=payload["customization"].get("page", ""),
        emission_type=mapping.emission_type, title=payload["credential"]["title"],
        emitter=payload["credential"]["emitter"], tags=payload["credential"]["tags"], receiver=payload["receiver"],
        custom_parameters=payload["customization"]["template"]["customParameters"],
        emission_date=certificate.created or certificate.modified,
        verify_uuid=certificate.verify_uuid or row.verify_uuid,
    )
    if not claimed:
        return PokCertificate.objects.filter(id=row.id).values_list("status", flat=True).first()
    log.info("POK: issuing credential %s (user %s, course %s, attempt %s)",
             row.id, row.user_id, row.course_key, row.attempts + 1)
    try:
        credential = get_client().issue_credential(payload, idempotency_key=row.idempotency_key)
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
    status = local_status_for(credential.state)
    if status == CredentialStatus.EMITTED and not view_url:
        status = CredentialStatus.IN_PROGRESS  # emitted without a page yet: keep polling until POK gives the URL
    reason = ""
    if status == CredentialStatus.FAILED:
        reason = _("POK will not emit this credential (state {state}).").format(state=credential.state)
    elif status == CredentialStatus.REVOKED:
        reason = _("The credential was revoked on POK.")
    _update(row.id, expected_status, status=status, status_reason=reason, retryable=False)
    log.info("POK: credential %s is %s (POK id %s, state %s)", row.id, status, credential.id, credential.state)
    if status == CredentialStatus.EMITTED and settings.POK_CERTIFICATE_PAGE == "embed":
        cache_image_location(row.id)
    return status


def cache_image_location(credential_id):
    """
    Cache the emitted credential's image location for the embedded certificate page, which never asks POK itself.

    Failures are logged only: the page then shows the link to POK without the image and asks again later.
    """
    row = PokCertificate.objects.filter(id=credential_id, status=CredentialStatus.EMITTED).first()
    if row is None or not row.pok_credential_id:
        return None
    try:
        return credential_image_location(row)
    except (PokApiError, PokConfigurationError) as exc:
        log.warning("POK: image location of credential %s unavailable (%s)", credential_id, type(exc).__name__)
        return None


def is_web_url(url):
    """Whether ``url`` is an absolute http(s) URL: the only kind of link learners are ever sent to."""
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def refresh(credential_id):
    """Poll POK for a credential in progress and record its new state. Returns the local status."""
    row = PokCertificate.objects.filter(id=credential_id).first()
    if row is None or row.status != CredentialStatus.IN_PROGRESS or not row.pok_credential_id:
        return row.status if row else None
    try:
        credential = get_client().get_credential(row.pok_credential_id)
    except PokNotFoundError:
        return _fail(row, _("The credential {id} no longer exists on POK.").format(id=row.pok_credential_id),
                     retryable=False, expected=CredentialStatus.IN_PROGRESS)
    except (PokApiError, PokConfigurationError) as exc:
        # Still in progress on our side; the next reconcile run polls again. Recorded so staff can see it.
        log.warning("POK: refresh of credential %s failed (%s)", row.id, type(exc).__name__)
        PokCertificate.objects.filter(id=row.id).update(
            status_reason=_("Last refresh failed: {error}").format(error=getattr(exc, "message", str(exc))),
        )
        return row.status
    return _store(row, credential, CredentialStatus.IN_PROGRESS)


def reconcile(limit=None, inline=False, pending_grace=None):
    """
    Bring every unfinished credential forward, in bounded batches. Returns counts per action.

    - ``requesting`` rows abandoned mid-POST are counted as ambiguous and sent again (or failed for staff when
      ambiguous retries are disabled);
    - ``pending`` rows older than a grace period, retryable failures and credentials held because the Open edX
      certificate was not there yet are (re)issued;
    - ``in_progress`` rows are polled on POK, the least recently polled first.
    ``inline`` runs the work in this process (management command), otherwise it is enqueued for workers.
    ``pending_grace`` (default two minutes) leaves fresh pending rows to the task already scheduled for them.
    """
    limit = limit or settings.POK_SYNC_BATCH_SIZE
    grace = PENDING_GRACE if pending_grace is None else pending_grace
    now = timezone.now()
    counts = {"abandoned": 0, "issued": 0, "refreshed": 0}

    resend = []
    for row in PokCertificate.objects.filter(status=CredentialStatus.REQUESTING,
                                             modified__lt=now - STALE_REQUESTING)[:limit]:
        PokCertificate.objects.filter(id=row.id).update(ambiguous_attempts=F("ambiguous_attempts") + 1)
        if settings.POK_RETRY_AMBIGUOUS:
            if _update(row.id, CredentialStatus.REQUESTING, status=CredentialStatus.PENDING,
                       status_reason=_("The previous request to POK was interrupted; sending it again.")):
                resend.append(row.id)
        else:
            _fail(row, _("The request to POK was interrupted and may have reached POK. Check POK for this "
                         "learner's credential before retrying."), retryable=False,
                  expected=CredentialStatus.REQUESTING)
        counts["abandoned"] += 1

    retryable_failures = list(PokCertificate.objects.filter(
        status__in=(CredentialStatus.FAILED, CredentialStatus.HELD), retryable=True,
    ).values_list("id", flat=True)[:limit])
    PokCertificate.objects.filter(
        id__in=retryable_failures, status__in=(CredentialStatus.FAILED, CredentialStatus.HELD),
    ).update(
        status=CredentialStatus.PENDING, modified=now,
    )
    to_issue = PokCertificate.objects.filter(
        Q(modified__lte=now - grace) | Q(id__in=retryable_failures + resend), status=CredentialStatus.PENDING,
    ).order_by("modified").values_list("id", flat=True)[:limit]
    for credential_id in list(to_issue):
        if inline:
            issue(credential_id, wait=settings.POK_CERTIFICATE_WAIT_RETRIES)
        else:
            enqueue_issuance(credential_id, wait=settings.POK_CERTIFICATE_WAIT_RETRIES)
        counts["issued"] += 1

    to_refresh = PokCertificate.objects.filter(status=CredentialStatus.IN_PROGRESS).exclude(
        Q(pok_credential_id__isnull=True) | Q(pok_credential_id=""),
    ).order_by(F("last_synced_at").asc(nulls_first=True)).values_list("id", flat=True)[:limit]
    for credential_id in list(to_refresh):
        if inline:
            refresh(credential_id)
        else:
            enqueue_refresh(credential_id)
        counts["refreshed"] += 1
    log.info("POK: reconcile %s", counts)
    return counts


@shared_task(ignore_result=True, acks_late=True)
def issue_credential(credential_id, wait=0, tries=0):
    """Celery entry point of :func:`issue`."""
    issue(credential_id, wait=wait, tries=tries)


@shared_task(ignore_result=True)
def refresh_credential(credential_id):
    """Celery entry point of :func:`refresh`."""
    refresh(credential_id)


@shared_task(ignore_result=True)
def cache_credential_image(credential_id):
    """Celery entry point of :func:`cache_image_location`."""
    cache_image_location(credential_id)


@shared_task(ignore_result=True)
def reconcile_credentials(limit=None):
    """Periodic task (see README: beat schedule): enqueue issuance and refreshes of unfinished credentials."""
    return reconcile(limit=limit)


def allowed_image_hosts():
    """Hosts images may be fetched from: the configured ones plus the API's own host."""
    api_host = urlsplit(settings.POK_API_URL).hostname or ""
    return [host for host in [*settings.POK_IMAGE_HOSTS, api_host] if host]


def image_url_allowed(url):
    """Whether the browser may be sent to ``url`` for an image (same allowlist as server-side fetches)."""
    return host_allowed(url, allowed_image_hosts())


def _image_cache_key(row):
    return f"openedx_pok:image:{row.pok_credential_id}"


def cached_image_location(row):
    """The image location if a task already cached it, else ""; never asks POK (used by the certificate page)."""
    location = cache.get(_image_cache_key(row)) or ""
    return location if image_url_allowed(location) else ""


def credential_image_location(row):
    """The public image URL of an emitted credential (POK ``decrypted-image``), cached; PokApiError on failure."""
    location = cache.get(_image_cache_key(row))
    if location is None:
        location = get_client().get_credential_image(row.pok_credential_id)
        cache.set(_image_cache_key(row), location, settings.POK_IMAGE_CACHE_TIMEOUT)
    return location


def credential_image(row):
    """(content_type, bytes) of the credential image, fetched only from allowed hosts."""
    return fetch_image(credential_image_location(row), allowed_image_hosts(), timeout=settings.POK_TIMEOUT)


def preview_image_url(course_key, language=None):
    """
    URL of POK's preview of the course's template with the course's real data and a sample learner, cached.

    Raises PayloadError for a broken mapping or template (the reason says what to fix) and PokApiError when POK
    fails. Called from a staff-only view, never from the certificate page itself.
    """
    mapping, template_id, course = course_setup(course_key)
    key = f"openedx_pok:preview:{_digest(settings.POK_API_URL, course_key, template_id, language)}"
    url = cache.get(key)
    if url is not None:
        return url
    template = _template(template_id)
    now = timezone.now()
    context = IssuanceContext(
        course=course, template=template, email="learner@example.com", profile_name=_("Sample Learner"),
        certificate=CertificateInfo(status="downloadable", verify_uuid="0" * 32, mode="verified", grade="1.0",
                                    created=now, modified=now),
        language=language, platform_name=compat.get_platform_name(), emission_type=mapping.emission_type,
        date_format=settings.POK_DATE_FORMAT, skip_acceptance=True, grade=1.0,
    )
    url = get_client().preview_template(build_preview_payload(context))
    cache.set(key, url, settings.POK_IMAGE_CACHE_TIMEOUT)
    return url
