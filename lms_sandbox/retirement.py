"""
Learner retirement, shaped like the LMS's ``LMSAccountRetirementView`` (``/api/user/v1/accounts/retire_misc/``).

The LMS retires a learner in steps run by its retirement pipeline; the "LMS misc" step sends ``USER_RETIRE_LMS_MISC``
(``openedx.core.djangoapps.user_api.accounts.signals``) with the user as its only argument, so that apps higher up
in the LMS (and plugins) can erase what they hold about that learner. The signal is sent with ``send``, not
``send_robust``: a receiver that fails makes the step fail, and the pipeline retries it instead of leaving personal
data behind. The sandbox sends its own signal of the same shape; ``lms_sandbox.compat`` hands it to the plugin.
"""
import logging
from hashlib import sha256

from django.db import transaction
from django.dispatch import Signal

log = logging.getLogger(__name__)

# Signal to retire LMS misc information; providing_args=["user"], as in the LMS.
USER_RETIRE_LMS_MISC = Signal()


class LMSAccountRetirementView:
    """The sender the LMS uses (``sender=self.__class__``); a class here, no HTTP view is needed."""


def retire_misc(user):
    """The LMS misc step: send ``USER_RETIRE_LMS_MISC`` for the learner; a failing receiver rolls the step back."""
    with transaction.atomic():
        USER_RETIRE_LMS_MISC.send(sender=LMSAccountRetirementView, user=user)
    log.info("Sandbox LMS: retired LMS misc data of user %s", user.id)


def retire_account(user):
    """
    The later steps that replace the account's own personal data (username, email, profile name) by retired values,
    so a test can check that nothing of the learner is left anywhere once retirement has run.
    """
    retired = sha256(f"retired-{user.id}".encode()).hexdigest()[:16]
    user.username = f"retired__user_{retired}"
    user.email = f"retired__user_{retired}@retired.invalid"
    user.first_name = user.last_name = ""
    user.save(update_fields=["username", "email", "first_name", "last_name"])
    profile = getattr(user, "profile", None)
    if profile is not None:
        profile.name = ""
        profile.save(update_fields=["name"])
