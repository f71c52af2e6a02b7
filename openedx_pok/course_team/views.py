"""
The course team's POK page and its actions, under ``/pok/course-team/<course_id>/``.

Only for a course mapped to POK, and only for global staff and the course's own staff and instructors (the LMS's
course access roles, through ``api.can_manage_course_credentials``); anyone else gets a 404, the same as for a course
that is not mapped, so nothing is learned about other courses. Every action is a POST (with Django's CSRF check)
that first answers with a confirmation page and acts only when that page is submitted; each is logged with ids only
and written to the credentials' history by the state machine, with the staff member (``staff_actions`` and
``api.backfill``). The page and the legacy dashboard's section show the same panel.
"""
import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from openedx_pok import api
from openedx_pok.course_setup import configuration
from openedx_pok.course_team.summary import course_summary
from openedx_pok.exceptions import IssuanceError
from openedx_pok.issuance import csv_report, staff_actions
from openedx_pok.issuance.states import RETRIABLE_BY_STAFF
from openedx_pok.models import PokCertificate
from openedx_pok.views import safe_filename

log = logging.getLogger(__name__)

#: Credentials one "Retry all" sends at most; the confirmation says when more are left for another click.
RETRY_ALL_LIMIT = 500
#: Credentials named on a confirmation page.
CONFIRM_SHOWN = 20
#: The legacy dashboard shows the section whose key follows ``#view-`` in its address.
SECTION_KEY = "pok_credentials"


def course_for(request, course_id):
    """The course key when the course is mapped and the user may manage its credentials; 404 otherwise."""
    course_key = api.as_course_key(course_id)
    if course_key is None or not api.can_manage_course_credentials(request.user, course_key):
        raise Http404
    if api.get_course_mapping(course_key) is None:
        raise Http404
    return course_key


def urls(course_key):
    """The addresses the panel links to and posts to."""
    kwargs = {"course_id": str(course_key)}
    try:
        dashboard = reverse("instructor_dashboard", kwargs=kwargs) + f"#view-{SECTION_KEY}"
    except NoReverseMatch:  # an LMS without the legacy dashboard's route
        dashboard = ""
    return {name: reverse(f"openedx_pok:course-team-{name}", kwargs=kwargs)
            for name in ("page", "retry", "backfill", "csv")} | {"dashboard": dashboard}


def panel_context(course_key, heading=2):
    """What ``openedx_pok/course_team/panel.html`` needs: the course's summary, its addresses, its name."""
    course = configuration.course_info(course_key)
    return {"course_id": str(course_key), "course_name": course.display_name if course else str(course_key),
            "summary": course_summary(course_key), "urls": urls(course_key), "heading": heading,
            "subheading": heading + 1, "retry_all_limit": RETRY_ALL_LIMIT}


@never_cache
@login_required
@require_GET
def course_page(request, course_id):
    """The course's POK credentials: counts, held and failed ones, and the actions."""
    course_key = course_for(request, course_id)
    context = panel_context(course_key, heading=2)
    context["platform_name"] = api.platform_name()
    return render(request, "openedx_pok/course_team/page.html", context)


def _credential(course_key, reference):
    try:
        row = PokCertificate.objects.filter(course_key=course_key, uuid=reference).select_related("user").first()
    except (ValueError, ValidationError):
        row = None
    if row is None:
        raise Http404
    return row


def _confirm(request, course_key, title, question, fields, details=(), rows=(), count=0, can_confirm=True):
    """The confirmation page of an action: what it will do, and a form posting ``fields`` again, confirmed."""
    return render(request, "openedx_pok/course_team/confirm.html", {
        "title": title, "question": question, "fields": fields, "details": details, "rows": rows, "count": count,
        "can_confirm": can_confirm, "course_id": str(course_key), "urls": urls(course_key),
        "platform_name": api.platform_name(),
    })


