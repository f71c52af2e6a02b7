"""
The issuance state machine: claim, POST, record the outcome, refresh. The only place where a credential is sent.

Exactly-once issuance rests on one compare-and-set: a credential moves from ``pending`` to ``requesting`` in a
single UPDATE (row-locked on MySQL, serialized on SQLite) that is committed before the POST is sent. Whoever wins
that UPDATE sends the POST; duplicate tasks, duplicate events and concurrent workers find the row no longer pending
and stop. Every outcome is written back to the row with a reason, so nothing is lost when POK misbehaves: transient
failures are retried with backoff and then left ``failed`` + ``retryable`` for the reconcile run to pick up.

Functions take row ids and plain values, re-read the row and are safe to run twice. They never enqueue: "try again
later" is the :class:`~openedx_pok.exceptions.RetryLater` exception, which the Celery layer (``tasks.py``) turns
into a delayed task. What POK answered is kept and stored by ``answers.py``; ``reconcile.py`` finds what was left
unfinished.
"""
import logging
import random
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from django.conf import settings
from django.db import DatabaseError, router
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from openedx_pok import compat
from openedx_pok.compiled_reads import CompiledRead
from openedx_pok.course_setup import configuration
from openedx_pok.course_setup.payload import IssuanceContext, build_credential_payload
from openedx_pok.exceptions import (
    CertificateNotReady,
    CertificatesNotReleased,
    IssuanceError,
    PokApiError,
    PokAuthenticationError,
    PokConfigurationError,
    PokNotFoundError,
    PokResponseError,
    PokValidationError,
    RetryLater,
)
from openedx_pok.issuance import answers, outage, retirement
from openedx_pok.issuance.states import (
    CredentialStatus,
    current_status,
    fail,
    guarded,
    hold,
    schedule,
    transition,
)
from openedx_pok.models import PokCertificate

log = logging.getLogger(__name__)



def backoff_seconds(tries, retry_after=None):
    """
    Seconds before the next try: POK's Retry-After when given, else capped exponential backoff with full jitter
    (anywhere from 0 to the ceiling, as Celery's ``retry_backoff`` with ``retry_jitter``). Computed here, not by
    Celery, because it is stored on the row for every path to honour (ADR 0008).
    """
    if retry_after is not None:
        return max(0.0, min(float(retry_after), settings.POK_RETRY_BACKOFF_MAX))
    ceiling = min(settings.POK_RETRY_BACKOFF_MAX, settings.POK_RETRY_BACKOFF_BASE * (2 ** max(0, tries - 1)))
    return random.uniform(0, ceiling)


def _retry_later(row, exc, expected=CredentialStatus.PENDING, **fields):
    """
    Ask for another try after a transient POK failure, or give up as ``failed`` + retryable at the limit.

    The try count and the "not before" time live on the row, so every path (the task chain, the reconcile run, a
    staff retry) honours the same backoff and POK's Retry-After, and a lost task does not reset them.
    """
    tries = row.tries + 1
    now = timezone.now()
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        configuration.note_rate_limited(min(float(retry_after), settings.POK_RETRY_BACKOFF_MAX),
                                        account=configuration.account_for(row.course_key))
    if tries > settings.POK_MAX_RETRIES:
        # Reconcile tries again once the (still growing) backoff has passed: one POST per period, until POK is back.
        reason = _("POK was unavailable after {tries} tries: {error}").format(tries=tries, error=exc.message)
        return fail(row, reason, retryable=True, expected=expected, tries=tries,
                     not_before=now + timedelta(seconds=backoff_seconds(tries, retry_after)), **fields)
    delay = backoff_seconds(tries, retry_after)
    reason = _("Retrying after a temporary POK error: {error}").format(error=exc.message)
    if not transition(row.id, expected, status=CredentialStatus.PENDING, status_reason=reason, tries=tries,
                      not_before=now + timedelta(seconds=delay), **fields):
        return current_status(row.id)
    log.info("POK: credential %s retry %s in %.1fs (%s)", row.id, tries, delay, type(exc).__name__)
    raise RetryLater(delay, tries=tries)


@dataclass(frozen=True)
class _Prepared:
    """What the claim and the POST need: the body to send and the course setup it was built from."""

    payload: dict
    setup: configuration.CourseSetup
    certificate: compat.CertificateInfo


