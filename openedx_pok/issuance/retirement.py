"""
Learner retirement: what the plugin forgets when the LMS retires a learner (``USER_RETIRE_LMS_MISC``).

A credential row keeps what was sent to POK and what POK answered: the receiver snapshot (first and last name and
email, or ``{"name", "email"}`` for credentials imported from the earlier openedx-pok), custom parameters that may
print the name or username, its reason (staff may name the learner in it) and POK's last answer (which repeats the
receiver). Retirement blanks those (and any line of the credential's history that mentions the learner) and marks
the snapshot retired, and keeps the row with its ids and statuses, so issuance stays countable (how many credentials
a course issued) and a credential is never sent twice. A credential that was not sent yet never will be: it is held
with a reason, and the retired marker keeps every later path (a staff retry or re-issue, reconcile, a new award)
from sending it: the LMS blanks the account itself only hours later. The credential POK already holds is POK's to
erase (its issuer panel); the row keeps its POK id so staff can find it.
"""
import json
import logging

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.translation import gettext as _

from openedx_pok.issuance.states import CredentialStatus, transition
from openedx_pok.models import CredentialEvent, PokCertificate

log = logging.getLogger(__name__)

#: The receiver snapshot of a retired learner: the keys POK's receiver block has, emptied, and the marker.
RETIRED_RECEIVER = {"firstName": "", "lastName": "", "email": "", "retired": True}
#: What of POK's stored answer survives retirement: ids and states, nothing that describes the person.
KEPT_ANSWER_KEYS = ("id", "state", "createdAt")
#: Statuses of a credential that was not (successfully) sent yet: retirement makes sure it never is.
NOT_SENT = (CredentialStatus.PENDING, CredentialStatus.SCHEDULED, CredentialStatus.HELD, CredentialStatus.FAILED)


def retired_reason():
    """The reason a retired learner's credential is held; it names nobody."""
    return _("The learner's account was retired; no credential is sent for it.")


def is_retired(receiver):
    """Whether a credential's receiver snapshot is a retired learner's: nothing is ever sent for it again."""
    return isinstance(receiver, dict) and receiver.get("retired") is True


def _personal(receiver, username=""):
    """(name words, emails) of a receiver snapshot (either shape) and username, lower-cased: what must not survive."""
    receiver = receiver if isinstance(receiver, dict) else {}
    words = set()
    for value in (receiver.get("firstName"), receiver.get("lastName"), receiver.get("name"), username):
        words.update(word for word in str(value or "").lower().replace(",", " ").split() if len(word) > 1)
    email = str(receiver.get("email") or "").strip().lower()
    return words, {email} if email else set()


def _mentions(value, words, emails):
    text = str(value).lower()
    return any(email in text for email in emails) or bool(words & set(text.replace(",", " ").split()))


def scrub_parameters(parameters, receiver, username=""):
    """The custom parameters with every value that carries the learner's name, email or username emptied."""
    if not isinstance(parameters, dict):
        return {}
    words, emails = _personal(receiver, username)
    return {key: "" if _mentions(value, words, emails) else value for key, value in parameters.items()}


def scrub_answer(raw):
    """POK's stored answer reduced to its ids and state; anything that is not a JSON object is dropped."""
    try:
        answer = json.loads(raw) if raw else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return ""
    return json.dumps({key: answer[key] for key in KEPT_ANSWER_KEYS if key in answer})


def anonymized(status, reason, receiver, parameters, username=""):
    """
    The receiver, parameters and reason a retired learner's credential keeps (its status aside: one not sent yet is
    held, see :data:`NOT_SENT`). The row's own reason may be a staff member's words about the learner (a
    revocation): a neutral one replaces it.
    """
    fields = {"receiver": dict(RETIRED_RECEIVER), "custom_parameters": scrub_parameters(parameters, receiver, username)}
    if status not in NOT_SENT and reason:
        fields["status_reason"] = _("The learner's account was retired.")
    return fields


def _scrub_history(row_id, receiver, username):
    """Blank the history reasons of a credential that mention the learner (the plugin's reasons normally don't)."""
    words, emails = _personal(receiver, username)
    lines = CredentialEvent.objects.filter(credential_id=row_id).exclude(reason="").values_list("id", "reason")
    mentioning = [line_id for line_id, reason in lines if _mentions(reason, words, emails)]
    if mentioning:
        CredentialEvent.objects.filter(id__in=mentioning).update(reason="")


def retire_learner(user_id):
    """
    Anonymize every credential of learner ``user_id`` (see the module docstring); returns how many there were.

    Idempotent: retiring twice finds nothing personal left and changes nothing more.
    """
    # The misc step runs before the LMS replaces the username: a parameter may print it.
    username = get_user_model().objects.filter(id=user_id).values_list("username", flat=True).first() or ""
    rows = PokCertificate.objects.filter(user_id=user_id).values_list(
        "id", "status", "status_reason", "receiver", "custom_parameters", "pok_response")
    count = 0
    for row_id, status, reason, receiver, parameters, raw in rows:
        PokCertificate.objects.filter(id=row_id).update(
            pok_response=scrub_answer(raw), modified=timezone.now(),
            **anonymized(status, reason, receiver, parameters, username))
        _scrub_history(row_id, receiver, username)
        if status in NOT_SENT and not (status == CredentialStatus.HELD and is_retired(receiver)):
            transition(row_id, NOT_SENT, status=CredentialStatus.HELD, retryable=False, not_before=None,
                       status_reason=retired_reason())
        count += 1
    log.info("POK: anonymized %s credentials of retired user %s", count, user_id)
    return count
