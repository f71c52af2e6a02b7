"""
Learner retirement, in the order the LMS runs it (openedx/core/djangoapps/user_api/accounts/utils.py and views.py,
openedx-platform Verawood):

1. ``deactivate_account``: when the learner deletes their account, the LMS replaces the e-mail by the retired one
   at once (``create_retirement_request_and_deactivate_account``); the retirement pipeline runs later.
2. ``retire_misc``: the pipeline's "LMS misc" step (``LMSAccountRetirementView``, ``/api/user/v1/accounts/
   retire_misc/``) sends ``USER_RETIRE_LMS_MISC`` with the user as its only argument, so apps higher up in the LMS
   (and plugins) erase what they hold. It is sent with ``send``, not ``send_robust``: a failing receiver stops the
   later ones, and the view catches the error and answers 500, so the pipeline retries the step. The view is not
   atomic and returns a response, so what earlier receivers wrote stays committed.
3. ``retire_account``: the later "LMS" step (``AccountRetirementView``) clears the profile name and the
   certificates' names, then replaces the username (and sets the retired e-mail again) and deactivates the user.

Each step answers the HTTP status its view would; the sandbox keeps no ``UserRetirementStatus`` row and knows a
retirement request by the retired e-mail instead (404, as the LMS, when there is none). ``lms_sandbox.compat`` hands
the signal to the plugin.
"""
import logging
from hashlib import sha256

from django.contrib.auth import get_user_model
from django.dispatch import Signal

from lms_sandbox.models import GeneratedCertificate, UserProfile

log = logging.getLogger(__name__)

# Signal to retire LMS misc information; providing_args=["user"], as in the LMS.
USER_RETIRE_LMS_MISC = Signal()

OK, NOT_FOUND, SERVER_ERROR = 204, 404, 500  # the views' answers (HTTP_204_NO_CONTENT on success)


class LMSAccountRetirementView:
    """The sender the LMS uses (``sender=self.__class__``); a class here, no HTTP view is needed."""


def _retired(user_id, kind):
    # The LMS hashes the original username / e-mail with a salt (RETIRED_USERNAME_FMT, RETIRED_EMAIL_FMT); any value
    # that is stable across the steps and names nobody does here.
    digest = sha256(f"retired-{user_id}".encode()).hexdigest()[:16]
    return f"retired__user_{digest}@retired.invalid" if kind == "email" else f"retired__user_{digest}"


def deactivate_account(user):
    """The learner's own deactivation: the e-mail becomes the retired one and the password unusable, at once."""
    user.email = _retired(user.id, "email")
    user.set_unusable_password()
    user.save(update_fields=["email", "password"])


def _retiring_user(user):
    """The user as the pipeline finds it (fresh from the database), or None without a retirement request."""
    return get_user_model().objects.filter(pk=user.pk, email=_retired(user.pk, "email")).first()


def retire_misc(user):
    """The LMS misc step: send ``USER_RETIRE_LMS_MISC``; 204, 404 without deactivation, 500 if a receiver fails."""
    retiring = _retiring_user(user)
    if retiring is None:
        return NOT_FOUND
    try:
        USER_RETIRE_LMS_MISC.send(sender=LMSAccountRetirementView, user=retiring)
    except Exception:
        # The view turns any error into a 500 answer; nothing rolls back what earlier receivers wrote.
        log.warning("Sandbox LMS: the LMS misc retirement step of user %s failed", retiring.id, exc_info=True)
        return SERVER_ERROR
    log.info("Sandbox LMS: retired LMS misc data of user %s", retiring.id)
    return OK


def retire_account(user):
    """
    The LMS step: clear the profile name and the certificates' names, then the account's own personal data
    (names, username, e-mail) and deactivate it; 204, or 404 without deactivation.
    """
    retiring = _retiring_user(user)
    if retiring is None:
        return NOT_FOUND
    UserProfile.objects.filter(user=retiring).update(name="")
    GeneratedCertificate.objects.filter(user=retiring).update(name="")  # clear_pii_from_certificate_records_for_user
    retiring.first_name = retiring.last_name = ""
    retiring.is_active = False
    retiring.username = _retired(retiring.id, "username")
    retiring.email = _retired(retiring.id, "email")
    retiring.save()
    return OK
