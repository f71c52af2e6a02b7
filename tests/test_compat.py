"""
The platform backend of ``compat``: called against stand-ins of the LMS modules it imports (the only LMS code
that is stubbed), to show it reads the platform the way the LMS exposes it and degrades without crashing.
"""
import sys
import types
from datetime import UTC, datetime

import pytest
from django.core.exceptions import ObjectDoesNotExist
from opaque_keys.edx.keys import CourseKey

from openedx_pok import compat

COURSE = CourseKey.from_string("course-v1:DemoX+POK101+2026")
START = datetime(2026, 1, 1, tzinfo=UTC)


class FakeOverviewDoesNotExist(Exception):
    pass


class FakeCourseOverview:
    DoesNotExist = FakeOverviewDoesNotExist
    known = {}

    @classmethod
    def get_from_id(cls, course_key):
        if course_key not in cls.known:
            raise cls.DoesNotExist
        return cls.known[course_key]


def install(monkeypatch, dotted, **attributes):
    """Put a module (and its parent packages) in sys.modules for the duration of the test."""
    parts = dotted.split(".")
    for index in range(1, len(parts)):
        name = ".".join(parts[:index])
        if name not in sys.modules:
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    module = types.ModuleType(dotted)
    for key, value in attributes.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, dotted, module)


@pytest.fixture
def platform(monkeypatch, settings):
    settings.POK_COMPAT_BACKEND = compat.DEFAULT_BACKEND
    FakeCourseOverview.known = {COURSE: types.SimpleNamespace(
        display_name="Intro", org="DemoX", display_org_with_default="Demo Org", start=START, end=None, language="es",
        self_paced=False, certificates_display_behavior="end_with_date", certificate_available_date=START,
        certificates_show_before_end=False,
    )}
    course_block = types.SimpleNamespace(certificates={"certificates": [
        {"is_active": False, "course_title": "Old title", "signatories": []},
        {"is_active": True, "course_title": "POK Fundamentals",
         "signatories": [{"name": "Grace Hopper", "title": "Dean", "organization": "Demo"}, {"name": ""}]},
    ]})
    certificates = {("ada", COURSE): types.SimpleNamespace(
        status="downloadable", verify_uuid="f" * 32, mode="verified", grade="0.91", created_date=START,
        modified_date=START,
    )}
    preferences = {("ada", "pref-lang"): "pt-br"}
    site = {"platform_name": "Site Academy", "POK_SHARE_LINKS": ["x"]}

    def get_course_by_id(course_key):
        if course_key != COURSE:
            raise ValueError("no such course block")
        return course_block

    def get_certificate_for_user(username, course_key, format_results=True):
        assert format_results is False
        return certificates.get((username, course_key))

    def get_organization_by_short_name(short_name):
        if short_name != "DemoX":
            raise LookupError("InvalidOrganizationException")
        return {"short_name": "DemoX", "name": "Demo University"}

    install(monkeypatch, "openedx.core.djangoapps.content.course_overviews.models", CourseOverview=FakeCourseOverview)
    install(monkeypatch, "lms.djangoapps.courseware.courses", get_course_by_id=get_course_by_id)
    install(monkeypatch, "lms.djangoapps.certificates.api", get_certificate_for_user=get_certificate_for_user)
    install(monkeypatch, "openedx.core.djangoapps.user_api.preferences.api",
            get_user_preference=lambda user, key: preferences.get((user.username, key)))
    install(monkeypatch, "openedx.core.djangoapps.site_configuration",
            helpers=types.SimpleNamespace(get_value=lambda key, default: site.get(key, default)))
    install(monkeypatch, "organizations.api", get_organization_by_short_name=get_organization_by_short_name)
    return compat


def test_course_with_active_certificate_configuration(platform):
    course = platform.get_course(COURSE)
    assert course.display_name == "Intro" and course.org_name == "Demo Org" and course.start == START
    assert course.certificate_title == "POK Fundamentals"
    assert course.signatories == (compat.Signatory("Grace Hopper", "Dean", "Demo"),)
    # The fields that decide when the LMS shows the certificates, read from the overview as the LMS reads them.
    assert (course.self_paced, course.certificates_display_behavior, course.certificate_available_date) == (
        False, "end_with_date", START)
    assert course.certificates_release() == compat.CertificatesRelease(released=True, date=START)


def test_missing_course_and_broken_course_block(platform):
    assert platform.get_course(CourseKey.from_string("course-v1:X+Y+Z")) is None
    other = CourseKey.from_string("course-v1:DemoX+Other+2026")
    FakeCourseOverview.known[other] = FakeCourseOverview.known[COURSE]
    course = platform.get_course(other)
    assert course.certificate_title == "" and course.signatories == ()


