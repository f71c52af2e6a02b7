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
from contextlib import nullcontext
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection, models, transaction
from django.db.models import F, Value
from django.db.models.expressions import Combinable, CombinedExpression
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from openedx_pok.client import host_allowed, is_web_url
from openedx_pok.issuance import events, history

log = logging.getLogger(__name__)

__all__ = ["is_web_url"]  # re-exported: the strict URL rule of the client, for the rest of the plugin


class CredentialStatus(models.TextChoices):
    """Local life cycle of a credential; the raw POK state is kept beside it in ``pok_state``."""

    PENDING = "pending", _("Pending")                # recorded, waiting for the issuance task
    SCHEDULED = "scheduled", _("Scheduled")          # waits for the course to release certificates (not_before)
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
    SCHEDULED = "scheduled", _("Scheduled")          # issued when the course releases its certificates
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
#: POK's states as staff read them (``docs/pok-api.rst``); the row keeps POK's raw value, and a state not listed here
#: is shown as POK sent it (see :func:`pok_state_label`).
LABELS_OF_POK_STATES = {
    "pending": _("Pending"),
    "processing": _("Processing"),
    "waitingForApproval": _("Waiting for the learner to accept it"),
    "draft": _("Draft"),
    "requestingSignature": _("Waiting for a signature"),
    "requestingChange": _("Change requested"),
    "deferred": _("Deferred"),
    "signatureRejected": _("Signature rejected"),
    "aborted": _("Aborted"),
    EMITTED_STATE: _("Emitted"),
    REVOKED_STATE: _("Revoked"),
}

_warned_unknown = set()


def allowed_view_url_hosts():
    """Hosts a learner may be sent to: ``POK_VIEW_URL_HOSTS`` (POK's pages, custom domains) plus the API's host."""
    api_host = urlsplit(settings.POK_API_URL).hostname or ""
    return [host for host in [*settings.POK_VIEW_URL_HOSTS, api_host] if host]


def is_allowed_view_url(url):
    """Whether a learner's certificate page may redirect to ``url``: an http(s) page on an allowed host."""
    return is_web_url(url) and host_allowed(url, allowed_view_url_hosts())


def local_status_for(pok_state, view_url=None):
    """
    The local status for a POK state (emitted, failed, revoked, otherwise in progress).

    With ``view_url`` given, an emitted credential without a usable web page (an http(s) page on an allowed host)
    stays in progress: the learner can only be sent somewhere once POK gives the page, so reconcile keeps polling.
    """
    if pok_state == EMITTED_STATE:
        if view_url is not None and not is_allowed_view_url(view_url):
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


def pok_state_label(pok_state):
    """POK's state in the reader's language; a state POK added since is shown as POK sent it."""
    return str(LABELS_OF_POK_STATES.get(pok_state, pok_state or ""))


def public_status(row):
    """The learner-facing state of a credential: emitted, in_progress, delayed (held/failed) or revoked."""
    if row.status == CredentialStatus.EMITTED and is_allowed_view_url(row.view_url):
        return PublicStatus.EMITTED
    if row.status == CredentialStatus.REVOKED:
        return PublicStatus.REVOKED
    if row.status in RETRIABLE_BY_STAFF:
        return PublicStatus.DELAYED
    if row.status == CredentialStatus.SCHEDULED:
        return PublicStatus.SCHEDULED
    return PublicStatus.IN_PROGRESS


def _credentials():
    # Looked up through the app registry: models.py imports this module for the status choices.
    return apps.get_model("openedx_pok", "PokCertificate").objects


def new_issuance_fields(row, reason=""):
    """
    The fields that turn a row into a new issuance (a re-award after revocation, a staff re-issue or retry): a new
    idempotency key, and the old POK id kept in ``previous_credential_ids`` as replaced.
    """
    previous = list(row.previous_credential_ids or [])
    if row.pok_credential_id and row.pok_credential_id not in previous:
        previous.append(row.pok_credential_id)
    return {"status": CredentialStatus.PENDING, "status_reason": reason, "issuance": row.issuance + 1,
            "pok_credential_id": None, "pok_state": "", "view_url": "", "previous_credential_ids": previous,
            "retryable": False, "tries": 0, "not_before": None, "ambiguous_attempts": 0, "possible_duplicate": False}


