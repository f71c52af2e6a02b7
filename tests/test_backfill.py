"""
The backfill (``pok_backfill``, ``api.backfill``, the course mappings admin's action): learners who earned a
certificate before their course issued POK credentials get exactly one, through the real issuance task and the POK
simulator over HTTP; re-runs, POK outages, the rate, the limit and bad input end in clear counts and errors.
"""
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from opaque_keys.edx.keys import CourseKey

from lms_sandbox import models as sandbox_models
from lms_sandbox.factories import CourseOverviewFactory, GeneratedCertificateFactory, OrganizationFactory, UserFactory
from openedx_pok import api, compat, lms_tables, tasks
from openedx_pok.course_setup import configuration
from openedx_pok.issuance import backfill, outage
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from pok_simulator import Fault
from tests.test_compat import install

pytestmark = pytest.mark.django_db

LATE = CourseKey.from_string("course-v1:LateX+L101+2026")


@pytest.fixture
def late_course(db):
    """A course of organization LateX whose certificates are awarded before it is mapped (see ``earn``)."""
    OrganizationFactory(short_name="LateX", name="Late University")
    return CourseOverviewFactory(id=LATE, org="LateX", display_name="Issued Late 101")


def earn(course_id, count, **certificate):
    """``count`` learners with a certificate in the course, awarded while no POK credential is issued for it."""
    assert not api.is_pok_enabled(course_id)
    return [GeneratedCertificateFactory(course_id=course_id, **certificate).user for _ in range(count)]


def map_course(course_id, **fields):
    return CertificateTemplate.objects.create(course_key=course_id, template_id="tpl-basic", **fields)


def backfill_command(lms, *args):
    """Run ``pok_backfill`` and then what it scheduled on commit (the issuance tasks, eager); returns its output."""
    out, err = io.StringIO(), io.StringIO()
    lms.run(call_command, "pok_backfill", *args, stdout=out, stderr=err)
    return out.getvalue()


def credentials():
    return list(PokCertificate.objects.order_by("id"))


def test_every_earlier_certificate_gets_one_credential(pok, late_course, lms):
    learners = earn(LATE, 4)
    GeneratedCertificateFactory(course_id=LATE, status="notpassing")  # not earned: nothing for it
    other = CourseOverviewFactory(id=CourseKey.from_string("course-v1:LateX+OTHER+2026"), org="LateX")
    GeneratedCertificateFactory(course_id=other.id)  # a course that is not part of this backfill
    assert not PokCertificate.objects.exists()
    map_course(LATE)

    output = backfill_command(lms, "--course", str(LATE))

    rows = credentials()
    assert {row.user_id for row in rows} == {learner.id for learner in learners}
    assert all(row.status == CredentialStatus.EMITTED for row in rows), [row.status_reason for row in rows]
    assert pok.count("issue_credential") == 4
    for learner in learners:
        assert len(pok.credentials_for(learner.email)) == 1
    certificate = sandbox_models.GeneratedCertificate.objects.get(user=learners[0])
    assert PokCertificate.objects.get(user=learners[0]).verify_uuid == certificate.verify_uuid
    assert "4 certificates examined" in output
    assert _line(output, "Requested") == "4"


def _line(output, label):
    """The count on a line of the summary table ("  Requested        4  (...)" -> "4")."""
    line = next(line.strip() for line in output.splitlines() if line.strip().startswith(label))
    return line[len(label):].split()[0]


def test_rerun_counts_what_is_there_and_sends_nothing_again(pok, late_course, lms):
    earn(LATE, 3)
    map_course(LATE)
    backfill_command(lms, "--course", str(LATE))
    assert pok.count("issue_credential") == 3

    output = backfill_command(lms, "--course", str(LATE))

    assert pok.count("issue_credential") == 3
    assert PokCertificate.objects.count() == 3
    assert _line(output, "Requested") == "0"
    assert _line(output, "Already had a credential") == "3"
    assert "Emitted 3" in output


