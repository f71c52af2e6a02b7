"""
The instructor dashboard, shaped like the LMS's: the legacy page and the instructor dashboard app's course API.

``instructor_dashboard_2`` follows ``lms/djangoapps/instructor/views/instructor_dashboard.py`` (openedx-platform
Verawood and master): a course key it cannot read is a 500, a course it does not know a 404, the permission
``instructor.dashboard`` (``permissions.py``: the course's staff, instructor or data researcher role, or staff access)
is checked, then, unless the waffle flag ``instructor.legacy_instructor_dashboard`` is on, the page redirects to the
instructor dashboard app (``INSTRUCTOR_MICROFRONTEND_URL``/<course>); Ulmo has no such flag and always renders the
page (the flag on). The context has the LMS's keys; plugins' view contexts are merged in; then
``InstructorDashboardRenderStarted`` runs with the context and the template name, and each of its exceptions is
handled as there. The page is rendered with Mako, like the LMS's ``edxmako``: a lookup over every installed app's
``templates`` directory, so a section's ``<template_path_prefix><section_key>.html`` resolves as in the LMS.

``course_information`` is the part of ``GET /api/instructor/v2/courses/<course>`` the plugin meets: the tab list of
``views/serializers_v2.py`` ``CourseInformationSerializerV2.get_tabs`` (Verawood, master), which runs
``InstructorDashboardTabsRequested(tabs, user, course_key)`` and, on ``PreventTabsGeneration``, uses the exception's
tabs or none (the platform's own filter tests, ``common/djangoapps/util/tests/``). Ulmo's openedx-filters
(2.1.0) has no such filter: the list is returned unfiltered.
"""
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect, HttpResponseServerError, JsonResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.csrf import ensure_csrf_cookie
from edx_django_utils.plugins import get_plugins_view_context
from opaque_keys import InvalidKeyError
from opaque_keys.edx.keys import CourseKey
from openedx_filters.learning import filters
from waffle import flag_is_active

from lms_sandbox.models import CourseOverview
from lms_sandbox.roles import CourseDataResearcherRole, CourseInstructorRole, CourseStaffRole

LEGACY_DASHBOARD_FLAG = "instructor.legacy_instructor_dashboard"
INSTRUCTOR_TEMPLATE = "instructor/instructor_dashboard_2/instructor_dashboard_2.html"
INSTRUCTOR_DASHBOARD_PLUGIN_VIEW_NAME = "instructor_dashboard"  # lms/djangoapps/instructor/constants.py
DEFAULT_MFE_URL = "http://apps.local.openedx.io/instructor-dashboard"


def _access(user, course_key):
    """The view's ``access`` dict (the parts the sandbox has): global staff, and the course roles."""
    staff = bool(user.is_staff or CourseStaffRole(course_key).has_user(user)
                 or CourseInstructorRole(course_key).has_user(user))
    return {
        "admin": user.is_staff,
        "instructor": bool(user.is_staff or CourseInstructorRole(course_key).has_user(user)),
        "staff": staff,
        "data_researcher": bool(user.is_staff or CourseDataResearcherRole(course_key).has_user(user)),
    }


def _can_view_dashboard(user, course_key):
    """``instructor.dashboard``: HasRolesRule('staff', 'instructor', 'data_researcher') | staff | instructor access."""
    return user.is_authenticated and any(_access(user, course_key).values())


def _course(course_id):
    try:
        course_key = CourseKey.from_string(course_id)
    except InvalidKeyError:
        return None, None
    course = CourseOverview.objects.filter(id=course_key).first()
    if course is None:
        raise Http404  # get_course_by_id
    return course_key, course


def _lookup():
    """The Mako lookup of the LMS's ``main`` namespace: the templates directories of every installed app."""
    from mako.lookup import TemplateLookup  # noqa: PLC0415 - Mako is needed by this page only (requirements/test.in)

    directories = [str(path) for app in apps.get_app_configs() if (path := Path(app.path) / "templates").is_dir()]
    return TemplateLookup(directories=directories, input_encoding="utf-8", default_filters=["decode.utf8"])