def transition(row_id, expected, record=True, still=None, **fields):
    """
    Compare-and-set: write ``fields`` to credential ``row_id`` only if its status is still ``expected`` (one status
    or several). Returns True when the row was written.

    One UPDATE, so it is atomic on every database; ``modified`` is stamped unless given. Fields without a status
    change (e.g. a reason while in progress) go through here too, so no writer can overwrite a status it did not
    expect. A status change writes its line of the credential's history (``record=False``: a step whose outcome
    writes the line, the claim before a POST). ``still``: {column: value} the row must still hold too (a row read a
    while ago, with the rest of its message, must not be claimed once another path moved it on).
    """
    return bool(transition_many([row_id], expected, record=record, still=still, **fields))


def transition_many(row_ids, expected, record=True, still=None, **fields):
    """:func:`transition` for a batch of rows in one UPDATE (and one history statement); returns how many."""
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    row_ids = list(row_ids)
    if not row_ids:
        return 0
    fields.setdefault("modified", timezone.now())
    written = _update(row_ids, expected, fields, still or {})
    if written and record and "status" in fields:
        _record_history(row_ids, expected, fields)
    return written


def _increment(name, value):
    """``n`` when ``value`` is ``F(name) + n`` (a counter such as ``attempts``), else None."""
    if isinstance(value, CombinedExpression) and value.connector == Combinable.ADD and isinstance(value.lhs, F) \
            and value.lhs.name == name and isinstance(value.rhs, Value) and type(value.rhs.value) is int:
        return value.rhs.value
    return None


# Values a column of these types receives unchanged from Django (``get_db_prep_save`` is the identity for them).
_AS_IS = {"CharField": str, "TextField": str, "IntegerField": int, "PositiveIntegerField": int,
          "PositiveSmallIntegerField": int, "SmallIntegerField": int, "BigIntegerField": int, "BooleanField": bool}


def _preparer(field):
    """How ``field`` turns a value into a query parameter: as Django's ``get_db_prep_save``, without its calls for the
    plain values most columns get (two dozen per claim made them a tenth of the claim's CPU)."""
    as_is = _AS_IS.get(field.get_internal_type())

    def prepare(value):
        if as_is and (value is None or isinstance(value, as_is)):
            return value
        return field.get_db_prep_save(value, connection)
    return prepare


@dataclass(frozen=True)
class _Statement:
    sql: str
    preparers: tuple


@lru_cache(maxsize=256)
def _statement(_vendor, assigned, rows, statuses, still):
    """
    The compare-and-set UPDATE of one shape: ``assigned`` (field, is a counter) pairs, how many rows and expected
    statuses, the ``still`` fields. ``_vendor`` keys it by database (the tests switch between SQLite and MariaDB).
    """
    meta, quote = _credentials().model._meta, connection.ops.quote_name
    column = {name: quote(meta.get_field(name).column) for name in [name for name, _counter in assigned] + list(still)}
    assignments = ", ".join(f"{column[name]} = {column[name]} + %s" if counter else f"{column[name]} = %s"
                            for name, counter in assigned)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608 - names from the model, values as parameters
        f"WHERE {quote('id')} IN ({', '.join(['%s'] * rows)}) AND {quote('status')} IN ({', '.join(['%s'] * statuses)})"
        + "".join(f" AND {column[name]} = %s" for name in still)
    )
    return _Statement(sql=sql, preparers=tuple(_preparer(meta.get_field(name)) for name in [
        name for name, _counter in assigned] + list(still)))


