"""
Django app configuration: how the Open edX platform discovers and wires the plugin.

The LMS and the CMS load this AppConfig through the ``lms.djangoapp`` / ``cms.djangoapp`` entry points and read
``plugin_app`` to mount the URLs, apply the settings modules and connect the openedx-events receivers.
"""
import logging

from django.apps import AppConfig
from django.utils.translation import pgettext_lazy


class OpenedxPokConfig(AppConfig):
    """Open edX plugin app for POK verifiable credentials."""

    name = "openedx_pok"
    label = "openedx_pok"
    # The admin index shows it as is, in the staff member's language (model names it capitalises itself).
    verbose_name = pgettext_lazy("app label", "POK credentials")
    default_auto_field = "django.db.models.BigAutoField"

    plugin_app = {
        "url_config": {
            "lms.djangoapp": {
                "namespace": "openedx_pok",
                "regex": r"^pok/",
                "relative_path": "urls",
            },
        },
        "settings_config": {
            "lms.djangoapp": {
                "common": {"relative_path": "settings.common"},
                "production": {"relative_path": "settings.production"},
                "devstack": {"relative_path": "settings.common"},
                "test": {"relative_path": "settings.common"},
            },
            "cms.djangoapp": {
                "common": {"relative_path": "settings.common"},
                "production": {"relative_path": "settings.production"},
            },
        },
        "signals_config": {
            "lms.djangoapp": {
                "relative_path": "receivers",
                "receivers": [
                    {
                        "receiver_func_name": "handle_certificate_created",
                        "signal_path": "openedx_events.learning.signals.CERTIFICATE_CREATED",
                        "dispatch_uid": "openedx_pok.receivers.handle_certificate_created",
                    },
                    {
                        "receiver_func_name": "handle_certificate_revoked",
                        "signal_path": "openedx_events.learning.signals.CERTIFICATE_REVOKED",
                        "dispatch_uid": "openedx_pok.receivers.handle_certificate_revoked",
                    },
                    {
                        # The LMS's openedx.core.djangoapps.user_api.accounts.signals.USER_RETIRE_LMS_MISC, looked up
                        # through compat (the one door to platform code; the sandbox LMS has its own).
                        "receiver_func_name": "handle_learner_retired",
                        "signal_path": "openedx_pok.compat.USER_RETIRE_LMS_MISC",
                        "dispatch_uid": "openedx_pok.receivers.handle_learner_retired",
                    },
                    {
                        # A learner who sets their full name (the profile) or e-mail (the user) in their account
                        # settings: a credential held for it follows by itself.
                        "receiver_func_name": "handle_learner_account_saved",
                        "signal_path": "django.db.models.signals.post_save",
                        "sender_path": "openedx_pok.compat.UserProfile",
                        "dispatch_uid": "openedx_pok.receivers.handle_learner_account_saved.profile",
                    },
                    {
                        "receiver_func_name": "handle_learner_account_saved",
                        "signal_path": "django.db.models.signals.post_save",
                        "sender_path": "django.contrib.auth.models.User",
                        "dispatch_uid": "openedx_pok.receivers.handle_learner_account_saved.user",
                    },
                ],
            },
        },
    }

    def ready(self):
        # The doctor (openedx_pok.E0xx / W0xx system checks, also run by pok_check) registers itself on import.
        from openedx_pok import checks  # noqa: F401, PLC0415

        # Redirecting a certificate page is the normal case, not an error: keep it out of the LMS error log.
        from openedx_pok.log_filters import DropDeliberateRenderExceptions  # noqa: PLC0415

        tooling_logger = logging.getLogger("openedx_filters.tooling")
        if not any(isinstance(f, DropDeliberateRenderExceptions) for f in tooling_logger.filters):
            tooling_logger.addFilter(DropDeliberateRenderExceptions())
