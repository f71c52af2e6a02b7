"""
What an award costs on the plugin's tables, pinned (issue 23, "Flat at a million credentials").

The LMS path as ``bench.run``'s ``Bench.award`` drives it: ``generate_certificate`` inside ``transaction.atomic()``,
so the creation filter (``RequestPokCredential``) runs first and, eager Celery here, the LMS's generation task then
saves the certificate, whose CERTIFICATE_CREATED event runs the receiver. The filter almost always comes before any
record exists and the receiver almost always after the filter made it, so the filter inserts first and the receiver
reads first: a new award is one INSERT and one SELECT on ``openedx_pok_`` tables, and one issuance scheduled.

Only statements on the plugin's tables are counted (the savepoint that guards the insert inside the LMS's transaction
and the sandbox LMS's own statements are not the plugin's cost). These tests run on SQLite and on MariaDB.
"""
import pytest
from django.db import connection, transaction
from openedx_filters.learning.filters import CertificateCreationRequested

from lms_sandbox.generation import generate_certificate
from lms_sandbox.grades import CourseGrade
from openedx_pok import api, tasks
from openedx_pok.models import CredentialStatus, PokCertificate
from test_utils.factories import CredentialFactory

pytestmark = pytest.mark.django_db

PLUGIN_PREFIX = "openedx_pok_"


def plugin_statements(sql):
    """The statements of ``sql`` (a list of strings) on the plugin's tables."""
    return [statement for statement in sql if PLUGIN_PREFIX in statement]


class Statements:
    """
    Every statement sent to the database, as sent (a ``connection.execute_wrapper``): Django's query log records a
    statement MySQL refused (the duplicate insert) as the one before it, so it cannot count the refused insert.
    """

    def __init__(self):
        self.sql = []

    def __call__(self, execute, sql, params, many, context):
        self.sql.append(sql)
        return execute(sql, params, many, context)


class Recorder:
    """
    Who ran which statements: wraps ``api.request_issuance`` (the filter passes ``expect_new``, the receiver not)
    and slices the statements by call, so the filter's and the receiver's costs are told apart.
    """

    def __init__(self, monkeypatch, statements):
        self.calls = []
        self.real = real = api.request_issuance

        def recorded(*args, **kwargs):
            start = len(statements.sql)
            try:
                return real(*args, **kwargs)
            finally:
                self.calls.append(("filter" if kwargs.get("expect_new") else "receiver", statements.sql[start:]))

        monkeypatch.setattr(api, "request_issuance", recorded)

    def of(self, caller):
        return [plugin_statements(sql) for name, sql in self.calls if name == caller]


@pytest.fixture
def published(monkeypatch):
    """The issuance tasks that would reach the broker (run on commit), recorded instead of sent."""
    sent = []
    monkeypatch.setattr(tasks, "enqueue_issuance", lambda row_id, **kwargs: sent.append(row_id))
    return sent


def award(learner, course, percent=0.9):
    """The LMS path of one award, in a transaction as ``Bench.award`` (the caller runs what it scheduled)."""
    with transaction.atomic():
        return generate_certificate(learner, course.id, CourseGrade(percent=percent, passed=True, letter_grade="Pass"))


def measured_award(monkeypatch, learner, course, django_capture_on_commit_callbacks, percent=0.9):
    """One award with what it scheduled on commit run; its statements, by caller and in all."""
    statements = Statements()
    with django_capture_on_commit_callbacks(execute=True), connection.execute_wrapper(statements):
        recorder = Recorder(monkeypatch, statements)
        certificate = award(learner, course, percent)
    monkeypatch.setattr(api, "request_issuance", recorder.real)
    return certificate, recorder, statements.sql


