"""
Reliability: what POK and the infrastructure can throw at issuance on a bad day, and what the plugin does about it.

Each test reproduces one defect found by trying the plugin as an attacker and as a bad day in production would:
a POK answer that does not fit the row, a database error right after POK answered, an unusable answer, repeated
ambiguous failures, Retry-After and backoff, values the LMS allows but the row does not, grades that are not
grades, revocation during the POST, a hung broker, view URLs on foreign hosts, bad command arguments. They run on
SQLite and on MariaDB (``make test``); the database matters for the length limits.
"""
import socket
import threading
import time
from datetime import timedelta
from io import StringIO
from unittest import mock

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone

from lms_sandbox import tasks as lms_tasks
from lms_sandbox.celery import app as celery_app
from lms_sandbox.factories import CourseOverviewFactory, OrganizationFactory, UserFactory
from openedx_pok import api, tasks
from openedx_pok.client import Credential
from openedx_pok.course_setup.payload import fit, usable_grade
from openedx_pok.issuance import answers, machine, staff_actions
from openedx_pok.issuance.states import PublicStatus
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from pok_simulator import Fault
from test_utils import celery_conf, credential_of

pytestmark = pytest.mark.django_db

ALL_DUE = timedelta(0)


def reconcile_runs(count):
    for _ in range(count):
        api.reconcile(inline=True, pending_grace=ALL_DUE)


def make_abandoned(row):
    """What a crashed worker leaves: the row claimed ("requesting") long ago, no answer stored."""
    PokCertificate.objects.filter(id=row.id).update(
        status=CredentialStatus.REQUESTING, modified=timezone.now() - timedelta(hours=1))


# --- 1. an answer that does not fit the row ---------------------------------------------------------------------------


@pytest.mark.parametrize("fields, expected_status", [
    ({"viewUrl": "https://pok.tech/view/" + "x" * 1100}, CredentialStatus.IN_PROGRESS),
    ({"id": "c" * 300}, CredentialStatus.FAILED),
    ({"state": "s" * 100}, CredentialStatus.IN_PROGRESS),
], ids=["long-view-url", "long-id", "long-state"])
def test_an_answer_that_does_not_fit_the_row_is_never_sent_again(pok, course, learner, lms, fields,
                                                                  expected_status):
    pok.add_fault(Fault("patch_answer", endpoint="issue_credential", fields=fields))
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == expected_status
    assert row.pok_response and (row.status_reason or expected_status == CredentialStatus.IN_PROGRESS)
    reconcile_runs(3)
    assert pok.count("issue_credential") == 1
    assert len(pok.credentials_for(learner.email)) == 1


def test_a_long_state_is_stored_shortened_and_polled(pok, course, learner, lms):
    pok.add_fault(Fault("patch_answer", endpoint="issue_credential", fields={"state": "s" * 100}))
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.pok_state == "s" * 64 and row.pok_credential_id


# --- 2. a database error right after POK answered ---------------------------------------------------------------------


class FlakyStore:
    """Makes the store of POK's answer fail ``times`` times with a lost connection (MySQL error 2013)."""

    def __init__(self, monkeypatch, times):
        self.times = times
        self.real = answers._store  # noqa: SLF001 - the one step whose failure this reproduces
        monkeypatch.setattr(answers, "_store", self)

    def __call__(self, *args, **kwargs):
        if self.times:
            self.times -= 1
            raise OperationalError(2013, "Lost connection to MySQL server during query")
        return self.real(*args, **kwargs)


def test_a_passing_database_error_after_the_post_is_retried_in_place(pok, course, learner, lms, monkeypatch):
    FlakyStore(monkeypatch, times=1)
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED and row.pok_credential_id
    assert pok.count("issue_credential") == 1


