"""
The certificate web view, shaped like the LMS's ``certificates.views.webview.render_html_view``.

The gates before the filter, the context keys, the ``translation.override`` around it and the handling of each
``CertificateRenderStarted`` exception follow the LMS (``lms/djangoapps/certificates/views/webview.py``,
openedx-platform Verawood), because the plugin's render step is written against them: a redirect must become a
redirect, a custom response must be returned as-is, and an alternative invalid template must show the "invalid
certificate" page. As there:

- a certificate is shown only once the course shows certificates (``certificates_viewable_for_course``), and only
  an eligible, downloadable one; otherwise the "invalid certificate" page, with HTTP 200;
- ``?preview=<mode>`` makes any of the certificate URLs a preview, for staff, with an unsaved certificate; anyone
  else gets the LMS's error page (its view fails before the filter and ``handle_500`` answers);
- the context has ``user_certificate`` (added in openedx-platform#37486, late 2025); ``SANDBOX_CONTEXT_USER_CERTIFICATE
  = False`` renders the context of the releases before it.
"""
import logging
from datetime import datetime
from uuid import uuid4

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template import RequestContext, Template
from django.template.loader import render_to_string, select_template
from django.templatetags.static import static
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey
from openedx_filters.learning.filters import CertificateRenderStarted

from lms_sandbox.certificates_api import certificates_viewable_for_course
from lms_sandbox.models import CertificateStatuses, CourseOverview, GeneratedCertificate, Organization

log = logging.getLogger(__name__)

VALID_CERTIFICATE_TEMPLATE = "lms_sandbox/certificate_valid.html"
INVALID_CERTIFICATE_TEMPLATE = "lms_sandbox/certificate_invalid.html"
SERVER_ERROR_TEMPLATE = "lms_sandbox/certificate_server_error.html"


def render_cert_by_uuid(request, certificate_uuid):
    """Public page of a downloadable certificate, found by its verify_uuid (404 otherwise), as in the LMS."""
    try:
        certificate = GeneratedCertificate.eligible_certificates.select_related("user").get(
            verify_uuid=certificate_uuid, status=CertificateStatuses.downloadable,
        )
    except GeneratedCertificate.DoesNotExist as exc:
        raise Http404 from exc
    return render_html_view(request, str(certificate.course_id), certificate)


def render_preview_certificate(request, course_id):
    """The signed-in learner's own certificate, or with ``?preview=<mode>`` the staff preview of the course's."""
    if not request.user.is_authenticated:
        # Login required, as in the LMS. The sandbox has no login page of its own: the admin's serves unless the
        # project sets LOGIN_URL.
        login_url = settings.LOGIN_URL if settings.is_overridden("LOGIN_URL") else reverse("admin:login")
        return redirect_to_login(request.get_full_path(), login_url)
    return render_html_view(request, course_id)


class _PreviewNotAllowed(Exception):
    """The LMS's view fails for a preview by someone without the preview permission (an unbound local variable)."""


def render_html_view(request, course_id, certificate=None):
    """Build the certificate context, run ``CertificateRenderStarted`` and turn its outcome into a response."""
    try:
        return _render_html_view(request, course_id, certificate)
    except Exception:
        # The LMS's handle_500 decorator: a failing preview gets the error page, anything else propagates.
        if not request.GET.get("preview"):
            raise
        log.info("Sandbox LMS: certificate preview of %s failed", course_id)
        return HttpResponse(render_to_string(SERVER_ERROR_TEMPLATE, {"platform_name": settings.PLATFORM_NAME},
                                             request=request), status=500)


def _render_html_view(request, course_id, certificate):
    user = certificate.user if certificate else request.user
    preview_mode = request.GET.get("preview") or None
    platform_name = settings.PLATFORM_NAME

    try:
        course_key = CourseKey.from_string(course_id)
        overview = CourseOverview.objects.get(id=course_key)
    except (InvalidKeyError, CourseOverview.DoesNotExist):
        return _render_invalid_certificate(request, course_id, platform_name)
    if not overview.cert_html_view_enabled:
        return _render_invalid_certificate(request, course_id, platform_name)

    user_certificate = _get_user_certificate(request, user, overview, preview_mode)
    if user_certificate is None:
        return _render_invalid_certificate(request, course_id, platform_name)

    # Without custom templates the LMS renders in the language of the request (LocaleMiddleware's choice).
    certificate_language = translation.get_language()
    with translation.override(certificate_language):
        context = _build_context(request, user, overview, user_certificate, platform_name, certificate_language)
        custom_template = None
        try:
            context, custom_template = CertificateRenderStarted.run_filter(
                context=context, custom_template=custom_template,
            )
        except CertificateRenderStarted.RenderAlternativeInvalidCertificate as exc:
            response = _render_invalid_certificate(
                request, course_id, platform_name, template_name=exc.template_name or INVALID_CERTIFICATE_TEMPLATE,
            )
        except CertificateRenderStarted.RedirectToPage as exc:
            response = HttpResponseRedirect(exc.redirect_to)
        except CertificateRenderStarted.RenderCustomResponse as exc:
            response = exc.response
        except Exception:
            # The LMS lets these escape to its 500 handler; answering 500 here keeps the same status for callers
            # (tests, the demo) without depending on DEBUG or the test client's exception re-raising.
            log.exception("Sandbox LMS: the certificate render filter failed for %s", course_id)
            response = HttpResponse(render_to_string(SERVER_ERROR_TEMPLATE, {"platform_name": platform_name},
                                                     request=request), status=500)
        else:
            response = _render_valid_certificate(request, context, custom_template)
    return response


