"""
What the plugin keeps, where and for how long: the course mappings, template definitions and course facts in the
Django cache, shared by every process, and through edx-django-utils' TieredCache in the request cache for the rest of
a request or task; an account's Retry-After in the Django cache only. These copies save queries, POK calls and cache
round trips on the award path, the worker and the certificate page; they must never keep a change from a request or
task that starts after it.
"""
import pytest
from django.core.cache import cache, caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from edx_django_utils.cache import RequestCache, TieredCache
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.factories import CourseOverviewFactory, UserFactory
from openedx_pok import api, caching, compat, tasks
from openedx_pok.course_setup import configuration
from openedx_pok.exceptions import IssuanceError
from openedx_pok.issuance import outage
from openedx_pok.models import CertificateTemplate, CredentialStatus
from test_utils.helpers import credential_of

pytestmark = pytest.mark.django_db

OTHER = CourseKey.from_string("course-v1:DemoX+Later+2026")


class Reads(list):
    """The keys read, in order, and the round trips they took (``get_many`` reads several in one)."""

    round_trips = 0
    inside_get_many = False


@pytest.fixture
def cache_reads(monkeypatch):
    """The keys the plugin reads from the Django cache, in order, and its round trips."""
    reads = Reads()
    backend = type(caches["default"])
    real_get, real_get_many = backend.get, backend.get_many

    def counting_get(self, key, default=None, version=None):
        if not reads.inside_get_many:  # the local-memory cache's get_many calls get for each key
            reads.append(key)
            reads.round_trips += 1
        return real_get(self, key, default, version)

    def counting_get_many(self, keys, version=None):
        reads.extend(keys)
        reads.round_trips += 1
        reads.inside_get_many = True
        try:
            return real_get_many(self, keys, version)
        finally:
            reads.inside_get_many = False

    monkeypatch.setattr(backend, "get", counting_get)
    monkeypatch.setattr(backend, "get_many", counting_get_many)
    return reads


@pytest.fixture
def pending(pok, course, lms):
    """Three learners awarded in the course whose credentials wait for their task (none ran yet)."""
    learners = [UserFactory(profile__name=f"Ada{index} Lovelace") for index in range(3)]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tasks, "enqueue_issuance", lambda *args, **kwargs: None)
        for learner in learners:
            lms.award(learner, course)
    return [credential_of(learner, course) for learner in learners]


def fresh(row):
    row.refresh_from_db()
    return row


def test_the_mappings_cost_one_cache_read_per_request_and_no_query(course, cache_reads):
    assert api.is_pok_enabled(course.id) and not api.is_pok_enabled(OTHER)  # the miss: one query, both tiers set
    cache_reads.clear()
    with CaptureQueriesContext(connection) as queries:
        for _index in range(5):
            assert api.is_pok_enabled(course.id) and not api.is_pok_enabled(OTHER)
        assert cache_reads == []  # this request's copy
        caching.clear_request_cache()  # the next request: the Django cache's copy
        assert api.is_pok_enabled(course.id) and not api.is_pok_enabled(OTHER)
    assert cache_reads == [configuration.MAPPINGS_CACHE_KEY] and len(queries) == 0


def test_a_task_reads_each_cached_thing_once_for_all_its_credentials(pending, cache_reads, pok):
    tasks.issue_credentials_task.apply(args=[[row.id for row in pending]])
    assert {fresh(row).status for row in pending} == {CredentialStatus.EMITTED}
    # Each once per task, not per credential, in two round trips: the mappings and courses, then what they name
    # (the template, the account's Retry-After gate, its pause and its streak of failures, issue 22).
    assert sorted(key.split(":")[1] for key in cache_reads) == ["account-not-before", "account-pause",
                                                                "account-streak", "course", "mappings", "template"]
    assert cache_reads.round_trips == 2
    assert pok.count("get_template") == 1 and pok.count("issue_credential") == 3  # one GET, then the task's copy