def _prepare(row, wait):
    """
    Check the Open edX side and build the payload.

    Raises IssuanceError for anything the learner or staff must fix, RetryLater while the certificate is still being
    generated, CertificatesNotReleased while the course does not show certificates yet, and PokApiError from the
    template lookup.
    """
    if retirement.is_retired(row.receiver):
        # Whatever made it pending again (a new award, a staff action): the learner's data never goes out again.
        raise IssuanceError(retirement.retired_reason())
    certificate = compat.get_certificate(row.user, row.course_key)
    if certificate is not None and certificate.verify_uuid and certificate.verify_uuid != row.verify_uuid:
        # Recorded as soon as it is known, so the credential can be addressed by it even while held or pending:
        # written with whatever this step writes next (claim, hold, failure), not in a statement of its own.
        row.verify_uuid = certificate.verify_uuid
        row.known_fields = {"verify_uuid": certificate.verify_uuid}
    if certificate is None or certificate.status == "generating":
        if wait < settings.POK_CERTIFICATE_WAIT_RETRIES:
            if row.known_fields:
                PokCertificate.objects.filter(id=row.id).update(**row.known_fields)
            raise RetryLater(settings.POK_CERTIFICATE_WAIT_DELAY, wait=wait + 1)
        raise CertificateNotReady(
            _("The Open edX certificate does not exist yet; issuance resumes when it is created.")
        )
    if compat.is_retiring(row.user):
        # Its e-mail is already the retired, undeliverable one: nothing of the learner may reach POK any more.
        raise IssuanceError(_("The learner is deleting their account: no credential is issued."))
    if not certificate.is_downloadable:
        raise IssuanceError(
            _("The Open edX certificate is {status}: no credential is issued for it.").format(status=certificate.status)
        )
    setup = configuration.course_setup(row.course_key)
    release = configuration.certificates_release(setup.course)
    if not release.released:
        # Checked before anything else reaches POK: the course team decides when learners see certificates.
        raise CertificatesNotReleased(release.date)
    template = configuration.template(setup.template_id, setup.account)
    context = IssuanceContext(
        course=setup.course,
        certificate=certificate,
        template=template,
        email=row.user.email,
        profile_name=compat.get_profile_name(row.user),
        language=compat.get_language_preference(row.user, row.course_key),
        platform_name=compat.get_platform_name(),
        emission_type=setup.emission_type,
        date_format=settings.POK_DATE_FORMAT,
        skip_acceptance=settings.POK_SKIP_ACCEPTANCE,
        page_id=setup.page_id,
        grade=row.grade,
        tags=tuple(settings.POK_CREDENTIAL_TAGS) + (str(row.course_key),),
        username=row.user.username,
        parameter_sources=setup.parameter_sources,
    )
    return _Prepared(payload=build_credential_payload(context), setup=setup, certificate=certificate)


def _not_yet(row, wait, tries):
    """
    RetryLater when this credential, or its whole POK account, must not be sent yet (backoff, Retry-After, a pause).

    The task a backoff scheduled carries the row's try count: it is the one allowed to go at the end of that
    backoff (a countdown may fire a little early), while any other task for the row (reconcile, a duplicate event)
    waits. The account's Retry-After and its pause during an outage (``outage.py``) hold for every task; a credential
    that waits for a pause says so, spends no try, and is not due for the reconcile run before its task.
    """
    account = configuration.account_for(row.course_key)
    remaining, pause = outage.wait(account)
    own_follow_up = bool(tries) and tries == row.tries
    if row.not_before and not own_follow_up:
        remaining = max(remaining, (row.not_before - timezone.now()).total_seconds())
    if pause is not None:
        # Spread over as long again, so that the account's credentials do not all reach POK at the same moment.
        remaining = max(remaining, 0) + random.uniform(0, max(remaining, outage.PROBE_DELAY_BASE))
        transition(row.id, CredentialStatus.PENDING, record=False,
                   status_reason=outage.credential_reason(account, pause),
                   not_before=timezone.now() + timedelta(seconds=remaining))
    if remaining > 0 or pause is not None:
        raise RetryLater(max(remaining, 0), wait=wait, tries=row.tries, waiting=True)


