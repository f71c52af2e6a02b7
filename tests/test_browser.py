"""
The certificate page in a real browser: headless Debian Chromium driven by Selenium against pytest-django's live
server, which serves the sandbox LMS and the plugin's ``/pok/`` URLs.

The POK simulator emits asynchronously and keeps the credential "processing", so the learner first gets the status
page. The test thread then makes the credential emitted on the simulator and refreshes the plugin's record (the
browser never causes that POK call); the page must move on to the credential's POK page by itself:

- signed-in learner: the page's script polls the status endpoint and replaces itself with the POK page;
- anonymous visitor (shared link): the status endpoint refuses, the script reloads the page, and the certificate
  page redirects to POK;
- JavaScript disabled: the ``<noscript>`` meta refresh is there, and a manual refresh lands on the credential.

A credential held for the learner's own data (no full name) shows the learner the notice that says what to fix. The
status page and the notice pass axe-core's WCAG 2 A/AA rules (issue 20), and their screenshots at 1366 px go to
``test-artifacts/screenshots/`` for a person to review.

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian packages chromium and chromium-driver); the test
fails, never skips, without them (the ``browser`` fixture and the helpers: ``tests/browser.py``). Screenshots go to
``test-artifacts/browser/`` for a human to look at.
"""
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from lms_sandbox.factories import UserFactory
from openedx_pok import api
from openedx_pok.models import CredentialStatus, PokCertificate
from tests.browser import assert_no_axe_violations, log_in, review_screenshot, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STATUS_HEADING = "Your credential is being issued"
# How long the browser may take to reach the credential once the plugin's record says it is emitted.
EMITTED_WITHIN = 15


@pytest.fixture
def pending_credential(pok, course, learner, lms, settings):
    """A learner's certificate whose POK credential stays "processing" until the test says otherwise."""
    settings.POK_STATUS_POLL_SECONDS = 1
    pok.emission_mode = "async"
    pok.polls_until_emitted = 1000
    certificate = lms.award(learner, course)
    row = PokCertificate.objects.get(user=learner, course_key=course.id)
    assert row.status == CredentialStatus.IN_PROGRESS, row.status_reason
    assert row.pok_credential_id and not row.view_url
    return certificate, row


def emit_on_pok(pok, row):
    """Emit the credential on the simulator and bring the plugin's record up to date, from the test thread."""
    pok.set_state(row.pok_credential_id, "emitted")
    view_url = pok.credentials[row.pok_credential_id].get("viewUrl")
    assert view_url == f"{pok.url}/view/{row.pok_credential_id}"
    assert api.reconcile(inline=True)["refreshed"] == 1
    row.refresh_from_db()
    assert row.status == CredentialStatus.EMITTED and row.view_url == view_url
    return view_url


def assert_status_page(driver, certificate_url, scripting):
    assert driver.current_url == certificate_url
    assert driver.find_element(By.TAG_NAME, "h1").text == STATUS_HEADING
    assert driver.title.startswith(STATUS_HEADING)
    status = driver.find_element(By.CSS_SELECTOR, '[role="status"]')
    assert status.get_attribute("id") == "pok-status" and status.get_attribute("aria-live") == "polite"
    assert status.is_displayed() and status.text
    assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en"
    # With scripting on, the browser keeps <noscript> as raw text; only with it off does the meta refresh exist.
    meta_refresh = driver.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    assert bool(meta_refresh) is not scripting
    return meta_refresh


def status_requests(driver):
    """HTTP statuses of the status-endpoint requests this page load made (Resource Timing)."""
    return driver.execute_script(
        "return performance.getEntriesByType('resource')"
        ".filter(function (e) { return e.name.indexOf('/pok/credentials/') !== -1; })"
        ".map(function (e) { return e.responseStatus; });"
    )


