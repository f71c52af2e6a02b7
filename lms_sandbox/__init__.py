"""
A small stand-in for the Open edX LMS, used by the test-suite and the demo.

It holds just enough of the platform to call the plugin the way the LMS does: the certificate model that sends the
openedx-events signals, the generation entry point that runs the ``CertificateCreationRequested`` filter, and the
certificate web view that runs ``CertificateRenderStarted``. It uses the real openedx-filters and openedx-events
libraries; only the LMS's own modules are replaced.
"""

# Like an LMS project, load the Celery app with Django so shared tasks bind to it.
from lms_sandbox.celery import app as celery_app

__all__ = ["celery_app"]
