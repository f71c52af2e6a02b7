"""
The course team's POK tab (issue 20 item 15), through the sandbox LMS's instructor dashboard: who sees it (the
LMS's course access roles; global staff everywhere), what it shows, and its confirmed actions (retry one or all, the
backfill after its dry run, the course's CSV), each logged with ids only and written to the credentials' history.

The dashboard runs the plugin's steps through the real openedx-filters with the context keys the LMS passes
(``lms_sandbox.instructor_dashboard``); the POK tab of the instructor dashboard app is read from the sandbox's
instructor API as the app reads it.
"""
import csv
import io
import logging

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from opaque_keys.edx.keys import CourseKey
from openedx_filters.learning import filters
from waffle.models import Flag

from lms_sandbox.compat import SandboxBackend
from lms_sandbox.factories import CourseOverviewFactory, GeneratedCertificateFactory, UserFactory
from lms_sandbox.models import CourseAccessRole
from openedx_pok.course_team import dashboard
from openedx_pok.issuance.history import Cause
from openedx_pok.models import CertificateTemplate, CredentialEvent, CredentialStatus, PokCertificate
from openedx_pok.settings.common import COURSE_TEAM_STEPS, DASHBOARD_TABS_FILTER, LEGACY_DASHBOARD_FILTER
from test_utils.factories import CredentialFactory

pytestmark = pytest.mark.django_db

OTHER_COURSE = "course-v1:DemoX+POK102+2026"
SECTION = 'id="pok_credentials"'
TABS_FILTER = getattr(filters, "InstructorDashboardTabsRequested", None)
needs_tabs_filter = pytest.mark.skipif(
    TABS_FILTER is None, reason="openedx-filters < 3.4.0 (Ulmo) has no InstructorDashboardTabsRequested")


class BrokenRolesBackend(SandboxBackend):
    """The sandbox LMS whose role check fails, as a broken platform call would."""

    def has_course_team_role(self, user, course_key):
        raise RuntimeError("role lookup failed")


def role(user, course_key, name):
    CourseAccessRole.objects.create(user=user, org=course_key.org, course_id=course_key, role=name)
    return user


@pytest.fixture
def legacy_dashboard(db):
    """The legacy dashboard on (Ulmo always shows it; Verawood and master only with this flag)."""
    flag = Flag.objects.create(name="instructor.legacy_instructor_dashboard", everyone=True)
    cache.clear()  # waffle caches flags in the Django cache, which a test's rollback leaves alone
    yield flag
    cache.clear()


@pytest.fixture
def people(course):
    """Everyone of the permission matrix, by name (``anonymous`` is None)."""
    other_key = CourseKey.from_string(OTHER_COURSE)
    CourseOverviewFactory(id=other_key, org="DemoX")
    return {
        "anonymous": None,
        "learner": UserFactory(),
        "staff of another course": role(UserFactory(), other_key, "staff"),
        "data researcher": role(UserFactory(), course.id, "data_researcher"),
        "course staff": role(UserFactory(), course.id, "staff"),
        "limited staff": role(UserFactory(), course.id, "limited_staff"),
        "instructor": role(UserFactory(), course.id, "instructor"),
        "global staff": UserFactory(is_staff=True),
    }


def client_for(user):
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def urls(course_key):
    kwargs = {"course_id": str(course_key)}
    return {name: reverse(f"openedx_pok:course-team-{name}", kwargs=kwargs) for name in ("page", "retry", "backfill",
                                                                                         "csv")}


def dashboard_url(course_key):
    return reverse("instructor_dashboard", kwargs={"course_id": str(course_key)})


@pytest.fixture
def credentials(course):
    """One credential per status that matters here: held, failed, failed retryable, emitted, in progress."""
    return {
        "held": CredentialFactory(course_key=course.id, held=True),
        "failed": CredentialFactory(course_key=course.id, failed=True),
        "failed_retryable": CredentialFactory(course_key=course.id, failed_retryable=True),
        "emitted": CredentialFactory(course_key=course.id, emitted=True),
        "in_progress": CredentialFactory(course_key=course.id, in_progress=True),
    }


