"""
What the credential admin says about one credential, in sentences staff read without knowing the columns: its
status with POK's own state, what happens next, its POSTs and tries, each line of its history, and the actions its
page offers (the list actions, through the same confirmation pages).

Read-only: it formats a row the admin already holds; only a held credential's "what happens next" reads the
learner's account (their name and e-mail, through ``staff_actions``), as the learner's own page does.
"""
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from openedx_pok.course_setup.payload import LearnerFix
from openedx_pok.issuance import retirement, staff_actions
from openedx_pok.issuance.history import Cause
from openedx_pok.issuance.states import WAITING_STATES, CredentialStatus, pok_state_label

#: The actions a credential's page offers: (admin action, label, whether it applies to the row). The admin action is
#: the list action of the same name, so both go through one confirmation page and one staff action.
PAGE_ACTIONS = (
    ("retry_issuance", gettext_lazy("Retry now"), staff_actions.can_retry),
    ("refresh_from_pok", gettext_lazy("Refresh from POK"), staff_actions.can_refresh),
    ("reissue_credentials", gettext_lazy("Re-issue"), staff_actions.can_reissue),
    ("mark_revoked", gettext_lazy("Mark revoked"), staff_actions.can_revoke),
)


def status_text(row):
    """The status, with POK's state (in the reader's language when known) where it says more."""
    if row.pok_state and row.pok_state != row.status:
        return _("%(status)s (POK: %(pok_state)s)") % {"status": row.get_status_display(),
                                                     "pok_state": pok_state_label(row.pok_state)}
    return str(row.get_status_display())


def _when(moment):
    """A time staff compare with their clock: the time alone today, else the date and time (local time)."""
    moment = timezone.localtime(moment)
    if moment.date() == timezone.localdate():
        return date_format(moment, "TIME_FORMAT")
    return date_format(moment, "DATETIME_FORMAT")


def _due(row):
    """The row's "not before" when it is still ahead, else None."""
    return row.not_before if row.not_before and row.not_before > timezone.now() else None


def next_step(row):
    """One plain sentence: what happens to the credential next, by itself or through staff."""
    due = _due(row)
    if row.status == CredentialStatus.PENDING:
        if due:
            return _("Sent to POK automatically after %(time)s.") % {"time": _when(due)}
        return _("The issuance task sends it to POK; the reconcile run sends it if that task is lost.")
    if row.status == CredentialStatus.SCHEDULED:
        if row.not_before:
            return _("Sent to POK automatically on %(time)s, when the course releases its certificates.") % {
                "time": _when(row.not_before)}
        return _("Sent to POK automatically once the course has a certificate date.")
    if row.status == CredentialStatus.REQUESTING:
        return _("Being sent to POK now; if no answer is recorded, the reconcile run checks it.")
    if row.status == CredentialStatus.IN_PROGRESS:
        if row.pok_state in WAITING_STATES:
            return _("POK waits (%(pok_state)s); the reconcile run follows it by itself, or Refresh from POK now.") % {
                "pok_state": pok_state_label(row.pok_state)}
        return _("POK is still issuing it; the reconcile run asks POK again by itself, or Refresh from POK now.")
    if row.status == CredentialStatus.EMITTED:
        return _("Nothing to do: the learner's certificate page opens it on POK. After a name correction, Re-issue it.")
    if row.status == CredentialStatus.REVOKED:
        return _("Nothing more happens: learners are no longer sent to it.")
    if retirement.is_retired(row.receiver):
        return _("The learner deleted their account: it is never sent.")
    if row.status == CredentialStatus.HELD:
        return _held_next_step(row)
    return _failed_next_step(row, due)


def _held_next_step(row):
    fix = staff_actions.learner_fix_for(row)
    if fix == LearnerFix.NAME:
        return _("Ask the learner to set their full name in their account settings: the credential follows by "
                 "itself once they save it.")
    if fix == LearnerFix.EMAIL:
        return _("Ask the learner to correct their e-mail address in their account settings: the credential "
                 "follows by itself once they save it.")
    if row.retryable:
        return _("The reconcile run tries again by itself, or Retry now.")
    return _("Fix what the reason names (for example the course's POK set-up), then Retry now.")


def _failed_next_step(row, due):
    if row.possible_duplicate:
        return _("POK may have received it twice: check on POK that the learner has only one before you Retry now.")
    if row.retryable:
        if due:
            return _("Retried automatically after %(time)s, or Retry now.") % {"time": _when(due)}
        return _("Retried automatically at the next reconcile run, or Retry now.")
    if row.pok_credential_id:
        return _("Not retried automatically: Retry now (or Re-issue) sends a new credential to POK.")
    return _("Not retried automatically: fix what the reason names, then Retry now.")


