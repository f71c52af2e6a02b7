"""
HTML of the pages the certificate render step shows instead of the Open edX certificate: credential on its way,
credential delayed, credential embedded, and the staff preview.

Templates only: what to show was decided by ``api.certificate_page`` (a frozen :class:`CertificatePage`, defined
here with the reading of the LMS's render context it starts from); this module combines it with the LMS's render
context (platform and learner names, for the wording) and renders it in the certificate's language, every value
autoescaped by the Django template engine. Nothing here reads the database or calls POK.
"""
from dataclasses import dataclass

from crum import get_current_request
from django.conf import settings
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from openedx_pok.keys import parse_course_key


class PageKind:
    """What the certificate page shows."""

    UNTOUCHED = "untouched"    # the Open edX certificate, as if the plugin were not installed
    REDIRECT = "redirect"      # the credential's page on POK
    EMBED = "embed"            # the credential image inside the LMS
    STATUS = "status"          # on its way: a page that polls
    NOTICE = "notice"          # held or failed: a friendly notice with a reference
    INVALID = "invalid"        # revoked: the LMS's invalid-certificate page
    PREVIEW = "preview"        # staff preview of the course's template


@dataclass(frozen=True)
class CertificatePage:
    """Everything the certificate page needs, decided once from the database (never from POK)."""

    kind: str
    reference: str = ""
    title: str = ""
    view_url: str = ""
    emitter: str = ""
    image_url: str = ""
    share_links: tuple = ()
    status_url: str = ""
    download_url: str = ""
    template_id: str = ""
    emission_type: str = ""
    problem: str = ""
    preview_image_url: str = ""
    learner_fix: str = ""  # held for the viewing learner's own data (payload.LearnerFix): what they can fix
    course_id: str = ""


UNTOUCHED = CertificatePage(kind=PageKind.UNTOUCHED)


def context_inputs(context):
    """The decision's inputs: (course_key, user_id, is_preview) or None for a context it cannot use."""
    if not isinstance(context, dict):
        return None
    course_key = parse_course_key(context.get("course_id")) if context.get("course_id") else None
    user_id = context.get("accomplishment_user_id")
    if isinstance(user_id, str) and user_id.isdigit():
        user_id = int(user_id)
    if course_key is None or not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        return None
    return course_key, user_id, is_preview()


def viewer_id():
    """The id of the user viewing the page (the LMS's current request), or None for an anonymous visitor."""
    request = get_current_request()
    user = getattr(request, "user", None)
    return user.id if user is not None and user.is_authenticated else None


def is_preview():
    """
    Whether the certificate being rendered is a staff preview, decided as the LMS's ``render_html_view`` decides it
    (``lms/djangoapps/certificates/views/webview.py``, every release): by the request's ``preview`` parameter. The
    LMS reaches the render filter with it only for staff (anyone else gets its error page before the filter runs),
    and its render context says nothing of it on releases before Verawood. The request is the LMS's current one,
    which its middleware (django-crum) keeps for code without a request, as this filter step is.
    """
    request = get_current_request()
    return request is not None and bool(request.GET.get("preview"))


TEMPLATES = {
    "status": "openedx_pok/status.html",
    "notice": "openedx_pok/delayed.html",
    "embed": "openedx_pok/embed.html",
    "preview": "openedx_pok/preview.html",
}


def _common(context, page):
    certificate_data = context.get("certificate_data") or {}
    return {
        "platform_name": context.get("platform_name") or "",
        "learner_name": context.get("accomplishment_copy_name") or context.get("username") or _("The learner"),
        "course_title": page.title or certificate_data.get("course_title")
        or context.get("accomplishment_copy_course_name") or context.get("course_id") or "",
        "reference": page.reference,
    }


def _status_values(page):
    return {
        "reload_seconds": max(settings.POK_STATUS_POLL_SECONDS * 6, 15),
        "poll_config": {
            "statusUrl": page.status_url,
            "pollSeconds": max(int(settings.POK_STATUS_POLL_SECONDS), 1),
            "embed": settings.POK_CERTIFICATE_PAGE == "embed",
            "readyText": _("Your credential is ready. Opening it…"),
        },
    }


def _embed_values(page):
    return {
        "emitter": page.emitter,
        "view_url": page.view_url,
        "image_url": page.image_url,
        "share_links": list(page.share_links),
        "download_url": page.download_url,
    }


def _preview_values(page):
    return {
        "template_id": page.template_id,
        "emission_type": page.emission_type,
        "problem": page.problem,
        "preview_image_url": page.preview_image_url,
    }


def _notice_values(page):
    # The LMS's account settings (the Account MFE where it has one; the LMS's own path redirects there otherwise) and
    # the course's root path, which the LMS sends on to the course home: lms/envs/common.py, lms/urls.py.
    return {
        "learner_fix": page.learner_fix,
        "account_url": getattr(settings, "ACCOUNT_MICROFRONTEND_URL", None) or "/account/settings",
        "course_url": f"/courses/{page.course_id}/" if page.course_id else "",
    }


_VALUES = {"status": _status_values, "embed": _embed_values, "preview": _preview_values, "notice": _notice_values}


def page_response(page, context):
    """The HttpResponse for ``page`` (kinds status, notice, embed, preview), never cached by browsers or proxies."""
    values = _common(context, page)
    if page.kind in _VALUES:
        values.update(_VALUES[page.kind](page))
    response = HttpResponse(render_to_string(TEMPLATES[page.kind], values), content_type="text/html; charset=utf-8")
    # The state changes as the credential progresses: never let a browser or proxy keep an old answer.
    response["Cache-Control"] = "no-store"
    return response
