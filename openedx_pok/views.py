"""
HTTP endpoints of the plugin (mounted under ``/pok/``).

Credentials are addressed by an unguessable reference (the record's UUID or the certificate's verify_uuid), never
by an enumerable integer. Only the learner who owns the credential or staff may read it; anyone else gets the same
404 as for a reference that does not exist, so nothing is learned about other learners.
"""
import logging
import re

from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from openedx_pok import api
from openedx_pok.exceptions import IssuanceError, OpenedxPokError
from openedx_pok.issuance.states import PublicStatus
from openedx_pok.pages import media

log = logging.getLogger(__name__)


def _owned_credential(request, reference):
    row = api.get_credential_by_reference(reference)
    if row is None or (row.user_id != request.user.id and not request.user.is_staff):
        raise Http404
    return row


def safe_filename(text, extension):
    """An ASCII file name from a title: letters, digits and dashes only, never a path or a header injection."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text or "").strip("-")[:80] or "credential"
    return f"{slug}.{extension}"


class CredentialStatusView(APIView):
    """``GET /pok/credentials/<reference>/status``: where the credential stands; its page and share links once emitted.

    Used by the status page and by the learning MFE. Answers from the database only.
    """

    permission_classes = [IsAuthenticated]

    def get(self, request, reference):
        return Response(api.status_payload(_owned_credential(request, reference)))


class CredentialImageView(APIView):
    """``GET /pok/credentials/<reference>/image``: download the emitted credential's image (owner or staff)."""

    permission_classes = [IsAuthenticated]

    def get(self, request, reference):
        row = _owned_credential(request, reference)
        if api.public_status(row) != PublicStatus.EMITTED:
            raise Http404
        try:
            content_type, content = media.credential_image(row)
        except OpenedxPokError as exc:
            log.warning("POK: image of credential %s unavailable (%s)", row.id, type(exc).__name__)
            return HttpResponse(_("The credential image is not available right now. Please try again later."),
                                status=503, content_type="text/plain; charset=utf-8")
        extension = content_type.split("/")[-1].split("+")[0] or "png"
        response = HttpResponse(content, content_type=content_type)
        response["Content-Disposition"] = f'attachment; filename="{safe_filename(row.title, extension)}"'
        response["X-Content-Type-Options"] = "nosniff"
        return response


class PreviewImageView(APIView):
    """``GET /pok/preview/<course_id>/image``: staff only; sends the browser to POK's preview of the template."""

    permission_classes = [IsAdminUser]

    def get(self, request, course_id):
        course_key = api.as_course_key(course_id)
        if course_key is None:
            raise Http404
        try:
            url = media.preview_image_url(course_key, language=request.GET.get("language") or None)
        except IssuanceError as exc:
            return HttpResponse(exc.reason, status=409, content_type="text/plain; charset=utf-8")
        except OpenedxPokError as exc:
            log.warning("POK: preview of %s unavailable (%s)", course_key, type(exc).__name__)
            return HttpResponse(_("POK could not render the preview right now: {error}").format(
                error=getattr(exc, "message", str(exc))), status=502, content_type="text/plain; charset=utf-8")
        if not media.image_url_allowed(url):
            return HttpResponse(_("POK answered with an image address outside the allowed POK hosts."),
                                status=502, content_type="text/plain; charset=utf-8")
        return HttpResponseRedirect(url)