def test_learner_status_page_opens_the_credential_once_emitted(browser, live_server, pok, pending_credential,
                                                              learner):
    certificate, row = pending_credential
    certificate_url = f"{live_server.url}/certificates/{certificate.verify_uuid}"
    driver = browser()
    log_in(driver, live_server, learner)

    driver.get(certificate_url)
    assert_status_page(driver, certificate_url, scripting=True)
    assert "Ada Lovelace" in driver.page_source and str(row.uuid) in driver.page_source
    screenshot(driver, "status-page.png")
    review_screenshot(driver)
    assert_no_axe_violations(driver)
    calls_to_pok = pok.count("get_credential")
    # The page polls the plugin (the owner gets 200 "in progress"), which answers from its database alone.
    WebDriverWait(driver, 10, poll_frequency=0.2).until(lambda d: len(status_requests(d)) >= 2)
    assert set(status_requests(driver)) == {200}
    assert driver.current_url == certificate_url
    assert pok.count("get_credential") == calls_to_pok

    view_url = emit_on_pok(pok, row)
    WebDriverWait(driver, EMITTED_WITHIN, poll_frequency=0.2).until(EC.url_to_be(view_url))
    assert driver.find_element(By.CSS_SELECTOR, "h1.credential-title").text == "Verifiable Credentials 101"
    assert driver.find_element(By.CSS_SELECTOR, ".receiver-name").text == "Ada Lovelace"
    screenshot(driver, "credential.png")


def test_anonymous_visitor_page_reloads_into_the_credential(browser, live_server, pok, pending_credential):
    certificate, row = pending_credential
    certificate_url = f"{live_server.url}/certificates/{certificate.verify_uuid}"
    driver = browser()

    driver.get(certificate_url)
    assert_status_page(driver, certificate_url, scripting=True)
    # Not the owner: the status endpoint refuses, and the page falls back to reloading itself.
    WebDriverWait(driver, 10, poll_frequency=0.2).until(lambda d: status_requests(d))
    assert status_requests(driver)[0] in (401, 403)
    driver.execute_script("window.pokTestMarker = true;")
    WebDriverWait(driver, 10, poll_frequency=0.2).until(
        lambda d: d.execute_script("return window.pokTestMarker !== true;"))
    assert_status_page(driver, certificate_url, scripting=True)

    view_url = emit_on_pok(pok, row)
    WebDriverWait(driver, EMITTED_WITHIN, poll_frequency=0.2).until(EC.url_to_be(view_url))
    assert driver.find_element(By.CSS_SELECTOR, "h1.credential-title").text == "Verifiable Credentials 101"
    screenshot(driver, "anonymous-credential.png")


def test_without_javascript_a_refresh_opens_the_credential(browser, live_server, pok, pending_credential,
                                                           learner):
    certificate, row = pending_credential
    certificate_url = f"{live_server.url}/certificates/{certificate.verify_uuid}"
    driver = browser(javascript=False)
    log_in(driver, live_server, learner)

    driver.get(certificate_url)
    (meta_refresh,) = assert_status_page(driver, certificate_url, scripting=False)
    assert meta_refresh.get_attribute("content") == "15"  # max(6 x 1 s poll, 15 s)
    screenshot(driver, "nojs-status-page.png")

    view_url = emit_on_pok(pok, row)
    assert driver.current_url == certificate_url  # no script: nothing moves until the page is loaded again
    driver.refresh()
    WebDriverWait(driver, EMITTED_WITHIN, poll_frequency=0.2).until(EC.url_to_be(view_url))
    assert driver.find_element(By.CSS_SELECTOR, "h1.credential-title").text == "Verifiable Credentials 101"


def test_held_notice_tells_the_learner_what_to_fix(browser, live_server, pok, course, lms):
    learner = UserFactory(profile__name="")  # no full name: the credential is held for the learner's own data
    certificate = lms.award(learner, course)
    row = PokCertificate.objects.get(user=learner, course_key=course.id)
    assert row.status == CredentialStatus.HELD, (row.status, row.status_reason)
    certificate_url = f"{live_server.url}/certificates/{certificate.verify_uuid}"
    driver = browser()
    log_in(driver, live_server, learner)

    driver.get(certificate_url)
    assert driver.find_element(By.TAG_NAME, "h1").text == "Your credential is being prepared"
    link = driver.find_element(By.CSS_SELECTOR, '[data-testid="account-settings"]')
    assert link.text == "Set your full name in your account settings" and link.get_attribute("href")
    assert str(row.uuid) in driver.find_element(By.CLASS_NAME, "reference").text
    assert row.status_reason not in driver.page_source  # the reason is for staff, never shown to the learner
    review_screenshot(driver)
    assert_no_axe_violations(driver)