# ---- who sees it -------------------------------------------------------------------------------------------------

MATRIX = {  # who: (POK page, the legacy dashboard itself, its POK section)
    "anonymous": (302, 404, False),
    "learner": (404, 404, False),
    "staff of another course": (404, 404, False),
    "data researcher": (404, 200, False),
    "course staff": (200, 200, True),
    "limited staff": (200, 200, True),
    "instructor": (200, 200, True),
    "global staff": (200, 200, True),
}


@pytest.mark.parametrize("who", list(MATRIX))
def test_the_permission_matrix_of_the_page_and_the_legacy_dashboard(who, people, course, credentials,
                                                                    legacy_dashboard):
    page_status, dashboard_status, section = MATRIX[who]
    client = client_for(people[who])
    page = client.get(urls(course.id)["page"])
    assert page.status_code == page_status
    if page_status == 302:
        assert "login" in page["Location"]
    shown = client.get(dashboard_url(course.id))
    assert shown.status_code == dashboard_status
    assert (SECTION in shown.content.decode()) is section
    for action in ("retry", "backfill"):
        answer = client.post(urls(course.id)[action])
        assert answer.status_code == page_status  # the team gets the confirmation page
    assert client.get(urls(course.id)["csv"]).status_code == page_status


@needs_tabs_filter
@pytest.mark.parametrize("who", ["data researcher", "course staff", "instructor", "global staff"])
def test_the_instructor_dashboard_app_gets_the_tab_for_the_course_team_only(who, people, course):
    answer = client_for(people[who]).get(reverse("instructor_api_v2_course", kwargs={"course_id": str(course.id)}))
    assert answer.status_code == 200
    tabs = {tab["tab_id"]: tab for tab in answer.json()["tabs"]}
    if MATRIX[who][2]:
        tab = tabs[dashboard.TAB_ID]
        # Absolute: the app opens it as a page of the LMS (it routes "/..." addresses inside itself).
        assert tab == {"tab_id": "pok_credentials", "title": "POK credentials", "sort_order": 130,
                       "url": "http://testserver" + urls(course.id)["page"]}
    else:
        assert dashboard.TAB_ID not in tabs


def test_an_unmapped_course_has_no_tab_no_page_and_no_section(people, legacy_dashboard):
    unmapped = CourseOverviewFactory(id=CourseKey.from_string("course-v1:DemoX+NOPOK+2026"), org="DemoX")
    staff = people["global staff"]
    client = client_for(staff)
    shown = client.get(dashboard_url(unmapped.id))
    assert shown.status_code == 200 and "Course Info" in shown.content.decode()
    assert SECTION not in shown.content.decode()
    assert client.get(urls(unmapped.id)["page"]).status_code == 404
    assert client.post(urls(unmapped.id)["backfill"]).status_code == 404
    if TABS_FILTER is not None:
        tabs = client.get(reverse("instructor_api_v2_course", kwargs={"course_id": str(unmapped.id)})).json()["tabs"]
        assert dashboard.TAB_ID not in {tab["tab_id"] for tab in tabs} and tabs


def test_a_disabled_mapping_hides_the_tab(people, course, legacy_dashboard):
    mapping = CertificateTemplate.objects.get(course_key=course.id)
    mapping.enabled = False
    mapping.save()
    client = client_for(people["instructor"])
    assert SECTION not in client.get(dashboard_url(course.id)).content.decode()
    assert client.get(urls(course.id)["page"]).status_code == 404


def test_verawood_sends_staff_to_the_instructor_dashboard_app_unless_the_legacy_flag_is_on(people, course):
    cache.clear()
    answer = client_for(people["course staff"]).get(dashboard_url(course.id))
    assert answer.status_code == 302
    assert answer["Location"].endswith(f"/instructor-dashboard/{course.id}")


