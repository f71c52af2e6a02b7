"""
What the headless-browser tests share: starting Debian's Chromium under Selenium, signing in (a learner by session
cookie, staff through the Django admin's own login form), and driving admin pages the way a person does (pick an
option by the text shown, run a changelist action, submit a form and wait for the next page, read messages and
errors), plus screenshots into ``test-artifacts/browser/`` for a human to look at, screenshots at 1366 px of the
pages the accessibility checks cover into ``test-artifacts/screenshots/``, and those checks themselves (axe-core,
installed from ``package-lock.json`` by ``npm ci``: :func:`assert_no_axe_violations`).

The ``browser`` fixture itself lives in ``tests/conftest.py`` and imports this module only when a test asks for it,
so the rest of the suite never imports Selenium.
"""
import os
import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
#: Full-page screenshots at 1366 px of the pages checked with axe, one per test (and page), for a person to review.
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
REVIEW_WIDTH = 1366
#: axe-core at the version pinned in package-lock.json (``npm ci``; ``make test`` runs it when it is missing).
AXE_SCRIPT = ROOT / "node_modules" / "axe-core" / "axe.min.js"
#: The WCAG 2.0 and 2.1 level A and AA rules: the "Done when" of issue 20 (no best practice, no AAA, no experimental).
AXE_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa")
#: How long one axe run may take (a bound: a page of this plugin takes well under a second).
AXE_WITHIN = 60
# How long a page that a click asked for may take to replace the current one (a bound, not a measured figure).
PAGE_LOAD_WITHIN = 20


def chromium_drivers(tmp_path):
    """
    Generator behind the ``browser`` fixture: yields a factory of headless Chromium drivers
    (``start(javascript=False)``) and quits every driver it started when resumed.
    """
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if missing:
        pytest.fail(
            f"Browser test needs {' and '.join(missing)}: install Debian's chromium and chromium-driver "
            "(apt-get install -y chromium chromium-driver; .ci/run does it).", pytrace=False,
        )
    drivers = []

    def start(javascript=True):
        options = Options()
        options.binary_location = CHROMIUM
        for argument in (
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
            "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / f'chrome-profile-{len(drivers)}'}", "--window-size=1280,900",
            "--lang=en-US",
        ):
            options.add_argument(argument)
        prefs = {"intl.accept_languages": "en-US,en"}
        if not javascript:
            prefs["profile.managed_default_content_settings.javascript"] = 2
        options.add_experimental_option("prefs", prefs)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        drivers.append(driver)
        driver.set_page_load_timeout(PAGE_LOAD_WITHIN)
        return driver

    try:
        yield start
    finally:
        for driver in drivers:
            driver.quit()


def screenshot(driver, name, show=None):
    """Save what the browser shows as ``test-artifacts/browser/<name>``, scrolled to the element ``show`` if given."""
    if show is not None:
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", show)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    assert driver.save_screenshot(str(ARTIFACTS / name)), name


def review_screenshot(driver, page=""):
    """
    Save the whole page, as a 1366 px wide screen shows it, as ``test-artifacts/screenshots/<test name>.png``
    (``<test name>-<page>.png`` when a test checks several pages), for a person to review; the window gets back
    its size afterwards. Returns the file's path.
    """
    test = os.environ.get("PYTEST_CURRENT_TEST", "browser").split("::")[-1].rsplit(" (", 1)[0]
    name = "-".join(re.sub(r"[^A-Za-z0-9_.]+", "-", part).strip("-") for part in (test, page) if part)
    path = SCREENSHOTS / f"{name}.png"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    window = driver.get_window_size()
    try:
        driver.set_window_size(REVIEW_WIDTH, 900)
        inner_width, inner_height = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        page_height = driver.execute_script("return document.documentElement.scrollHeight")
        # The viewport exactly 1366 px wide and as high as the page (capped), whatever the window's frame takes.
        driver.set_window_size(2 * REVIEW_WIDTH - inner_width, min(max(page_height, 768), 8000) + 900 - inner_height)
        assert driver.save_screenshot(str(path)), path
    finally:
        driver.set_window_size(window["width"], window["height"])
    return path


