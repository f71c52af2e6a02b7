"""
Fixtures of the issuance tests: the POK simulator wired into the plugin settings, a POK-enabled course in the
sandbox LMS, a learner, and an ``lms`` helper that drives the sandbox exactly like the LMS would.
"""
import pytest
from django.core.cache import cache
from django.utils import translation

from lms_sandbox.factories import CourseOverviewFactory, OrganizationFactory, UserFactory
from lms_sandbox.generation import generate_certificate, revoke_certificate
from lms_sandbox.grades import CourseGrade
from openedx_pok.course_setup import configuration
from openedx_pok.models import CertificateTemplate


@pytest.fixture(autouse=True)
def _the_settings_language():
    """
    Every test ends in the settings' language: a request of Django's test client runs in the test's thread, and one
    with ``Accept-Language`` leaves its language active there, for whichever test runs next (the order is random).
    """
    yield
    translation.deactivate()


@pytest.fixture
def pok(settings, pok_simulator):
    """The running simulator, with the plugin pointed at it and no cached client or template."""
    settings.POK_API_URL = pok_simulator.url
    settings.POK_API_KEY = pok_simulator.api_key
    settings.POK_MAX_RETRIES = 3
    settings.POK_TIMEOUT = 2
    cache.clear()
    configuration.reset_clients()
    yield pok_simulator
    configuration.reset_clients()


@pytest.fixture
def course(db):
    """A course run of organization DemoX mapped to the simulator's basic template."""
    OrganizationFactory(short_name="DemoX", name="Demo University")
    overview = CourseOverviewFactory(id=__import__("opaque_keys.edx.keys").edx.keys.CourseKey.from_string(
        "course-v1:DemoX+POK101+2026"), display_name="Verifiable Credentials 101", org="DemoX")
    CertificateTemplate.objects.create(course_key=overview.id, template_id="tpl-basic")
    return overview


@pytest.fixture
def learner(db):
    return UserFactory(profile__name="Ada Lovelace", pref_lang="es-419")


class Lms:
    """Drives the sandbox LMS and runs what it schedules after commit, as a real transaction commit would."""

    def __init__(self, capture):
        self.capture = capture

    def award(self, user, course, percent=0.9, status=None, generation_mode=None):
        with self.capture(execute=True):
            return generate_certificate(
                user, course.id, CourseGrade(percent=percent, passed=True, letter_grade="Pass"),
                status=status, generation_mode=generation_mode,
            )

    def revoke(self, user, course):
        with self.capture(execute=True):
            return revoke_certificate(user, course.id)

    def run(self, func, *args, **kwargs):
        """Call ``func`` and then whatever it scheduled on commit."""
        with self.capture(execute=True):
            return func(*args, **kwargs)


@pytest.fixture
def lms(django_capture_on_commit_callbacks):
    return Lms(django_capture_on_commit_callbacks)


@pytest.fixture
def browser(tmp_path):
    """
    A factory of headless Chromium drivers (``browser(javascript=False)``), all quit at teardown; fails, never skips,
    without Debian's chromium and chromium-driver. Selenium is imported only by the tests that ask for it.
    """
    # Imported here, not at the top: Selenium stays out of every other test's imports.
    from tests.browser import chromium_drivers

    yield from chromium_drivers(tmp_path)
