"""
What POK answered to a credential's POST or GET: what of it fits the row, remembering it until it is stored, storing it.

Once POK has answered, the plugin must never lose that answer nor send the request again. So the answer is logged
(ids only) and remembered in the Django cache before the database store; the store is retried on the database
errors that pass (deadlock, lost connection) and, if they persist, the next task or the reconcile run finds the
remembered answer (:func:`recall`). Values that do not fit the row (an id over 255 characters, a view URL over 1,024,
a state over 64) are stored shortened where that is harmless, and otherwise fail the credential for staff with the
raw answer kept; a view URL on a host learners may not be sent to keeps the credential from being shown.
"""
import contextvars
import json
import logging
import time
from contextlib import contextmanager

from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, connection
from django.utils import timezone
from django.utils.translation import gettext as _

from openedx_pok import caching
from openedx_pok.exceptions import RetryLater
from openedx_pok.issuance import events
from openedx_pok.issuance.states import (
    CredentialStatus,
    current_status,
    fail,
    guarded,
    is_allowed_view_url,
    is_web_url,
    local_status_for,
    transition,
)
from openedx_pok.models import PokCertificate
from openedx_pok.pages import media

log = logging.getLogger(__name__)

# How long an answer POK gave is remembered outside the database until it is stored (a database outage).
REMEMBER_ANSWER_SECONDS = 7 * 24 * 3600
# Stores retried in place on a passing database error (deadlock, lost connection) before handing over.
STORE_ATTEMPTS = 3
# Column sizes of the credential row (see models.PokCertificate) and how much of a raw answer is kept.
MAX_POK_ID_LENGTH = 255
MAX_STATE_LENGTH = 64
MAX_VIEW_URL_LENGTH = 1024
MAX_STORED_ANSWER = 10_000


def bounded(text, limit=MAX_STORED_ANSWER):
    return text if len(text) <= limit else text[:limit]


def _answer_key(row):
    return f"openedx_pok:answer:{row.id}:{row.issuance}"


def remember(row, credential):
    """
    Keep POK's answer outside the database until it is stored, and log its id: if the database fails right after the
    POST, the next run finds the answer here (or staff find the id in the log) instead of sending a second POST.
    """
    log.info("POK: credential %s (user %s, course %s, attempt %s) was created on POK as %s (state %s)", row.id,
             row.user_id, row.course_key, row.attempts + 1, credential.id, str(credential.state)[:MAX_STATE_LENGTH])
    caching.set(_answer_key(row), credential, REMEMBER_ANSWER_SECONDS)


def recall(row):
    """The remembered, not yet stored answer to this row's current issuance, or None."""
    return caching.get(_answer_key(row))


# Keys of POK's answer that carry the learner's personal data: never kept in the stored answer (the receiver
# snapshot the plugin sent is on the row already, and retirement must not find it again after the next refresh).
PERSONAL_KEYS = frozenset({"receiver", "email", "name", "firstName", "lastName"})


def without_personal_data(answer):
    """POK's answer as kept for staff: everything but the learner's name and email."""
    if not isinstance(answer, dict):
        return {}
    return {key: value for key, value in answer.items() if key not in PERSONAL_KEYS}


# The answers stored within a :func:`forgotten_together` block, forgotten at its end (None: outside one).
_stored = contextvars.ContextVar("openedx_pok_stored_answers", default=None)


@contextmanager
def forgotten_together():
    """
    Within the block (one message of credentials), the answers stored are forgotten together at its end, in one
    round trip to the cache instead of one per credential. Until then they only take room: an answer is recalled for a
    credential still ``requesting`` under the same issuance, and a stored one no longer is.
    """
    keys = []
    token = _stored.set(keys)
    try:
        yield
    finally:
        _stored.reset(token)
        if keys:
            caching.delete(*keys)


def _forget(row, also):
    """Forget the stored answer of ``row`` (and the keys ``also``, at once); later within a message when it can."""
    keys = _stored.get()
    if keys is None or also:
        caching.delete(_answer_key(row), *also)
    else:
        keys.append(_answer_key(row))


def store(row, credential, expected_status, forget=()):
    """
    Store POK's answer, retrying on the database errors that pass (deadlock, lost connection). If they persist, the
    answer stays remembered and RetryLater brings the store back; the row is never sent again meanwhile.

    ``forget``: other cache keys to drop once the answer is stored, in the round trip that forgets the answer (then
    at once, even within a :func:`forgotten_together` block).
    """
    for attempt in range(STORE_ATTEMPTS):
        try:
            status = _store(row, credential, expected_status)
        except (OperationalError, InterfaceError) as exc:
            log.warning("POK: storing credential %s (POK id %s) failed, attempt %s (%s)",
                        row.id, credential.id, attempt + 1, type(exc).__name__)
            if not connection.in_atomic_block:
                connection.close()  # a lost connection is reopened by the next query (our savepoint rolled back)
            time.sleep(0.05 * (2 ** attempt))
            continue
        _forget(row, forget)
        return status
    # Nothing more to do in this task: the next one (or the reconcile run) stores the remembered answer.
    raise RetryLater(settings.POK_CERTIFICATE_WAIT_DELAY, waiting=True)


