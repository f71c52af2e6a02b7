"""
Staff actions on credentials (the credential admin): retry, refresh from POK, re-issue, mark revoked; and the counts
per status shown above the credential list.

Each action is one compare-and-set through the state machine, so an action on a credential that moved meanwhile
(e.g. a retry of a row a worker is sending) does nothing. Each writes its line in the credential's history with the
staff member (``history.recorded_as``), is logged with ids only, and schedules its task after the admin's
transaction commits. POK has no known revocation endpoint: marking revoked tells staff to revoke on POK as well.
A retired learner's credential is never sent again: retry and re-issue leave it as it is.
"""
import logging

from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from openedx_pok import caching, compat, tasks
from openedx_pok.course_setup import configuration
from openedx_pok.course_setup.payload import learner_fix
from openedx_pok.issuance import events, history, retirement
from openedx_pok.issuance.history import Cause
from openedx_pok.issuance.states import RETRIABLE_BY_STAFF, CredentialStatus, new_issuance_fields, transition
from openedx_pok.models import PokCertificate

log = logging.getLogger(__name__)

#: Statuses a credential can be re-issued from: it has (or had) a POK credential that the new one replaces.
REISSUABLE = (CredentialStatus.EMITTED, CredentialStatus.IN_PROGRESS, CredentialStatus.FAILED,
              CredentialStatus.HELD, CredentialStatus.REVOKED)
#: Seconds the counts per status above the credential list may be old: counting 100,000s of rows on every page
#: view would cost more than the page itself. Staff actions forget them at once.
STATUS_COUNTS_TTL = 30
STATUS_COUNTS_KEY = "openedx_pok:admin:status_counts"
#: Rows the credential admin counts at most per figure (a status, a filtered list): past it, it says "more than"
#: instead of reading every entry of an index on each view.
COUNT_LIMIT = 10_000


def _actor_id(actor):
    return getattr(actor, "pk", None)


# Which credentials each action changes: per row (checked before its compare-and-set), and as a filter (what the
# confirmation page counts). A retired learner's snapshot carries ``"retired": true``.
def can_retry(row):
    return row.status in RETRIABLE_BY_STAFF and not retirement.is_retired(row.receiver)


def can_refresh(row):
    return row.status == CredentialStatus.IN_PROGRESS and bool(row.pok_credential_id)


def can_reissue(row):
    return row.status in REISSUABLE and bool(row.pok_credential_id) and not retirement.is_retired(row.receiver)


def can_revoke(row):
    return row.status != CredentialStatus.REVOKED


def count_changed_by(action, queryset):
    """How many credentials of ``queryset`` ``action`` (:func:`retry`, :func:`refresh`, ...) would change now."""
    sent = Q(pok_credential_id__isnull=False) & ~Q(pok_credential_id="")
    conditions = {retry: Q(status__in=RETRIABLE_BY_STAFF), refresh: Q(status=CredentialStatus.IN_PROGRESS) & sent,
                  reissue: Q(status__in=REISSUABLE) & sent, mark_revoked: ~Q(status=CredentialStatus.REVOKED)}
    changed = queryset.filter(conditions[action])
    count = changed.count()
    if count and action in (retry, reissue):
        # Counted apart: "not retired" on a JSON key is NULL, not true, for the snapshots without the key.
        count -= changed.filter(receiver__retired=True).count()
    return count


def changes(action, row):
    """Whether ``action`` would change ``row`` now (the row as read: the action itself checks again as it writes)."""
    return {retry: can_retry, refresh: can_refresh, reissue: can_reissue, mark_revoked: can_revoke}[action](row)


def learner_fix_for(row):
    """What the learner's own data needs before their credential can go (``payload.LearnerFix``), or ""."""
    if retirement.is_retired(row.receiver):
        return ""
    return learner_fix(compat.get_profile_name(row.user), row.user.email)


def learners_named(term, limit):
    """
    Ids of learners whose full name (the LMS profile's) contains ``term``, at most ``limit`` of them, in no order:
    what the credential admin's search adds to the usernames. No index serves a part of a name, so this reads every
    profile's name (``make bench``: the case "search a learner's surname"); it never joins another table.
    """
    profiles = compat.UserProfile.objects.filter(name__icontains=term).order_by()
    return list(profiles.values_list("user_id", flat=True)[:limit])


