"""
The credential admin in a real browser (issue 10): staff sign in, filter the list to the failed credentials, open a
credential's history, and retry it through the action's confirmation page; the retry issues the credential against
the POK simulator and both the staff action and the issuance appear in the history. Issue 20: at 1366 px (a laptop,
with the admin's navigation and filters beside the list) every column of the list is in view without scrolling
sideways, in English, Spanish and Portuguese, and at 390 px (a phone) the rows wrap; a credential's page says what
happens next and offers its actions (no Save, no Delete), which go through the same confirmation page; it passes
axe-core's WCAG 2 A/AA rules in the plugin's part of the page, and its screenshot at 1366 px goes to
``test-artifacts/screenshots/``.

Headless Debian Chromium driven by Selenium against pytest-django's live server (``tests/browser.py``); the Celery
tasks run eagerly in the server's thread once the admin's transaction commits. Fails, never skips, without Chromium.
"""
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.urls import reverse
from selenium.webdriver.common.by import By

from lms_sandbox.factories import UserFactory
from openedx_pok.models import CredentialStatus, PokCertificate
from pok_simulator import Fault
from test_utils.factories import CourseMappingFactory, CredentialFactory
from test_utils.helpers import credential_of
from tests.browser import (
    admin_get,
    admin_log_in,
    assert_no_axe_violations,
    messages,
    review_screenshot,
    screenshot,
    submit_action,
    submit_and_wait,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHANGELIST = "admin:openedx_pok_pokcertificate_changelist"


def history_rows(driver):
    """The history table under the credential, as each line's text (its cells joined by " | ")."""
    rows = driver.find_elements(By.CSS_SELECTOR, "#history-group tbody tr")
    return [" | ".join(cell.text.strip() for cell in row.find_elements(By.CSS_SELECTOR, "td")) for row in rows]


def test_staff_filter_the_failed_credentials_read_the_history_and_retry(
        browser, live_server, pok, course, learner, lms):
    get_user_model().objects.create_superuser("boss", "boss@example.com", "secret-pw")
    other = UserFactory(profile__name="Grace Hopper")
    pok.add_fault(Fault("status", endpoint="issue_credential", status=400, times=1))
    lms.award(learner, course)      # refused by POK: failed
    lms.award(other, course)        # emitted
    failed = credential_of(learner, course)
    assert failed.status == CredentialStatus.FAILED
    assert credential_of(other, course).status == CredentialStatus.EMITTED

    driver = browser()
    admin_log_in(driver, live_server, "boss", "secret-pw")
    admin_get(driver, live_server, reverse(CHANGELIST))
    counts = driver.find_element(By.CSS_SELECTOR, ".pok-status-counts").text
    assert "Failed: 1" in counts and "Emitted: 1" in counts, counts

    # The status filter in the sidebar, as staff click it.
    filter_link = driver.find_element(By.XPATH, '//*[@id="changelist-filter"]//a[normalize-space()="Failed"]')
    submit_and_wait(driver, filter_link)
    assert "status__exact=failed" in driver.current_url
    shown = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#result_list tbody th.field-id")]
    assert shown == [str(failed.id)], shown
    screenshot(driver, "credential-admin-failed-filter.png")

    # The credential's history ends with the refused POST and its reason (before it, in this sandbox, the creation
    # step's task found no certificate yet and the CERTIFICATE_CREATED event sent it again).
    submit_and_wait(driver, driver.find_element(By.CSS_SELECTOR, "#result_list tbody th.field-id a"))
    lines = history_rows(driver)
    before = len(lines)
    assert "The issuance task moved it from Requesting to Failed." in lines[-1], lines
    assert "POK refused" in lines[-1], lines
    screenshot(driver, "credential-admin-history.png", show=driver.find_element(By.ID, "history-group"))

    # Retry from the filtered list, through the confirmation page.
    driver.back()
    submit_action(driver, "retry_issuance", [failed.id])
    assert "Retry issuance" in driver.title, driver.title
    assert "1 credential is selected." in driver.find_element(By.ID, "content-main").text
    screenshot(driver, "credential-admin-retry-confirm.png")
    submit_and_wait(driver, driver.find_element(By.CSS_SELECTOR, '.pok-confirm-action input[type="submit"]'))
    assert "1 credential scheduled for issuance." in messages(driver), messages(driver)

    row = PokCertificate.objects.get(id=failed.id)
    assert row.status == CredentialStatus.EMITTED and len(pok.credentials_for(learner.email)) == 1
    admin_get(driver, live_server, reverse("admin:openedx_pok_pokcertificate_change", args=[failed.id]))
    lines = history_rows(driver)
    assert len(lines) == before + 2, lines
    assert "Staff member boss retried it: from Failed to Pending." in lines[-2], lines
    assert "The issuance task moved it from Requesting to Emitted." in lines[-1], lines
    assert row.pok_credential_id in lines[-1], lines
    screenshot(driver, "credential-admin-history-after-retry.png", show=driver.find_element(By.ID, "history-group"))


LAPTOP, PHONE = 1366, 390
#: What the browser measures of the list: the pane the table sits in, the table, the page, and each header cell.
MEASURE_LIST = """
    const table = document.getElementById('result_list');
    const pane = table.closest('.results');
    const right = pane.getBoundingClientRect().right;
    return {pane: pane.clientWidth, table: pane.scrollWidth, page: document.documentElement.scrollWidth,
            window: document.documentElement.clientWidth,
            hidden: Array.from(table.querySelectorAll('thead th')).filter(
                th => th.getBoundingClientRect().right > right + 1 || th.getBoundingClientRect().width < 10
            ).map(th => th.className)};
"""


def hard_to_fit_credentials(course_key):
    """A long username, course key and reason, POK's waiting state, POSTs worth saying, an emitted credential."""
    course = CourseMappingFactory(course_key=course_key).course_key
    failed = CredentialFactory(
        course_key=course, failed_retryable=True, attempts=2, ambiguous_attempts=1, tries=3,
        user=UserFactory(username="ada.lovelace-countess-of-lovelace"),
        status_reason="POK was unavailable after 3 tries: HTTP 503 Service Unavailable (the load balancer answered)")
    CredentialFactory(course_key=course, in_progress=True, pok_state="waitingForApproval")
    CredentialFactory(course_key=course, emitted=True)
    return failed


def test_the_list_fits_a_laptop_and_a_phone_and_the_page_offers_the_actions(browser, live_server, pok):
    get_user_model().objects.create_superuser("boss", "boss@example.com", "secret-pw")
    failed = hard_to_fit_credentials("course-v1:DemoUniversityX+POK101-Advanced+2026_Spring")
    driver = browser()
    driver.set_window_size(LAPTOP, 900)
    admin_log_in(driver, live_server, "boss", "secret-pw")
    for language in ("en", "es-419", "pt-br"):
        driver.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "path": "/"})
        for width in (LAPTOP, PHONE):
            driver.set_window_size(width, 900)
            admin_get(driver, live_server, reverse(CHANGELIST))
            assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == language
            measured = driver.execute_script(MEASURE_LIST)
            # Every column in view, nothing to scroll sideways: neither the list's pane nor the page.
            assert measured["table"] <= measured["pane"] and measured["page"] <= measured["window"], measured
            assert measured["hidden"] == [], (language, width, measured)
            screenshot(driver, f"credential-admin-list-{width}-{language}.png")
    driver.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": "en", "path": "/"})
    driver.set_window_size(LAPTOP, 900)
    admin_get(driver, live_server, reverse(CHANGELIST))
    row = driver.find_element(By.XPATH, f'//*[@id="result_list"]//a[normalize-space()="{failed.id}"]/ancestor::tr')
    assert "0 POSTs" not in row.text and "2 POSTs, 1 unanswered, 3 temporary errors" in row.text, row.text
    for column in ("course-v1:", "open"):
        assert column in driver.find_element(By.ID, "result_list").text

    # The credential's page: what happens next, its actions, no Save or Delete.
    submit_and_wait(driver, driver.find_element(By.LINK_TEXT, str(failed.id)))
    heading = driver.find_element(By.CSS_SELECTOR, "#content h2").text
    assert heading == f"Credential {failed.id}: ada.lovelace-countess-of-lovelace in {failed.course_key}", heading
    next_step = driver.find_element(By.CLASS_NAME, "pok-next-step")
    assert next_step.is_displayed() and "Retried automatically" in next_step.text, next_step.text
    actions = [link.text for link in driver.find_elements(By.CLASS_NAME, "pok-page-action")]
    assert actions == ["RETRY NOW", "MARK REVOKED"] or actions == ["Retry now", "Mark revoked"], actions
    assert all(link.is_displayed() for link in driver.find_elements(By.CLASS_NAME, "pok-page-action"))
    assert not driver.find_elements(By.NAME, "_save") and not driver.find_elements(By.NAME, "_continue")
    assert not driver.find_elements(By.CSS_SELECTOR, "a.deletelink")
    screenshot(driver, "credential-admin-page-actions.png")
    review_screenshot(driver, "credential-page")
    # The plugin's part of the page (its actions, what happens next, the fields, the history), not the admin's chrome.
    assert_no_axe_violations(driver, "#content-main")

    # Retry now: the confirmation page names the learner and what will change, then back to the page.
    submit_and_wait(driver, driver.find_element(By.CSS_SELECTOR, '.pok-page-action[data-action="retry_issuance"]'))
    content = driver.find_element(By.ID, "content-main").text
    assert "ada.lovelace-countess-of-lovelace" in content and "1 of them is held or failed" in content, content
    screenshot(driver, "credential-admin-page-retry-confirm.png")
    submit_and_wait(driver, driver.find_element(By.CSS_SELECTOR, '.pok-confirm-action input[type="submit"]'))
    assert driver.current_url.endswith(reverse("admin:openedx_pok_pokcertificate_change", args=[failed.id]))
    assert "1 credential scheduled for issuance." in messages(driver), messages(driver)
    # Sent again (this sandbox learner has no Open edX certificate, so the issuance holds it for that).
    assert PokCertificate.objects.get(id=failed.id).status != CredentialStatus.FAILED
    assert any("Staff member boss retried it: from Failed to Pending." in line for line in history_rows(driver))
    driver.set_window_size(PHONE, 900)
    assert driver.execute_script("return document.documentElement.scrollWidth <= "
                                 "document.documentElement.clientWidth")
    screenshot(driver, "credential-admin-page-390.png")
