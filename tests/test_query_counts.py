"""
Query counts that are deterministic, pinned: the costs the performance issue sets (docs/benchmarks.rst has the times).

- the certificate page of a course without a mapping: no plugin query at all (mappings are cached);
- the certificate page of an emitted credential: one indexed query;
- one award (creation filter + CERTIFICATE_CREATED, as the LMS sends them): one read and one insert by the filter, one
  read by the receiver, and one task published;
- one issuance in the worker: the plugin's own SQL is one read, the claim and the store;
- one reconcile run: the same statements for 3 or 30 rows of each kind, the rows published in chunks.
Only statements on the plugin's tables are counted where the sandbox LMS's own reads would blur the figure.
"""
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from openedx_filters.learning.filters import CertificateRenderStarted

from lms_sandbox.factories import CourseOverviewFactory, GeneratedCertificateFactory, UserFactory
from openedx_pok import api, tasks
from openedx_pok.issuance import machine
from openedx_pok.models import CredentialStatus, PokCertificate
from openedx_pok.settings.common import RENDER_FILTER
from test_utils.factories import CredentialFactory

PLUGIN_TABLES = ("openedx_pok_credential", "openedx_pok_course_template_mapping")


def plugin_statements(queries):
    return [query["sql"] for query in queries.captured_queries
            if any(table in query["sql"] for table in PLUGIN_TABLES)]


