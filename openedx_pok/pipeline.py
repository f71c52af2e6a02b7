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
from openedx_pok.pages import render
from openedx_pok.pages.render import UNTOUCHED, PageKind

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

    def run_filter(self, user, course_key, mode, status, grade, generation_mode, **kwargs):
        unchanged = {
            "user": user, "course_key": course_key, "mode": mode, "status": status, "grade": grade,
            "generation_mode": generation_mode,
        }
        if status in NON_ISSUABLE_REQUEST_STATUSES:
            return unchanged
        try:
            percent = getattr(grade, "percent", None)
            # Almost always the first word of this award (nothing recorded yet): the insert goes first.
            api.request_issuance(getattr(user, "id", None), course_key,
                                 grade=float(percent) if isinstance(percent, (int, float)) else None, expect_new=True)
        except Exception:
            # Never break certificate generation; CERTIFICATE_CREATED and reconcile give issuance another chance.
            log.exception("POK: could not record issuance for user %s in %s", getattr(user, "id", None), course_key)
        return unchanged


class RenderPokCredential(PipelineStep):
    """
    ``CertificateRenderStarted`` step: show the POK credential, or an honest status, instead of the certificate.

    Reads the database only (one indexed query for an emitted credential) and never calls POK:

    - emitted: redirect to the credential's POK page (or, with ``POK_CERTIFICATE_PAGE = "embed"``, a page with it);
    - pending / requesting / in progress: a status page that polls and moves on once the credential is emitted;
    - held / failed: a friendly notice with a reference (or the Open edX certificate, if so configured);
    - revoked: the LMS's invalid-certificate page;
    - no record yet in a POK-enabled course (certificate from before the plugin): issuance is scheduled and the
      status page shown;
    - staff preview (unsaved certificate): the template preview page;
    - course not POK-enabled, or a context it cannot read: the Open edX certificate, untouched.
    Whatever goes wrong inside, the step raises nothing but these three render exceptions.
    """

    def run_filter(self, context, custom_template, **kwargs):
        try:
            page = api.certificate_page(context)
            response = None
            if page.kind not in (PageKind.UNTOUCHED, PageKind.REDIRECT, PageKind.INVALID):
                response = render.page_response(page, context)
        except Exception:
            log.exception("POK: could not decide how to render a certificate page; showing the Open edX one")
            page, response = UNTOUCHED, None
        if page.kind == PageKind.REDIRECT:
            raise CertificateRenderStarted.RedirectToPage("The certificate is a POK credential.",
                                                          redirect_to=page.view_url)
        if page.kind == PageKind.INVALID:
            # No template name: the LMS shows its own invalid-certificate page.
            raise CertificateRenderStarted.RenderAlternativeInvalidCertificate("The POK credential was revoked.")
        if response is not None:
            raise CertificateRenderStarted.RenderCustomResponse("POK credential page.", response=response)
        return {"context": context, "custom_template": custom_template}
