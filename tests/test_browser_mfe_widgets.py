"""
The learner widgets of the MFEs (issue 21) in a real browser: the progress page's credential card and the learner
dashboard's "My credentials", as the real ``tutor`` with tutor-mfe and the Tutor plugin put them into the MFEs'
env.config.jsx.

The rendered env.config.jsx is bundled by esbuild with a stand-in MFE (``tests/mfe_harness``) that mounts each slot as
frontend-plugin-framework does (the slot's default content plus the config's DIRECT_PLUGIN widgets, with the slot's
``pluginProps``), and with ``@edx/frontend-platform`` and its ``/auth`` replaced by shims that call the live server
with the learner's session. The pages come from the live server (a test-only URL configuration), so the widgets' API
calls are the LMS's. Each state a learner meets (issuing, scheduled, held for their name, emitted) in English and
Spanish (the LMS's language cookie), at 390 px and 1366 px: the widget says what the API says, offers the links of
that state only, fits the width, passes axe-core's WCAG 2 A/AA rules, and leaves screenshots in test-artifacts/.
"""
import shutil
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from lms_sandbox.factories import UserFactory
from openedx_pok.issuance.states import CredentialStatus, release_reason
from openedx_pok.models import PokCertificate
from test_utils.factories import VIEW_URL_BASE, CredentialFactory
from tests.mfe_harness import urls as harness
from tests.test_tutor_plugin import ENV_CONFIG, mfe_project, tutor_bin  # noqa: F401 - tutor_bin is a fixture

# Selenium and tests/browser.py are imported by the tests that run, not here: the tox environments of the Open edX
# releases have no Selenium and deselect the browser tests (-m "not browser") after importing this module.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.urls("tests.mfe_harness.urls")]

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "tests" / "mfe_harness"
ESBUILD = ROOT / "node_modules" / ".bin" / "esbuild"
API = "/pok/api/v1/learner/credentials"
LANGUAGES = ("en", "es-419")
WIDTHS = (1366, 390)
WITHIN = 15
#: The English titles of each state, as the learner reads them (the API's words; pinned here so that a wrong state
#: fails even where the widget and the API agree).
TITLES = {
    "in_progress": "Your credential is being issued",
    "scheduled": "Your credential is scheduled",
    "held_for_name": "Your credential is being prepared",
    "emitted": "Your credential is ready",
}


@pytest.fixture(scope="module")
def bundles(tutor_bin, tmp_path_factory):  # noqa: F811 - the fixture imported above
    """The stand-in MFEs' scripts, built from the env.config.jsx that the real tutor renders with tutor-mfe and pok."""
    if not ESBUILD.exists():
        pytest.fail(f"{ESBUILD.relative_to(ROOT)} is missing: run `npm ci` at the repository root (make test does it).",
                    pytrace=False)
    project = mfe_project(tutor_bin, tmp_path_factory.mktemp("tutor-root"))
    out = tmp_path_factory.mktemp("mfe-bundles")
    env_config = out / "env.config.jsx"
    shutil.copyfile(project.root / "env" / ENV_CONFIG, env_config)
    shims = HARNESS / "shims"
    for app in harness.APPS:
        command = [
            str(ESBUILD), str(HARNESS / "harness.js"), "--bundle", "--format=iife", f"--outfile={out / app}.js",
            f"--alias:pok-env-config={env_config}",
            f"--alias:@edx/frontend-platform={shims / 'frontend-platform'}",
            f"--alias:@openedx/frontend-plugin-framework={shims / 'frontend-plugin-framework'}",
            f'--define:process.env.APP_ID="{app}"', '--define:process.env.NODE_ENV="production"',
            "--loader:.jsx=jsx", "--jsx=automatic", "--log-level=warning",
        ]
        # env.config.jsx sits outside the repository: its 'react' comes from the repository's node_modules.
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                                env={"PATH": "/usr/bin:/bin", "NODE_PATH": str(ROOT / "node_modules")})
        assert result.returncode == 0, result.stdout + result.stderr
    harness.BUNDLES["dir"] = str(out)
    yield out
    harness.BUNDLES["dir"] = None


def api_get(live_server, user, language, **params):
    """What the learner API answers ``user`` in ``language``, asked on the live server's host as the page asks it."""
    client = Client()
    client.force_login(user)
    host = live_server.url.split("://", 1)[1]
    return client.get(API, params, HTTP_ACCEPT_LANGUAGE=language, HTTP_HOST=host).json()


def api_item(live_server, user, language, course_key):
    """What the learner API answers ``user`` for ``course_key`` in ``language``: what the widget must show."""
    body = api_get(live_server, user, language, course_id=str(course_key))
    assert body["count"] == 1, body
    return body["results"][0], body["labels"]


def set_viewport(driver, width):
    """The page's viewport exactly ``width`` CSS pixels wide, whatever the window's frame takes."""
    driver.set_window_size(width, 900)
    inner = driver.execute_script("return window.innerWidth")
    if inner != width:
        driver.set_window_size(2 * width - inner, 900)
    assert driver.execute_script("return window.innerWidth") == width


