"""
Degraded infrastructure around issuance: a cache that is down, the reconcile run publishing chunks, receivers given
payloads they cannot use. Nothing here may raise into the LMS or lose a credential; each test says what it costs
instead.
"""
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from lms_sandbox.factories import UserFactory
from openedx_pok import api, caching, receivers, tasks
from openedx_pok.course_setup import configuration
from openedx_pok.exceptions import RetryLater
from openedx_pok.issuance import machine
from openedx_pok.models import CredentialStatus, PokCertificate
from pok_simulator import Fault
from test_utils import credential_of

pytestmark = pytest.mark.django_db

BROKEN_CACHE = {"default": {"BACKEND": "test_utils.broken_cache.BrokenCache"}}


def test_a_cache_outage_costs_queries_and_calls_never_a_credential(pok, course, learner, lms, client):
    with override_settings(CACHES=BROKEN_CACHE):
        cache.close()
        certificate = lms.award(learner, course)
        assert credential_of(learner, course).status == CredentialStatus.EMITTED
        response = client.get(f"/certificates/{certificate.verify_uuid}")
        assert response.status_code == 302
    assert pok.count("issue_credential") == 1


def test_a_cache_outage_does_not_lose_a_rate_limit_row_backoff(pok, course, learner, lms, monkeypatch):
    delayed = []  # the retries a real broker would hold for Retry-After seconds
    real_issue = machine.issue

    def issue(*args, **kwargs):
        try:
            return real_issue(*args, **kwargs)
        except RetryLater as later:  # held by the broker, not run again at once as eager Celery would
            delayed.append(later.countdown)
            return CredentialStatus.PENDING

    monkeypatch.setattr(machine, "issue", issue)
    with override_settings(CACHES=BROKEN_CACHE):
        pok.add_fault(Fault("rate_limit", endpoint="issue_credential", retry_after=600, times=1))
        lms.award(learner, course)
        row = credential_of(learner, course)
        assert row.status == CredentialStatus.PENDING and row.not_before is not None
        # The task that saw the 429 waits; the next task knows nothing of it while the cache is down ...
        assert configuration.account_wait_seconds() > 590
        caching.clear_request_cache()
        assert configuration.account_wait_seconds() == 0.0
        # ... and the row's own backoff holds.
        api.reconcile(inline=True, pending_grace=timedelta(0))
    assert pok.count("issue_credential") == 1 and delayed and delayed[0] >= 599


def test_a_cache_outage_costs_a_request_or_task_one_lookup_not_one_per_ask(pok, course, learner, lms):
    """The request cache still holds what the request or task read: a query or a GET each, not one per ask."""
    with override_settings(CACHES=BROKEN_CACHE):
        cache.close()
        with CaptureQueriesContext(connection) as queries:
            for _index in range(3):
                assert api.is_pok_enabled(course.id)
        client = configuration.get_client()
        for _index in range(3):
            assert configuration.get_template(client, "tpl-grade").id == "tpl-grade"
        caching.clear_request_cache()  # the next task
        configuration.get_template(client, "tpl-grade")
    assert len([query for query in queries.captured_queries if "mapping" in query["sql"]]) == 1
    assert pok.count("get_template") == 2


def test_reconcile_hands_work_to_the_workers_in_chunks(pok, course, lms, monkeypatch):
    monkeypatch.setattr(tasks, "enqueue_issuance", lambda *args, **kwargs: None)  # awards leave rows pending
    learners = UserFactory.create_batch(tasks.RECONCILE_CHUNK_SIZE + 5)
    for learner in learners:
        lms.award(learner, course)
    published = []
    real = tasks._publish  # noqa: SLF001 - counted, then run for real (eagerly)
    monkeypatch.setattr(tasks, "_publish", lambda task, ids, kwargs, countdown=0: (published.append(len(ids)),
                                                                                 real(task, ids, kwargs, countdown)))
    counts = api.reconcile(pending_grace=timedelta(0))
    assert counts["issued"] == len(learners) and published == [tasks.RECONCILE_CHUNK_SIZE, 5]
    assert set(PokCertificate.objects.values_list("status", flat=True)) == {CredentialStatus.EMITTED}
    assert pok.count("issue_credential") == len(learners)


def test_reconcile_refreshes_in_chunks_too(pok, course, learner, lms):
    pok.emission_mode = "async"
    pok.polls_until_emitted = 1
    lms.award(learner, course)
    assert credential_of(learner, course).status == CredentialStatus.IN_PROGRESS
    assert api.reconcile()["refreshed"] == 1
    assert credential_of(learner, course).status == CredentialStatus.EMITTED


class Unusable:
    """An event payload whose every attribute access fails."""

    def __getattr__(self, name):
        raise RuntimeError(name)


@pytest.mark.parametrize("receiver", [receivers.handle_certificate_created, receivers.handle_certificate_revoked])
def test_receivers_never_raise_into_the_certificate_save(receiver, caplog):
    receiver(sender=None, signal=None, certificate=Unusable())
    receiver(sender=None, signal=None, certificate=None)
    assert any(record.levelname == "ERROR" for record in caplog.records)