def test_the_course_roles_are_read_as_the_lms_reads_them(course):
    """``lms_sandbox.roles`` follows ``common/djangoapps/student/roles.py``: course and org must match, limited staff
    is staff, an inactive user has no role, an org-wide role is not a course role; one query per user object."""
    from lms_sandbox.roles import CourseInstructorRole, CourseStaffRole

    limited = role(UserFactory(), course.id, "limited_staff")
    inactive = role(UserFactory(is_active=False), course.id, "instructor")
    org_wide = UserFactory()
    CourseAccessRole.objects.create(user=org_wide, org=course.id.org, role="staff")
    elsewhere = role(UserFactory(), CourseKey.from_string(OTHER_COURSE), "instructor")
    assert CourseStaffRole(course.id).has_user(limited) and not CourseInstructorRole(course.id).has_user(limited)
    assert not CourseInstructorRole(course.id).has_user(inactive)
    assert not CourseStaffRole(course.id).has_user(org_wide)
    assert not CourseInstructorRole(course.id).has_user(elsewhere)
    instructor = role(UserFactory(), course.id, "instructor")
    with CaptureQueriesContext(connection) as queries:
        assert CourseInstructorRole(course.id).has_user(instructor) and not CourseStaffRole(course.id).has_user(
            instructor)
    assert len(queries) == 1


# ---- what it shows -----------------------------------------------------------------------------------------------

def test_the_section_shows_counts_problems_reasons_and_what_to_do(people, course, credentials, legacy_dashboard):
    content = client_for(people["course staff"]).get(dashboard_url(course.id)).content.decode()
    section = content[content.index(SECTION):]
    assert 'class="pok-credentials-section"' in section  # the plugin's Mako template, as the LMS includes it
    for text in ("Held: <strong>1</strong>", "Failed: <strong>2</strong>", "Emitted: <strong>1</strong>",
                 "In progress: <strong>1</strong>", "5 credentials in all.",
                 "The learner has no usable name for the credential.",
                 "POK refused the credential: the template does not exist.",
                 "Fix what the reason names", "It is sent again automatically", "Download the course"):
        assert text in section, text
    problems = section[section.index('id="pok-problems"'):section.index("</table>")]
    for name in ("held", "failed", "failed_retryable"):
        assert str(credentials[name].uuid) in problems
    for name in ("emitted", "in_progress"):
        assert str(credentials[name].uuid) not in problems
    assert 'name="csrfmiddlewaretoken"' in section


def test_the_page_links_back_to_the_instructor_dashboard(people, course, credentials):
    content = client_for(people["instructor"]).get(urls(course.id)["page"]).content.decode()
    assert f'href="{dashboard_url(course.id)}#view-pok_credentials"' in content
    assert "Verifiable Credentials 101" in content


def test_a_possible_duplicate_says_to_check_pok_first(people, course):
    CredentialFactory(course_key=course.id, failed=True, possible_duplicate=True)
    content = client_for(people["instructor"]).get(urls(course.id)["page"]).content.decode()
    assert "check on POK that the learner has only one" in content


# ---- the actions -------------------------------------------------------------------------------------------------

