"""
openedx-filters pipeline steps, registered in ``OPEN_EDX_FILTERS_CONFIG`` by the plugin settings.

Both steps run on the LMS's own paths (certificate generation, certificate page), so they only touch the database:
no HTTP, no exception except a deliberate render exception. Whatever goes wrong inside is logged with ids and the
LMS carries on exactly as if the plugin were not installed.
"""
import logging

from openedx_filters import PipelineStep
from openedx_filters.learning.filters import CertificateRenderStarted

from openedx_pok import api
from openedx_pok.models import CredentialStatus

log = logging.getLogger(__name__)

# Statuses the LMS reports for a certificate that cannot become downloadable without another award.
NON_ISSUABLE_REQUEST_STATUSES = frozenset({"unverified"})


class RequestPokCredential(PipelineStep):
    """
    ``CertificateCreationRequested`` step: record the learner's credential and schedule its issuance.

    The Open edX certificate does not exist yet at this point (the LMS creates it about two seconds later); the
    issuance task waits for it to be downloadable before sending anything to POK. Runs many times for the same
    learner and course; every run after the first is a cheap no-op. Returns the arguments unchanged and never
    prevents the certificate.
    """

    def run_filter(self, user, course_key, mode, status, grade, generation_mode, **kwargs):  # pylint: disable=arguments-differ
        unchanged = {
            "user": user, "course_key": course_key, "mode": mode, "status": status, "grade": grade,
            "generation_mode": generation_mode,
        }
        if status in NON_ISSUABLE_REQUEST_STATUSES:
            return unchanged
        try:
            percent = getattr(grade, "percent", None)
            api.request_issuance(getattr(user, "id", None), course_key,
                                 grade=float(percent) if isinstance(percent, (int, float)) else None)
        except Exception:  # pylint: disable=broad-except
            # Never break certificate generation; CERTIFICATE_CREATED and reconcile give issuance another chance.
            log.exception("POK: could not record issuance for user %s in %s", getattr(user, "id", None), course_key)
        return unchanged


class RenderPokCredential(PipelineStep):
    """
    ``CertificateRenderStarted`` step: send the viewer of a POK-enabled certificate to the POK credential.

    Costs one indexed query and no POK call. Emitted: redirect to the credential's POK page. Revoked: the LMS's
    invalid-certificate page. Anything else: the Open edX certificate page, untouched.
    """

    def run_filter(self, context, custom_template, **kwargs):  # pylint: disable=arguments-differ
        try:
            row = self._credential_for(context)
        except Exception:  # pylint: disable=broad-except
            log.exception("POK: could not look up the credential for a certificate page")
            row = None
        if row is not None and row.status == CredentialStatus.EMITTED and row.view_url:
            raise CertificateRenderStarted.RedirectToPage(
                "The certificate is a POK credential.", redirect_to=row.view_url,
            )
        if row is not None and row.status == CredentialStatus.REVOKED:
            # No template name: the LMS shows its own invalid-certificate page.
            raise CertificateRenderStarted.RenderAlternativeInvalidCertificate("The POK credential was revoked.")
        return {"context": context, "custom_template": custom_template}

    @staticmethod
    def _credential_for(context):
        """The credential of the certificate's owner; None in staff preview (unsaved certificate) or bad context."""
        if not isinstance(context, dict):
            return None
        user_id, course_id = context.get("accomplishment_user_id"), context.get("course_id")
        certificate = context.get("user_certificate")
        if not user_id or not course_id or (certificate is not None and getattr(certificate, "pk", None) is None):
            return None
        return api.get_credential(user_id, course_id)
