"""
App configuration of the sandbox LMS.

Its ``ready()`` does what the LMS does at start-up to wire plugins: connect the receivers that every installed
``lms.djangoapp`` plugin declares in ``plugin_app['signals_config']``. Without it the plugin's openedx-events
receivers would never run in tests or in the demo.
"""
from django.apps import AppConfig
from edx_django_utils.plugins import connect_plugin_receivers


class LmsSandboxConfig(AppConfig):
    """Sandbox LMS app: models, certificate generation and web view of a minimal LMS."""

    name = "lms_sandbox"
    label = "lms_sandbox"
    verbose_name = "Sandbox LMS"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # The LMS calls this from its own startup for the "lms.djangoapp" project type; mirror it exactly.
        connect_plugin_receivers("lms.djangoapp")