def test_retry_one_asks_first_then_retries_and_writes_the_history(people, course, credentials, caplog,
                                                                   django_capture_on_commit_callbacks):
    staff = people["course staff"]
    client = client_for(staff)
    row = credentials["failed"]
    asked = client.post(urls(course.id)["retry"], {"credential": str(row.uuid)})
    assert asked.status_code == 200
    assert "Send this credential to POK again now?" in asked.content.decode()
    # The learner as the tab names them: the username, not a user id the tab never shows.
    assert f"<td>{row.user.username}</td>" in asked.content.decode()
    assert PokCertificate.objects.get(id=row.id).status == CredentialStatus.FAILED  # nothing done yet

    with caplog.at_level(logging.INFO), django_capture_on_commit_callbacks() as scheduled:
        done = client.post(urls(course.id)["retry"], {"credential": str(row.uuid), "confirmed": "yes"})
    assert done.status_code == 302 and done["Location"] == urls(course.id)["page"]
    assert PokCertificate.objects.get(id=row.id).status == CredentialStatus.PENDING
    assert scheduled  # the issuance task, after commit
    line = CredentialEvent.objects.filter(credential_id=row.id).latest("id")
    assert (line.cause, line.actor_id, line.from_status, line.to_status) == (
        Cause.STAFF_RETRY, staff.id, CredentialStatus.FAILED, CredentialStatus.PENDING)
    assert f"POK: course team user {staff.id} retried 1 of 1 credentials of {course.id}" in caplog.messages
    assert_no_personal_data(caplog, staff, row.user)
    assert "1 credential is being sent to POK again." in client.get(urls(course.id)["page"]).content.decode()


def test_retry_all_retries_every_held_and_failed_credential_of_the_course_only(
        people, course, credentials, django_capture_on_commit_callbacks):
    other = CertificateTemplate.objects.create(course_key=CourseKey.from_string(OTHER_COURSE), template_id="tpl")
    elsewhere = CredentialFactory(course_key=other.course_key, failed=True)
    client = client_for(people["instructor"])
    asked = client.post(urls(course.id)["retry"])
    assert "Send these 3 held or failed credentials to POK again now?" in asked.content.decode()
    with django_capture_on_commit_callbacks():
        client.post(urls(course.id)["retry"], {"confirmed": "yes"})
    statuses = dict(PokCertificate.objects.values_list("id", "status"))
    for name in ("held", "failed", "failed_retryable"):
        assert statuses[credentials[name].id] == CredentialStatus.PENDING
    assert statuses[credentials["emitted"].id] == CredentialStatus.EMITTED
    assert statuses[elsewhere.id] == CredentialStatus.FAILED
    lines = CredentialEvent.objects.filter(cause=Cause.STAFF_RETRY, actor=people["instructor"])
    assert lines.count() == 3


def test_a_credential_of_another_course_cannot_be_retried_from_this_one(people, course):
    other = CertificateTemplate.objects.create(course_key=CourseKey.from_string(OTHER_COURSE), template_id="tpl")
    elsewhere = CredentialFactory(course_key=other.course_key, failed=True)
    answer = client_for(people["course staff"]).post(urls(course.id)["retry"],
                                                     {"credential": str(elsewhere.uuid), "confirmed": "yes"})
    assert answer.status_code == 404
    assert PokCertificate.objects.get(id=elsewhere.id).status == CredentialStatus.FAILED


def test_actions_are_posts_with_the_csrf_token(people, course, credentials):
    client = Client(enforce_csrf_checks=True)
    client.force_login(people["global staff"])
    row = credentials["held"]
    assert client.get(urls(course.id)["retry"]).status_code == 405
    refused = client.post(urls(course.id)["retry"], {"credential": str(row.uuid), "confirmed": "yes"})
    assert refused.status_code == 403
    assert PokCertificate.objects.get(id=row.id).status == CredentialStatus.HELD
    # The confirmation page carries the token that its form posts back.
    page = client.get(urls(course.id)["page"])
    token = page.cookies["csrftoken"].value
    asked = client.post(urls(course.id)["retry"], {"credential": str(row.uuid), "csrfmiddlewaretoken": token})
    assert asked.status_code == 200 and 'name="csrfmiddlewaretoken"' in asked.content.decode()


