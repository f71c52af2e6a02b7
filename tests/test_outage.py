"""
A POK outage (issue 22, item 1): POK answering 503 to everything for a while (a deploy, an overload), or refusing
connections, must not hand any credential to staff. Requests POK did not process are retried, never counted as
ambiguous; several in a row pause the account (no POST, no try spent, a reason on each waiting credential), a health
check (``GET /organization/me``) with backoff resumes it by itself, and the reconcile run then issues every credential
that waited, exactly once. Staff see the pause in ``pok_check`` and the course mapping admin.

Eager Celery, so each waiting credential is left to the reconcile run (``tasks._left_to_reconcile``); the real worker
on Redis is ``tests/test_bench_outage.py``.
"""
import time
from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from lms_sandbox.factories import UserFactory
from openedx_pok import api
from openedx_pok.issuance import outage
from openedx_pok.models import CredentialStatus, PokCertificate
from pok_simulator import Fault
from test_utils import credential_of

pytestmark = pytest.mark.django_db

NEEDS_STAFF = {"status": CredentialStatus.FAILED, "retryable": False}


@pytest.fixture
def quick_checks(monkeypatch):
    """Health checks a few hundredths of a second apart, so a test can wait them out."""
    monkeypatch.setattr(outage, "PROBE_DELAY_BASE", 0.05)
    monkeypatch.setattr(outage, "PROBE_DELAY_MAX", 0.2)


def reconcile_runs(count, pause=0.0):
    for _ in range(count):
        time.sleep(pause)
        api.reconcile(inline=True, pending_grace=timedelta(0))


def award_many(lms, course, count, prefix="Outage"):
    learners = [UserFactory(profile__name=f"{prefix} Learner{index}") for index in range(count)]
    for learner in learners:
        lms.award(learner, course)
    return learners


def warm(pok, course, lms):
    """One credential before the outage: the template definition is cached, so the outage meets the POSTs."""
    (first,) = award_many(lms, course, 1, prefix="Before")
    assert credential_of(first, course).status == CredentialStatus.EMITTED
    return pok.count("issue_credential")


def test_a_503_outage_pauses_the_account_and_hands_nothing_to_staff(pok, course, lms, quick_checks):
    before = warm(pok, course, lms)
    pok.add_fault(Fault("respond", status=503, body='{"message": "deploying"}', times=None))
    learners = award_many(lms, course, 12)
    rows = PokCertificate.objects.filter(user__in=learners)
    # Five requests in a row that POK did not take (the first learner's four tries, one of the second's) pause the
    # account: the other ten never reach POK.
    assert pok.count("issue_credential") - before == outage.PAUSE_AFTER_FAILURES
    assert not rows.filter(**NEEDS_STAFF).exists() and not rows.filter(possible_duplicate=True).exists()
    assert not rows.filter(ambiguous_attempts__gt=0).exists()
    waiting = rows.filter(status=CredentialStatus.PENDING)
    assert waiting.count() == 11 and all("is paused" in row.status_reason for row in waiting)
    assert waiting.filter(tries=0).count() == 10  # waiting for a pause spends no try

    # A long outage: health checks with backoff, never a POST, never a try.
    tries = sorted(rows.values_list("tries", flat=True))
    checks = pok.count("get_organization")
    reconcile_runs(6, pause=0.25)
    assert pok.count("issue_credential") - before == outage.PAUSE_AFTER_FAILURES
    assert 1 <= pok.count("get_organization") - checks <= 6  # at most one per run, not one per credential
    assert sorted(rows.values_list("tries", flat=True)) == tries
    ((name, pause),) = outage.paused_accounts()
    assert name == "default" and pause["probes"] >= 1 and "deploying" in pause["error"]

    # POK is back: the next run checks its health, resumes and issues every credential that waited, exactly once.
    pok.clear_faults()
    reconcile_runs(2, pause=0.25)
    assert {row.status for row in rows} == {CredentialStatus.EMITTED}
    assert all(len(pok.credentials_for(learner.email)) == 1 for learner in learners)
    assert outage.paused_accounts() == []


def test_a_503_with_retry_after_holds_the_account_then_pauses_it(pok, course, lms, quick_checks):
    """POK's Retry-After holds every credential of the account (the gate); the refusals still add up to a pause."""
    before = warm(pok, course, lms)
    pok.add_fault(Fault("respond", status=503, body='{"message": "overloaded"}', headers=(("Retry-After", "1"),),
                        times=None))
    learners = award_many(lms, course, 6)
    assert pok.count("issue_credential") - before == 1  # the others waited for the Retry-After
    for run in range(2, 9):
        reconcile_runs(1, pause=1.05)
        assert pok.count("issue_credential") - before <= run  # one POST per Retry-After, whatever the backlog
        if outage.paused_accounts():
            break
    rows = PokCertificate.objects.filter(user__in=learners)
    assert pok.count("issue_credential") - before == outage.PAUSE_AFTER_FAILURES
    assert outage.paused_accounts() and not rows.filter(**NEEDS_STAFF).exists()
    pok.clear_faults()
    reconcile_runs(2, pause=1.05)
    assert {row.status for row in rows} == {CredentialStatus.EMITTED}


