"""
The credential admin in a real browser (issue 10): staff sign in, filter the list to the failed credentials, open a
credential's history, and retry it through the action's confirmation page; the retry issues the credential against
the POK simulator and both the staff action and the issuance appear in the history.

Headless Debian Chromium driven by Selenium against pytest-django's live server (``tests/browser.py``); the Celery
tasks run eagerly in the server's thread once the admin's transaction commits. Fails, never skips, without Chromium.
"""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from selenium.webdriver.common.by import By

from lms_sandbox.factories import UserFactory
from openedx_pok.models import CredentialStatus, PokCertificate
from pok_simulator import Fault
from test_utils.helpers import credential_of
from tests.browser import admin_get, admin_log_in, messages, screenshot, submit_action, submit_and_wait

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHANGELIST = "admin:openedx_pok_pokcertificate_changelist"


def history_rows(driver):
    """The history table under the credential, as the cells' texts per line."""
    rows = driver.find_elements(By.CSS_SELECTOR, "#history-group tbody tr.has_original, #history-group tbody tr")
    lines = []
    for row in rows:
        cells = [cell.text.strip() for cell in row.find_elements(By.CSS_SELECTOR, "td")]
        if any(cells) and cells not in lines:
            lines.append(cells)
    return lines


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
    assert "issuance task" in lines[-1] and "Requesting" in lines[-1] and "Failed" in lines[-1], lines
    assert any("POK refused" in cell for cell in lines[-1]), lines
    screenshot(driver, "credential-admin-history.png")

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
    assert "staff: retry" in lines[-2] and "boss" in lines[-2] and "Pending" in lines[-2], lines
    assert "issuance task" in lines[-1] and "Emitted" in lines[-1] and row.pok_credential_id in lines[-1], lines
    screenshot(driver, "credential-admin-history-after-retry.png")