#: Runs axe over the context given (``null``: the whole document) and answers the violations, or the error.
AXE_RUN = """
    const [context, options, done] = arguments;
    axe.run(context || document, options).then(
        results => done({violations: results.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
            nodes: v.nodes.map(n => ({target: n.target, html: n.html, summary: n.failureSummary}))}))}),
        error => done({error: String(error)}));
"""


def assert_no_axe_violations(driver, context=None):
    """
    Run axe-core's WCAG 2.0/2.1 level A and AA rules (:data:`AXE_TAGS`) over the page the browser shows and fail,
    listing each rule's id, impact and help with the offending nodes (CSS target, markup, what to fix), unless there
    is none.

    ``context`` says which part of the page is checked: ``None``, the whole document, for the pages the plugin
    renders alone (the learner's status and notice pages, the course team's page and its confirmations); otherwise
    a CSS selector, or a list of them, of the plugin's own markup on a page that is mostly the Django admin's or the
    LMS's (the admin header, breadcrumbs, sidebar and change-form scaffolding are not this plugin's to fix). It is
    passed to axe as the ``include`` of its context, rather than filtering the violations of the whole page
    afterwards: axe still computes what depends on the rest of the page (the colours behind a text for the contrast
    rule, the labels and ids a field refers to, duplicate ids across the document), but reports only nodes inside
    the plugin's markup, and a violation outside it never hides in a filter. Every selector must match on the page
    (a renamed container would otherwise check nothing).

    Needs ``node_modules/axe-core/axe.min.js``: fails, never skips, when it is missing (``npm ci`` installs it;
    ``make test`` does it).
    """
    if not AXE_SCRIPT.is_file():
        pytest.fail(
            f"The accessibility check needs axe-core ({AXE_SCRIPT.relative_to(ROOT)} is missing): run `npm ci` at "
            "the repository root (make test does it when it is missing).", pytrace=False,
        )
    selectors = [context] if isinstance(context, str) else list(context or [])
    missing = [selector for selector in selectors if not driver.find_elements(By.CSS_SELECTOR, selector)]
    assert not missing, f"No element matches {missing} on {driver.current_url}: nothing of it would be checked"
    if not driver.execute_script("return typeof window.axe === 'object'"):
        driver.execute_script(AXE_SCRIPT.read_text(encoding="utf-8"))
    driver.set_script_timeout(AXE_WITHIN)
    options = {"runOnly": {"type": "tag", "values": list(AXE_TAGS)}, "resultTypes": ["violations"]}
    answer = driver.execute_async_script(AXE_RUN, {"include": [[s] for s in selectors]} if selectors else None,
                                         options)
    assert "error" not in answer, f"axe-core failed on {driver.current_url}: {answer['error']}"
    lines = []
    for violation in answer["violations"]:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']} <{violation['helpUrl']}>")
        for node in violation["nodes"]:
            lines.append(f"    {' '.join(map(str, node['target']))}: {node['html'][:300]}")
            lines.extend(f"        {line}" for line in (node["summary"] or "").splitlines())
    assert not answer["violations"], (
        f"{len(answer['violations'])} axe-core violation(s) (WCAG 2 A/AA) on {driver.current_url}"
        f"{f' in {selectors}' if selectors else ''}:\n" + "\n".join(lines))


def log_in(driver, live_server, user):
    """Sign ``user`` in the browser with a session made by the test client (for pages that are not the admin)."""
    client = Client()
    client.force_login(user)
    driver.get(live_server.url + "/")
    cookie_name = django_settings.SESSION_COOKIE_NAME
    driver.add_cookie({"name": cookie_name, "value": client.cookies[cookie_name].value, "path": "/"})


# ---- Django admin ---------------------------------------------------------------------------------------------


def _replaced(element):
    """
    A wait condition: ``element`` no longer belongs to the page. Selenium's ``staleness_of`` expects a "stale element"
    error only; caught mid-navigation, Chromium may answer "Node with given id does not belong to the document", an
    unknown error, instead: the same fact, so it counts too.
    """
    def condition(_driver):
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in str(exc):
                return True
            raise
        return False
    return condition


