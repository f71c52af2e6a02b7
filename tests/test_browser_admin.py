"""
The course setup admin in a real browser: headless Debian Chromium driven by Selenium against pytest-django's live
server and the POK simulator, the way a course admin sets up a course without knowing any POK id.

Staff sign in through the admin's login form, sync POK's catalog with the mapping list's action, pick a template by
its name, give one of its custom parameters a source and leave the other one without: the save is refused with an
error naming the parameter left out, and nothing is stored. Once that parameter has a source too, the mapping is
saved with both sources.

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

from openedx_pok.models import CertificateTemplate, PokTemplate
from tests.browser import (
    admin_get,
    admin_log_in,
    errors,
    field_by_label,
    field_errors,
    messages,
    option_texts,
    save_form,
    screenshot,
    select_by_visible_text,
    selected_text,
    submit_action,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STAFF_PASSWORD = secrets.token_urlsafe(16)  # typed into the admin's login form like a person would
MAPPING_ADD = "admin:openedx_pok_certificatetemplate_add"
MAPPING_LIST = "admin:openedx_pok_certificatetemplate_changelist"
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


def source_label(parameter):
    return f"Source of parameter '{parameter[0]}' ({parameter[1]})"


def no_source_error(parameter):
    return f"Parameter '{parameter[0]}' ({parameter[1]}) has no source: choose where its value comes from."


def test_course_admin_picks_a_template_by_name_and_every_parameter_needs_a_source(admin_driver, live_server, pok,
                                                                                   course):
    driver = admin_driver
    pok.add_template(TEMPLATE_ID, TEMPLATE_NAME, [HONOURS, COHORT])
    picker_label = f"{TEMPLATE_NAME} [default]"

    # Before a sync the local catalog does not know the template, so the picker cannot offer it.
    admin_get(driver, live_server, reverse(MAPPING_ADD))
    assert picker_label not in option_texts(driver, "template_id")

    # The sync action of the mapping list (on the course fixture's mapping) pulls the account's catalog.
    admin_get(driver, live_server, reverse(MAPPING_LIST))
    mapping = CertificateTemplate.objects.get(course_key=course.id)
    submit_action(driver, "sync_pok_catalog", [mapping.pk])
    assert any("3 templates, 1 pages" in message for message in messages(driver)), messages(driver)
    assert PokTemplate.objects.filter(account="default", pok_id=TEMPLATE_ID, name=TEMPLATE_NAME).exists()

    admin_get(driver, live_server, reverse(MAPPING_ADD))
    field_by_label(driver, "Course").send_keys(NEW_COURSE)
    assert select_by_visible_text(driver, "template_id", picker_label) == TEMPLATE_ID
    save_form(driver)
    # The first save with this template shows a source picker per parameter, each error naming its parameter.
    assert set(errors(driver)) >= {no_source_error(HONOURS), no_source_error(COHORT)}, errors(driver)

    select_by_visible_text(driver, field_by_label(driver, source_label(HONOURS)), "Course: title")
    assert select_by_visible_text(driver, field_by_label(driver, source_label(COHORT)),
                                  "Automatic (by id, then label)") == ""
    save_form(driver)
    assert driver.current_url.endswith(reverse(MAPPING_ADD)), driver.current_url
    parameter_errors = [error for error in errors(driver) if error.startswith("Parameter '")]
    assert parameter_errors == [no_source_error(COHORT)], errors(driver)
    assert field_errors(field_by_label(driver, source_label(COHORT))) == [no_source_error(COHORT)]
    assert field_errors(field_by_label(driver, source_label(HONOURS))) == []
    # The refused form keeps what staff chose, so only the missing source is left to fix.
    assert selected_text(driver, "template_id") == picker_label
    screenshot(driver, "mapping-unmapped-parameter.png", show=field_by_label(driver, source_label(COHORT)))
    assert not CertificateTemplate.objects.filter(course_key=CourseKey.from_string(NEW_COURSE)).exists()

    select_by_visible_text(driver, field_by_label(driver, source_label(COHORT)), "Fixed text")
    field_by_label(driver, f"Fixed text of parameter '{COHORT[0]}'").send_keys("Spring 2026")
    save_form(driver)
    assert driver.current_url.endswith(reverse(MAPPING_LIST)), (driver.current_url, errors(driver))
    assert not errors(driver)
    assert any(NEW_COURSE in message for message in messages(driver)), messages(driver)
    screenshot(driver, "mapping-saved.png")
    saved = CertificateTemplate.objects.get(course_key=CourseKey.from_string(NEW_COURSE))
    assert (saved.account, saved.template_id, saved.enabled) == ("default", TEMPLATE_ID, True)
    assert saved.parameter_sources == {HONOURS[0]: {"source": "course.title"},
                                       COHORT[0]: {"source": "fixed", "value": "Spring 2026"}}