def open_page(driver, live_server, app, **query):
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(f"{live_server.url}/pok-test/mfe/{app}/?{urlencode(query)}")
    harness_ready = "return window.pokHarness && (window.pokHarness.mounted || window.pokHarness.error)"
    WebDriverWait(driver, WITHIN, poll_frequency=0.1).until(lambda d: d.execute_script(harness_ready))
    state = driver.execute_script("return window.pokHarness")
    assert "error" not in state, state
    return state


def wait_for(driver, selector):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, WITHIN, poll_frequency=0.1).until(
        lambda d: (d.find_elements(By.CSS_SELECTOR, selector) or [None])[0])


def api_answered(driver):
    """Wait until the page's request to the learner API has finished, and React had a moment to render its answer."""
    from selenium.webdriver.support.ui import WebDriverWait
    WebDriverWait(driver, WITHIN, poll_frequency=0.1).until(lambda d: d.execute_script(
        "return performance.getEntriesByType('resource').some(e => e.name.includes(arguments[0]) && e.responseEnd > 0)",
        API))
    time.sleep(0.3)


def fits(driver):
    """Nothing wider than the viewport: no sideways scrolling of the page."""
    scroll, client = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, f"the page scrolls sideways at {client} px: {scroll} px wide"


def links(element):
    from selenium.webdriver.common.by import By
    return [(link.text, link.get_attribute("href")) for link in element.find_elements(By.TAG_NAME, "a")]


def credential_in(state, course_key=None):
    """A learner and their credential in ``state`` (the held one's learner has no usable name)."""
    extra = {"course_key": course_key} if course_key else {}
    if state == "held_for_name":
        return CredentialFactory(user=UserFactory(profile__name=""), held=True, **extra)
    learner = UserFactory(profile__name="Ada Lovelace")
    if state == "scheduled":
        date = (timezone.now() + timedelta(days=5)).replace(microsecond=0)
        return CredentialFactory(user=learner, status=CredentialStatus.SCHEDULED, not_before=date,
                                 status_reason=release_reason(date), **extra)
    return CredentialFactory(user=learner, **{state: True}, **extra)


def expected_links(item, labels):
    if item["status"] == "emitted":
        return [(labels["open"], item["view_url"]), (labels["share_linkedin"], item["linkedin_url"])]
    if item["action"]:
        return [(item["action"]["label"], item["action"]["url"])]
    return []


# --- the progress page -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("state", list(TITLES))
def test_progress_page_shows_the_courses_credential(browser, live_server, bundles, state):
    from selenium.webdriver.common.by import By

    from tests.browser import assert_no_axe_violations, log_in, review_screenshot, screenshot
    row = credential_in(state)
    course_id = str(row.course_key)
    driver = browser()
    log_in(driver, live_server, row.user)
    for language in LANGUAGES:
        driver.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "path": "/"})
        item, labels = api_item(live_server, row.user, language, row.course_key)
        assert item["status"] == {"held_for_name": "delayed"}.get(state, state)
        if language == "en":
            assert item["title"] == TITLES[state]
        else:
            assert item["title"] != TITLES[state] and item["status_label"]  # translated, not the English words
        for width in WIDTHS:
            set_viewport(driver, width)
            harness_state = open_page(driver, live_server, "learning", course_id=course_id)
            assert harness_state["operations"] == [{"op": "insert", "id": "pok_credential_status",
                                                    "type": "DIRECT_PLUGIN"}]
            assert harness_state["shown"] == ["default_contents", "pok_credential_status"]  # the default card stays
            card = wait_for(driver, "[data-plugin-id=pok_credential_status] .pok-credential-status")
            assert card.get_attribute("data-status") == item["status"]
            assert card.get_attribute("data-next-step") == item["next_step"]
            assert card.find_element(By.TAG_NAME, "h2").text == item["title"]
            assert card.find_element(By.CSS_SELECTOR, ".pok-credential-message").text == item["message"]
            # The state in words, never by colour alone.
            assert card.find_element(By.CSS_SELECTOR, ".pok-credential-state").text == (
                f"{labels['status']}: {item['status_label']}")
            assert links(card) == expected_links(item, labels)
            assert driver.find_element(By.CSS_SELECTOR, "[data-plugin-id=default_contents]").is_displayed()
            fits(driver)
            screenshot(driver, f"mfe-progress-{state}-{language}-{width}.png", show=card)
            assert_no_axe_violations(driver)
        review_screenshot(driver, language)
    if state == "emitted":
        assert item["view_url"].startswith(VIEW_URL_BASE) and "linkedin.com" in item["linkedin_url"]
    if state == "held_for_name":
        assert item["next_step"] == "set_full_name"


