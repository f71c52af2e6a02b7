"""
Keeps the plugin's deliberate certificate-page outcomes out of the error log.

openedx-filters logs every exception a pipeline step raises with a full traceback at ERROR level, including the
render exceptions that are the normal way for a step to redirect or replace the certificate page. For this plugin
that would mean one "error" per certificate page view of every emitted credential, drowning real errors. The filter
drops exactly those records: a render exception raised by this plugin's render step. Everything else passes.
"""
import logging

from openedx_filters.learning.filters import CertificateRenderStarted

DELIBERATE = (
    CertificateRenderStarted.RedirectToPage,
    CertificateRenderStarted.RenderCustomResponse,
    CertificateRenderStarted.RenderAlternativeInvalidCertificate,
)
STEP_NAME = "RenderPokCredential"


class DropDeliberateRenderExceptions(logging.Filter):
    """Logging filter for the ``openedx_filters.tooling`` logger (installed by the app's ``ready()``)."""

    def filter(self, record):
        exc_type = record.exc_info[0] if record.exc_info else None
        if exc_type is not None and issubclass(exc_type, DELIBERATE) and STEP_NAME in (record.args or ()):
            return False
        return True