def attempts_text(row):
    """The POSTs sent and the tries that met a temporary error, in sentences that agree with the reason's count."""
    sentences = [ngettext("%(count)d POST sent to POK.", "%(count)d POSTs sent to POK.", row.attempts)
                 % {"count": row.attempts}]
    if row.ambiguous_attempts:
        sentences.append(ngettext(
            "%(count)d of them got no answer and may have reached POK.",
            "%(count)d of them got no answer and may have reached POK.", row.ambiguous_attempts,
        ) % {"count": row.ambiguous_attempts})
    if row.tries:
        sentences.append(ngettext(
            "%(count)d try of this issuance met a temporary POK error (a try that fails before its POST, for "
            "example reading the template, sends nothing).",
            "%(count)d tries of this issuance met a temporary POK error (a try that fails before its POST, for "
            "example reading the template, sends nothing).", row.tries,
        ) % {"count": row.tries})
    return " ".join(sentences)


def attempts_short(row):
    """The same in a few words for the list, or "" when there is nothing to say (sent once, or not yet)."""
    parts = []
    if row.attempts > 1 or row.ambiguous_attempts or row.tries:
        parts.append(ngettext("%(count)d POST", "%(count)d POSTs", row.attempts) % {"count": row.attempts})
    if row.ambiguous_attempts:
        parts.append(ngettext("%(count)d unanswered", "%(count)d unanswered", row.ambiguous_attempts)
                     % {"count": row.ambiguous_attempts})
    if row.tries:
        parts.append(ngettext("%(count)d temporary error", "%(count)d temporary errors", row.tries)
                     % {"count": row.tries})
    return ", ".join(parts)


#: A line of the history, by what caused it: whole sentences, so that translators see them whole.
_MOVED = {
    Cause.ISSUANCE: gettext_lazy("The issuance task moved it from %(from)s to %(to)s."),
    Cause.REFRESH: gettext_lazy("A refresh from POK moved it from %(from)s to %(to)s."),
    Cause.RECONCILE: gettext_lazy("The reconcile run moved it from %(from)s to %(to)s."),
    Cause.LMS: gettext_lazy("The LMS (a certificate awarded or revoked) moved it from %(from)s to %(to)s."),
    Cause.BACKFILL: gettext_lazy("The backfill moved it from %(from)s to %(to)s."),
    Cause.RETIREMENT: gettext_lazy("The learner's account deletion moved it from %(from)s to %(to)s."),
    Cause.STAFF_RETRY: gettext_lazy("%(staff)s retried it: from %(from)s to %(to)s."),
    Cause.STAFF_REFRESH: gettext_lazy("%(staff)s asked POK for its state (%(to)s)."),
    Cause.STAFF_REISSUE: gettext_lazy("%(staff)s re-issued it: from %(from)s to %(to)s."),
    Cause.STAFF_REVOKE: gettext_lazy("%(staff)s marked it revoked: from %(from)s to %(to)s."),
    Cause.OTHER: gettext_lazy("It moved from %(from)s to %(to)s."),
}
_STAYED = gettext_lazy("%(cause)s: it stayed %(to)s.")
_CREATED = gettext_lazy("The backfill requested it (%(to)s).")
_CREATED_BY_STAFF = gettext_lazy("%(staff)s requested it with a backfill (%(to)s).")


def history_text(entry):
    """One history line as a sentence (who or what, from which status to which)."""
    labels = dict(CredentialStatus.choices)
    values = {
        "from": labels.get(entry.from_status, _("an earlier status")),
        "to": labels.get(entry.to_status, entry.to_status),
        "staff": _("Staff member %(username)s") % {"username": entry.actor.username} if entry.actor_id
        else _("A staff member"),
        "cause": capfirst(Cause(entry.cause).label if entry.cause in Cause.values else entry.cause),
    }
    if not entry.from_status and entry.cause == Cause.BACKFILL:  # the line a backfill writes for a row it created
        return str(_CREATED_BY_STAFF if entry.actor_id else _CREATED) % values
    template = _MOVED.get(entry.cause)
    if template is None or (entry.from_status == entry.to_status and entry.cause != Cause.STAFF_REFRESH):
        template = _STAYED
    return str(template) % values


def page_actions(row):
    """(action, label) of the actions that would change this credential now."""
    return [(name, label) for name, label, applies in PAGE_ACTIONS if applies(row)]