def test_the_pok_id_survives_a_database_outage_after_the_post(pok, course, learner, lms, monkeypatch, caplog):
    store = FlakyStore(monkeypatch, times=answers.STORE_ATTEMPTS)
    with caplog.at_level("INFO", logger="openedx_pok"):
        lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.REQUESTING and not row.pok_credential_id
    pok_id = next(iter(pok.credentials))
    assert any(pok_id in record.getMessage() for record in caplog.records)  # the id is in the log, ids only
    store.times = 0  # the database is back
    make_abandoned(row)
    reconcile_runs(3)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED and row.pok_credential_id == pok_id
    assert pok.count("issue_credential") == 1 and row.ambiguous_attempts == 0


# --- 3. an unusable 2xx answer ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, content_type", [
    ("<html><body>OK</body></html>", "text/html"),
    ("[]", "application/json"),
    ("{}", "application/json"),
    ('{"id": "x"}', "application/json"),
    ("[" * 100_000 + "]" * 100_000, "application/json"),
], ids=["html", "list", "empty-object", "no-state", "deeply-nested"])
def test_an_unusable_answer_is_final_for_that_post(pok, course, learner, lms, body, content_type):
    pok.add_fault(Fault("respond", endpoint="issue_credential", status=201, body=body, content_type=content_type,
                        after_create=True))
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.FAILED and not row.retryable
    assert "Check POK" in row.status_reason
    reconcile_runs(3)
    assert pok.count("issue_credential") == 1


# --- 4. ambiguous failures: at most one resend ------------------------------------------------------------------------


def test_an_interrupted_request_is_resent_once_then_left_to_staff(pok, course, learner, lms):
    # A 500: POK may have processed the POST (a 503 says it did not: issue 22).
    pok.add_fault(Fault("status", endpoint="issue_credential", status=500, times=None))
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.FAILED and row.possible_duplicate
    make_abandoned(row)  # e.g. a staff member retried, and the worker crashed mid-POST
    reconcile_runs(1)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.FAILED and "Check POK" in row.status_reason
    reconcile_runs(3)
    assert pok.count("issue_credential") == 2


def test_an_abandoned_request_gets_one_resend_flagged_as_possible_duplicate(pok, course, learner, lms):
    lms.award(learner, course)
    row = credential_of(learner, course)
    PokCertificate.objects.filter(id=row.id).update(pok_credential_id=None, view_url="")
    make_abandoned(row)
    reconcile_runs(1)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED and row.possible_duplicate and row.ambiguous_attempts == 1
    assert len(pok.credentials_for(learner.email)) == 2  # the duplicate the flag warns about
    assert PokCertificate.objects.filter(possible_duplicate=True).count() == 1


# --- 5./6. backoff and Retry-After, per row and per POK account -------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_with_full_jitter(settings):
    """Anywhere from 0 to the ceiling (as Celery's retry_backoff + retry_jitter), not only its upper half."""
    settings.POK_RETRY_BACKOFF_BASE, settings.POK_RETRY_BACKOFF_MAX = 30, 100
    for tries, ceiling in [(1, 30), (2, 60), (3, 100), (9, 100)]:
        waits = [machine.backoff_seconds(tries) for _ in range(400)]
        assert all(0 <= wait <= ceiling for wait in waits), tries
        assert min(waits) < ceiling / 4 and max(waits) > ceiling * 3 / 4, tries
    assert machine.backoff_seconds(3, retry_after=250) == 100 and machine.backoff_seconds(3, retry_after=7) == 7


def test_reconcile_honours_retry_after(pok, course, learner, lms):
    pok.add_fault(Fault("rate_limit", endpoint="issue_credential", retry_after=3600, times=1))
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.PENDING and row.tries == 1
    assert row.not_before >= timezone.now() + timedelta(minutes=59)
    reconcile_runs(8)
    row = credential_of(learner, course)
    assert pok.count("issue_credential") == 1 and row.tries == 1


