"""
The one owner of credential statuses: the local life cycle, how POK's states map onto it, what a learner is told,
and the single compare-and-set helper through which every status is written.

Why one module: exactly-once issuance rests on status transitions that are compare-and-set (``UPDATE ... WHERE
status = expected``). Spelled out in several places, one of them eventually forgets the ``WHERE``. Here the rules are
written once and every writer (``api``, ``issuance``) goes through :func:`transition`.

POK publishes no list of states (see ``docs/pok-api.rst``). An unknown state is kept verbatim on the row, treated as
in progress (so reconcile keeps polling it) and logged once per process as a warning.
"""
import logging
from urllib.parse import urlsplit

from django.apps import apps
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

log = logging.getLogger(__name__)


class CredentialStatus(models.TextChoices):
    """Local life cycle of a credential; the raw POK state is kept beside it in ``pok_state``."""

    PENDING = "pending", _("Pending")                # recorded, waiting for the issuance task
    REQUESTING = "requesting", _("Requesting")       # POST to POK about to be / being sent
    IN_PROGRESS = "in_progress", _("In progress")    # accepted by POK, not emitted yet
    EMITTED = "emitted", _("Emitted")                # final; view URL known
    FAILED = "failed", _("Failed")                   # POK refused it or retries ran out; staff can retry
    HELD = "held", _("Held")                         # not sent: bad learner data or configuration
    REVOKED = "revoked", _("Revoked")                # the Open edX certificate was revoked


class PublicStatus(models.TextChoices):
    """What a learner (or anyone with the certificate link) is told; internal statuses stay internal."""

    EMITTED = "emitted", _("Emitted")
    IN_PROGRESS = "in_progress", _("In progress")
    DELAYED = "delayed", _("Delayed")                # held or failed: support can help, details stay with staff
    REVOKED = "revoked", _("Revoked")


# States from which the issuance task may (re)send a POST.
ISSUABLE_STATUSES = (CredentialStatus.PENDING, CredentialStatus.FAILED, CredentialStatus.HELD)
# Statuses a staff member (or a new award) may send again.
RETRIABLE_BY_STAFF = (CredentialStatus.HELD, CredentialStatus.FAILED)
# Statuses whose credential is still on its way: the certificate page shows the status page.
ON_ITS_WAY = (CredentialStatus.PENDING, CredentialStatus.REQUESTING, CredentialStatus.IN_PROGRESS)

IN_PROGRESS_STATES = frozenset({"pending", "processing"})
WAITING_STATES = frozenset({"waitingForApproval", "draft", "requestingSignature", "requestingChange", "deferred"})
FAILED_STATES = frozenset({"signatureRejected", "aborted"})
EMITTED_STATE = "emitted"
REVOKED_STATE = "revoked"

_warned_unknown = set()


def is_web_url(url):
    """Whether ``url`` is an absolute http(s) URL: the only kind of link learners are ever sent to."""
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def local_status_for(pok_state, view_url=None):
    """
    The local status for a POK state (emitted, failed, revoked, otherwise in progress).

    With ``view_url`` given, an emitted credential without a usable web page stays in progress: the learner can only
    be sent somewhere once POK gives the page, so reconcile keeps polling until then.
    """
    if pok_state == EMITTED_STATE:
        if view_url is not None and not is_web_url(view_url):
            return CredentialStatus.IN_PROGRESS
        return CredentialStatus.EMITTED
    if pok_state == REVOKED_STATE:
        return CredentialStatus.REVOKED
    if pok_state in FAILED_STATES:
        return CredentialStatus.FAILED
    if pok_state not in IN_PROGRESS_STATES and pok_state not in WAITING_STATES and pok_state not in _warned_unknown:
        _warned_unknown.add(pok_state)
        log.warning("POK returned an unknown credential state %r; treating it as in progress", pok_state)
    return CredentialStatus.IN_PROGRESS


def public_status(row):
    """The learner-facing state of a credential: emitted, in_progress, delayed (held/failed) or revoked."""
    if row.status == CredentialStatus.EMITTED and is_web_url(row.view_url):
        return PublicStatus.EMITTED
    if row.status == CredentialStatus.REVOKED:
        return PublicStatus.REVOKED
    if row.status in RETRIABLE_BY_STAFF:
        return PublicStatus.DELAYED
    return PublicStatus.IN_PROGRESS


def _credentials():
    # Looked up through the app registry: models.py imports this module for the status choices.
    return apps.get_model("openedx_pok", "PokCertificate").objects


def transition(row_id, expected, **fields):
    """
    Compare-and-set: write ``fields`` to credential ``row_id`` only if its status is still ``expected`` (one status
    or several). Returns True when the row was written.

    One UPDATE, so it is atomic on every database; ``modified`` is stamped unless given. Fields without a status
    change (e.g. a reason while in progress) go through here too, so no writer can overwrite a status it did not
    expect.
    """
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    fields.setdefault("modified", timezone.now())
    return bool(_credentials().filter(id=row_id, status__in=expected).update(**fields))


def transition_many(row_ids, expected, **fields):
    """:func:`transition` for a batch of rows in one UPDATE; returns how many were written."""
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    fields.setdefault("modified", timezone.now())
    return _credentials().filter(id__in=list(row_ids), status__in=expected).update(**fields)


def current_status(row_id):
    """The row's status now (None when it is gone); what a writer reports after losing a compare-and-set."""
    return _credentials().filter(id=row_id).values_list("status", flat=True).first()
