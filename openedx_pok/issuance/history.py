"""
The history of each credential: every status change with its time, cause, reason and, for a staff action, the staff
member; what the credential admin shows under a credential.

Written by the state machine (``states.transition`` and ``states.transition_many``), never by callers, so no path
can change a status without leaving a line. Each line is one ``INSERT ... SELECT`` from the credential row itself:
one statement also for a batch, and only rows the compare-and-set really changed get a line (they are the ones with
the new status and the exact ``modified`` stamp of that UPDATE). Ids only, no personal data: the reason is the
plugin's own text (retirement still blanks any line that would mention the learner).

What caused a change (the issuance task, a refresh, the reconcile run, the LMS, a staff member) comes from
:func:`recorded_as` around the work, so the many writers below need not pass it along.
"""
import contextvars
from contextlib import contextmanager

from django.apps import apps
from django.db import connection, models
from django.utils.translation import gettext_lazy as _


class Cause(models.TextChoices):
    """Who or what changed a credential."""

    ISSUANCE = "issuance", _("issuance task")
    REFRESH = "refresh", _("refresh from POK")
    RECONCILE = "reconcile", _("reconcile run")
    LMS = "lms", _("LMS (certificate awarded or revoked)")
    BACKFILL = "backfill", _("backfill")
    RETIREMENT = "retirement", _("learner retirement")
    STAFF_RETRY = "staff_retry", _("staff: retry")
    STAFF_REFRESH = "staff_refresh", _("staff: refresh from POK")
    STAFF_REISSUE = "staff_reissue", _("staff: re-issue")
    STAFF_REVOKE = "staff_revoke", _("staff: mark revoked")
    OTHER = "", _("other")


_current = contextvars.ContextVar("openedx_pok_history_cause", default=(Cause.OTHER, None))


@contextmanager
def recorded_as(cause, actor_id=None):
    """Lines written inside the block name ``cause`` (and the staff member ``actor_id``, for a staff action)."""
    token = _current.set((cause, actor_id))
    try:
        yield
    finally:
        _current.reset(token)


def _events():
    # Through the app registry: models.py imports this module for the cause choices.
    return apps.get_model("openedx_pok", "CredentialEvent")


def record(row_ids, from_status, fields, stamp):
    """
    One line per credential of ``row_ids`` that now has ``fields["status"]`` and the ``stamp`` of the UPDATE that
    put it there; ``from_status`` is the status it was expected to have (several: left blank).
    """
    row_ids = list(row_ids)
    if not row_ids:
        return
    cause, actor_id = _current.get()
    reason = fields.get("status_reason")
    pok_id = fields.get("pok_credential_id")
    if not pok_id and fields.get("previous_credential_ids"):
        pok_id = fields["previous_credential_ids"][-1]  # a new issuance: the line names the credential it replaces
    events, credentials = _events()._meta, apps.get_model("openedx_pok", "PokCertificate")._meta
    quote = connection.ops.quote_name
    columns = ("credential_id", "created", "cause", "actor_id", "from_status", "to_status", "attempt", "pok_id",
               "reason")
    # The reason and POK id: the ones this change wrote, else the row's own (a NULL POK id becomes "").
    pok_id_value = "%s" if pok_id else f"COALESCE({quote('pok_credential_id')}, '')"
    reason_value = "%s" if reason is not None else quote("status_reason")
    sql = (
        f"INSERT INTO {quote(events.db_table)} ({', '.join(quote(column) for column in columns)}) "  # noqa: S608
        f"SELECT {quote('id')}, %s, %s, %s, %s, {quote('status')}, {quote('attempts')}, {pok_id_value}, "
        f"{reason_value} FROM {quote(credentials.db_table)} "
        f"WHERE {quote('id')} IN ({', '.join(['%s'] * len(row_ids))}) AND {quote('status')} = %s "
        f"AND {quote('modified')} = %s"
    )
    stamp = connection.ops.adapt_datetimefield_value(stamp)  # as the ORM writes it (UTC, the column's format)
    params = [stamp, cause, actor_id, from_status or ""]
    params += [pok_id] if pok_id else []
    params += [str(reason)] if reason is not None else []
    params += [*row_ids, fields["status"], stamp]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def created(rows):
    """
    One line per credential a backfill inserted (saved rows, ids known), in one statement: who asked for them (a staff
    member from the admin or the instructor dashboard, or the command) shows in their history from the start.
    """
    cause, actor_id = _current.get()
    _events().objects.bulk_create([
        _events()(credential_id=row.id, cause=cause, actor_id=actor_id, from_status="", to_status=row.status,
                  attempt=0, pok_id="", reason=str(row.status_reason or ""))
        for row in rows
    ])


def note(row_id, reason=""):
    """A line without a status change: a staff action that only asked for something (e.g. a refresh)."""
    cause, actor_id = _current.get()
    credential = apps.get_model("openedx_pok", "PokCertificate").objects.filter(id=row_id).values(
        "status", "attempts", "pok_credential_id").first()
    if credential is None:
        return
    _events().objects.create(
        credential_id=row_id, cause=cause, actor_id=actor_id, from_status=credential["status"],
        to_status=credential["status"], attempt=credential["attempts"],
        pok_id=credential["pok_credential_id"] or "", reason=str(reason))
