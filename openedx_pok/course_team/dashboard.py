"""
The pipeline steps that put the POK tab in the instructor dashboard of a mapped course, for its team only.

- :class:`AddPokSection`, on ``InstructorDashboardRenderStarted`` (``org.openedx.learning.instructor.dashboard.
  render.started.v1``), which the legacy dashboard runs (``lms/djangoapps/instructor/views/instructor_dashboard.py``
  ``instructor_dashboard_2``: on Ulmo always; on Verawood and master only when the waffle flag
  ``instructor.legacy_instructor_dashboard`` is on, otherwise it redirects to the instructor dashboard app). It adds
  a section to ``context["sections"]``: the page includes ``<template_path_prefix><section_key>.html`` (Mako) for
  each, here ``openedx_pok/templates/openedx_pok/course_team/pok_credentials.html``, which writes the panel this
  step rendered with the plugin's Django template.
- :class:`AddPokTab`, on ``InstructorDashboardTabsRequested`` (``...instructor.dashboard.tabs.requested.v1``,
  openedx-filters 3.4.0 and later, Verawood and master), which the instructor API runs for the app's tab list. Its
  tab's address is the plugin's page in the LMS, absolute, so the app opens it as a page of its own (the app routes
  addresses starting with "/" inside itself, where it has no POK page).

Neither step may break the dashboard: any error is logged (ids only) and the dashboard is shown without the tab.
The legacy filter's context carries no user (the LMS passes ``course``, ``sections`` and the page's URLs): the
user is the current request's, as django-crum keeps it in the LMS.
"""
import logging

from crum import get_current_request
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.translation import pgettext
from openedx_filters import PipelineStep

from openedx_pok import api
from openedx_pok.course_team.views import SECTION_KEY, panel_context, urls

log = logging.getLogger(__name__)

#: Where the legacy dashboard looks for the section's Mako template (an absolute path of its template lookup).
TEMPLATE_PATH_PREFIX = "/openedx_pok/course_team/"
#: The app's tab: its id and place (the LMS's own tabs use 10 to 110).
TAB_ID = "pok_credentials"
TAB_SORT_ORDER = 130


def _team_course_key(course_key, user):
    """The course key when the course is mapped and ``user`` may manage its credentials, else None."""
    course_key = api.as_course_key(course_key) if course_key is not None else None
    if course_key is None or api.get_course_mapping(course_key) is None:
        return None  # most courses are not mapped: the mappings are cached, this costs no query
    return course_key if api.can_manage_course_credentials(user, course_key) else None


class AddPokSection(PipelineStep):
    """Add the POK section to the legacy instructor dashboard of a mapped course, for its team."""

    def run_filter(self, context, template_name):
        course_key = None
        try:
            request = get_current_request()
            course_key = getattr(context.get("course"), "id", None)
            course_key = _team_course_key(course_key, getattr(request, "user", None))
            if course_key is None:
                return {}
            html = render_to_string("openedx_pok/course_team/panel.html", panel_context(course_key, heading=4),
                                    request=request)
            section = {
                "section_key": SECTION_KEY,
                "section_display_name": pgettext("instructor dashboard tab", "POK credentials"),
                "template_path_prefix": TEMPLATE_PATH_PREFIX,
                "course_id": str(course_key),
                "pok_html": html,
            }
            context["sections"] = [*context.get("sections", []), section]
        except Exception as exc:  # noqa: BLE001 - the instructor dashboard must render without the tab
            log.error("POK: the instructor dashboard of %s is shown without the POK tab (%s)", course_key,
                      type(exc).__name__)
            return {}
        return {"context": context}


class AddPokTab(PipelineStep):
    """Add the POK tab to the instructor dashboard app's tabs of a mapped course, for its team."""

    def run_filter(self, tabs, user, course_key):
        try:
            course_key = _team_course_key(course_key, user)
            if course_key is None:
                return {}
            path = urls(course_key)["page"]
            request = get_current_request()
            url = request.build_absolute_uri(path) if request is not None else f"{settings.LMS_ROOT_URL}{path}"
            tab = {"tab_id": TAB_ID, "title": pgettext("instructor dashboard tab", "POK credentials"), "url": url,
                   "sort_order": TAB_SORT_ORDER}
            return {"tabs": [*(tabs or []), tab]}
        except Exception as exc:  # noqa: BLE001 - the instructor dashboard must show its tabs without ours
            log.error("POK: the instructor dashboard app of %s is shown without the POK tab (%s)", course_key,
                      type(exc).__name__)
            return {}