# What issuing a credential reads of its row: the columns this module, ``answers.py`` and the tracking events use. The
# rest (what was sent, POK's answer, the reason) is only written here; reading it cost as much as the claim.
ISSUANCE_COLUMNS = ("id", "uuid", "user", "course_key", "status", "receiver", "verify_uuid", "issuance", "attempts",
                    "ambiguous_attempts", "tries", "not_before", "grade", "pok_credential_id")
# ... and of its learner (the ``user`` and, where ``compat.learner_relations`` names it, the ``profile``): what the
# payload and the platform's lookups use.
LEARNER_COLUMNS = {"user": ("username", "email"), "profile": ("id", "name")}


def _stand_in_id(n):
    return -1 - n  # no credential has a negative id


@lru_cache(maxsize=4)
def _rows_read(with_profile):
    """(credential columns, the compiled read of rows with their learners' columns) (``compiled_reads``)."""
    own = [field.attname for field in PokCertificate._meta.concrete_fields if field.name in ISSUANCE_COLUMNS]
    learner = [f"user__{column}" for column in LEARNER_COLUMNS["user"]]
    learner += [f"user__profile__{column}" for column in LEARNER_COLUMNS["profile"]] if with_profile else []
    return own, CompiledRead(PokCertificate, lambda ids: PokCertificate.objects.filter(id__in=ids).values_list(
        *own, *learner), stand_ins=(_stand_in_id,))


def _loaded(model, alias, values):
    """A ``model`` instance as the ORM loads one from {attname: value} (``from_db`` takes them in field order)."""
    names = [field.attname for field in model._meta.concrete_fields if field.attname in values]
    return model.from_db(alias, names, [values[name] for name in names])


def read_rows(row_ids):
    """
    The credential rows ``row_ids`` as issuance reads them, with their learners, in one statement: {id: row}.

    A message of the backfill or the reconcile run reads its rows at once; each claim still re-checks the status (and
    what it was read with, see :func:`_as_read`) in its compare-and-set, so a row changed since is not sent twice, nor
    under another issuance's key or backoff. The rows are model instances loaded as ``select_related("user",
    "user__profile").only(...)`` loads them, from a statement compiled once (compiling it cost more than running it).
    """
    with_profile = "user__profile" in compat.learner_relations()
    own, read = _rows_read(with_profile)
    user_model = PokCertificate._meta.get_field("user").related_model
    profile = user_model._meta.get_field("profile") if with_profile else None
    alias = router.db_for_read(PokCertificate)
    rows = {}
    for values in read(row_ids):
        row = PokCertificate.from_db(alias, own, values[:len(own)])
        user_values = values[len(own):len(own) + len(LEARNER_COLUMNS["user"])]
        row.user = _loaded(user_model, alias, {"id": row.user_id, **dict(zip(LEARNER_COLUMNS["user"], user_values,
                                                                                strict=True))})
        if profile is not None:  # None when the learner has no profile, as select_related leaves it
            found = dict(zip(LEARNER_COLUMNS["profile"], values[len(own) + len(user_values):], strict=True))
            profile.set_cached_value(row.user, None if found["id"] is None else _loaded(
                profile.related_model, alias, {**found, "user_id": row.user_id}))
        rows[row.id] = row
    return rows


@contextmanager
def message(row_ids):
    """
    The credentials of one message, {id: row} as :func:`read_rows` reads them, with their Open edX certificates and
    their learners' languages read ahead for the block (``compat.reading_ahead``): two statements for the message
    instead of two per credential; and what they read from the Django cache, in two round trips
    (``configuration.read_ahead``).
    """
    rows = read_rows(row_ids)
    try:
        configuration.read_ahead({row.course_key for row in rows.values()},
                                 per_account={outage.pause_key: None, outage.streak_key: 0})
    except Exception:  # only a shortcut: each issuance then reads the cache as it goes
        log.warning("POK: could not read a message's cached course set-up ahead", exc_info=True)
    with compat.reading_ahead((row.user, row.course_key) for row in rows.values()), answers.forgotten_together():
        yield rows