@never_cache
@login_required
@require_POST
def retry(request, course_id):
    """Retry one held or failed credential (``credential``: its reference) or all of the course's, once confirmed."""
    course_key = course_for(request, course_id)
    reference = request.POST.get("credential", "").strip()
    if reference:
        rows = [_credential(course_key, reference)]
        count = 1
    else:
        retriable = PokCertificate.objects.filter(course_key=course_key, status__in=RETRIABLE_BY_STAFF)
        count = retriable.count()
        rows = retriable.order_by("id").select_related("user")  # the confirmation names the learners
    if request.POST.get("confirmed") != "yes":
        question = ngettext(
            "Send this credential to POK again now?",
            "Send these %(count)d held or failed credentials to POK again now?", count) % {"count": count}
        details = []
        if count > RETRY_ALL_LIMIT:
            details.append(_("One retry sends at most %(limit)d of them; retry again for the rest.") % {
                "limit": RETRY_ALL_LIMIT})
        return _confirm(request, course_key, _("Retry POK credentials"), question, {"credential": reference},
                        details=details, rows=list(rows[:CONFIRM_SHOWN]), count=count, can_confirm=count > 0)
    rows = list(rows[:RETRY_ALL_LIMIT])
    retried = sum(1 for row in rows if staff_actions.retry(row, actor=request.user))
    log.info("POK: course team user %s retried %s of %s credentials of %s", request.user.id, retried, len(rows),
             course_key)
    if retried:
        messages.success(request, ngettext("%(count)d credential is being sent to POK again.",
                                           "%(count)d credentials are being sent to POK again.", retried)
                         % {"count": retried})
    if retried < len(rows):
        messages.warning(request, ngettext(
            "%(count)d credential was not retried: it moved on meanwhile, or its learner's account was deleted.",
            "%(count)d credentials were not retried: they moved on meanwhile, or their learners' accounts were "
            "deleted.", len(rows) - retried) % {"count": len(rows) - retried})
    return redirect(urls(course_key)["page"])


def _backfill_details(report):
    counts = report.counts
    details = [
        _("Open edX certificates looked at: %(count)d") % {"count": counts["examined"]},
        _("Credentials to request now: %(count)d") % {"count": counts["requested"]},
        _("Credentials that wait for the course to release its certificates: %(count)d") % {
            "count": counts["scheduled"]},
        _("Learners who already have a credential: %(count)d") % {"count": counts["already_had"]},
        _("Held or failed credentials left as they are (see the list): %(count)d") % {
            "count": counts["held"] + counts["failed"]},
    ]
    if report.limit_reached:
        details.append(_("Not every certificate was looked at; run the backfill again for the rest."))
    return details


@never_cache
@login_required
@require_POST
def backfill(request, course_id):
    """
    Request a credential for every learner of the course whose certificate has none: a dry run that writes nothing
    first (the confirmation page shows its counts), then, once confirmed, the run itself.
    """
    course_key = course_for(request, course_id)
    confirmed = request.POST.get("confirmed") == "yes"
    try:
        report = api.backfill([str(course_key)], dry_run=not confirmed, actor_id=request.user.id)
    except IssuanceError as exc:
        messages.error(request, exc.reason)
        return redirect(urls(course_key)["page"])
    counts = report.counts
    if not confirmed:
        to_do = counts["requested"] + counts["scheduled"]
        question = ngettext("The backfill would request %(count)d credential. Request it now?",
                            "The backfill would request %(count)d credentials. Request them now?", to_do) \
            % {"count": to_do} if to_do else _("Every learner with a certificate already has a credential: the "
                                                "backfill has nothing to request.")
        return _confirm(request, course_key, _("Backfill: a dry run"), question, {},
                        details=_backfill_details(report), can_confirm=bool(to_do))
    log.info("POK: course team user %s backfilled %s: %s", request.user.id, course_key, counts)
    messages.success(request, ngettext("Backfill: %(count)d credential requested.",
                                       "Backfill: %(count)d credentials requested.", counts["requested"])
                     % {"count": counts["requested"]})
    if counts["scheduled"]:
        messages.info(request, ngettext(
            "%(count)d credential waits for the course to release its certificates; it is issued then.",
            "%(count)d credentials wait for the course to release its certificates; they are issued then.",
            counts["scheduled"]) % {"count": counts["scheduled"]})
    return redirect(urls(course_key)["page"])


@never_cache
@login_required
@require_GET
def credentials_csv(request, course_id):
    """The course's credentials as CSV (no emails), streamed."""
    course_key = course_for(request, course_id)
    log.info("POK: course team user %s downloaded the credentials CSV of %s", request.user.id, course_key)
    response = csv_report.csv_response(PokCertificate.objects.filter(course_key=course_key))
    response["Content-Disposition"] = f'attachment; filename="{safe_filename(f"pok-{course_key}", "csv")}"'
    return response