def _get_user_certificate(request, user, overview, preview_mode):
    """
    The certificate to show: an unsaved one for a staff preview, else the user's eligible downloadable one once the
    course shows certificates (even when the page was found by its verify_uuid: the LMS looks it up again).
    """
    if preview_mode:
        if not request.user.is_staff:
            raise _PreviewNotAllowed(preview_mode)
        now = timezone.now()
        return GeneratedCertificate(
            mode=preview_mode, verify_uuid=uuid4().hex, created_date=now, modified_date=now, course_id=overview.id,
        )
    if not certificates_viewable_for_course(overview):
        return None
    return GeneratedCertificate.eligible_certificates.filter(
        user=user, course_id=overview.id, status=CertificateStatuses.downloadable,
    ).first()


def _build_context(request, user, overview, user_certificate, platform_name, language):
    """The keys of the LMS context that the plugin and the built-in template read."""
    course_key = overview.id
    org_name = Organization.objects.filter(short_name=overview.org).values_list("name", flat=True).first()
    course_title = overview.certificate_title or overview.display_name or str(course_key)
    learner_name = user_certificate.name or _profile_name(user) or user.get_full_name() or user.username
    issued = user_certificate.modified_date or user_certificate.created_date or timezone.now()
    if isinstance(issued, datetime):
        issued = timezone.localtime(issued) if timezone.is_aware(issued) else issued
    share_url = request.build_absolute_uri(
        reverse("lms_sandbox:render_cert_by_uuid", kwargs={"certificate_uuid": user_certificate.verify_uuid})
    )
    return {
        "user_language": language,
        "platform_name": platform_name,
        "course_id": str(course_key),
        "logo_src": getattr(settings, "LMS_SANDBOX_LOGO_SRC", None) or static("lms_sandbox/logo.svg"),
        "certificate_data": {
            "course_title": overview.certificate_title,
            "signatories": [dict(s) for s in overview.signatories or [] if isinstance(s, dict)],
        },
        "course_mode": user_certificate.mode,
        "accomplishment_user_id": user.id,
        "username": user.username,
        "accomplishment_copy_name": learner_name,
        "accomplishment_copy_username": user.username,
        "accomplishment_copy_course_name": course_title,
        "accomplishment_copy_course_org": overview.display_org_with_default or overview.org,
        "organization_long_name": org_name or "",
        "course_number": course_key.course,
        "certificate_id_number": user_certificate.verify_uuid,
        "certificate_date_issued": date_format(issued, "DATE_FORMAT"),
        "document_title": _("{partner_short_name} {course_number} Certificate | {platform_name}").format(
            partner_short_name=overview.display_org_with_default or overview.org,
            course_number=course_key.course,
            platform_name=platform_name,
        ),
        "share_url": share_url,
        **({"user_certificate": user_certificate}
           if getattr(settings, "SANDBOX_CONTEXT_USER_CERTIFICATE", True) else {}),
    }


def _render_valid_certificate(request, context, custom_template):
    """The built-in certificate page, or the filter's custom template (an object with ``.template`` text)."""
    if custom_template:
        source = getattr(custom_template, "template", custom_template)
        return HttpResponse(Template(source).render(RequestContext(request, context)))
    return HttpResponse(render_to_string(VALID_CERTIFICATE_TEMPLATE, context, request=request))


def _render_invalid_certificate(request, course_id, platform_name, template_name=INVALID_CERTIFICATE_TEMPLATE):
    """
    The "invalid certificate" page, with only the basic context (like the LMS, not the filter's context), HTTP 200.

    A template named by a step that does not exist in this host falls back to the built-in page, with a warning,
    so the demo still shows what the step meant.
    """
    template = select_template([template_name, INVALID_CERTIFICATE_TEMPLATE])
    if template.origin.template_name != template_name:
        log.warning("Sandbox LMS: invalid-certificate template %s not found, using the built-in one", template_name)
    context = {"course_id": course_id, "platform_name": platform_name,
               "document_title": _("Invalid Certificate | {platform_name}").format(platform_name=platform_name)}
    return HttpResponse(template.render(context, request))  # HTTP 200, as the LMS's render_to_response


def _profile_name(user):
    profile = getattr(user, "profile", None) if user.pk else None
    return getattr(profile, "name", "") or ""