def test_refused_connections_pause_the_account_and_it_resumes_when_pok_listens_again(pok, course, lms,
                                                                                       quick_checks):
    before = warm(pok, course, lms)
    pok.stop()  # nothing listens on its port: every connection is refused
    learners = award_many(lms, course, 8)
    rows = PokCertificate.objects.filter(user__in=learners)
    assert not rows.filter(**NEEDS_STAFF).exists()
    assert all("Connection refused" in pause["error"] for _name, pause in outage.paused_accounts())
    assert rows.filter(status=CredentialStatus.PENDING, status_reason__contains="is paused").count() >= 7
    pok.start()  # the same port
    reconcile_runs(2, pause=0.25)
    assert {row.status for row in rows} == {CredentialStatus.EMITTED}
    assert pok.count("issue_credential") == before + len(learners)  # the refused ones never reached it


def test_the_reconcile_run_sends_what_waited_through_a_pause_once_its_task_is_lost(pok, course, lms, quick_checks):
    """With the default grace of the periodic run (not ``--include-recent``): a waiting credential is not sent twice
    while its task waits, and is sent once the pause is over if that task was lost (a worker killed meanwhile)."""
    warm(pok, course, lms)
    pok.add_fault(Fault("status", status=503, times=None))
    learners = award_many(lms, course, 7)
    rows = PokCertificate.objects.filter(user__in=learners)
    waiting = rows.filter(status=CredentialStatus.PENDING)
    assert waiting.count() == 6 and all(row.not_before for row in waiting)  # not due while their tasks wait
    pok.clear_faults()
    time.sleep(0.3)  # the pause's next health check is due
    # The one whose tries ran out (failed, retryable) is sent; the waiting ones are left to their tasks (the grace).
    assert api.reconcile(inline=True)["issued"] == 1
    assert rows.filter(status=CredentialStatus.PENDING).count() == 6
    rows.filter(status=CredentialStatus.PENDING).update(modified=timezone.now() - timedelta(minutes=5))
    out = StringIO()
    call_command("pok_sync", stdout=out)
    assert "Sent 6 credentials to POK: Emitted 6." in out.getvalue()
    assert {row.status for row in rows} == {CredentialStatus.EMITTED}
    assert all(len(pok.credentials_for(learner.email)) == 1 for learner in learners)


def test_a_processed_request_breaks_the_streak(pok, course, lms, quick_checks, settings):
    settings.POK_MAX_RETRIES = outage.PAUSE_AFTER_FAILURES
    warm(pok, course, lms)
    for _round in range(3):  # 4 refused POSTs, then one POK processes: never 5 in a row
        pok.add_fault(Fault("status", endpoint="issue_credential", status=503, times=outage.PAUSE_AFTER_FAILURES - 1))
        award_many(lms, course, 1, prefix=f"Round{_round}")
    assert outage.paused_accounts() == []
    assert set(PokCertificate.objects.values_list("status", flat=True)) == {CredentialStatus.EMITTED}


def test_an_ambiguous_failure_does_not_pause(pok, course, lms, quick_checks):
    """A 500 may have been processed: it is no sign of an outage (and keeps its one resend, flagged)."""
    warm(pok, course, lms)
    pok.add_fault(Fault("status", endpoint="issue_credential", status=500, times=2 * outage.PAUSE_AFTER_FAILURES))
    award_many(lms, course, outage.PAUSE_AFTER_FAILURES)
    assert outage.paused_accounts() == []


def test_refreshes_wait_for_a_paused_account(pok, course, lms, quick_checks):
    warm(pok, course, lms)
    pok.emission_mode = "async"
    award_many(lms, course, 1, prefix="Async")
    assert PokCertificate.objects.filter(status=CredentialStatus.IN_PROGRESS).count() == 1
    gets = pok.count("get_credential")
    pok.add_fault(Fault("status", status=503, times=None))
    award_many(lms, course, 6)
    assert outage.paused_accounts()
    reconcile_runs(3, pause=0.25)
    assert pok.count("get_credential") == gets  # the in-progress credential is not polled while POK is down


def test_staff_see_the_pause_in_pok_check_and_the_mapping_admin(pok, course, lms, client, monkeypatch):
    monkeypatch.setattr(outage, "PROBE_DELAY_BASE", 60)  # no health check during this test
    pok.add_fault(Fault("status", status=503, times=None))
    award_many(lms, course, 2)
    out = StringIO()
    call_command("pok_check", stdout=out)
    text = out.getvalue()
    assert "POK account 'default' is paused since" in text and "resumes by itself" in text
    assert "POK configuration OK." in text  # an outage is not a configuration problem: a deploy goes on
    out = StringIO()
    call_command("pok_sync", stdout=out)
    assert "POK account 'default' is paused since" in out.getvalue()
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    page = client.get(reverse("admin:openedx_pok_certificatetemplate_changelist"), follow=True).content.decode()
    assert "is paused since" in page and "POK is unavailable" in page