def test_backfill_shows_its_dry_run_then_requests_the_missing_credentials(people, course, caplog,
                                                                          django_capture_on_commit_callbacks):
    staff = people["course staff"]
    # Certificates from before the course was mapped (the LMS's events found no mapping then).
    mapping = CertificateTemplate.objects.get(course_key=course.id)
    mapping.enabled = False
    mapping.save()
    earlier = [GeneratedCertificateFactory(course_id=course.id) for _ in range(2)]
    third = GeneratedCertificateFactory(course_id=course.id)
    mapping.enabled = True
    mapping.save()
    had = CredentialFactory(course_key=course.id, failed_retryable=True, user=third.user)  # POK was down then
    client = client_for(staff)
    asked = client.post(urls(course.id)["backfill"])
    content = asked.content.decode()
    assert asked.status_code == 200 and "Backfill: a dry run" in content
    assert "The backfill would request 3 credentials. Request them now?" in content
    assert "Credentials to request now: 3" in content
    assert PokCertificate.objects.filter(course_key=course.id).count() == 1  # the dry run wrote nothing

    with caplog.at_level(logging.INFO), django_capture_on_commit_callbacks() as scheduled:
        done = client.post(urls(course.id)["backfill"], {"confirmed": "yes"})
    assert done.status_code == 302
    assert {row.user_id for row in PokCertificate.objects.filter(course_key=course.id)} == \
        {certificate.user_id for certificate in earlier} | {had.user_id}
    assert scheduled
    # The failure POK may still accept is requested again; its history line names the staff member.
    line = CredentialEvent.objects.filter(credential_id=had.id).latest("id")
    assert (line.cause, line.actor_id, line.to_status) == (Cause.BACKFILL, staff.id, CredentialStatus.PENDING)
    assert any(message.startswith(f"POK: course team user {staff.id} backfilled {course.id}")
               for message in caplog.messages)
    assert_no_personal_data(caplog, staff, *(certificate.user for certificate in earlier))
    assert "Backfill: 3 credentials requested." in client.get(urls(course.id)["page"]).content.decode()


def test_backfill_with_nothing_to_request_offers_no_confirmation(people, course):
    asked = client_for(people["instructor"]).post(urls(course.id)["backfill"])
    content = asked.content.decode()
    assert "the backfill has nothing to request" in content
    assert 'name="confirmed"' not in content


def test_the_csv_lists_the_course_credentials_without_emails(people, course, credentials, caplog):
    other = CertificateTemplate.objects.create(course_key=CourseKey.from_string(OTHER_COURSE), template_id="tpl")
    CredentialFactory(course_key=other.course_key, emitted=True)
    staff = people["course staff"]
    with caplog.at_level(logging.INFO):
        answer = client_for(staff).get(urls(course.id)["csv"])
    assert answer.status_code == 200 and answer["Content-Type"].startswith("text/csv")
    assert answer["Content-Disposition"] == 'attachment; filename="pok-course-v1-DemoX-POK101-2026.csv"'
    rows = list(csv.reader(io.StringIO(b"".join(answer.streaming_content).decode("utf-8-sig"))))
    assert rows[0][:3] == ["learner id", "username", "course"] and "email" not in rows[0]
    assert sorted(int(row[0]) for row in rows[1:]) == sorted(row.user_id for row in credentials.values())
    assert {row[2] for row in rows[1:]} == {str(course.id)}
    emails = {row.user.email for row in credentials.values()}
    assert not emails & {cell for row in rows for cell in row}
    assert f"POK: course team user {staff.id} downloaded the credentials CSV of {course.id}" in caplog.messages
    assert_no_personal_data(caplog, staff, *(row.user for row in credentials.values()))


def assert_no_personal_data(caplog, *users):
    text = "\n".join(record.getMessage() for record in caplog.records)
    for user in users:
        for value in (user.username, user.email):
            assert value not in text, value


# ---- the steps never break the dashboard ---------------------------------------------------------------------------