def test_held_reasons_are_grouped_and_refusals_left_to_staff(pok, late_course, lms):
    earn(LATE, 2)
    nameless = [GeneratedCertificateFactory(course_id=LATE, user=UserFactory(profile__name="")).user
                for _ in range(2)]  # learners whose profile has no usable name
    map_course(LATE)
    pok.add_fault(Fault("status", endpoint="issue_credential", status=400, times=1))  # POK refuses the first POST
    backfill_command(lms, "--course", str(LATE))
    statuses = sorted(row.status for row in credentials())
    assert statuses == sorted([CredentialStatus.EMITTED, CredentialStatus.FAILED] + [CredentialStatus.HELD] * 2)
    posts = pok.count("issue_credential")
    assert posts == 2

    output = backfill_command(lms, "--course", str(LATE))

    assert pok.count("issue_credential") == posts  # held and refused credentials are not sent again
    assert _line(output, "Held") == "2"
    held_reason = PokCertificate.objects.get(user=nameless[0]).status_reason
    assert f"       2  {held_reason}" in output
    assert _line(output, "Failed") == "1"
    assert _line(output, "Already had a credential") == "1"


def test_rerun_after_a_pok_outage_half_way_completes_without_a_duplicate(pok, late_course, lms, settings,
                                                                       monkeypatch):
    monkeypatch.setattr(outage, "PROBE_DELAY_BASE", 0)  # the account's pause ends as soon as POK answers again
    learners = earn(LATE, 6)
    map_course(LATE)
    first = backfill_command(lms, "--course", str(LATE), "--limit", "3")
    assert _line(first, "Requested") == "3" and "Stopped at --limit" in first
    assert pok.count("issue_credential") == 3

    # POK goes away: the rest of the learners are recorded, their tasks fail for now (retryable). Issue 22: the
    # fourth learner's tries and one of the fifth's are five refused connections in a row, which pause the account;
    # the fifth and sixth then wait for POK (pending), without a try. None is left to staff.
    settings.POK_API_URL = "http://127.0.0.1:9"
    configuration.reset_clients()
    cache.clear()
    second = backfill_command(lms, "--course", str(LATE))
    assert _line(second, "Requested") == "3" and _line(second, "Already had a credential") == "3"
    statuses = sorted(row.status for row in credentials())
    assert statuses == [CredentialStatus.EMITTED] * 3 + [CredentialStatus.FAILED] + [CredentialStatus.PENDING] * 2
    assert all(row.retryable for row in credentials() if row.status == CredentialStatus.FAILED)

    # POK is back: the run completes what is missing, and only that (the credentials that waited are the reconcile
    # run's: eager Celery left them to it).
    settings.POK_API_URL = pok.url
    configuration.reset_clients()
    third = backfill_command(lms, "--course", str(LATE))
    assert _line(third, "Requested") == "1" and "1 of them after a temporary failure" in third
    api.reconcile(inline=True, pending_grace=timedelta(0))
    assert all(row.status == CredentialStatus.EMITTED for row in credentials())
    assert pok.count("issue_credential") == 6
    for learner in learners:
        assert len(pok.credentials_for(learner.email)) == 1


def test_rate_spreads_the_tasks_across_all_workers(pok, late_course, lms):
    earn(LATE, 5)
    map_course(LATE)
    started = datetime.now(UTC)
    backfill_command(lms, "--course", str(LATE), "--rate", "0.5")

    rows = credentials()
    # The first one goes at once; the k-th is not sent before k / rate seconds, whichever worker picks it up.
    assert rows[0].status == CredentialStatus.EMITTED and rows[0].not_before is None
    assert all(row.status == CredentialStatus.PENDING for row in rows[1:])
    offsets = [(row.not_before - started).total_seconds() for row in rows[1:]]
    for k, offset in enumerate(offsets, start=1):
        assert k / 0.5 - 0.1 <= offset < k / 0.5 + 1, offsets
    gaps = [later - earlier for earlier, later in zip(offsets, offsets[1:], strict=False)]
    assert all(gap == pytest.approx(2.0, abs=0.05) for gap in gaps), gaps
    assert pok.count("issue_credential") == 1

    lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))  # too early: nothing is due yet
    assert pok.count("issue_credential") == 1
    PokCertificate.objects.update(not_before=datetime.now(UTC) - timedelta(seconds=1))  # their turns have come
    lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))
    assert all(row.status == CredentialStatus.EMITTED for row in credentials())
    assert pok.count("issue_credential") == 5