def issue(row_id, wait=0, tries=0, row=None):
    """
    Issue the credential of row ``row_id`` if it is pending. Returns the resulting local status.

    ``wait`` counts the times the Open edX certificate was not there yet (it travels with RetryLater into the next
    task). Transient POK failures are counted on the row (``tries``); the argument tells the task a backoff
    scheduled from any other (see :func:`_not_yet`). A row whose POK answer was received but not stored (the
    database failed right after the POST) is stored from the remembered answer, never sent again. The plugin's own
    SQL per issuance: one read (``row``: read already, with the rest of its message), the claim, the store and the
    history line it writes.
    """
    row = row if row is not None else read_rows([row_id]).get(row_id)
    if row is None:
        return None
    if row.status == CredentialStatus.REQUESTING:
        answer = answers.recall(row)
        return answers.store(row, answer, CredentialStatus.REQUESTING) if answer else row.status
    if row.status != CredentialStatus.PENDING:
        return row.status
    if row.pok_credential_id:
        # POK already created this issuance's credential: follow it, never POST a second one.
        transition(row.id, CredentialStatus.PENDING, still=_as_read(row), status=CredentialStatus.IN_PROGRESS,
                   not_before=None)
        return CredentialStatus.IN_PROGRESS
    _not_yet(row, wait, tries)
    row.known_fields = {}
    try:
        prepared = _prepare(row, wait)
    except CertificatesNotReleased as exc:
        return schedule(row, exc.date, **row.known_fields)
    except IssuanceError as exc:
        # A certificate that may still appear is retried by reconcile: an award event racing with the end of the
        # wait must not leave the credential held for good.
        return hold(row, exc.reason, retryable=exc.retryable, **row.known_fields)
    except PokConfigurationError as exc:
        return hold(row, _("POK is not configured: {error}").format(error=exc), **row.known_fields)
    except PokAuthenticationError as exc:
        return fail(row, _("POK rejected the API key: {error}").format(error=exc.message), retryable=False,
                    **row.known_fields)
    except PokApiError as exc:
        outage.note(configuration.account_for(row.course_key), exc)
        if exc.retryable:
            return _retry_later(row, exc, **row.known_fields)
        return fail(row, _("POK refused the template lookup: {error}").format(error=exc.message), retryable=False,
                    **row.known_fields)
    if not _claim(row, prepared):
        return current_status(row.id)
    # At INFO the answer's line says it all (``answers.remember``): one line per credential at a million of them.
    log.debug("POK: issuing credential %s (user %s, course %s, attempt %s)",
              row.id, row.user_id, row.course_key, row.attempts + 1)
    try:
        credential = configuration.get_client(prepared.setup.account).issue_credential(
            prepared.payload, idempotency_key=row.idempotency_key)
    except PokApiError as exc:
        outage.note(prepared.setup.account, exc)
        return _after_post_failure(row, exc)
    answers.remember(row, credential)
    # POK took the request, which ends the account's streak of failures (``outage.note``): in the same round trip
    # to the cache as forgetting the stored answer, when there is a streak to end.
    return answers.store(row, credential, CredentialStatus.REQUESTING,
                         forget=outage.streak_to_end(prepared.setup.account))


def _as_read(row):
    """
    What the POST and its failure handling go by, as read: the issuance (its idempotency key), the tries (the
    backoff) and the ambiguous attempts (the one resend). A row read with the rest of its message may have moved on
    since while still pending (a re-issue, a retry its own task scheduled, an interrupted request sent again): then
    the path that moved it sends it, not this stale copy.
    """
    return {"issuance": row.issuance, "tries": row.tries, "ambiguous_attempts": row.ambiguous_attempts}