def submit_and_wait(driver, element):
    """Click ``element`` (a submit button) and wait until the browser has replaced the page with the answer."""
    page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, PAGE_LOAD_WITHIN, poll_frequency=0.1).until(_replaced(page))
    WebDriverWait(driver, PAGE_LOAD_WITHIN, poll_frequency=0.1).until(
        lambda d: d.execute_script("return document.readyState") == "complete")


def admin_log_in(driver, live_server, username, password):
    """Sign in through the Django admin's login form, as staff do, and land on the admin index."""
    driver.get(f"{live_server.url}/admin/login/?next=/admin/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    submit_and_wait(driver, driver.find_element(By.CSS_SELECTOR, '#login-form [type="submit"]'))
    assert driver.current_url == f"{live_server.url}/admin/", errors(driver) or driver.current_url
    assert driver.find_elements(By.ID, "user-tools"), "not signed in to the admin"


def admin_get(driver, live_server, path):
    """Open an admin page by its path (``reverse(...)``) and make sure the admin did not send us to its login."""
    driver.get(live_server.url + path)
    assert "/admin/login/" not in driver.current_url, f"{path} asked for a login"


def field_by_label(driver, label_text):
    """The form field whose ``<label>`` reads ``label_text`` (the admin's trailing colon aside)."""
    for label in driver.find_elements(By.CSS_SELECTOR, "label[for]"):
        if label.text.strip().rstrip(":").strip() == label_text:
            return driver.find_element(By.ID, label.get_attribute("for"))
    shown = [label.text for label in driver.find_elements(By.CSS_SELECTOR, "label[for]")]
    raise AssertionError(f"No field labelled {label_text!r} on {driver.current_url}; labels: {shown}")


def select_by_visible_text(driver, field, text):
    """
    Choose the option that reads ``text`` in the ``<select>`` ``field`` (its name, or the element itself), as a
    person picking by name does; returns the option's value. Fails listing the options when none reads ``text``.
    """
    element = driver.find_element(By.NAME, field) if isinstance(field, str) else field
    select = Select(element)
    try:
        select.select_by_visible_text(text)
    except NoSuchElementException:
        shown = [option.text for option in select.options]
        raise AssertionError(f"No option {text!r} in {element.get_attribute('name')}; options: {shown}") from None
    return select.first_selected_option.get_attribute("value")


def selected_text(driver, field):
    """The text of the option chosen in the ``<select>`` named ``field``."""
    return Select(driver.find_element(By.NAME, field)).first_selected_option.text


def option_texts(driver, field):
    """The texts of the options of the ``<select>`` named ``field``."""
    return [option.text for option in Select(driver.find_element(By.NAME, field)).options]


def submit_action(driver, action, object_ids):
    """
    On an admin changelist, tick the rows of ``object_ids``, choose the action named ``action`` (the method name,
    e.g. ``"sync_pok_catalog"``: the option's value, which translations leave alone) and press "Go".
    """
    for object_id in object_ids:
        checkbox = driver.find_element(By.CSS_SELECTOR, f'input.action-select[value="{object_id}"]')
        if not checkbox.is_selected():
            checkbox.click()
    Select(driver.find_element(By.NAME, "action")).select_by_value(action)
    submit_and_wait(driver, driver.find_element(By.CSS_SELECTOR, '#changelist-form button[name="index"]'))


def save_form(driver, button="_save"):
    """Press one of the change form's save buttons (``_save``, ``_continue``, ``_addanother``)."""
    submit_and_wait(driver, driver.find_element(By.NAME, button))


def messages(driver):
    """The texts of the admin's messages (success, warning, error) on the current page."""
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "ul.messagelist li")]


def field_errors(field):
    """The texts of the errors the admin shows in the row of the form field ``field`` (an element)."""
    row = field.find_element(By.XPATH, "./ancestor::div[contains(concat(' ', @class, ' '), ' form-row ')][1]")
    return [item.text for item in row.find_elements(By.CSS_SELECTOR, "ul.errorlist li")]


def errors(driver):
    """The texts of every form error on the current page (field and non-field)."""
    return [item.text for item in driver.find_elements(By.CSS_SELECTOR, "ul.errorlist li")]