def test_a_new_award_is_one_insert_by_the_filter_and_one_read_by_the_receiver(
        course, learner, published, monkeypatch, django_capture_on_commit_callbacks):
    api.is_pok_enabled(course.id)  # the mappings are cached, as after any earlier award or page view
    certificate, recorder, sql = measured_award(monkeypatch, learner, course, django_capture_on_commit_callbacks)

    assert certificate.status == "downloadable"
    (filter_sql,), (receiver_sql,) = recorder.of("filter"), recorder.of("receiver")
    assert len(filter_sql) == 1 and filter_sql[0].upper().startswith("INSERT INTO"), filter_sql
    assert len(receiver_sql) == 1 and receiver_sql[0].upper().startswith("SELECT"), receiver_sql
    assert "ORDER BY" not in receiver_sql[0].upper()  # one row by its unique key
    assert len(plugin_statements(sql)) == 2, plugin_statements(sql)  # nothing else of the award touches the plugin
    row = PokCertificate.objects.get(user=learner, course_key=course.id)
    assert row.status == CredentialStatus.PENDING and row.grade == 0.9
    assert published == [row.id]  # one task chain


def test_the_filter_again_for_an_existing_row_reads_it_after_the_refused_insert(
        course, learner, published, monkeypatch, django_capture_on_commit_callbacks):
    """A repeated award (the LMS regenerates a certificate): the insert meets the row, the read finds it."""
    with django_capture_on_commit_callbacks(execute=True):
        award(learner, course)
    row = PokCertificate.objects.get(user=learner, course_key=course.id)
    assert published == [row.id]

    _certificate, recorder, sql = measured_award(monkeypatch, learner, course, django_capture_on_commit_callbacks)

    (filter_sql,), (receiver_sql,) = recorder.of("filter"), recorder.of("receiver")
    assert [statement.split()[0].upper() for statement in filter_sql] == ["INSERT", "SELECT"], filter_sql
    assert len(receiver_sql) == 1 and receiver_sql[0].upper().startswith("SELECT"), receiver_sql
    assert len(plugin_statements(sql)) == 3
    assert any(statement.upper().startswith("ROLLBACK TO SAVEPOINT") for statement in sql)  # the LMS's transaction
    assert PokCertificate.objects.filter(user=learner, course_key=course.id).count() == 1
    assert PokCertificate.objects.get(id=row.id).status == CredentialStatus.PENDING
    assert published == [row.id]  # the first award's only: the pending row already has its task


def test_the_filter_again_with_a_new_grade_updates_it(course, learner, published, monkeypatch,
                                                       django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        award(learner, course, percent=0.7)
    _certificate, recorder, _sql = measured_award(monkeypatch, learner, course, django_capture_on_commit_callbacks,
                                                  percent=0.95)
    (filter_sql,) = recorder.of("filter")
    assert [statement.split()[0].upper() for statement in filter_sql] == ["INSERT", "SELECT", "UPDATE"]
    assert PokCertificate.objects.get(user=learner, course_key=course.id).grade == 0.95
    assert len(published) == 1  # the first award's only


@pytest.mark.parametrize("traits, expected", [
    ({"revoked": True}, CredentialStatus.PENDING),
    ({"held": True}, CredentialStatus.PENDING),
    ({"failed_retryable": True}, CredentialStatus.PENDING),
    ({"failed": True}, CredentialStatus.FAILED),
    ({"emitted": True}, CredentialStatus.EMITTED),
])
def test_the_filter_on_an_existing_row_keeps_the_rules(course, learner, published, traits, expected,
                                                       django_capture_on_commit_callbacks):
    """Revoked: a new issuance; held or a retryable failure: pending again; the others as they are; one task each."""
    row = CredentialFactory(user=learner, course_key=course.id, **traits)
    with django_capture_on_commit_callbacks(execute=True):
        result = CertificateCreationRequested.run_filter(
            user=learner, course_key=course.id, mode="verified", status=None,
            grade=CourseGrade(percent=0.9, passed=True, letter_grade="Pass"), generation_mode=None)
    assert result[0] == learner
    stored = PokCertificate.objects.get(id=row.id)
    assert stored.status == expected
    assert PokCertificate.objects.filter(user=learner, course_key=course.id).count() == 1
    assert published == ([row.id] if expected == CredentialStatus.PENDING else [])
    if traits == {"revoked": True}:
        assert stored.issuance == row.issuance + 1