def test_an_outage_keeps_the_try_count_and_then_pauses_the_account(pok, course, learner, lms, settings):
    settings.POK_RETRY_BACKOFF_BASE = 0  # every try is due at once, so each reconcile run may send one POST
    pok.add_fault(Fault("rate_limit", endpoint="issue_credential", times=None))
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.FAILED and row.retryable and row.tries == settings.POK_MAX_RETRIES + 1
    posts = pok.count("issue_credential")
    reconcile_runs(8)
    row = credential_of(learner, course)
    # Issue 22: the first run's POST is the fifth in a row POK did not take; the account pauses, and the runs after
    # it send nothing and spend no try (the count is never reset). The credential waits, pending, and says why.
    assert row.tries == settings.POK_MAX_RETRIES + 2
    assert pok.count("issue_credential") == posts + 1
    assert row.status == CredentialStatus.PENDING and "is paused" in row.status_reason


def test_a_rate_limit_holds_for_every_learner_of_the_account(pok, course, lms):
    first, second = UserFactory(), UserFactory()
    pok.add_fault(Fault("rate_limit", endpoint="issue_credential", retry_after=120, times=1))
    lms.award(first, course)
    lms.award(second, course)  # another learner, another task chain: it must wait too
    assert pok.count("issue_credential") == 1
    assert credential_of(second, course).status == CredentialStatus.PENDING
    reconcile_runs(2)
    assert pok.count("issue_credential") == 1


def test_one_award_schedules_one_task_chain(pok, course, learner, lms, monkeypatch):
    scheduled = []
    monkeypatch.setattr(tasks, "enqueue_issuance", lambda row_id, **kwargs: scheduled.append(row_id))
    lms.award(learner, course)  # the creation filter and CERTIFICATE_CREATED both ask for it
    assert scheduled == [credential_of(learner, course).id]


# --- 7. values the LMS allows but the row does not --------------------------------------------------------------------


def test_long_course_title_and_organization_name_are_shortened(pok, learner, lms):
    OrganizationFactory(short_name="LongX", name="University " + "o" * 244)  # the organizations app keeps 255
    # display_name is a text column in the LMS; the certificate title (course block) is empty, so it is used.
    overview = CourseOverviewFactory(org="LongX", display_name="Course " + "t" * 300, certificate_title="")
    CertificateTemplate.objects.create(course_key=overview.id, template_id="tpl-basic")
    lms.award(learner, overview)
    row = credential_of(learner, overview)
    assert row.status == CredentialStatus.EMITTED, row.status_reason
    sent = pok.requests[-1].body["credential"]
    assert len(sent["title"]) == 255 and sent["title"].endswith("…") and row.title == sent["title"]
    assert len(sent["emitter"]) == 255 and row.emitter == sent["emitter"]


def test_text_longer_than_the_row_is_cut_with_an_ellipsis():
    assert fit("x" * 300) == "x" * 254 + "…" and fit("short") == "short"


# --- 8. grades that are not a number in [0, 1] ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", float("nan"), float("inf"), 1e308, "1e308", -0.5, 1.7, "A+", None])
def test_only_a_number_in_zero_to_one_is_a_grade(value):
    assert usable_grade(value) is None
    assert usable_grade("0.85") == 0.85 and usable_grade(1) == 1.0 and usable_grade(0) == 0.0


# The sandbox stores the grade in a 5-character column like the LMS, so 1e308 only reaches the plugin as a float.
@pytest.mark.parametrize("percent", [float("nan"), float("inf"), -0.5, 1.7])
def test_an_unusable_grade_holds_a_credential_that_prints_it(pok, learner, lms, percent):
    OrganizationFactory(short_name="GradeX", name="Grade University")
    overview = CourseOverviewFactory(org="GradeX")
    CertificateTemplate.objects.create(course_key=overview.id, template_id="tpl-grade")
    lms.award(learner, overview, percent=percent)
    row = credential_of(learner, overview)
    assert row.status == CredentialStatus.HELD and "grade" in row.status_reason
    assert pok.count("issue_credential") == 0