def test_a_plugin_task_does_not_keep_an_earlier_tasks_copy(pending, pok):
    """A worker whose request cache outlives its tasks (the LMS did not clear it) must not keep a disabled mapping."""
    assert api.is_pok_enabled(pending[0].course_key)  # this thread's request cache holds the mappings
    # The admin disables the mapping in another process: its post_save forgets the Django cache's copy, not ours.
    CertificateTemplate.objects.filter(course_key=pending[0].course_key).update(enabled=False)
    cache.delete(configuration.MAPPINGS_CACHE_KEY)
    assert api.is_pok_enabled(pending[0].course_key)  # the request that started before the change keeps its copy
    tasks.issue_credential_task.apply(args=[pending[0].id])
    assert pok.count("issue_credential") == 0
    assert fresh(pending[0]).status != CredentialStatus.EMITTED


def test_only_the_plugins_copies_are_dropped_at_a_task_start():
    TieredCache.set_all_tiers("platform:key", "kept", 60)
    RequestCache("platform.namespace").set("key", "kept")
    caching.set_tiers("openedx_pok:key", "dropped", 60)
    tasks.refresh_credentials_task.apply(args=[[]])
    assert TieredCache.get_cached_response("platform:key").value == "kept"
    assert RequestCache("platform.namespace").get_cached_response("key").value == "kept"
    assert not RequestCache().get_cached_response("openedx_pok:key").is_found  # the Django cache still has it
    assert TieredCache.get_cached_response("openedx_pok:key").value == "dropped"


def test_a_saved_or_deleted_mapping_is_seen_at_once(course):
    assert api.is_pok_enabled(course.id)
    mapping = CertificateTemplate.objects.get(course_key=course.id)
    mapping.enabled = False
    mapping.save()
    assert not api.is_pok_enabled(course.id)
    CertificateTemplate.objects.create(course_key=OTHER, template_id="tpl-basic")
    assert api.is_pok_enabled(OTHER)
    CertificateTemplate.objects.filter(course_key=OTHER).delete()  # post_delete, once per row
    assert not api.is_pok_enabled(OTHER)


def test_a_bulk_change_is_seen_once_its_caller_forgets_the_mappings(course):
    assert not api.is_pok_enabled(OTHER)
    CertificateTemplate.objects.bulk_create([CertificateTemplate(course_key=OTHER, template_id="tpl-basic")])
    assert not api.is_pok_enabled(OTHER)  # no signal: the cached copy stands until ...
    configuration.forget_mappings()  # ... the caller forgets it (the legacy import does)
    assert api.is_pok_enabled(OTHER)


def test_course_facts_are_read_once_per_course_for_every_task_and_again_when_forgotten(pok, course, lms,
                                                                                       monkeypatch):
    reads = []
    real_get_course = compat.get_course
    monkeypatch.setattr(compat, "get_course", lambda key: reads.append(key) or real_get_course(key))
    learners = [UserFactory(profile__name=f"Ada{index} Lovelace") for index in range(3)]
    for learner in learners[:2]:
        lms.award(learner, course)  # two requests, two tasks
    assert reads == [course.id]
    assert all(credential_of(learner, course).status == CredentialStatus.EMITTED for learner in learners[:2])
    configuration.forget_course(course.id)
    lms.award(learners[2], course)
    assert reads == [course.id, course.id]


def test_a_course_that_does_not_exist_yet_is_not_remembered(pok):
    CertificateTemplate.objects.create(course_key=OTHER, template_id="tpl-basic")
    with pytest.raises(IssuanceError):
        configuration.course_setup(OTHER)
    CourseOverviewFactory(id=OTHER, display_name="Soon", org="DemoX")
    assert configuration.course_setup(OTHER).course.display_name == "Soon"


def test_a_template_is_fetched_once_per_cache_period_for_every_worker(pok, cache_reads):
    client = configuration.get_client()
    key = configuration._template_key(client, "tpl-basic", "")  # noqa: SLF001 - the key it is cached under
    first = configuration.get_template(client, "tpl-basic")
    for _index in range(5):
        assert configuration.get_template(client, "tpl-basic") == first
    assert cache_reads.count(key) == 1 and pok.count("get_template") == 1  # the miss; then this task's copy
    caching.clear_request_cache()  # another task, in this worker or another
    assert configuration.get_template(client, "tpl-basic") == first
    assert cache_reads.count(key) == 2 and pok.count("get_template") == 1  # the shared cache, not POK


