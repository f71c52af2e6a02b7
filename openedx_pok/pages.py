"""
The pages the certificate render step shows instead of the Open edX certificate: credential on its way, credential
delayed, credential embedded, and the staff preview.

They are rendered from the database and the render context only (no POK call), in the certificate's language,
with every value autoescaped by the Django template engine.
"""
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.translation import gettext as _

from openedx_pok import api, sharing, tasks
from openedx_pok.payload import PayloadError


def _common(context, row=None):
    certificate_data = context.get("certificate_data") or {}
    return {
        "platform_name": context.get("platform_name") or "",
        "learner_name": context.get("accomplishment_copy_name") or context.get("username") or _("The learner"),
        "course_title": (row.title if row is not None and row.title else "") or certificate_data.get("course_title")
        or context.get("accomplishment_copy_course_name") or context.get("course_id") or "",
        "reference": str(row.uuid) if row is not None else "",
    }


def _response(template, values):
    response = HttpResponse(render_to_string(template, values), content_type="text/html; charset=utf-8")
    # The state changes as the credential progresses: never let a browser or proxy keep an old answer.
    response["Cache-Control"] = "no-store"
    return response


def status_page(context, row):
    """HTTP 200 page that polls the status endpoint and opens the credential once it is emitted."""
    values = _common(context, row)
    values["reload_seconds"] = max(settings.POK_STATUS_POLL_SECONDS * 6, 15)
    values["poll_config"] = {
        "statusUrl": reverse("openedx_pok:credential-status", kwargs={"reference": row.uuid}),
        "pollSeconds": max(int(settings.POK_STATUS_POLL_SECONDS), 1),
        "embed": settings.POK_CERTIFICATE_PAGE == "embed",
        "readyText": _("Your credential is ready. Opening it…"),
    }
    return _response("openedx_pok/status.html", values)


def delayed_page(context, row):
    """Held or failed: a friendly notice with a reference for support, no internal details."""
    return _response("openedx_pok/delayed.html", _common(context, row))


def embed_page(context, row):
    """Emitted, embedded: the credential image from the cached location, its POK page and share links."""
    values = _common(context, row)
    # Only a location cached by a task is used: the page itself never asks POK.
    image_url = tasks.cached_image_location(row)
    if not image_url:
        api.note_missing_image(row)
    values.update({
        "emitter": row.emitter,
        "view_url": row.view_url,
        "image_url": image_url,
        "share_links": sharing.share_links(row),
        "download_url": reverse("openedx_pok:credential-image", kwargs={"reference": row.uuid}),
    })
    return _response("openedx_pok/embed.html", values)


def preview_page(context, course_key):
    """Staff preview: the template preview image (fetched by a staff-only endpoint) or what is wrong."""
    values = _common(context)
    try:
        mapping, template_id, _course = tasks.course_setup(course_key)
        values.update({"template_id": template_id, "emission_type": mapping.get_emission_type_display(),
                       "problem": ""})
    except PayloadError as exc:
        values.update({"template_id": "-", "emission_type": "", "problem": exc.reason})
    values["preview_image_url"] = (reverse("openedx_pok:preview-image", kwargs={"course_id": str(course_key)})
                                   + "?" + urlencode({"language": context.get("user_language") or ""}))
    return _response("openedx_pok/preview.html", values)


def credential_for_render(context):
    """The render decision's inputs: (course_key, user_id, is_preview) or None for a context it cannot use."""
    if not isinstance(context, dict):
        return None
    course_key = api.as_course_key(context.get("course_id")) if context.get("course_id") else None
    user_id = context.get("accomplishment_user_id")
    if isinstance(user_id, str) and user_id.isdigit():
        user_id = int(user_id)
    if course_key is None or not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        return None
    certificate = context.get("user_certificate")
    is_preview = certificate is not None and getattr(certificate, "pk", None) is None
    return course_key, user_id, is_preview