def test_certificate_profile_language_platform_and_organization(platform):
    ada = types.SimpleNamespace(username="ada", profile=types.SimpleNamespace(name="Ada Lovelace"))
    certificate = platform.get_certificate(ada, COURSE)
    assert certificate == compat.CertificateInfo("downloadable", "f" * 32, "verified", "0.91", START, START)
    assert certificate.is_downloadable
    assert platform.get_certificate(types.SimpleNamespace(username="bob"), COURSE) is None
    assert platform.get_profile_name(ada) == "Ada Lovelace"
    assert platform.get_language_preference(ada) == "pt-br"
    assert platform.get_platform_name() == "Site Academy"
    assert platform.get_site_setting("POK_SHARE_LINKS", ["linkedin"]) == ["x"]
    assert platform.get_site_setting("POK_OTHER", 3) == 3
    assert platform.get_organization_name("DemoX") == "Demo University"
    assert platform.get_organization_name("Nope") is None


def test_platform_name_is_the_sites_lowercase_platform_name(platform, monkeypatch, settings):
    """
    openedx/core/djangoapps/site_configuration/helpers.py and the certificates webview (openedx-platform Verawood)
    read ``get_value("platform_name", settings.PLATFORM_NAME)``: the site's lowercase key wins, an uppercase
    "PLATFORM_NAME" in a site's configuration is not the platform name.
    """
    settings.PLATFORM_NAME = "Settings Academy"
    assert platform.get_platform_name() == "Site Academy"
    install(monkeypatch, "openedx.core.djangoapps.site_configuration", helpers=types.SimpleNamespace(
        get_value=lambda key, default: {"PLATFORM_NAME": "Wrong key"}.get(key, default)))
    assert platform.get_platform_name() == "Settings Academy"


def test_user_without_profile(platform):
    class NoProfile:
        @property
        def profile(self):
            raise ObjectDoesNotExist

    assert platform.get_profile_name(NoProfile()) is None


@pytest.mark.django_db
def test_a_learners_courses_are_read_from_enrollments_and_certificates(platform, monkeypatch):
    """The LMS's CourseEnrollment (active ones) and GeneratedCertificate (any status), here the sandbox's copies."""
    from lms_sandbox import models
    from lms_sandbox.factories import CourseEnrollmentFactory, CourseOverviewFactory, UserFactory

    install(monkeypatch, "common.djangoapps.student.models", CourseEnrollment=models.CourseEnrollment)
    install(monkeypatch, "lms.djangoapps.certificates.models", GeneratedCertificate=models.GeneratedCertificate)
    learner = UserFactory()
    enrolled, unenrolled, certified, other = (CourseOverviewFactory() for _ in range(4))
    CourseEnrollmentFactory(user=learner, course=enrolled)
    CourseEnrollmentFactory(user=learner, course=unenrolled, is_active=False)
    CourseEnrollmentFactory(user=UserFactory(), course=other)
    models.GeneratedCertificate.objects.bulk_create([  # no signals: nothing to issue here
        models.GeneratedCertificate(user=learner, course_id=certified.id, status="notpassing")])
    keys = [course.id for course in (enrolled, unenrolled, certified, other)]
    assert platform.get_learner_course_keys(learner, keys) == {enrolled.id, certified.id}
    assert platform.get_learner_course_keys(learner, keys[1:2]) == frozenset()


@pytest.mark.django_db
def test_a_messages_certificates_and_languages_are_read_in_one_statement_each(platform, monkeypatch):
    """
    The LMS's GeneratedCertificate (eligible ones, as ``get_certificate_for_user`` reads them) and UserPreference
    (``pref-lang``), here the sandbox's copies: what the worker reads ahead for a message (issue 23).
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from lms_sandbox import models
    from lms_sandbox.factories import CourseOverviewFactory, UserFactory

    install(monkeypatch, "lms.djangoapps.certificates.models", GeneratedCertificate=models.GeneratedCertificate)
    install(monkeypatch, "openedx.core.djangoapps.user_api.models", UserPreference=models.UserPreference)
    ada, grace, alan = UserFactory(pref_lang="es-419"), UserFactory(), UserFactory(pref_lang="pt-br")
    course, other = CourseOverviewFactory(), CourseOverviewFactory()
    models.GeneratedCertificate.objects.bulk_create([  # no signals: nothing to issue here
        models.GeneratedCertificate(user=ada, course_id=course.id, status="downloadable", mode="verified"),
        models.GeneratedCertificate(user=grace, course_id=course.id, status="audit_passing", mode="audit"),
        models.GeneratedCertificate(user=alan, course_id=other.id, status="downloadable", mode="verified")])
    backend = compat.PlatformBackend()
    with CaptureQueriesContext(connection) as queries:
        certificates = backend.get_certificates([(ada.id, course.id), (grace.id, course.id), (alan.id, course.id)])
        languages = backend.get_language_preferences([ada.id, grace.id, alan.id])
    assert len(queries) == 2
    # Ada's only: Grace's is an audit certificate (not eligible), Alan's is of another course.
    assert set(certificates) == {(ada.id, str(course.id))} and certificates[(ada.id, str(course.id))].status == \
        "downloadable"
    assert languages == {ada.id: "es-419", alan.id: "pt-br"}
