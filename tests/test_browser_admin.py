"""
The course setup admin in a real browser: headless Debian Chromium driven by Selenium against pytest-django's live
server and the POK simulator, the way a course admin sets up a course alone, without knowing any POK id (issue 20).

Staff sign in through the admin's login form and find the synced templates and the POK accounts from the admin index.
On a fresh install the mapping form syncs POK's empty catalog as it opens; a typo in the course key is a field error;
the parameter rows follow the template picker at once, labelled by the parameters' labels, with a fixed-text box only
where "Fixed text" is chosen; a parameter left without a source is refused with an error naming it; the preview with
a learner works before saving and shows the values a credential would send; the saved mapping shows in the list by
the template's name, and the backfill asks first with its dry run. The list and the form fit 1366 px and 390 px wide
screens without scrolling sideways; without JavaScript the server shows the rows of the template last posted. The add
form (with its errors, with the preview) and the change form pass axe-core's WCAG 2 A/AA rules in the plugin's part
of the page (issue 20); their screenshots at 1366 px go to ``test-artifacts/screenshots/``.

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (Debian packages chromium and chromium-driver); the tests
fail, never skip, without them. The shared pieces (the ``browser`` fixture, sign-in, picking an option by its text,
running a changelist action) live in ``tests/browser.py`` and ``tests/conftest.py``. Screenshots go to
``test-artifacts/browser/``.
"""
import secrets

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse
from opaque_keys.edx.keys import CourseKey
from selenium.webdriver.common.by import By