def test_a_forgotten_template_is_fetched_again_at_once(pok):
    """The catalog sync saw the template change on POK: no request, task or worker keeps the old definition."""
    configuration.template("tpl-basic")
    configuration.template("tpl-basic")
    configuration.forget_template("tpl-basic")
    configuration.template("tpl-basic")
    assert pok.count("get_template") == 2


def test_an_account_wait_is_shared_from_the_next_task_and_never_shortened():
    assert configuration.account_wait_seconds() == 0.0
    # Another worker saw a 429: this task goes on with what it read (its credentials are POSTed), the next one waits.
    caching.set(configuration._account_key(), configuration.time.time() + 30, 31)  # noqa: SLF001
    assert configuration.account_wait_seconds() == 0.0
    caching.clear_request_cache()
    assert 29 < configuration.account_wait_seconds() <= 30
    # A 429 this task sees applies here at once, and never shortens a longer wait already shared.
    configuration.note_rate_limited(5)
    assert 29 < configuration.account_wait_seconds() <= 30
    caching.clear_request_cache()
    assert 29 < configuration.account_wait_seconds() <= 30
    configuration.note_rate_limited(120, account="other")
    assert 119 < configuration.account_wait_seconds("other") <= 120


@pytest.fixture
def cache_writes(monkeypatch):
    """The Django cache's set and delete calls (each a round trip): ("set", key) / ("delete", keys)."""
    writes = []
    backend = type(caches["default"])
    real_set, real_delete, real_delete_many = backend.set, backend.delete, backend.delete_many

    def counting_set(self, key, *args, **kwargs):
        writes.append(("set", key.split(":")[1]))
        return real_set(self, key, *args, **kwargs)

    def counting_delete(self, key, *args, **kwargs):
        writes.append(("delete", [key.split(":")[1]]))
        return real_delete(self, key, *args, **kwargs)

    def counting_delete_many(self, keys, *args, **kwargs):
        writes.append(("delete", sorted(key.split(":")[1] for key in keys)))
        monkeypatch.setattr(backend, "delete", real_delete)  # the local-memory cache deletes each key
        try:
            return real_delete_many(self, keys, *args, **kwargs)
        finally:
            monkeypatch.setattr(backend, "delete", counting_delete)

    monkeypatch.setattr(backend, "set", counting_set)
    monkeypatch.setattr(backend, "delete", counting_delete)
    monkeypatch.setattr(backend, "delete_many", counting_delete_many)
    return writes


def test_a_message_forgets_its_stored_answers_together(pending, cache_writes, pok):
    """Each answer is remembered before its store; the three are forgotten in one round trip at the message's end."""
    tasks.issue_credentials_task.apply(args=[[row.id for row in pending]])
    assert {fresh(row).status for row in pending} == {CredentialStatus.EMITTED}
    answers = [write for write in cache_writes if write[1] == "answer" or write[0] == "delete"]
    assert answers == [("set", "answer")] * 3 + [("delete", ["answer"] * 3)]  # no streak to end: none deleted


def test_a_streak_the_message_finds_is_ended_by_its_first_processed_request(pending, cache_writes, pok):

    cache.set(outage.streak_key("default"), 3, 120)  # three refused requests in a row, from other workers
    tasks.issue_credentials_task.apply(args=[[row.id for row in pending]])
    deletes = [keys for kind, keys in cache_writes if kind == "delete"]
    assert deletes[0] == ["account-streak", "answer"]  # at once, with the first stored answer
    assert cache.get(outage.streak_key("default")) is None


def test_a_failure_the_message_counts_is_ended_by_its_next_processed_request(pending, pok, monkeypatch):
    from pok_simulator import Fault

    monkeypatch.setattr(tasks, "enqueue_issuance", lambda *args, **kwargs: None)  # the refused one waits
    pok.add_fault(Fault("status", endpoint="issue_credential", status=503, times=1))
    tasks.issue_credentials_task.apply(args=[[row.id for row in pending]])
    assert sorted(fresh(row).status for row in pending) == [CredentialStatus.EMITTED] * 2 + [CredentialStatus.PENDING]
    assert cache.get(outage.streak_key("default")) is None  # counted by the first, ended by the second