@pytest.mark.parametrize("percent", [float("nan"), 1.7])
def test_an_unusable_grade_does_not_matter_to_a_template_without_it(pok, course, learner, lms, percent):
    lms.award(learner, course, percent=percent)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED and row.grade is None


# --- 9. revocation during the POST ------------------------------------------------------------------------------------


def test_revocation_during_the_post_keeps_the_pok_id_and_says_revoke_it(pok, course, learner, lms):
    row = lms.run(api.request_issuance, learner.id, course.id)
    PokCertificate.objects.filter(id=row.id).update(status=CredentialStatus.REQUESTING)
    api.revoke(learner.id, course.id, "The Open edX certificate was revoked.")
    answer = Credential(id="cred-during-post", state="emitted", view_url=f"{pok.url}/view/cred-during-post")
    answers.store(credential_of(learner, course), answer, CredentialStatus.REQUESTING)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.REVOKED and row.pok_credential_id == "cred-during-post"
    assert "Revoke credential cred-during-post on POK" in row.status_reason


# --- 10. a hung broker ------------------------------------------------------------------------------------------------


@pytest.fixture
def hung_broker():
    """A TCP server that accepts connections and never answers: a broker hung at the worst moment."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        with celery_conf(celery_app, task_always_eager=False,
                         broker_url=f"redis://127.0.0.1:{server.getsockname()[1]}/0"):
            yield
    finally:
        stop.set()
        server.close()
        for conn in accepted:
            conn.close()
        thread.join(2)


def test_a_hung_broker_does_not_hold_certificate_generation(pok, course, learner, lms, settings, hung_broker):
    settings.POK_PUBLISH_TIMEOUT = 0.5
    # The LMS's own generation task (lms_sandbox.tasks) reached its worker before the broker hung; the hang then
    # meets the plugin's publishes (the filter step's and the CERTIFICATE_CREATED receiver's).
    generation = lms_tasks.generate_certificate
    started = time.monotonic()
    with mock.patch.object(generation, "apply_async", lambda kwargs, **_options: generation.apply(kwargs=kwargs)):
        certificate = lms.award(learner, course)
    elapsed = time.monotonic() - started
    assert certificate.status == "downloadable"
    assert elapsed < 10, f"the LMS waited {elapsed:.1f}s on a broker that never answers"
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.PENDING and "task queue" in row.status_reason
    assert pok.count("issue_credential") == 0


# --- 14. view URLs on other hosts -------------------------------------------------------------------------------------


def test_a_view_url_on_a_foreign_host_is_never_followed(client, pok, course, learner, lms):
    pok.add_fault(Fault("patch_answer", endpoint="issue_credential", fields={"viewUrl": "http://evil.example/phish"}))
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.IN_PROGRESS and "POK_VIEW_URL_HOSTS" in row.status_reason
    response = client.get(f"/certificates/{certificate.verify_uuid}")
    assert response.status_code == 200 and "evil.example" not in response.get("Location", "")


def test_a_refresh_to_a_foreign_view_url_is_not_followed(client, pok, course, learner, lms):
    pok.emission_mode = "async"
    lms.award(learner, course)
    row = credential_of(learner, course)
    pok.update_credential(row.pok_credential_id, state="emitted", viewUrl="https://pok.tech.evil.example/x")
    lms.run(machine.refresh, row.id)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.IN_PROGRESS
    assert api.public_status(row) == PublicStatus.IN_PROGRESS


def test_a_refresh_answered_with_another_credential_is_refused_with_a_reason(pok, course, learner, lms):
    """Issue 22 (17b): the row keeps its own POK id; storing the other would show the learner someone else's."""
    pok.emission_mode = "async"
    lms.award(learner, course)
    row = credential_of(learner, course)
    own_id = row.pok_credential_id
    pok.add_fault(Fault("patch_answer", endpoint="get_credential", fields={
        "id": "someone-elses-credential", "state": "emitted", "viewUrl": f"{pok.url}/view/someone-elses-credential"}))
    lms.run(machine.refresh, row.id)
    row = credential_of(learner, course)
    assert row.pok_credential_id == own_id and row.status == CredentialStatus.IN_PROGRESS and not row.view_url
    assert "someone-elses-credential" in row.status_reason and own_id in row.status_reason
    pok.polls_until_emitted = 0
    lms.run(machine.refresh, row.id)  # answered with its own id again: stored as usual
    row = credential_of(learner, course)
    assert row.pok_credential_id == own_id and row.status == CredentialStatus.EMITTED


