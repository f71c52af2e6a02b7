"""
Credentials follow the course's certificate release: no request reaches POK before the LMS shows the certificate.

The LMS shows a course's certificates by ``certificates_viewable_for_course`` (self-paced at once; instructor-paced by
the display behaviour: "early_no_info" at once, "end" after the course's end, "end_with_date" at the certificate
available date). Course teams use it to release every certificate on one day after reviewing grades; POK e-mails the
learner when a credential is created, so a credential sent earlier would give the grades away. Until the release the
credential is "scheduled": it waits with the date, sends nothing, and goes out when the course releases it (the
reconcile run, or a view of the certificate page), following the date when the course team moves it.
"""
import io
import re
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client
from django.utils import timezone, translation

from lms_sandbox.certificates_api import certificates_viewable_for_course
from lms_sandbox.factories import CourseOverviewFactory, GeneratedCertificateFactory
from lms_sandbox.models import CourseOverview
from openedx_pok import api, compat
from openedx_pok.course_setup import configuration
from openedx_pok.models import CertificateTemplate, CredentialEvent, CredentialStatus
from test_utils import credential_of

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)


def release_on(course, behavior, date=None, end=None, self_paced=False):
    """Set the course's certificate display settings, as the course team does in Studio (then published)."""
    course.self_paced, course.certificates_display_behavior = self_paced, behavior
    course.certificate_available_date = date
    course.end = end
    course.save()
    configuration.forget_course(course.id)  # the cached course facts: as if the minute had passed
    return CourseOverview.objects.get(id=course.id)


def run_reconcile(lms):
    return lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))


# --- the rule -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("self_paced", "behavior", "date", "end", "shown"), [
    (True, "end", None, None, True),                          # self-paced: at once
    (False, "early_no_info", None, None, True),               # at once
    (False, "end", None, -DAY, True),                         # the course has ended
    (False, "end", None, DAY, False),                         # it ends tomorrow
    (False, "end", None, None, False),                        # no end: never, until the team sets one
    (False, "end_with_date", -DAY, DAY, True),                # the available date has passed
    (False, "end_with_date", DAY, -DAY, False),               # tomorrow, even though the course has ended
])
def test_the_plugin_decides_the_release_as_the_lms_shows_certificates(course, self_paced, behavior, date, end, shown):
    now = timezone.now()
    overview = release_on(course, behavior, date=date and now + date, end=end and now + end, self_paced=self_paced)
    assert certificates_viewable_for_course(overview) is shown  # the sandbox LMS's certificate page
    release = compat.get_course(course.id).certificates_release()
    assert release.released is shown
    if not shown and date is not None:
        assert release.date == overview.certificate_available_date
    if not shown and date is None:
        assert release.date == overview.end


# --- issuance -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("behavior", ["self_paced", "early_no_info", "end"])
def test_a_course_that_shows_certificates_now_issues_at_once(pok, course, learner, lms, behavior):
    if behavior == "self_paced":
        release_on(course, "end", self_paced=True)
    elif behavior == "end":
        release_on(course, "end", end=timezone.now() - DAY)
    else:
        release_on(course, "early_no_info")
    lms.award(learner, course)
    assert credential_of(learner, course).status == CredentialStatus.EMITTED
    assert pok.count("issue_credential") == 1


def test_before_the_available_date_nothing_reaches_pok_then_it_goes_out_on_the_day(pok, course, learner, lms):
    date = timezone.now() + 3 * DAY
    release_on(course, "end_with_date", date=date)
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.SCHEDULED
    assert row.not_before == date
    assert "when the course releases its certificates" in row.status_reason
    assert pok.count() == 0  # not even the template: nothing reaches POK before the release
    run_reconcile(lms)
    assert credential_of(learner, course).status == CredentialStatus.SCHEDULED and pok.count() == 0

    release_on(course, "end_with_date", date=timezone.now() - timedelta(seconds=5))  # the day has come
    run_reconcile(lms)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED, row.status_reason
    assert pok.count("issue_credential") == 1
    changes = list(CredentialEvent.objects.filter(credential=row).order_by("id").values_list("from_status",
                                                                                             "to_status"))
    assert changes[:2] == [("pending", "scheduled"), ("scheduled", "pending")]