def _outcome(row, credential):
    """(status, reason, stored fields) of an answer: what fits the row, and why a credential is not shown yet."""
    pok_id = str(credential.id)
    raw = bounded(json.dumps(without_personal_data(getattr(credential, "raw", None)), default=str))
    if len(pok_id) > MAX_POK_ID_LENGTH:
        return CredentialStatus.FAILED, _(
            "POK answered with a credential id longer than {limit} characters, which cannot be stored; its answer "
            "is kept. Check POK for this learner's credential before retrying.").format(limit=MAX_POK_ID_LENGTH), {
            "pok_state": str(credential.state)[:MAX_STATE_LENGTH], "pok_response": raw}
    view_url = credential.view_url or ""
    fields = {"pok_credential_id": pok_id, "pok_state": str(credential.state)[:MAX_STATE_LENGTH],
              "pok_response": raw, "last_synced_at": timezone.now()}
    status = local_status_for(credential.state, view_url)
    reason = ""
    if len(view_url) > MAX_VIEW_URL_LENGTH:
        view_url, status = "", CredentialStatus.IN_PROGRESS
        reason = _("POK gave a credential page address longer than {limit} characters; it is not shown until POK "
                   "gives a usable one.").format(limit=MAX_VIEW_URL_LENGTH)
    elif view_url and not is_web_url(view_url):
        # Never store a link learners could be sent to that is not a web page (e.g. a javascript: URL).
        log.warning("POK: credential %s came with a view URL that is not http(s); ignored", row.id)
        view_url = ""
    elif view_url and not is_allowed_view_url(view_url):
        log.warning("POK: credential %s came with a view URL on a host that is not allowed", row.id)
        reason = _("POK gave a credential page on a host that is not allowed (add it to POK_VIEW_URL_HOSTS if it is "
                   "your POK custom domain); the credential is not shown meanwhile.")
    if status == CredentialStatus.FAILED:
        reason = _("POK will not emit this credential (state {state}).").format(state=credential.state)
    elif status == CredentialStatus.REVOKED:
        reason = _("The credential was revoked on POK.")
    fields["view_url"] = view_url
    return status, reason, fields


def _store(row, credential, expected_status):
    """
    Record what POK answered, in one UPDATE when the row is still where the POST left it. Otherwise (e.g. revoked
    during the POST) the POK id is stored all the same, so a credential that exists on POK is never forgotten, and a
    revoked row's reason says which credential to revoke on POK.
    """
    if row.pok_credential_id and str(credential.id) != row.pok_credential_id:
        return _refuse_other_credential(row, credential, expected_status)
    status, reason, fields = _outcome(row, credential)
    try:
        with guarded():
            stored = transition(row.id, expected_status, status=status, status_reason=reason, retryable=False,
                                **fields)
            if not stored:
                PokCertificate.objects.filter(id=row.id).update(**fields)
    except IntegrityError:
        reason = _("POK answered with credential id {id}, which another record already holds.").format(
            id=credential.id)
        return fail(row, reason, retryable=False, expected=expected_status,
                     pok_response=fields.get("pok_response", ""))
    if not stored:
        status = current_status(row.id)
        if status == CredentialStatus.REVOKED and fields.get("pok_credential_id"):
            _note_revoke_on_pok(row.id, fields["pok_credential_id"])
        return status
    if expected_status != CredentialStatus.REQUESTING:
        # The answer to a POST was logged with its state when it came (remember); a refresh's is logged here.
        log.info("POK: credential %s is %s (POK id %s, state %s)", row.id, status, credential.id, fields["pok_state"])
    events.emit_outcome(row, status, pok_id=fields.get("pok_credential_id"))
    if status == CredentialStatus.EMITTED and settings.POK_CERTIFICATE_PAGE == "embed":
        media.cache_image_location(row.id)
    return status


def _refuse_other_credential(row, credential, expected_status):
    """
    POK answered a refresh of this row's credential with another credential: the row keeps its own POK id (storing
    the other would point the learner at someone else's credential, or lose track of theirs) and says so.
    """
    log.warning("POK: the refresh of credential %s (POK id %s) was answered with POK id %s; not stored",
                row.id, row.pok_credential_id, credential.id)
    reason = _("POK answered the refresh of credential {id} with another credential ({other}); the answer was not "
               "stored. Check this credential on POK.").format(id=row.pok_credential_id,
                                                              other=str(credential.id)[:MAX_POK_ID_LENGTH])
    transition(row.id, expected_status, status_reason=reason, last_synced_at=timezone.now())
    return current_status(row.id)


def _note_revoke_on_pok(row_id, pok_id):
    """A credential POK created after its Open edX certificate was revoked: tell staff to revoke it on POK."""
    current = PokCertificate.objects.filter(id=row_id).values_list("status_reason", flat=True).first() or ""
    addition = _("Revoke credential {id} on POK as well.").format(id=pok_id)
    if addition not in current:
        transition(row_id, CredentialStatus.REVOKED, status_reason=f"{current} {addition}".strip())
    log.warning("POK: credential %s was created on POK (POK id %s) after it was revoked", row_id, pok_id)