def _claim(row, prepared):
    """
    The claim: ``pending`` -> ``requesting`` in one compare-and-set, committed before the POST so no other worker can
    send one for this issuance; and only while the row is as read (:func:`_as_read`). A value the row cannot take (the
    database refuses it) holds the credential with the reason instead of leaving it pending for ever.
    """
    payload, certificate = prepared.payload, prepared.certificate
    try:
        with guarded():
            # Not a history line of its own: the POST's outcome writes one, with the attempt number.
            return transition(
                row.id, CredentialStatus.PENDING, record=False, still=_as_read(row),
                status=CredentialStatus.REQUESTING, attempts=F("attempts") + 1, requested_at=timezone.now(),
                status_reason="", retryable=False, not_before=None, template_id=prepared.setup.template_id,
                page_id=payload["customization"].get("page", ""), emission_type=prepared.setup.emission_type,
                account=prepared.setup.account,
                title=payload["credential"]["title"], emitter=payload["credential"]["emitter"],
                tags=payload["credential"]["tags"], receiver=payload["receiver"],
                custom_parameters=payload["customization"]["template"]["customParameters"],
                emission_date=certificate.created or certificate.modified,
                verify_uuid=certificate.verify_uuid or row.verify_uuid,
            )
    except DatabaseError as exc:
        log.warning("POK: credential %s could not be claimed (%s)", row.id, type(exc).__name__)
        hold(row, _("The credential could not be recorded before sending it to POK ({error}); the course or "
                     "learner data does not fit. Fix it, then retry.").format(error=type(exc).__name__))
        return False


def _after_post_failure(row, exc):
    """
    Record a failed POST. Any answer POK gave is final for that POST; only a failure that may not have reached POK,
    or a transient one, is sent again, and after an ambiguous one at most once (flagged as a possible duplicate).
    """
    raw = {"pok_response": answers.bounded(getattr(exc, "raw_excerpt", "") or "")}
    if getattr(exc, "answered", False) and not exc.retryable and not exc.ambiguous:
        if isinstance(exc, PokResponseError):
            reason = _("POK accepted the request but its answer could not be used ({error}). Check POK for this "
                       "learner's credential before retrying.").format(error=exc.message)
        else:
            reason = _("POK refused the credential: {error}").format(error=exc.message)
        if isinstance(exc, PokValidationError):
            # Most often a template changed at POK (a new required parameter): once staff fix it and retry, the next
            # issuance reads the definition afresh instead of the cached one that led to this refusal.
            configuration.forget_course_template(row.course_key)
        return fail(row, reason, retryable=False, expected=CredentialStatus.REQUESTING, **raw)
    if exc.ambiguous:
        if not settings.POK_RETRY_AMBIGUOUS or row.ambiguous_attempts >= 1:
            reason = _("POK may have received the request but did not answer ({error}). Check POK for this "
                       "learner's credential before retrying.").format(error=exc.message)
            return fail(row, reason, retryable=False, expected=CredentialStatus.REQUESTING,
                         ambiguous_attempts=F("ambiguous_attempts") + 1, **raw)
        # The one resend this issuance gets after an ambiguous failure: a duplicate is possible, and flagged.
        return _retry_later(row, exc, expected=CredentialStatus.REQUESTING,
                            ambiguous_attempts=F("ambiguous_attempts") + 1, possible_duplicate=True)
    if exc.retryable:
        return _retry_later(row, exc, expected=CredentialStatus.REQUESTING)
    return fail(row, _("POK refused the credential: {error}").format(error=exc.message), retryable=False,
                 expected=CredentialStatus.REQUESTING, **raw)


def refresh(row_id):
    """Poll POK for a credential in progress and record its new state. Returns the local status."""
    row = PokCertificate.objects.filter(id=row_id).one()
    if row is None or row.status != CredentialStatus.IN_PROGRESS or not row.pok_credential_id:
        return row.status if row else None
    if outage.wait(row.account)[1] is not None:
        return row.status  # POK is unavailable: polled again once the account's pause is over
    try:
        credential = configuration.get_client(row.account).get_credential(row.pok_credential_id)
    except PokNotFoundError:
        return fail(row, _("The credential {id} no longer exists on POK.").format(id=row.pok_credential_id),
                     retryable=False, expected=CredentialStatus.IN_PROGRESS)
    except (PokApiError, PokConfigurationError) as exc:
        # Still in progress on our side; the next reconcile run polls again. Recorded so staff can see it.
        log.warning("POK: refresh of credential %s failed (%s)", row.id, type(exc).__name__)
        transition(row.id, CredentialStatus.IN_PROGRESS, modified=row.modified, last_synced_at=timezone.now(),
                   status_reason=_("Last refresh failed: {error}").format(error=getattr(exc, "message", str(exc))))
        return row.status
    return answers.store(row, credential, CredentialStatus.IN_PROGRESS)