def test_progress_page_of_a_course_that_is_not_mapped_shows_nothing_of_pok(browser, live_server, bundles):
    from selenium.webdriver.common.by import By

    from tests.browser import log_in
    row = credential_in("emitted")
    driver = browser()
    log_in(driver, live_server, row.user)
    open_page(driver, live_server, "learning", course_id="course-v1:Nobody+Mapped+2026")
    api_answered(driver)
    assert not driver.find_elements(By.CSS_SELECTOR, ".pok-credential-status")
    assert driver.find_element(By.CSS_SELECTOR, "[data-plugin-id=pok_credential_status]").text == ""
    assert driver.find_element(By.CSS_SELECTOR, "[data-plugin-id=default_contents]").is_displayed()


def test_progress_page_follows_a_credential_until_it_is_ready(browser, live_server, bundles):
    from selenium.webdriver.common.by import By

    from tests.browser import log_in
    row = credential_in("in_progress")
    driver = browser()
    log_in(driver, live_server, row.user)
    open_page(driver, live_server, "learning", course_id=str(row.course_key), poll_ms=400)
    card = wait_for(driver, ".pok-credential-status")
    assert card.get_attribute("data-status") == "in_progress" and not links(card)
    PokCertificate.objects.filter(id=row.id).update(
        status=CredentialStatus.EMITTED, pok_state="emitted", view_url=f"{VIEW_URL_BASE}{row.pok_credential_id}",
        emission_date=timezone.now())
    ready = wait_for(driver, ".pok-credential-status[data-status=emitted]")
    assert ready.find_element(By.TAG_NAME, "h2").text == TITLES["emitted"]
    assert [text for text, _ in links(ready)] == ["Open", "Share on LinkedIn"]


# --- the learner dashboard -------------------------------------------------------------------------------------------


def test_dashboard_lists_every_credential_with_its_state(browser, live_server, bundles):
    from selenium.webdriver.common.by import By

    from tests.browser import assert_no_axe_violations, log_in, review_screenshot, screenshot
    learner = UserFactory(profile__name="")  # no usable name: the held credential asks for it
    rows = {state: CredentialFactory(user=learner, **traits) for state, traits in {
        "in_progress": {"in_progress": True},
        "scheduled": {"status": CredentialStatus.SCHEDULED, "not_before": timezone.now() + timedelta(days=5)},
        "held_for_name": {"held": True},
        "emitted": {"emitted": True},
    }.items()}
    driver = browser()
    log_in(driver, live_server, learner)
    for language in LANGUAGES:
        driver.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "path": "/"})
        answer = api_get(live_server, learner, language)
        assert answer["count"] == 4
        by_reference = {item["reference"]: item for item in answer["results"]}
        for width in WIDTHS:
            set_viewport(driver, width)
            state = open_page(driver, live_server, "learner-dashboard")
            assert state["operations"] == [{"op": "insert", "id": "pok_my_credentials", "type": "DIRECT_PLUGIN"}]
            assert state["shown"] == ["default_contents", "pok_my_credentials"]
            panel = wait_for(driver, "[data-plugin-id=pok_my_credentials] .pok-my-credentials")
            assert panel.find_element(By.TAG_NAME, "h2").text == answer["labels"]["heading"]
            lines = panel.find_elements(By.CSS_SELECTOR, "li.pok-my-credential")
            assert len(lines) == 4
            shown = {}
            for line, item in zip(lines, answer["results"], strict=True):
                paragraphs = line.find_elements(By.TAG_NAME, "p")
                assert paragraphs[0].text == (item["course_name"] or item["course_id"])
                assert line.get_attribute("data-status") == item["status"]
                assert line.find_element(By.CSS_SELECTOR, ".pok-credential-state").text == (
                    f"{answer['labels']['status']}: {item['status_label']}")
                assert links(line) == expected_links(item, answer["labels"])
                shown[item["reference"]] = item["status"]
            assert shown == {str(row.uuid): by_reference[str(row.uuid)]["status"] for row in rows.values()}
            assert sorted(shown.values()) == ["delayed", "emitted", "in_progress", "scheduled"]
            fits(driver)
            screenshot(driver, f"mfe-dashboard-{language}-{width}.png", show=panel)
            assert_no_axe_violations(driver)
        review_screenshot(driver, language)
    emitted = next(line for line in lines if line.get_attribute("data-status") == "emitted")
    assert [text for text, _ in links(emitted)][0] == answer["labels"]["open"]


def test_dashboard_of_a_learner_without_credentials_shows_nothing_of_pok(browser, live_server, bundles):
    from selenium.webdriver.common.by import By

    from tests.browser import log_in
    learner = UserFactory(profile__name="Grace Hopper")
    driver = browser()
    log_in(driver, live_server, learner)
    open_page(driver, live_server, "learner-dashboard")
    api_answered(driver)
    assert not driver.find_elements(By.CSS_SELECTOR, ".pok-my-credentials")
    assert driver.find_element(By.CSS_SELECTOR, "[data-plugin-id=pok_my_credentials]").text == ""
    assert driver.find_element(By.CSS_SELECTOR, "[data-plugin-id=default_contents]").is_displayed()