def render_to_response(template_name, context, request):
    """``common.djangoapps.edxmako.shortcuts.render_to_response`` of the sandbox: a Mako page."""
    return HttpResponse(_lookup().get_template(template_name).render(request=request, **context))


def _sections(course, access):
    sections = []
    if access["staff"]:
        sections.append({"section_key": "course_info", "section_display_name": _("Course Info"), "access": access,
                         "course_id": course.id, "course_display_name": course.display_name})
    return sections


@ensure_csrf_cookie
@cache_control(no_cache=True, no_store=True, must_revalidate=True)
def instructor_dashboard_2(request, course_id):
    """Display the instructor dashboard for a course (the legacy page)."""
    course_key, course = _course(course_id)
    if course_key is None:
        return HttpResponseServerError()
    if not _can_view_dashboard(request.user, course_key):
        raise Http404
    if not flag_is_active(request, LEGACY_DASHBOARD_FLAG):
        mfe_url = getattr(settings, "INSTRUCTOR_MICROFRONTEND_URL", None) or DEFAULT_MFE_URL
        return redirect(f"{mfe_url}/{course_key}")

    access = _access(request.user, course_key)
    context = {
        "course": course,
        "studio_url": f"http://studio.sandbox/course/{course_key}",
        "sections": _sections(course, access),
        "disable_buttons": False,
        "analytics_dashboard_message": None,
        "certificate_allowlist": [],
        "certificate_invalidations": [],
        "generate_certificate_exceptions_url": f"/courses/{course_key}/instructor/api/generate_certificate_exceptions/",
        "generate_bulk_certificate_exceptions_url":
            f"/courses/{course_key}/instructor/api/generate_bulk_certificate_exceptions",
        "certificate_exception_view_url": f"/courses/{course_key}/instructor/api/certificate_exception_view/",
        "certificate_invalidation_view_url": f"/courses/{course_key}/instructor/api/certificate_invalidation_view/",
        "xqa_server": "",
    }
    context.update(get_plugins_view_context("lms.djangoapp", INSTRUCTOR_DASHBOARD_PLUGIN_VIEW_NAME, context))

    instructor_template = INSTRUCTOR_TEMPLATE
    render_started = filters.InstructorDashboardRenderStarted
    try:
        context, instructor_template = render_started.run_filter(context=context, template_name=instructor_template)
    except render_started.RenderInvalidDashboard as exc:
        response = render_to_response(exc.instructor_template, exc.template_context, request)
    except render_started.RedirectToPage as exc:
        response = HttpResponseRedirect(exc.redirect_to)
    except render_started.RenderCustomResponse as exc:
        response = exc.response
    else:
        response = render_to_response(instructor_template, context, request)
    return response


def course_information(request, course_id):
    """The ``tabs`` of the instructor API v2's course information, for the instructor dashboard app."""
    course_key, course = _course(course_id)
    if course_key is None:
        raise Http404
    if not request.user.is_authenticated:
        return JsonResponse({"detail": "Authentication credentials were not provided."}, status=401)
    if not _can_view_dashboard(request.user, course_key):
        return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
    access = _access(request.user, course_key)
    mfe_path = "/instructor-dashboard"
    tabs = []
    if access["staff"]:
        tabs += [{"tab_id": tab_id, "title": title, "url": f"{mfe_path}/{course_key}/{tab_id}", "sort_order": order}
                 for tab_id, title, order in (("course_info", _("Course Info"), 10),
                                              ("enrollments", _("Enrollments"), 20),
                                              ("course_team", _("Course Team"), 30), ("grading", _("Grading"), 40),
                                              ("cohorts", _("Cohorts"), 90))]
    if access["data_researcher"]:
        tabs.append({"tab_id": "data_downloads", "title": _("Data Downloads"),
                     "url": f"{mfe_path}/{course_key}/data_downloads", "sort_order": 60})
    tabs_requested = getattr(filters, "InstructorDashboardTabsRequested", None)
    if tabs_requested is not None:
        try:
            tabs, _user, _key = tabs_requested.run_filter(tabs=tabs, user=request.user, course_key=course_key)
        except tabs_requested.PreventTabsGeneration as exc:
            tabs = exc.tabs or []
    return JsonResponse({"course_id": str(course_key), "display_name": course.display_name, "tabs": tabs})
