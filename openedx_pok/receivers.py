"""
openedx-events receivers, wired by the platform through ``plugin_app['signals_config']``.

They run inside the LMS's ``GeneratedCertificate.save()`` (and, under ``settings.DEBUG``, errors would propagate into
it), so they only record intent through ``api`` and never raise.
"""
import logging

from django.utils.translation import gettext as _

from openedx_pok import api

log = logging.getLogger(__name__)


def handle_certificate_created(sender, signal, certificate=None, **kwargs):  # noqa: ARG001
    """
    CERTIFICATE_CREATED: a downloadable certificate means the learner earned it; make sure issuance is scheduled.

    The safety net for LMS paths where the creation filter did not run (or the operator's configuration dropped the
    step). Sent on every save of a downloadable or generating certificate, so it must be idempotent: it is.
    """
    try:
        if certificate is None or certificate.current_status != "downloadable":
            return
        # Read first (no expect_new): the creation filter has almost always recorded this award already.
        api.request_issuance(certificate.user.id, certificate.course.course_key)
    except Exception:
        log.exception("POK: could not record issuance from CERTIFICATE_CREATED")


def handle_certificate_revoked(sender, signal, certificate=None, **kwargs):  # noqa: ARG001
    """CERTIFICATE_REVOKED: stop showing the credential and tell staff to revoke it on POK."""
    try:
        if certificate is None:
            return
        reason = _("The Open edX certificate was revoked (status {status}).").format(
            status=certificate.current_status or "unavailable",
        )
        api.revoke(certificate.user.id, certificate.course.course_key, reason)
    except Exception:
        log.exception("POK: could not record a revocation from CERTIFICATE_REVOKED")


def handle_learner_retired(sender, user=None, **kwargs):  # noqa: ARG001
    """
    USER_RETIRE_LMS_MISC (the LMS retirement pipeline's "LMS misc" step): forget the learner's name and email.

    Unlike the certificate receivers it lets errors through, after logging them: the pipeline then marks the step
    failed and runs it again, which is better than reporting a learner retired while their name is still stored.
    """
    if user is None:
        return
    try:
        api.retire_learner(user.id)
    except Exception:
        log.exception("POK: could not anonymize the credentials of retired user %s", user.id)
        raise


# What a learner can fix in their account for a held credential: the profile's full name, the user's e-mail.
ACCOUNT_FIELDS = {"name", "email"}


def handle_learner_account_saved(sender, instance=None, created=False, raw=False,  # noqa: ARG001
                                 update_fields=None, **kwargs):
    """
    post_save of the LMS's ``UserProfile`` and ``User``: a learner who set their full name or e-mail gets their held
    credentials sent again. A new account has no credential, and a save of other fields only (a login's
    ``last_login``) is skipped before any query; errors are logged, never raised into the LMS's save.
    """
    if instance is None or created or raw or (update_fields is not None and not ACCOUNT_FIELDS & set(update_fields)):
        return
    try:
        api.learner_data_changed(getattr(instance, "user_id", None) or instance.pk)
    except Exception:
        log.exception("POK: could not follow an account change of user %s",
                      getattr(instance, "user_id", None) or instance.pk)
