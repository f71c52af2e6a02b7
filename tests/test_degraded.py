"""
Degraded infrastructure around issuance: a cache that is down, workers racing for the same template, the reconcile
run publishing chunks, receivers given payloads they cannot use. Nothing here may raise into the LMS or lose a
credential; each test says what it costs instead.
"""
import threading
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.test import override_settings

from lms_sandbox.factories import UserFactory
from openedx_pok import api, configuration, receivers, tasks
from openedx_pok.models import CredentialStatus, PokCertificate
from openedx_pok.testing.pok_simulator import Fault
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
    delayed = []  # the retry task a real broker would hold for Retry-After seconds (eager Celery would run it now)
    real_enqueue = tasks.enqueue_issuance
    monkeypatch.setattr(tasks, "enqueue_issuance", lambda row_id, countdown=0, **kwargs: (
        delayed.append(countdown) if countdown else real_enqueue(row_id, **kwargs)))
    with override_settings(CACHES=BROKEN_CACHE):
        pok.add_fault(Fault("rate_limit", endpoint="issue_credential", retry_after=600, times=1))
        lms.award(learner, course)
        row = credential_of(learner, course)
        assert row.status == CredentialStatus.PENDING and row.not_before is not None
        # This process remembers the wait for a second; once that copy is gone, nothing is shared any more ...
        assert configuration.account_wait_seconds() > 590
        configuration.process_copies.account_waits.clear()
        assert configuration.account_wait_seconds() == 0.0
        # ... and the row's own backoff holds.
        api.reconcile(inline=True, pending_grace=timedelta(0))
    assert pok.count("issue_credential") == 1 and delayed and delayed[0] >= 599


def test_threads_missing_the_template_together_fetch_it_once(pok):
    client = configuration.get_client()
    barrier = threading.Barrier(6)
    results = []

    def fetch():
        barrier.wait()
        results.append(configuration.get_template(client, "tpl-grade"))

    threads = [threading.Thread(target=fetch) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 6 and {result.id for result in results} == {"tpl-grade"}
    assert pok.count("get_template") == 1


def test_a_worker_waits_for_another_workers_template_fetch(pok, monkeypatch):
    client = configuration.get_client()
    key = f"openedx_pok:template:{configuration.digest(client.api_url, 'tpl-basic')}"
    cache.add(f"{key}:fetching", 1, 30)  # another worker holds the lease...
    timer = threading.Timer(0.2, lambda: cache.set(key, client.get_template("tpl-basic"), 60))  # ...and succeeds
    timer.start()
    assert configuration.get_template(client, "tpl-basic").id == "tpl-basic"
    timer.join()
    assert pok.count("get_template") == 1


def test_a_worker_fetches_itself_when_the_lease_holder_never_delivers(pok, monkeypatch):
    monkeypatch.setattr(configuration, "TEMPLATE_FETCH_WAIT_SECONDS", 0.2)
    client = configuration.get_client()
    key = f"openedx_pok:template:{configuration.digest(client.api_url, 'tpl-basic')}"
    cache.add(f"{key}:fetching", 1, 30)  # a worker that died holding the lease
    assert configuration.get_template(client, "tpl-basic").id == "tpl-basic"
    assert pok.count("get_template") == 1


def test_reconcile_hands_work_to_the_workers_in_chunks(pok, course, lms, monkeypatch):
    monkeypatch.setattr(tasks, "enqueue_issuance", lambda *args, **kwargs: None)  # awards leave rows pending
    learners = UserFactory.create_batch(tasks.RECONCILE_CHUNK_SIZE + 5)
    for learner in learners:
        lms.award(learner, course)
    published = []
    real = tasks._enqueue_chunk  # noqa: SLF001 - counted, then run for real (eagerly)
    monkeypatch.setattr(tasks, "_enqueue_chunk", lambda task, ids, **kw: (published.append(len(ids)),
                                                                            real(task, ids, **kw)))
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
