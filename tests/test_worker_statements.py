"""
The statements the worker pays per issued credential, pinned (issue 23, "the worker").

A message of the backfill or the reconcile run carries a chunk of credential ids. Its rows are read in one statement
for the whole chunk, and so are the LMS's certificates of those learners and their "pref-lang" preferences (read
ahead through ``compat``); each credential then costs a fixed number: the plugin's claim, store and history line. So
a chunk of N credentials costs a constant number of statements plus a fixed number per credential, whatever N is; a
read per credential creeping back (a deferred column loaded on access, a lookup moved into the loop) fails here.
"""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lms_sandbox.factories import UserFactory
from openedx_pok import compat, tasks
from openedx_pok.issuance import machine
from openedx_pok.models import CredentialStatus, PokCertificate

CREDENTIALS = "openedx_pok_credential"
HISTORY = "openedx_pok_credential_event"
# Per credential: the claim and the store (UPDATE), the history line (INSERT ... SELECT).
PER_CREDENTIAL = {"update": 2, "history": 1}
# Per message: one read of all its credential rows, with their learners; the LMS's reads of their certificates and
# of their language preferences, one each.
PER_MESSAGE_READS = 1
PER_MESSAGE_LMS_READS = 2


def real_statements(queries):
    """Statements, without the savepoints the test's own transaction makes the guarded writes take."""
    return [query["sql"] for query in queries.captured_queries
            if not query["sql"].upper().startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def pending_credentials(lms, course, count):
    """``count`` learners awarded in ``course`` whose credentials wait for the worker (nothing issued yet)."""
    learners = [UserFactory(profile__name=f"Ada Lovelace{n}", pref_lang="es-419") for n in range(count)]
    for learner in learners:
        lms.award(learner, course)
    rows = list(PokCertificate.objects.filter(user__in=learners).order_by("id").values_list("id", "status"))
    assert all(status == CredentialStatus.PENDING for _id, status in rows)
    return [row_id for row_id, _status in rows]


def issue_chunk(row_ids):
    """The statements of one issuance message (``issue_credentials_task``) run here."""
    with CaptureQueriesContext(connection) as queries:
        tasks.issue_credentials_task(row_ids)
    return real_statements(queries)


def kinds(statements):
    upper = [sql.upper() for sql in statements]
    return {
        "credential_reads": sum(sql.startswith("SELECT") and CREDENTIALS.upper() in sql and HISTORY.upper() not in sql
                                for sql in upper),
        "update": sum(sql.startswith("UPDATE") and CREDENTIALS.upper() in sql for sql in upper),
        "history": sum(sql.startswith("INSERT") and HISTORY.upper() in sql for sql in upper),
        "total": len(upper),
    }


@pytest.fixture
def warm(pok, course, lms, monkeypatch):
    """Nothing sent on award (the task is not published), and the course's facts and template already cached."""
    monkeypatch.setattr(tasks, "enqueue_issuance", lambda *args, **kwargs: None)
    tasks.issue_credentials_task(pending_credentials(lms, course, 1))
    return pok


@pytest.mark.django_db
def test_a_chunk_costs_one_read_and_a_fixed_number_of_statements_per_credential(warm, course, lms):
    few, many = pending_credentials(lms, course, 2), pending_credentials(lms, course, 5)
    posts_before = warm.count("issue_credential")
    for row_ids in (few, many):
        counted = kinds(issue_chunk(row_ids))
        n = len(row_ids)
        assert counted["credential_reads"] == PER_MESSAGE_READS, counted
        assert counted["update"] == PER_CREDENTIAL["update"] * n, counted
        assert counted["history"] == PER_CREDENTIAL["history"] * n, counted
        assert counted["total"] == PER_MESSAGE_READS + PER_MESSAGE_LMS_READS + n * sum(PER_CREDENTIAL.values()), \
            counted
    assert set(PokCertificate.objects.filter(id__in=few + many).values_list("status", flat=True)) == {
        CredentialStatus.EMITTED}
    assert warm.count("issue_credential") - posts_before == len(few) + len(many)


@pytest.mark.django_db
def test_the_chunk_read_is_one_statement_with_the_learners_and_only_the_columns_issuance_uses(warm, course, lms):
    row_ids = pending_credentials(lms, course, 3)
    with CaptureQueriesContext(connection) as queries:
        rows = machine.read_rows(row_ids)
    assert len(queries) == 1
    sql = queries.captured_queries[0]["sql"]
    assert "ORDER BY" not in sql.upper() and "auth_user" in sql
    for written_only in ("pok_response", "custom_parameters", "previous_credential_ids", "status_reason"):
        assert written_only not in sql, written_only
    # What issuance reads of the learner comes with the row: no statement of its own.
    with CaptureQueriesContext(connection) as queries:
        for row in rows.values():
            assert row.user.email and row.user.username and row.user.profile.name
            assert row.idempotency_key and row.status == CredentialStatus.PENDING
    assert len(queries) == 0, [query["sql"] for query in queries.captured_queries]


@pytest.mark.django_db
@pytest.mark.parametrize("moved_on", [
    {"issuance": 2},            # re-issued: the newer issuance goes with its own idempotency key
    {"tries": 1},               # a transient failure since: its own task comes back after the backoff
    {"ambiguous_attempts": 1},  # an interrupted request since: the one resend is the reconcile run's
])
def test_a_row_read_with_its_chunk_is_not_claimed_once_it_moved_on(warm, course, lms, moved_on):
    """Another path moved the row on between the chunk's read and this credential's turn, leaving it pending."""
    (row_id,) = pending_credentials(lms, course, 1)
    stale = machine.read_rows([row_id])[row_id]
    PokCertificate.objects.filter(id=row_id).update(**moved_on)
    posts_before = warm.count("issue_credential")
    assert tasks.run_issuance(row_id, row=stale) == CredentialStatus.PENDING
    assert warm.count("issue_credential") == posts_before  # nothing sent from the stale copy
    row = PokCertificate.objects.get(id=row_id)
    assert row.status == CredentialStatus.PENDING and row.attempts == 0
    assert tasks.run_issuance(row_id, tries=row.tries) == CredentialStatus.EMITTED  # read afresh, it goes
    assert warm.count("issue_credential") == posts_before + 1


@pytest.mark.django_db
def test_what_a_message_reads_ahead_is_what_the_lms_says_and_answers_once(warm, course, lms):
    """The certificates and languages read ahead equal the LMS's own reads; each answers one call, none outlives it."""
    rows = machine.read_rows(pending_credentials(lms, course, 2))
    learners = [(row.user, row.course_key) for row in rows.values()]
    platform = compat.backend()
    expected = [(platform.get_certificate(user, key), platform.get_language_preference(user)) for user, key in learners]
    assert all(certificate.is_downloadable and language == "es-419" for certificate, language in expected)
    with compat.reading_ahead(learners):
        with CaptureQueriesContext(connection) as queries:
            read = [(compat.get_certificate(user, key), compat.get_language_preference(user, key))
                    for user, key in learners]
        assert read == expected and len(queries) == 0
        with CaptureQueriesContext(connection) as queries:
            compat.get_certificate(*learners[0])  # answered once already: the LMS is asked again
        assert len(queries) == 1
    with compat.reading_ahead(learners):
        pass
    with CaptureQueriesContext(connection) as queries:  # what was not asked for is gone with the block
        compat.get_certificate(*learners[1])
        compat.get_language_preference(*learners[1])
    assert len(queries) == 2


@pytest.mark.django_db
def test_a_backend_that_cannot_read_ahead_costs_reads_not_the_message(warm, course, lms, monkeypatch, caplog):
    """Reading ahead is a shortcut: when the platform refuses it, each credential reads its own and is issued."""
    def broken(*_args, **_kwargs):
        raise RuntimeError("no such table")

    monkeypatch.setattr(type(compat.backend()), "get_certificates", broken)
    row_ids = pending_credentials(lms, course, 2)
    counted = kinds(issue_chunk(row_ids))
    assert counted["total"] == PER_MESSAGE_READS + len(row_ids) * (sum(PER_CREDENTIAL.values()) + 2), counted
    assert set(PokCertificate.objects.filter(id__in=row_ids).values_list("status", flat=True)) == {
        CredentialStatus.EMITTED}
    assert "could not read a message's certificates and languages ahead" in caplog.text
