"""
The course team's POK tab in a real browser (issue 20 item 15): a course staff member, who has no Django admin, opens
the sandbox LMS's legacy instructor dashboard, clicks the POK tab, sees the credential POK refused with its reason
and what to do, retries it through the confirmation page, and lands on the course's POK page where it is emitted.

Headless Debian Chromium driven by Selenium against pytest-django's live server (``tests/browser.py``), the POK
simulator behind the plugin; the Celery tasks run eagerly in the server's thread once the request commits. Fails,
never skips, without Chromium. The tab (the plugin's panel in it: the rest is the LMS's dashboard), the confirmation
page and the course's POK page pass axe-core's WCAG 2 A/AA rules (issue 20); their screenshots at 1366 px go to
``test-artifacts/screenshots/``.
"""
import pytest
from django.core.cache import cache
from django.urls import reverse
from selenium.webdriver.common.by import By
from waffle.models import Flag

from lms_sandbox.factories import UserFactory
from lms_sandbox.models import CourseAccessRole
from openedx_pok.issuance.history import Cause
from openedx_pok.models import CredentialEvent, CredentialStatus
from pok_simulator import Fault
from test_utils.helpers import credential_of
from tests.browser import assert_no_axe_violations, log_in, review_screenshot, screenshot, submit_and_wait

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_course_staff_retry_a_refused_credential_from_the_instructor_dashboard(browser, live_server, pok, course,
                                                                                learner, lms):
    pok.add_fault(Fault("status", endpoint="issue_credential", status=400, times=1))
    lms.award(learner, course)  # refused by POK: failed
    failed = credential_of(learner, course)
    assert failed.status == CredentialStatus.FAILED
    staff = UserFactory()
    CourseAccessRole.objects.create(user=staff, org=course.id.org, course_id=course.id, role="staff")
    Flag.objects.create(name="instructor.legacy_instructor_dashboard", everyone=True)
    cache.clear()

    driver = browser()
    log_in(driver, live_server, staff)
    driver.get(live_server.url + reverse("instructor_dashboard", kwargs={"course_id": str(course.id)}))
    tab = driver.find_element(By.CSS_SELECTOR, '.instructor-nav button[data-section="pok_credentials"]')
    assert tab.text == "POK credentials"
    section = driver.find_element(By.ID, "pok_credentials")
    assert not section.is_displayed()  # the dashboard opens on its first section
    tab.click()
    assert section.is_displayed()
    assert driver.current_url.endswith("#view-pok_credentials")
    counts = section.find_element(By.ID, "pok-counts").text
    assert "Failed: 1" in counts, counts
    row = section.find_element(By.CSS_SELECTOR, f'#pok-problems tr[data-reference="{failed.uuid}"]')
    assert "POK refused" in row.text and "Fix what the reason names" in row.text, row.text
    assert learner.username in row.text
    screenshot(driver, "course-team-tab.png", show=section)
    review_screenshot(driver, "tab")
    assert_no_axe_violations(driver, "#pok_credentials .pok-credentials-section")  # the plugin's, not the LMS's

    submit_and_wait(driver, row.find_element(By.CSS_SELECTOR, "button.pok-retry-one"))
    assert driver.find_element(By.ID, "pok-question").text == "Send this credential to POK again now?"
    assert credential_of(learner, course).status == CredentialStatus.FAILED  # nothing done before the confirmation
    screenshot(driver, "course-team-retry-confirm.png")
    review_screenshot(driver, "confirm")
    assert_no_axe_violations(driver)
    submit_and_wait(driver, driver.find_element(By.ID, "pok-confirm-yes"))

    assert driver.current_url == live_server.url + reverse("openedx_pok:course-team-page",
                                                           kwargs={"course_id": str(course.id)})
    assert "1 credential is being sent to POK again." in driver.find_element(By.ID, "pok-messages").text
    assert "Emitted: 1" in driver.find_element(By.ID, "pok-counts").text
    assert "No credential of this course is held or failed." in driver.page_source
    screenshot(driver, "course-team-after-retry.png")
    review_screenshot(driver, "page")
    assert_no_axe_violations(driver)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED and len(pok.credentials_for(learner.email)) == 1
    line = CredentialEvent.objects.filter(credential_id=row.id, cause=Cause.STAFF_RETRY).get()
    assert line.actor_id == staff.id and line.to_status == CredentialStatus.PENDING

    # The backfill starts with its dry run: here every learner with a certificate already has a credential.
    submit_and_wait(driver, driver.find_element(By.ID, "pok-backfill"))
    assert "the backfill has nothing to request" in driver.find_element(By.ID, "pok-question").text
    assert not driver.find_elements(By.ID, "pok-confirm-yes")
