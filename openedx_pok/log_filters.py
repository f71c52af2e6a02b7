"""
Keeps the plugin's deliberate certificate-page outcomes out of the error log.

openedx-filters logs every exception a pipeline step raises with a full traceback at ERROR level, including the
render exceptions that are the normal way for a step to redirect or replace the certificate page. For this plugin
that would mean one "error" per certificate page view of every emitted credential, drowning real errors. The filter
drops exactly those records: a render exception raised by this plugin's render step, under its name or under the
earlier openedx-pok's name that operators may still list (``openedx_pok.filters.CertificateRenderFilter``).
Everything else passes.
"""
import logging

from openedx_filters.learning.filters import CertificateRenderStarted

DELIBERATE = (
    CertificateRenderStarted.RedirectToPage,
    CertificateRenderStarted.RenderCustomResponse,
    CertificateRenderStarted.RenderAlternativeInvalidCertificate,
)
# openedx-filters logs the step's class name (``step.__name__``): the render step and its legacy alias.
STEP_NAMES = frozenset({"RenderPokCredential", "CertificateRenderFilter"})


class DropDeliberateRenderExceptions(logging.Filter):
    """Logging filter for the ``openedx_filters.tooling`` logger (installed by the app's ``ready()``)."""

    def filter(self, record):
        exc_type = record.exc_info[0] if record.exc_info else None
        args = record.args if isinstance(record.args, tuple) else ()
        return not (exc_type is not None and issubclass(exc_type, DELIBERATE) and STEP_NAMES & set(args[:1]))