def retry(row, actor=None):
    """Send a held or failed credential again. Returns True when it was scheduled."""
    if not can_retry(row):
        return False
    if row.pok_credential_id:
        # POK has (or had) a credential for this issuance that will not be emitted (refused, gone): a new one.
        fields = new_issuance_fields(row)
    else:
        # Staff act now: the backoff is over, and the one resend after an ambiguous failure is theirs to grant.
        fields = {"status": CredentialStatus.PENDING, "status_reason": "", "retryable": False, "not_before": None,
                  "tries": 0}
    with history.recorded_as(Cause.STAFF_RETRY, _actor_id(actor)):
        if not transition(row.id, row.status, **fields):
            return False
    log.info("POK: staff user %s retried credential %s", _actor_id(actor), row.id)
    configuration.forget_course_template(row.course_key)  # staff fixed something: the template is read afresh
    tasks.schedule_issuance(row.id)
    forget_status_counts()
    return True


def refresh(row, actor=None):
    """Poll POK for a credential in progress now rather than at the next reconcile run."""
    if not can_refresh(row):
        return False
    if actor is not None:
        with history.recorded_as(Cause.STAFF_REFRESH, _actor_id(actor)):
            history.note(row.id, _("Refresh from POK requested."))
        log.info("POK: staff user %s asked for a refresh of credential %s", _actor_id(actor), row.id)
    transaction.on_commit(lambda: tasks.enqueue_refresh(row.id))
    return True


def reissue(row, actor=None):
    """
    A new credential replacing the one POK holds (e.g. after a correction of the learner's name): a new issuance with
    a new idempotency key; the old POK id is kept in ``previous_credential_ids`` and its history line says it was
    replaced. POK keeps the old credential valid until it is revoked there. Returns True when scheduled.
    """
    if not can_reissue(row):
        return False
    reason = _("Re-issued: replaces POK credential {id}. Revoke that one on POK if it should no longer be valid.") \
        .format(id=row.pok_credential_id)
    with history.recorded_as(Cause.STAFF_REISSUE, _actor_id(actor)):
        written = transition(row.id, row.status, **new_issuance_fields(row, reason))
    if not written:
        return False
    log.info("POK: staff user %s re-issued credential %s (issuance %s)", _actor_id(actor), row.id, row.issuance + 1)
    tasks.schedule_issuance(row.id)
    forget_status_counts()
    return True


def revoke_row(row, reason):
    """Mark the row revoked, with the reminder to revoke on POK when POK holds it. Returns True when written."""
    if not can_revoke(row):
        return False
    if row.pok_credential_id:
        reason = _("{reason} Revoke credential {id} on POK as well.").format(reason=reason, id=row.pok_credential_id)
    if not transition(row.id, row.status, status=CredentialStatus.REVOKED, status_reason=reason, retryable=False):
        return False
    events.emit(events.REVOKED, row, status=CredentialStatus.REVOKED)
    forget_status_counts()
    return True


def mark_revoked(row, reason, actor=None):
    """The admin's "mark revoked": the credential is no longer shown; staff revoke it on POK themselves."""
    with history.recorded_as(Cause.STAFF_REVOKE, _actor_id(actor)):
        written = revoke_row(row, reason)
    if written:
        log.info("POK: staff user %s marked credential %s revoked", _actor_id(actor), row.id)
    return written


def status_counts():
    """
    {status: credentials} of the statuses that have any, at most :data:`STATUS_COUNTS_TTL` seconds old, each counted
    up to :data:`COUNT_LIMIT` + 1 (a count above the limit means "more than the limit").

    One bounded index walk per status instead of a ``GROUP BY`` that reads the whole status index: on a million
    credentials that costs 150 ms, and what staff act on is the small counts (failed, held), which stay exact.
    """
    counts = caching.get(STATUS_COUNTS_KEY)
    if counts is None:
        counts = {}
        for status in CredentialStatus.values:
            count = PokCertificate.objects.filter(status=status).count_up_to(COUNT_LIMIT + 1)
            if count:
                counts[status] = count
        caching.set(STATUS_COUNTS_KEY, counts, STATUS_COUNTS_TTL)
    return counts


def forget_status_counts():
    caching.delete(STATUS_COUNTS_KEY)