def test_the_kth_task_is_scheduled_with_countdown_k_over_rate():
    """The service on its own: the countdowns handed to the scheduler, with a clock that does not move."""
    pacer = backfill.Pacer(rate=4, clock=lambda: 100.0, sleep=pytest.fail)
    assert [pacer.next_offset() for _ in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    unpaced = backfill.Pacer(rate=None)
    assert [unpaced.next_offset() for _ in range(3)] == [0.0, 0.0, 0.0]


def test_the_run_sleeps_instead_of_filling_the_broker_far_ahead():
    now = [0.0]
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    pacer = backfill.Pacer(rate=10, clock=lambda: now[0], sleep=sleep, max_ahead=5)
    offsets = []
    for _ in range(80):
        pacer.wait_if_ahead()
        offsets.append(pacer.next_offset())
    assert max(offsets) <= 5 + 1e-9  # never more than five seconds of tasks waiting in the broker
    assert offsets[:51] == pytest.approx([k / 10 for k in range(51)])
    assert sum(slept) == pytest.approx(7.9 - 5)  # the 80th task (k = 79) is due at 7.9 s


def test_service_hands_countdowns_to_the_scheduler(pok, late_course, lms):
    earn(LATE, 4)
    map_course(LATE)
    scheduled = []
    with lms.capture(execute=True):
        report = backfill.run([LATE], lambda row_id, countdown: scheduled.append((row_id, countdown)), rate=2,
                              clock=lambda: 50.0, sleep=pytest.fail)
    assert [countdown for _row_id, countdown in scheduled] == [0.0, 0.5, 1.0, 1.5]
    assert sorted(row_id for row_id, _countdown in scheduled) == [row.id for row in credentials()]
    assert report.requested == 4 and pok.count("issue_credential") == 0  # the scheduler given sent nothing


def test_retry_after_holds_for_every_task_of_the_run(pok, late_course, lms):
    earn(LATE, 3)
    map_course(LATE)
    pok.add_fault(Fault("rate_limit", endpoint="issue_credential", retry_after=30, times=1))
    backfill_command(lms, "--course", str(LATE))
    assert pok.count("issue_credential") == 1  # the others waited for POK's Retry-After, none POSTed
    assert all(row.status == CredentialStatus.PENDING for row in credentials())

    cache.clear()  # the account's wait is over, and so is the refused credential's own backoff
    PokCertificate.objects.update(not_before=datetime.now(UTC) - timedelta(seconds=1))
    configuration.reset_clients()
    lms.run(api.reconcile, inline=True, pending_grace=timedelta(0))
    assert all(row.status == CredentialStatus.EMITTED for row in credentials())
    assert pok.count("issue_credential") == 4


def test_dry_run_writes_and_sends_nothing(pok, late_course, lms):
    earn(LATE, 3)
    map_course(LATE)
    output = backfill_command(lms, "--course", str(LATE), "--dry-run")
    assert "dry run" in output and _line(output, "Requested") == "3"
    assert not PokCertificate.objects.exists()
    assert pok.count() == 0


def test_since_and_until_bound_the_certificate_dates(pok, late_course, lms):
    for day in (1, 10, 20, 31):
        GeneratedCertificateFactory(course_id=LATE, created_date=datetime(2026, 3, day, 12, tzinfo=UTC))
    map_course(LATE)
    output = backfill_command(lms, "--course", str(LATE), "--since", "2026-03-10", "--until", "2026-03-20")
    assert _line(output, "Requested") == "2"  # the 10th and the 20th: --until includes its whole day
    created = {row.user.generatedcertificate_set.get().created_date.day for row in credentials()}
    assert created == {10, 20}
    output = backfill_command(lms, "--course", str(LATE), "--since", "2026-03-20T13:00:00+00:00")
    assert _line(output, "Requested") == "1"


def test_org_backfills_its_pok_enabled_courses_only(pok, late_course, lms):
    opted_out = CourseOverviewFactory(id=CourseKey.from_string("course-v1:LateX+OPT+2026"), org="LateX")
    earn(LATE, 2)
    earn(opted_out.id, 2)
    CertificateTemplate.objects.create(organization="LateX", template_id="tpl-basic")
    map_course(opted_out.id, enabled=False)
    output = backfill_command(lms, "--org", "LateX")
    assert "POK backfill of 1 course:" in output
    assert {row.course_key for row in credentials()} == {LATE}
    assert pok.count("issue_credential") == 2


@pytest.mark.parametrize(("args", "message"), [
    (("--course", "not-a-course"), "is not a course key"),
    (("--course", "course-v1:LateX+NOPE+2026"), "does not exist in Open edX"),
    (("--course", str(LATE)), "is not mapped to a POK template"),
    (("--org", "LateX"), "No course of the organization LateX is mapped"),
    (("--org", "NobodyX"), "has no courses"),
    (("--course", str(LATE), "--since", "2026-03-02", "--until", "2026-03-01"), "--since must be before --until"),
    (("--course", str(LATE), "--since", "last tuesday"), "is not a date"),
    (("--course", str(LATE), "--since", "2026-02-30"), r"^2026-02-30 is not a date \(YYYY-MM-DD\)"),
    (("--course", str(LATE), "--until", "2026-03-01T25:00"), "^2026-03-01T25:00 is not a date"),
    (("--course", str(LATE), "--limit", "-1"), "--limit must be a positive number"),
    (("--course", str(LATE), "--rate", "-2"), "--rate must be a positive number"),
    (("--course", str(LATE), "--rate", "0"), "--rate must be a positive number"),
    (("--course", str(LATE), "--org", "LateX"), "not allowed with argument"),
    ((), "one of the arguments --course --org is required"),
])
def test_bad_input_is_a_clear_error(pok, late_course, args, message):
    earn(LATE, 1)
    with pytest.raises(CommandError, match=message):
        call_command("pok_backfill", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert not PokCertificate.objects.exists()


def test_disabled_mapping_is_a_clear_error(pok, late_course):
    map_course(LATE, enabled=False)
    with pytest.raises(CommandError, match="mapping is disabled"):
        call_command("pok_backfill", "--course", str(LATE), stdout=io.StringIO())


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_only(pok, late_course, lms):
    earn(LATE, 3)
    map_course(LATE)
    terminal, piped = Terminal(), io.StringIO()
    lms.run(call_command, "pok_backfill", "--course", str(LATE), "--dry-run", stdout=io.StringIO(), stderr=terminal)
    assert "3/3" in terminal.getvalue() and "certificates" in terminal.getvalue()
    lms.run(call_command, "pok_backfill", "--course", str(LATE), "--dry-run", stdout=io.StringIO(), stderr=piped)
    assert piped.getvalue() == ""


def test_streams_in_keyset_pages_with_a_few_queries_per_batch(pok, late_course, lms):
    """Memory and queries follow the batch, not the number of learners: pages by id, never the whole table."""
    earn(LATE, 25)
    map_course(LATE)

    def queries(**options):
        PokCertificate.objects.all().delete()
        configuration.forget_course(LATE)  # the course's facts are read again, once per run
        with CaptureQueriesContext(connection) as captured:
            report = backfill.run([LATE], lambda *args, **kwargs: None, batch_size=10, **options)
        sql = [query["sql"] for query in captured.captured_queries if "SAVEPOINT" not in query["sql"]]
        # Once per run, not per batch: the course's facts (its overview and organization) for its release date.
        course = [statement for statement in sql if "courseoverview" in statement or "organization" in statement]
        assert len(course) == 2
        return report, [statement for statement in sql if statement not in course]

    report, sql = queries()
    assert report.requested == 25 and PokCertificate.objects.count() == 25
    pages = [statement for statement in sql if "lms_sandbox_generatedcertificate" in statement]
    assert len(pages) == 3 and all("LIMIT 10" in page and "OFFSET" not in page for page in pages)
    # per batch: its page, its existing credentials, one insert, the new rows' ids, their history lines
    assert len(sql) == 3 * 5
    _report, dry = queries(dry_run=True)
    assert len(dry) == 3 * 2  # a dry run reads only


def test_each_new_credential_starts_its_history_with_who_asked_for_it(pok, late_course):
    from openedx_pok.issuance import history
    from openedx_pok.issuance.history import Cause
    from openedx_pok.models import CredentialEvent

    earn(LATE, 3)
    map_course(LATE)
    staff = get_user_model().objects.create_user("course-staff")
    with history.recorded_as(Cause.BACKFILL, staff.id):
        backfill.run([LATE], lambda *args, **kwargs: None)
    lines = CredentialEvent.objects.order_by("credential_id")
    assert [(line.cause, line.actor_id, line.from_status, line.to_status) for line in lines] == [
        (Cause.BACKFILL, staff.id, "", CredentialStatus.PENDING)] * 3
    assert {line.credential_id for line in lines} == set(PokCertificate.objects.values_list("id", flat=True))
    from openedx_pok.admin.credential_page import history_text

    assert history_text(lines[0]) == "Staff member course-staff requested it with a backfill (Pending)."


def test_certificates_stream_lazily_through_compat(late_course):
    earn(LATE, 5)
    stream = compat.iter_downloadable_certificates([LATE], batch_size=2)
    with CaptureQueriesContext(connection) as captured:
        first = next(stream)
    assert len(captured.captured_queries) == 1
    records = [first, *stream]
    assert [record.certificate_id for record in records] == sorted(record.certificate_id for record in records)
    assert isinstance(first, lms_tables.CertificateRecord) and first.course_key == LATE and first.created
    with pytest.raises(AttributeError):
        first.user_id = 1  # frozen
    assert compat.count_downloadable_certificates([LATE]) == 5
    assert list(compat.iter_downloadable_certificates([LATE], after_id=records[2].certificate_id)) == records[3:]


def test_platform_backend_reads_the_lms_models(monkeypatch, settings, late_course):
    """The platform backend's queries, run against the sandbox tables standing in for the LMS's models."""
    settings.POK_COMPAT_BACKEND = compat.DEFAULT_BACKEND
    install(monkeypatch, "lms.djangoapps.certificates.models", GeneratedCertificate=sandbox_models.GeneratedCertificate)
    install(monkeypatch, "openedx.core.djangoapps.content.course_overviews.models",
            CourseOverview=sandbox_models.CourseOverview)
    learners = earn(LATE, 3)
    assert [record.user_id for record in compat.iter_downloadable_certificates([LATE])] == [u.id for u in learners]
    assert compat.count_downloadable_certificates([LATE], since=datetime(2000, 1, 1, tzinfo=UTC)) == 3
    assert compat.get_course_keys_for_org("LateX") == (LATE,)
    assert compat.get_course_keys_for_org("NobodyX") == ()


def test_admin_action_backfills_the_selected_courses_in_the_background(
    pok, late_course, client, django_capture_on_commit_callbacks,
):
    earn(LATE, 3)
    mapping = map_course(LATE)
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:openedx_pok_certificatetemplate_changelist"), {
            "action": "backfill_courses", "_selected_action": [mapping.id], "post": "yes",
        }, follow=True)
    assert b"Backfill of 1 course: 3 credentials requested in the background" in response.content
    assert all(row.status == CredentialStatus.EMITTED for row in credentials())
    assert pok.count("issue_credential") == 3

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:openedx_pok_certificatetemplate_changelist"), {
            "action": "backfill_courses", "_selected_action": [mapping.id], "post": "yes",
        }, follow=True)
    assert b"0 credentials requested in the background; 3 learners already had one" in response.content
    assert pok.count("issue_credential") == 3