def _update(row_ids, expected, fields, still):
    """
    ``UPDATE ... SET fields WHERE id IN (row_ids) AND status IN (expected) [AND column = value of still]``; returns
    the rows it matched.

    Written as the history INSERT is, from SQL built once per shape and then only executed: Django's ``update()``
    builds and compiles a query on every call, which was a fifth of an issuance's CPU (the claim and the store).
    Values are prepared by their model fields as ``update()`` prepares them, and a counter ``F(name) + n`` becomes
    ``name = name + n``; any other expression (or a model instance) goes through ``update()``.
    """
    increments = {}
    for name, value in fields.items():
        if hasattr(value, "resolve_expression"):
            increments[name] = _increment(name, value)
        if increments.get(name, 0) is None or hasattr(value, "prepare_database_save"):  # an expression, an instance
            return _credentials().filter(id__in=row_ids, status__in=expected, **still).update(**fields)
    statement = _statement(connection.vendor, tuple((name, name in increments) for name in fields), len(row_ids),
                           len(expected), tuple(still))
    values = [*fields.values(), *still.values()]
    params = [increments[name] if name in increments else prepare(value)
              for name, value, prepare in zip([*fields, *still], values, statement.preparers, strict=True)]
    params[len(fields):len(fields)] = [*row_ids, *(str(status) for status in expected)]
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:  # as update() does
        cursor.execute(statement.sql, params)
        return cursor.rowcount


def _record_history(row_ids, expected, fields):
    """The history lines of a status change; a line that cannot be written (e.g. before ``migrate``) is only logged."""
    try:
        with guarded():
            history.record(row_ids, expected[0] if len(expected) == 1 else "", fields, fields["modified"])
    except DatabaseError as exc:
        log.warning("POK: history of %s credentials not written (%s)", len(row_ids), type(exc).__name__)


def guarded():
    """
    A savepoint around one statement that may fail (a duplicate key, a value too long), only where one is needed.

    Inside a transaction (the LMS's, a test's) the savepoint keeps a failed statement from breaking it; in autocommit
    (a Celery worker) the statement is its own transaction already, and an atomic block would only add round trips.
    """
    return transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()


def current_status(row_id):
    """The row's status now (None when it is gone); what a writer reports after losing a compare-and-set."""
    return _credentials().filter(id=row_id).values_list("status", flat=True).first()


def hold(row, reason, retryable=False, **fields):
    """A pending credential is not sent: bad learner data or setup; ``reason`` says what to fix."""
    log.info("POK: credential %s (user %s, course %s) held", row.id, row.user_id, row.course_key)
    transition(row.id, CredentialStatus.PENDING, status=CredentialStatus.HELD, status_reason=reason,
               retryable=retryable, **fields)
    return CredentialStatus.HELD


def release_reason(date):
    """What a scheduled credential waits for, in words staff and the learner can read."""
    if date is None:
        return gettext(
            "Issued when the course releases its certificates (the course has no end date or certificate date yet).")
    return gettext("Issued on {date}, when the course releases its certificates.").format(
        date=date_format(timezone.localtime(date), "DATETIME_FORMAT"))


def schedule(row, date, **fields):
    """
    A pending credential waits, without any request to POK, until the course releases its certificates at ``date``
    (None: not known yet); the reconcile run sends it then, and follows the date when the course team moves it.
    """
    log.info("POK: credential %s (user %s, course %s) waits for the certificate release", row.id, row.user_id,
             row.course_key)
    transition(row.id, CredentialStatus.PENDING, status=CredentialStatus.SCHEDULED, not_before=date,
               status_reason=release_reason(date), retryable=False, **fields)
    return CredentialStatus.SCHEDULED


def fail(row, reason, retryable, expected=CredentialStatus.PENDING, **fields):
    """The credential failed; ``retryable`` ones are tried again by reconcile, the others wait for staff."""
    log.warning("POK: credential %s (user %s, course %s) failed (retryable=%s)",
                row.id, row.user_id, row.course_key, retryable)
    if transition(row.id, expected, status=CredentialStatus.FAILED, status_reason=reason, retryable=retryable,
                  **fields):
        events.emit(events.FAILED, row, status=CredentialStatus.FAILED)
    return CredentialStatus.FAILED