def real_statements(queries):
    """Statements, without the savepoints the test's own transaction makes the guarded writes take."""
    return [query["sql"] for query in queries.captured_queries
            if not query["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


@pytest.fixture
def render_only_the_plugin(settings):
    settings.OPEN_EDX_FILTERS_CONFIG = {
        RENDER_FILTER: {"pipeline": ["openedx_pok.pipeline.RenderPokCredential"], "fail_silently": False},
    }


def render_context(user, course, certificate):
    return {"course_id": str(course.id), "accomplishment_user_id": user.id, "user_certificate": certificate,
            "username": user.username}


@pytest.mark.django_db
def test_the_page_of_a_course_without_a_mapping_costs_no_query(course, learner, render_only_the_plugin):
    unmapped = CourseOverviewFactory()
    certificate = GeneratedCertificateFactory(user=learner, course_id=unmapped.id, status="downloadable")
    context = render_context(learner, unmapped, certificate)
    CertificateRenderStarted.run_filter(context=context, custom_template=None)  # warms the mapping cache
    with CaptureQueriesContext(connection) as queries:
        result = CertificateRenderStarted.run_filter(context=context, custom_template=None)
    assert result[0] is context
    assert len(queries) == 0, [query["sql"] for query in queries.captured_queries]


@pytest.mark.django_db
def test_the_page_of_an_emitted_credential_costs_one_query(pok, course, learner, lms, render_only_the_plugin):
    certificate = lms.award(learner, course)
    assert PokCertificate.objects.get(user=learner).status == CredentialStatus.EMITTED
    context = render_context(learner, course, certificate)
    with pytest.raises(CertificateRenderStarted.RedirectToPage):
        CertificateRenderStarted.run_filter(context=context, custom_template=None)
    with CaptureQueriesContext(connection) as queries, pytest.raises(CertificateRenderStarted.RedirectToPage):
        CertificateRenderStarted.run_filter(context=context, custom_template=None)
    assert len(queries) == 1 and "openedx_pok_credential" in queries.captured_queries[0]["sql"]
    assert "ORDER BY" not in queries.captured_queries[0]["sql"]  # one row by a unique key: nothing to sort


@pytest.mark.django_db(transaction=True)
def test_one_award_is_one_insert_one_read_and_one_publish(course, learner, monkeypatch):
    """
    Outside a transaction, as in the LMS's grades task: no savepoint around the insert. The creation filter inserts
    first (nothing is recorded yet), the receiver reads first (the filter's row is there): two statements (issue 23).
    """
    published = []
    monkeypatch.setattr(tasks, "enqueue_issuance", lambda row_id, **kwargs: published.append(row_id))
    api.is_pok_enabled(course.id)  # warms the mapping cache, as any earlier page view or award does
    with CaptureQueriesContext(connection) as queries:
        api.request_issuance(learner.id, course.id, grade=0.9, expect_new=True)  # the creation filter
        api.request_issuance(learner.id, course.id)                               # the CERTIFICATE_CREATED receiver
    statements = [query["sql"] for query in queries.captured_queries]
    assert len(statements) == 2, statements
    assert statements[0].upper().startswith("INSERT") and statements[1].upper().startswith("SELECT")
    assert not any("ORDER BY" in sql.upper() for sql in statements)
    assert len(published) == 1


@pytest.mark.django_db
def test_one_issuance_is_one_read_the_claim_the_store_and_its_history_line(pok, course, learner, lms, monkeypatch):
    monkeypatch.setattr(tasks, "enqueue_issuance", lambda *args, **kwargs: None)
    earlier = UserFactory(profile__name="Grace Hopper")
    lms.award(earlier, course)
    machine.issue(PokCertificate.objects.get(user=earlier).id)  # the course's facts are read once per minute
    certificate = lms.award(learner, course)  # nothing issued: the task was not sent
    row = PokCertificate.objects.get(user=learner)
    assert row.status == CredentialStatus.PENDING and certificate.status == "downloadable"
    with CaptureQueriesContext(connection) as queries:
        assert machine.issue(row.id) == CredentialStatus.EMITTED
    plugin = plugin_statements(queries)
    assert len(plugin) == 4, plugin
    assert plugin[0].upper().startswith("SELECT") and all(sql.upper().startswith("UPDATE") for sql in plugin[1:3])
    assert "ORDER BY" not in plugin[0].upper()
    # The credential's history line, written from the stored row in the same statement that reads it.
    assert plugin[3].upper().startswith("INSERT INTO") and "openedx_pok_credential_event" in plugin[3]
    # With the LMS's own reads of the certificate and of the learner's "pref-lang" (get_user_preference reads the
    # UserPreference table, openedx/core/djangoapps/user_api/preferences/api.py, Verawood); the learner and the
    # profile come with the row.
    assert len(real_statements(queries)) == 6, real_statements(queries)


def _reconcile_statements(monkeypatch):
    """The statements of one reconcile run (the publish recorded, not sent) and the rows of each message."""
    published = []
    monkeypatch.setattr(tasks, "_publish", lambda _task, row_ids, _kwargs, _countdown=0: published.append(len(row_ids)))
    with CaptureQueriesContext(connection) as queries:
        counts = api.reconcile()
    return counts, real_statements(queries), published


def _unfinished_rows(count):
    """``count`` rows of each kind a reconcile run handles: abandoned, pending, retryable, in progress, settled."""
    an_hour_ago = timezone.now() - timedelta(hours=1)
    for _ in range(count):
        for traits in ({"requesting": True}, {}, {"failed_retryable": True, "not_before": None},
                       {"in_progress": True}, {"emitted": True}):
            row = CredentialFactory(**traits)
            PokCertificate.objects.filter(id=row.id).update(modified=an_hour_ago)


@pytest.mark.django_db
def test_a_reconcile_run_costs_the_same_statements_for_3_or_30_rows_of_each_kind(monkeypatch, settings):
    """Set-based (issue 12.5): the statements of a run do not grow with its rows, and rows go out in chunks."""
    settings.POK_SYNC_BATCH_SIZE = 200
    _unfinished_rows(3)
    few_counts, few, few_messages = _reconcile_statements(monkeypatch)
    PokCertificate.objects.all().delete()
    _unfinished_rows(30)
    many_counts, many, many_messages = _reconcile_statements(monkeypatch)
    assert few_counts == {"abandoned": 3, "issued": 9, "refreshed": 3}  # resent, pending and retried; polled
    assert many_counts == {"abandoned": 30, "issued": 90, "refreshed": 30}
    assert len(many) == len(few), many
    # Each kind's change is one UPDATE and one history INSERT, for all its rows.
    assert sum(sql.upper().startswith("UPDATE") for sql in many) == 2, many
    assert many_messages == [tasks.RECONCILE_CHUNK_SIZE] * 4 + [10, 20, 10]  # 90 to issue, then 30 to refresh
    assert few_messages == [9, 3]