def test_admin_action_reports_a_course_it_cannot_backfill(pok, late_course, client):
    mapping = map_course(LATE, enabled=False)
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    response = client.post(reverse("admin:openedx_pok_certificatetemplate_changelist"), {
        "action": "backfill_courses", "_selected_action": [mapping.id], "post": "yes",
    }, follow=True)
    assert b"is not mapped to a POK template (or its mapping is disabled)" in response.content
    assert not PokCertificate.objects.exists()


def test_background_task_skips_courses_no_longer_enabled(pok, late_course, lms):
    earn(LATE, 1)
    assert tasks.backfill_courses_task(course_keys=[str(LATE)]) is None  # not mapped (any more): nothing done
    map_course(LATE)
    with lms.capture(execute=True):
        counts = tasks.backfill_courses_task(course_keys=[str(LATE)])
    assert counts["requested"] == 1
    assert credentials()[0].status == CredentialStatus.EMITTED


def test_a_credential_the_lms_records_meanwhile_is_counted_not_duplicated(pok, late_course, lms):
    """The learner's own award event wins the race against the batch insert: counted as already there."""
    learner = earn(LATE, 1)[0]
    map_course(LATE)
    record = next(compat.iter_downloadable_certificates([LATE]))
    lms.run(api.request_issuance, learner.id, LATE)  # recorded by the LMS flow after the batch was read
    report = backfill.BackfillReport()
    scheduled = []
    backfill._create([record], backfill.Pacer(), lambda *args, **kwargs: scheduled.append(args), report)  # noqa: SLF001
    assert report.requested == 0 and report.already_had == {"emitted": 1} and scheduled == []
    assert PokCertificate.objects.count() == 1