# --- 16. small ones -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["-1", "0"])
def test_pok_sync_refuses_a_limit_that_is_not_positive(limit):
    with pytest.raises(CommandError, match="positive"):
        call_command("pok_sync", "--limit", limit, stdout=StringIO())


def test_the_staff_preview_asks_pok_once_per_real_language(client, pok, course, django_user_model):
    staff = django_user_model.objects.create_user("staff", is_staff=True)
    client.force_login(staff)
    for language in ["en", "xx", "zz-ZZ", "en-US", "", "EN", "es-419", "qq"] * 3:
        client.get(f"/pok/preview/{course.id}/image?language={language}")
    assert pok.count("preview_template") == 2  # en (also for unknown values) and es-419


def test_staff_retry_of_a_credential_pok_refused_issues_a_new_one(pok, course, learner, lms):
    pok.emission_mode = "async"
    lms.award(learner, course)
    row = credential_of(learner, course)
    pok.set_state(row.pok_credential_id, "signatureRejected")
    lms.run(machine.refresh, row.id)
    refused = credential_of(learner, course)
    assert refused.status == CredentialStatus.FAILED and refused.pok_credential_id == row.pok_credential_id
    pok.emission_mode = "sync"
    assert lms.run(staff_actions.retry, refused)
    again = credential_of(learner, course)
    assert again.status == CredentialStatus.EMITTED and again.pok_credential_id != row.pok_credential_id
    assert again.previous_credential_ids == [row.pok_credential_id] and again.issuance == 2
    assert pok.count("issue_credential") == 2


def test_the_stored_answer_keeps_no_personal_data(pok, course, learner, lms):
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.pok_response and row.pok_credential_id in row.pok_response
    assert learner.email not in row.pok_response and "Lovelace" not in row.pok_response


def test_pok_sync_says_what_happened_in_words(pok, course):
    from lms_sandbox.factories import GeneratedCertificateFactory
    from openedx_pok.management.commands import pok_sync

    for name in ("", "Ada Lovelace"):  # their rows are recorded pending; the on-commit issuance never runs here
        GeneratedCertificateFactory(user=UserFactory(profile__name=name), course_id=course.id)
    assert PokCertificate.objects.filter(status=CredentialStatus.PENDING).count() == 2
    PokCertificate.objects.update(modified=timezone.now() - timedelta(minutes=5))
    out = StringIO()
    call_command("pok_sync", stdout=out)
    assert out.getvalue().splitlines() == ["Sent 2 credentials to POK: Emitted 1, Held 1."]
    out = StringIO()
    call_command("pok_sync", stdout=out)
    assert out.getvalue().splitlines() == ["Nothing to send or to ask POK about."]
    # One credential: the singular; handed to the workers: what was handed.
    assert pok_sync.report({"issued": 1, "abandoned": 1, "refreshed": 0, "issued_now": {"emitted": 1},
                            "refreshed_now": {}}, inline=True) == [
        "Sent 1 credential to POK: Emitted 1. 1 of them was a request a stopped worker had left unanswered."]
    assert pok_sync.report({"issued": 2, "abandoned": 0, "refreshed": 1}, inline=False) == [
        "Handed 2 credentials to the workers to send.", "Handed 1 credential in progress to the workers to poll."]