@pytest.mark.parametrize("fail_silently", [True, False])
def test_an_error_in_the_step_leaves_the_dashboard_without_the_tab(people, course, credentials, legacy_dashboard,
                                                                  caplog, settings, fail_silently):
    settings.OPEN_EDX_FILTERS_CONFIG = {filter_type: {"pipeline": [step], "fail_silently": fail_silently}
                                        for filter_type, step in COURSE_TEAM_STEPS.items()}
    settings.POK_COMPAT_BACKEND = "tests.test_course_team.BrokenRolesBackend"
    staff = people["course staff"]
    with caplog.at_level(logging.ERROR):
        shown = client_for(staff).get(dashboard_url(course.id))
        tabs = client_for(staff).get(reverse("instructor_api_v2_course", kwargs={"course_id": str(course.id)}))
    assert shown.status_code == 200 and "Course Info" in shown.content.decode()
    assert SECTION not in shown.content.decode()
    assert f"POK: the instructor dashboard of {course.id} is shown without the POK tab (RuntimeError)" \
        in caplog.messages
    assert tabs.status_code == 200 and dashboard.TAB_ID not in {tab["tab_id"] for tab in tabs.json()["tabs"]}
    if TABS_FILTER is not None:
        assert f"POK: the instructor dashboard app of {course.id} is shown without the POK tab (RuntimeError)" \
            in caplog.messages
    assert_no_personal_data(caplog, staff)


def test_a_context_without_a_course_is_left_alone():
    context = {"sections": []}
    with override_settings(OPEN_EDX_FILTERS_CONFIG={LEGACY_DASHBOARD_FILTER: {
            "pipeline": [COURSE_TEAM_STEPS[LEGACY_DASHBOARD_FILTER]], "fail_silently": False}}):
        result, template = filters.InstructorDashboardRenderStarted.run_filter(context=context, template_name="t.html")
    assert result == {"sections": []} and template == "t.html"


def test_the_steps_are_registered_for_both_dashboards(settings):
    config = settings.OPEN_EDX_FILTERS_CONFIG
    assert config[LEGACY_DASHBOARD_FILTER]["pipeline"] == ["openedx_pok.course_team.dashboard.AddPokSection"]
    assert config[DASHBOARD_TABS_FILTER]["pipeline"] == ["openedx_pok.course_team.dashboard.AddPokTab"]
    if TABS_FILTER is not None:
        assert TABS_FILTER.filter_type == DASHBOARD_TABS_FILTER


# ---- what it costs -----------------------------------------------------------------------------------------------

def test_an_unmapped_course_costs_the_dashboard_no_query(people, django_assert_num_queries):
    from crum import impersonate

    unmapped = CourseOverviewFactory(id=CourseKey.from_string("course-v1:DemoX+NOPOK+2026"), org="DemoX")
    step = dashboard.AddPokSection(filter_type=LEGACY_DASHBOARD_FILTER, running_pipeline=[])
    step.run_filter(context={"course": unmapped, "sections": []}, template_name="t.html")  # mappings now cached
    with impersonate(people["course staff"]), django_assert_num_queries(0):
        assert step.run_filter(context={"course": unmapped, "sections": []}, template_name="t.html") == {}


def test_the_section_costs_two_queries_whatever_the_course_size(people, course, legacy_dashboard, settings):
    for _ in range(60):
        CredentialFactory(course_key=course.id, failed=True)
    client = client_for(people["course staff"])
    client.get(dashboard_url(course.id))  # warm the caches (mappings, course facts)

    def queries():
        with CaptureQueriesContext(connection) as captured:
            shown = client.get(dashboard_url(course.id))
        return shown.content.decode(), len(captured)

    with_tab, with_tab_queries = queries()
    settings.OPEN_EDX_FILTERS_CONFIG = {}
    without_tab, without_tab_queries = queries()
    assert "Failed: <strong>60</strong>" in with_tab and "10 more are not shown here" in with_tab
    assert SECTION not in without_tab
    # The counts per status and the newest problems with their usernames; the user's roles are read once per
    # request for the LMS's own checks already (its RoleCache), the course mapping and course facts come cached.
    assert with_tab_queries - without_tab_queries == 2