def test_a_failure_retried_meanwhile_is_counted_not_scheduled_twice(pok, late_course, lms):
    learner = earn(LATE, 1)[0]
    map_course(LATE)
    lms.run(api.request_issuance, learner.id, LATE)
    row = PokCertificate.objects.get()
    report = backfill.BackfillReport()
    backfill._retry([row.id], backfill.Pacer(), pytest.fail, report)  # noqa: SLF001 - it is emitted, not failed
    assert report.requested == 0 and report.already_had == {"emitted": 1}


@pytest.mark.mysql
def test_an_insert_the_database_ignores_is_counted_as_failed(pok, late_course):
    """MariaDB's INSERT IGNORE also drops rows for other reasons (here a learner that does not exist)."""
    map_course(LATE)
    report = backfill.BackfillReport()
    ghost = lms_tables.CertificateRecord(certificate_id=1, user_id=987654, course_key=LATE)
    backfill._create([ghost], backfill.Pacer(), pytest.fail, report)  # noqa: SLF001
    assert report.requested == 0 and sum(report.failed.values()) == 1
    assert not PokCertificate.objects.exists()


def test_summary_lists_the_most_common_reasons_and_adds_up_the_rest():
    from openedx_pok.management.commands.pok_backfill import summary

    report = backfill.BackfillReport(courses=(LATE,), examined=40)
    for n in range(12):
        report.held[f"reason {n}"] = 12 - n
    text = summary(report)
    assert "reason 0" in text and "reason 9" in text and "reason 10" not in text
    assert f"{2 + 1:>8}  (other reasons)" in text  # reasons 10 and 11: 2 + 1 credentials
    assert _line(text, "Held") == str(sum(range(1, 13)))