from lms_sandbox.factories import CourseEnrollmentFactory, CourseOverviewFactory, GeneratedCertificateFactory
from openedx_pok.models import CertificateTemplate, PokCertificate, PokTemplate
from tests.browser import (
    admin_get,
    admin_log_in,
    assert_no_axe_violations,
    errors,
    field_by_label,
    field_errors,
    messages,
    option_texts,
    review_screenshot,
    save_form,
    screenshot,
    select_by_visible_text,
    selected_text,
    submit_action,
    submit_and_wait,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STAFF_PASSWORD = secrets.token_urlsafe(16)  # typed into the admin's login form like a person would
MAPPING_ADD = "admin:openedx_pok_certificatetemplate_add"
MAPPING_LIST = "admin:openedx_pok_certificatetemplate_changelist"
MAPPING_CHANGE = "admin:openedx_pok_certificatetemplate_change"
#: The mapping form's own part of the page, which axe checks: the links to the accounts and templates, the form's
#: fields (the plugin's labels, pickers and parameter rows), the preview and sync tools; not the admin's header,
#: breadcrumbs and sidebar.
MAPPING_FORM_OWN = "#content-main"
TEMPLATE_LIST = "admin:openedx_pok_poktemplate_changelist"
# A template whose two custom parameters the automatic resolution (by id, then label) cannot fill.
TEMPLATE_ID, TEMPLATE_NAME = "tpl-honours", "Diploma with honours"
HONOURS, COHORT = ("honours", "Honours distinction"), ("cohort", "Cohort")
NEW_COURSE = "course-v1:DemoX+POK201+2026"


@pytest.fixture
def staff(db):
    """A staff member who may do everything in the admin; signs in with :data:`STAFF_PASSWORD`."""
    return get_user_model().objects.create_superuser("course-admin", "course-admin@example.com", STAFF_PASSWORD)


@pytest.fixture
def admin_driver(browser, live_server, staff):
    """A browser signed in to the Django admin as :func:`staff`."""
    driver = browser()
    admin_log_in(driver, live_server, staff.username, STAFF_PASSWORD)
    return driver


WIDE, PHONE = (1366, 900), (390, 844)


def no_source_error(parameter):
    return f"Parameter '{parameter[1]}' has no source: choose where its value comes from."


def row_field(driver, parameter, kind="source"):
    """The source picker (or fixed-text box) of a parameter, found by the label staff read (shown or not)."""
    wanted = parameter[1] if kind == "source" else f"{parameter[1]}: fixed text"
    for label in driver.find_elements(By.CSS_SELECTOR, "label[for]"):
        if label.get_attribute("textContent").strip().rstrip(":").strip() == wanted:
            return driver.find_element(By.ID, label.get_attribute("for"))
    raise AssertionError(f"No field labelled {wanted!r} on {driver.current_url}")


def scrolls_sideways(driver):
    """Whether the page is wider than the window (a list or form that makes people scroll sideways)."""
    return driver.execute_script(
        "return document.documentElement.scrollWidth > document.documentElement.clientWidth + 1")


def cut_off(driver):
    """The names of the form's fields that reach past their row's right edge (cut off on a narrow screen)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#content-main form input, #content-main form select'))"
        ".filter(e => e.offsetParent !== null && e.type !== 'hidden' && e.getBoundingClientRect().right >"
        " Math.min(document.documentElement.clientWidth, e.closest('.form-row, .submit-row, fieldset, form')"
        ".getBoundingClientRect().right) + 1).map(e => e.name)")


def sized(driver, size):
    """Make the page's viewport ``size`` wide and high (the window's frame aside)."""
    driver.set_window_size(*size)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    driver.set_window_size(2 * size[0] - inner[0], 2 * size[1] - inner[1])
    assert driver.execute_script("return window.innerWidth") == size[0]


@pytest.fixture
def new_course(course):
    """
    A course of the LMS that is not mapped yet, with an enrolled learner the preview may render and two learners who
    earned their certificate before it was mapped (the backfill's).
    """
    overview = CourseOverviewFactory(id=CourseKey.from_string(NEW_COURSE), org="DemoX", display_name="Data 201")
    for _ in range(2):
        GeneratedCertificateFactory(course_id=overview.id)
    return overview, CourseEnrollmentFactory(course=overview).user


def test_a_course_admin_sets_up_a_course_alone(admin_driver, live_server, pok, new_course):
    driver = admin_driver
    sized(driver, WIDE)
    _overview, learner = new_course
    pok.add_template(TEMPLATE_ID, TEMPLATE_NAME, [HONOURS, COHORT])
    picker_label = f"{TEMPLATE_NAME} [default]"
    assert not PokTemplate.objects.exists()  # a fresh install: the catalog was never synced

    # The admin index leads to the synced templates and to the accounts.
    assert driver.find_elements(By.CSS_SELECTOR, f'a[href="{reverse(TEMPLATE_LIST)}"]'), "no POK templates on the index"
    accounts = reverse("admin:openedx_pok_pokaccount_changelist")
    assert driver.find_elements(By.CSS_SELECTOR, f'a[href="{accounts}"]'), "no POK accounts on the index"

    # Opening the form syncs the empty catalog: the template is offered by name at once, the links are there.
    admin_get(driver, live_server, reverse(MAPPING_ADD))
    assert any("3 templates, 1 page" in message for message in messages(driver)), messages(driver)
    assert picker_label in option_texts(driver, "template_id")
    tools = [link.get_attribute("textContent").strip()
             for link in driver.find_elements(By.CSS_SELECTOR, ".object-tools a")]
    assert {"POK accounts", "POK templates"} <= set(tools), tools

    # A typo in the course key is an error on the field (it answered HTTP 500).
    field_by_label(driver, "Course").send_keys("DemoX DATA201")
    assert select_by_visible_text(driver, "template_id", picker_label) == TEMPLATE_ID
    # The rows of the chosen template appear at once, by label; a fixed-text box only where "Fixed text" is chosen.
    assert row_field(driver, HONOURS).is_displayed() and row_field(driver, COHORT).is_displayed()
    assert not row_field(driver, COHORT, "value").is_displayed()
    assert not any(element.is_displayed() for element in driver.find_elements(By.CSS_SELECTOR, "[data-pok-hidden]"))
    screenshot(driver, "mapping-rows-follow-the-template.png", show=row_field(driver, HONOURS))
    select_by_visible_text(driver, row_field(driver, COHORT), "Fixed text")
    assert row_field(driver, COHORT, "value").is_displayed()
    save_form(driver)
    course_field = field_by_label(driver, "Course")
    assert any("is not a course key" in error for error in field_errors(course_field)), errors(driver)
    assert selected_text(driver, "template_id") == picker_label

    # The parameter left without a source is refused, named by its label; what was chosen is kept.
    course_field.clear()
    course_field.send_keys(NEW_COURSE)
    row_field(driver, COHORT, "value").send_keys("Spring 2026")
    save_form(driver)
    assert field_errors(row_field(driver, HONOURS)) == [no_source_error(HONOURS)], errors(driver)
    assert field_errors(row_field(driver, COHORT)) == []
    screenshot(driver, "mapping-unmapped-parameter.png", show=row_field(driver, HONOURS))
    review_screenshot(driver, "add-form-errors")
    assert_no_axe_violations(driver, MAPPING_FORM_OWN)
    assert not CertificateTemplate.objects.filter(course_key=CourseKey.from_string(NEW_COURSE)).exists()

    # The preview with a learner, before saving: POK's image and the values a credential would send.
    select_by_visible_text(driver, row_field(driver, HONOURS), "Course: title")
    driver.find_element(By.ID, "pok-preview-learner").send_keys(learner.username)
    submit_and_wait(driver, driver.find_element(By.NAME, "_pok_preview"))
    assert driver.find_element(By.CSS_SELECTOR, "img.pok-preview-image").is_displayed(), errors(driver)
    values = driver.find_element(By.CSS_SELECTOR, ".pok-preview-values").text
    assert "Data 201" in values and "Spring 2026" in values and learner.email in values, values
    screenshot(driver, "mapping-preview-before-saving.png", show=driver.find_element(By.ID, "pok-preview"))
    review_screenshot(driver, "add-form-preview")
    assert_no_axe_violations(driver, MAPPING_FORM_OWN)
    assert not CertificateTemplate.objects.filter(course_key=CourseKey.from_string(NEW_COURSE)).exists()

    save_form(driver)
    assert driver.current_url.split("#")[0].endswith(reverse(MAPPING_LIST)), (driver.current_url, errors(driver))
    assert any(NEW_COURSE in message for message in messages(driver)), messages(driver)
    saved = CertificateTemplate.objects.get(course_key=CourseKey.from_string(NEW_COURSE))
    assert (saved.account, saved.template_id, saved.enabled) == ("default", TEMPLATE_ID, True)
    assert saved.parameter_sources == {HONOURS[0]: {"source": "course.title"},
                                       COHORT[0]: {"source": "fixed", "value": "Spring 2026"}}

    # The list names the template and fits the screen; the backfill asks first, with its dry run.
    row = driver.find_element(By.XPATH, f'//*[@id="result_list"]//tr[.//a[normalize-space()="{NEW_COURSE}"]]')
    assert TEMPLATE_NAME in row.text and TEMPLATE_ID not in row.text, row.text
    assert not scrolls_sideways(driver)
    screenshot(driver, "mapping-list-1366.png")
    submit_action(driver, "backfill_courses", [saved.pk])
    content = driver.find_element(By.ID, "content-main").text
    assert "The backfill would request 2 credentials" in content, content
    assert pok.count("issue_credential") == 0 and not PokCertificate.objects.exists()
    screenshot(driver, "mapping-backfill-confirm.png")
    submit_and_wait(driver, driver.find_element(By.CSS_SELECTOR, '.pok-confirm-backfill input[type="submit"]'))
    assert any("2 credentials requested in the background" in message for message in messages(driver)), \
        messages(driver)

    # The saved mapping's change form: the parameter rows of its template, with their sources.
    admin_get(driver, live_server, reverse(MAPPING_CHANGE, args=[saved.pk]))
    assert selected_text(driver, "template_id") == picker_label
    assert row_field(driver, COHORT, "value").get_attribute("value") == "Spring 2026"
    review_screenshot(driver, "change-form")
    assert_no_axe_violations(driver, MAPPING_FORM_OWN)


@pytest.mark.parametrize("size", [WIDE, PHONE], ids=["1366px", "390px"])
def test_the_list_and_the_form_fit_the_screen_and_unknown_organizations_are_warned(admin_driver, live_server, pok,
                                                                                   course, size):
    driver = admin_driver
    sized(driver, size)
    pok.add_template(TEMPLATE_ID, TEMPLATE_NAME, [HONOURS, COHORT])
    CertificateTemplate.objects.create(organization="DemoX", template_id=TEMPLATE_ID)
    admin_get(driver, live_server, reverse(MAPPING_ADD))
    assert not scrolls_sideways(driver)
    field_by_label(driver, "Organization").send_keys("NoSuchX")
    select_by_visible_text(driver, "template_id", f"{TEMPLATE_NAME} [default]")
    select_by_visible_text(driver, row_field(driver, HONOURS), "Course: title")
    select_by_visible_text(driver, row_field(driver, COHORT), "Fixed text")
    row_field(driver, COHORT, "value").send_keys("Spring 2026")
    assert not scrolls_sideways(driver) and cut_off(driver) == []
    screenshot(driver, f"mapping-form-{size[0]}.png", show=row_field(driver, COHORT))
    save_form(driver)
    assert driver.current_url.split("#")[0].endswith(reverse(MAPPING_LIST)), (driver.current_url, errors(driver))
    warnings = [item.text for item in driver.find_elements(By.CSS_SELECTOR, "ul.messagelist li.warning")]
    assert any("organization NoSuchX is not known to Open edX" in text for text in warnings), messages(driver)
    assert CertificateTemplate.objects.filter(organization="NoSuchX").exists()  # warned, not refused
    assert not scrolls_sideways(driver)
    assert TEMPLATE_NAME in driver.find_element(By.ID, "result_list").text
    screenshot(driver, f"mapping-list-{size[0]}.png")
    # The synced templates (with the accounts above them) and the accounts page fit too.
    for name, url in (("templates", reverse(TEMPLATE_LIST)), ("accounts", reverse("admin:openedx_pok_accounts"))):
        admin_get(driver, live_server, url)
        assert "Simulated Org" in driver.find_element(By.ID, "content-main").text
        assert not scrolls_sideways(driver), name
        screenshot(driver, f"pok-{name}-{size[0]}.png")


def test_without_javascript_the_server_shows_the_rows_of_the_posted_template(browser, live_server, staff, pok,
                                                                              course):
    driver = browser(javascript=False)
    admin_log_in(driver, live_server, staff.username, STAFF_PASSWORD)
    pok.add_template(TEMPLATE_ID, TEMPLATE_NAME, [HONOURS, COHORT])
    admin_get(driver, live_server, reverse(MAPPING_ADD))
    assert not row_field(driver, HONOURS).is_displayed()  # no template chosen yet
    field_by_label(driver, "Course").send_keys(NEW_COURSE)
    select_by_visible_text(driver, "template_id", f"{TEMPLATE_NAME} [default]")
    save_form(driver, "_continue")
    assert row_field(driver, HONOURS).is_displayed() and row_field(driver, COHORT).is_displayed()
    assert not row_field(driver, COHORT, "value").is_displayed()
    assert field_errors(row_field(driver, COHORT)) == [no_source_error(COHORT)], errors(driver)
