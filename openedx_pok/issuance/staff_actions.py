"""
Staff actions on credentials (the credential admin): retry, refresh from POK, re-issue, mark revoked; and the counts
per status shown above the credential list.

Each action is one compare-and-set through the state machine, so an action on a credential that moved meanwhile
(e.g. a retry of a row a worker is sending) does nothing. Each writes its line in the credential's history with the
staff member (``history.recorded_as``), is logged with ids only, and schedules its task after the admin's
transaction commits. POK has no known revocation endpoint: marking revoked tells staff to revoke on POK as well.
"""
import logging

from django.db import transaction
from django.db.models import Count
from django.utils.translation import gettext as _

from openedx_pok import caching, tasks
from openedx_pok.issuance import events, history
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


def _actor_id(actor):
    return getattr(actor, "pk", None)


def retry(row, actor=None):
    """Send a held or failed credential again. Returns True when it was scheduled."""
    if row.status not in RETRIABLE_BY_STAFF:
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
    tasks.schedule_issuance(row.id)
    forget_status_counts()
    return True


def refresh(row, actor=None):
    """Poll POK for a credential in progress now rather than at the next reconcile run."""
    if row.status != CredentialStatus.IN_PROGRESS or not row.pok_credential_id:
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
    if row.status not in REISSUABLE or not row.pok_credential_id:
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
    if row.status == CredentialStatus.REVOKED:
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
    """{status: credentials}, over the whole table, at most :data:`STATUS_COUNTS_TTL` seconds old."""
    counts = caching.get(STATUS_COUNTS_KEY)
    if counts is None:
        counts = dict(PokCertificate.objects.order_by().values_list("status").annotate(Count("id")))
        caching.set(STATUS_COUNTS_KEY, counts, STATUS_COUNTS_TTL)
    return counts


def forget_status_counts():
    caching.delete(STATUS_COUNTS_KEY)