def test_admin_says_when_the_background_run_cannot_start(pok, late_course, client):
    from test_utils import celery_conf

    earn(LATE, 2)
    mapping = map_course(LATE)
    client.force_login(get_user_model().objects.create_superuser("boss", "boss@example.com", "pw"))
    with celery_conf(tasks.backfill_courses_task.app, task_always_eager=False, broker_url="redis://127.0.0.1:1/0",
                     broker_connection_retry=False, broker_connection_max_retries=0, task_publish_retry=False,
                     broker_connection_timeout=0.5):
        response = client.post(reverse("admin:openedx_pok_certificatetemplate_changelist"), {
            "action": "backfill_courses", "_selected_action": [mapping.id], "post": "yes",
        }, follow=True)
    assert b"The backfill could not be started: the task queue cannot be reached." in response.content
    assert not PokCertificate.objects.exists()


# ---- messages to the workers (issue 12: the worker's cost per credential) ------------------------------------


@pytest.fixture
def published(monkeypatch):
    """(task name, row ids) of every message the backfill publishes, instead of sending it."""
    messages = []
    monkeypatch.setattr(tasks, "_publish", lambda task, argument, _kwargs, countdown=0: messages.append(
        (task.name, argument if isinstance(argument, list) else [argument], countdown)))
    return messages


def test_without_a_rate_the_workers_get_a_few_credentials_per_message(pok, late_course, lms, published):
    earn(LATE, 12)
    map_course(LATE)
    backfill_command(lms, "--course", str(LATE))
    ids = [row.id for row in credentials()]
    assert [(name, len(rows)) for name, rows, _countdown in published] == [
        ("openedx_pok.tasks.issue_credentials", tasks.BACKFILL_CHUNK_SIZE),
        ("openedx_pok.tasks.issue_credentials", tasks.BACKFILL_CHUNK_SIZE),
        ("openedx_pok.tasks.issue_credentials", 2)]
    assert sorted(row for _name, rows, _countdown in published for row in rows) == ids  # each once


def test_with_a_rate_each_credential_keeps_its_own_countdown(pok, late_course, lms, published):
    earn(LATE, 3)
    map_course(LATE)
    backfill_command(lms, "--course", str(LATE), "--rate", "2")
    one_each = [("openedx_pok.tasks.issue_credential", 1)] * 3
    assert [(name, len(rows)) for name, rows, _countdown in published] == one_each
    # The k-th one due k / rate seconds after the run's start (less the moments the run itself took).
    assert [countdown for _name, _rows, countdown in published] == pytest.approx([0.0, 0.5, 1.0], abs=0.05)


def test_a_chunk_the_broker_refuses_stays_pending_with_a_reason(pok, late_course, lms, monkeypatch):
    def broker_down(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(tasks, "_publish", broker_down)
    earn(LATE, 3)
    map_course(LATE)
    backfill_command(lms, "--course", str(LATE))
    rows = credentials()
    assert [row.status for row in rows] == [CredentialStatus.PENDING] * 3
    assert all("task queue could not be reached" in row.status_reason for row in rows)
    assert pok.count("issue_credential") == 0