def test_the_credential_follows_the_date_the_course_team_moves(pok, course, learner, lms):
    first = timezone.now() + 10 * DAY
    release_on(course, "end_with_date", date=first)
    lms.award(learner, course)
    later = first + 7 * DAY
    release_on(course, "end_with_date", date=later)  # postponed
    run_reconcile(lms)
    row = credential_of(learner, course)
    assert (row.status, row.not_before) == (CredentialStatus.SCHEDULED, later)
    assert pok.count() == 0
    release_on(course, "end_with_date", date=timezone.now() - DAY)  # then brought forward, to the past
    run_reconcile(lms)
    assert credential_of(learner, course).status == CredentialStatus.EMITTED
    assert pok.count("issue_credential") == 1


def test_a_course_without_an_end_waits_without_a_date_until_it_gets_one(pok, course, learner, lms):
    release_on(course, "end", end=None)
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert (row.status, row.not_before) == (CredentialStatus.SCHEDULED, None)
    assert "no end date" in row.status_reason
    end = timezone.now() + 5 * DAY
    release_on(course, "end", end=end)
    run_reconcile(lms)
    assert credential_of(learner, course).not_before == end
    assert pok.count() == 0


def test_a_release_just_passed_in_a_stale_copy_is_checked_against_the_course(pok, course, learner, lms):
    """The worker's copy of the course (a minute) says the date has just passed; the team postponed it meanwhile."""
    release_on(course, "end_with_date", date=timezone.now() - timedelta(seconds=5))
    configuration.course_info(course.id)  # the cache now holds the old date
    CourseOverview.objects.filter(id=course.id).update(certificate_available_date=timezone.now() + DAY)
    lms.award(learner, course)
    assert credential_of(learner, course).status == CredentialStatus.SCHEDULED
    assert pok.count() == 0


# --- what the learner and staff see ---------------------------------------------------------------------------------

def test_before_the_date_the_lms_shows_no_certificate_and_the_status_says_when(pok, course, learner, lms):
    date = timezone.now() + 3 * DAY
    release_on(course, "end_with_date", date=date)
    certificate = lms.award(learner, course)
    client = Client()
    client.force_login(learner)
    page = client.get(f"/certificates/{certificate.verify_uuid}")
    assert page.status_code == 200 and b"Invalid Certificate" in page.content  # the LMS's own page, untouched
    row = credential_of(learner, course)
    status = client.get(f"/pok/credentials/{row.uuid}/status", HTTP_ACCEPT_LANGUAGE="es-419").json()
    assert status["status"] == "scheduled" and not status["emitted"]
    assert status["available_date"] == date.isoformat()
    with translation.override("es-419"):
        assert status["message"] == api.status_payload(row)["message"]
    assert "certificados" in status["message"]
    assert pok.count() == 0


def test_once_released_the_certificate_page_sends_the_credential_before_reconcile(pok, course, learner, lms):
    release_on(course, "end_with_date", date=timezone.now() + DAY)
    certificate = lms.award(learner, course)
    release_on(course, "end_with_date", date=timezone.now() - timedelta(seconds=1))
    client = Client()
    client.force_login(learner)
    page = lms.run(client.get, f"/certificates/{certificate.verify_uuid}")
    assert page.status_code == 200 and b"Your credential is being issued" in page.content
    assert credential_of(learner, course).status == CredentialStatus.EMITTED
    assert pok.count("issue_credential") == 1


# --- backfill -------------------------------------------------------------------------------------------------------

def test_backfill_before_the_date_records_the_credentials_to_wait(pok, lms):
    date = timezone.now() + 2 * DAY
    course = CourseOverviewFactory(certificates_display_behavior="end_with_date", certificate_available_date=date)
    learners = [GeneratedCertificateFactory(course_id=course.id).user for _ in range(3)]
    CertificateTemplate.objects.create(course_key=course.id, template_id="tpl-basic")

    dry = io.StringIO()
    call_command("pok_backfill", "--course", str(course.id), "--dry-run", stdout=dry)
    assert re.search(r"Waiting for the release +3\n", dry.getvalue())
    assert f"{course.id}" in dry.getvalue() and date.isoformat() in dry.getvalue()

    out = io.StringIO()
    lms.run(call_command, "pok_backfill", "--course", str(course.id), stdout=out)
    assert [credential_of(user, course).status for user in learners] == [CredentialStatus.SCHEDULED] * 3
    assert pok.count() == 0
    CourseOverview.objects.filter(id=course.id).update(certificate_available_date=timezone.now() - DAY)
    configuration.forget_course(course.id)
    run_reconcile(lms)
    assert [credential_of(user, course).status for user in learners] == [CredentialStatus.EMITTED] * 3
    assert pok.count("issue_credential") == 3
