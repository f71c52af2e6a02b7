"""
The plugin's short-lived copies in each process (issue 12): the course mappings and an account's shared wait for
about a second on top of the shared cache, template definitions for 10 s, the course facts for a minute. They save
cache round trips and LMS reads on the award path, the worker and the certificate page, and must never make a course
that was just mapped look unmapped.
"""
import pytest
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.factories import CourseOverviewFactory, UserFactory
from openedx_pok import api, caching, compat, configuration
from openedx_pok.models import CertificateTemplate, CredentialStatus
from test_utils.helpers import credential_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def cache_reads(monkeypatch):
    """The keys the plugin reads from the Django cache, in order."""
    reads = []
    real_get = caching.get

    def counting_get(key, default=None):
        reads.append(key)
        return real_get(key, default)

    monkeypatch.setattr(caching, "get", counting_get)
    return reads


def test_a_mapped_course_is_answered_from_the_process_copy(course, cache_reads):
    assert api.is_pok_enabled(course.id)
    assert cache_reads.count(configuration.MAPPINGS_CACHE_KEY) == 1
    for _index in range(5):
        assert api.is_pok_enabled(course.id)
    assert cache_reads.count(configuration.MAPPINGS_CACHE_KEY) == 1  # the second and later asks: no round trip


def test_a_course_mapped_in_another_process_is_seen_at_once(course, cache_reads):
    """"Not mapped" is never taken from the copy: the admin maps a course, its backfill starts in a worker."""
    other = CourseKey.from_string("course-v1:DemoX+Later+2026")
    assert not api.is_pok_enabled(other)
    stale_copy = configuration.process_copies.mappings  # the mappings without it, fresh for about a second
    assert stale_copy[1] is not None and str(other) not in stale_copy[1]["courses"]
    # Another process saves the mapping: its signal clears the shared cache, not this process's copy.
    CertificateTemplate.objects.bulk_create([CertificateTemplate(course_key=other, template_id="tpl-basic")])
    configuration.process_copies.mappings = stale_copy
    assert api.is_pok_enabled(other)
    assert api.is_pok_enabled(course.id) and configuration.process_copies.mappings is not stale_copy


def test_this_process_forgets_its_copy_when_it_changes_a_mapping(course):
    assert api.is_pok_enabled(course.id)
    mapping = CertificateTemplate.objects.get(course_key=course.id)
    mapping.enabled = False
    mapping.save()
    assert not api.is_pok_enabled(course.id)


def test_course_facts_are_read_once_per_course_and_again_after_a_minute(pok, course, lms, monkeypatch):
    reads = []
    real_get_course = compat.get_course
    monkeypatch.setattr(compat, "get_course", lambda key: reads.append(key) or real_get_course(key))
    learners = [UserFactory(profile__name=f"Ada{index} Lovelace") for index in range(3)]
    for learner in learners[:2]:
        lms.award(learner, course)
    assert reads == [course.id]
    assert all(credential_of(learner, course).status == CredentialStatus.EMITTED for learner in learners[:2])
    clock = configuration.time.monotonic() + configuration.COURSE_INFO_SECONDS + 1
    monkeypatch.setattr(configuration.time, "monotonic", lambda: clock)
    lms.award(learners[2], course)
    assert reads == [course.id, course.id]


def test_a_course_that_does_not_exist_yet_is_not_remembered(pok, monkeypatch, lms):
    key = CourseKey.from_string("course-v1:DemoX+Soon+2026")
    CertificateTemplate.objects.create(course_key=key, template_id="tpl-basic")
    with pytest.raises(api.IssuanceError):
        configuration.course_setup(key)
    CourseOverviewFactory(id=key, display_name="Soon", org="DemoX")
    assert configuration.course_setup(key).course.display_name == "Soon"


def test_a_template_is_read_from_the_shared_cache_once_per_process_period(pok, cache_reads, monkeypatch):
    client = configuration.get_client()
    first = configuration.get_template(client, "tpl-basic")
    key = configuration._template_key(client, "tpl-basic", "")  # noqa: SLF001 - the key the copy is filed under
    for _index in range(5):
        assert configuration.get_template(client, "tpl-basic") == first
    assert cache_reads.count(key) == 2  # the miss, and the re-check under the fetch lock; then only the copy
    assert pok.count("get_template") == 1
    clock = configuration.time.monotonic() + configuration.TEMPLATE_LOCAL_SECONDS + 1
    monkeypatch.setattr(configuration.time, "monotonic", lambda: clock)
    configuration.get_template(client, "tpl-basic")
    assert cache_reads.count(key) == 3 and pok.count("get_template") == 1  # the shared cache again, not POK


def test_a_forgotten_template_is_fetched_again_at_once_in_this_process(pok):
    """The catalog sync saw the template change on POK: this process does not keep its copy."""
    configuration.template("tpl-basic")
    configuration.template("tpl-basic")
    configuration.forget_template("tpl-basic")
    configuration.template("tpl-basic")
    assert pok.count("get_template") == 2


def test_an_account_wait_is_shared_within_a_second_and_at_once_in_the_process_that_saw_it(monkeypatch):
    assert configuration.account_wait_seconds() == 0.0
    # Another worker saw a 429: it is in the shared cache, this process's copy says "no wait" for up to a second.
    caching.set(configuration._account_key(), configuration.time.time() + 30, 31)  # noqa: SLF001
    assert configuration.account_wait_seconds() == 0.0
    clock = configuration.time.monotonic() + configuration.ACCOUNT_WAIT_LOCAL_SECONDS + 0.1
    monkeypatch.setattr(configuration.time, "monotonic", lambda: clock)
    assert 29 < configuration.account_wait_seconds() <= 30
    # A 429 this process sees applies here at once, and never shortens a longer wait already shared.
    configuration.note_rate_limited(5)
    assert 29 < configuration.account_wait_seconds() <= 30
    configuration.note_rate_limited(120, account="other")
    assert 119 < configuration.account_wait_seconds("other") <= 120


def test_a_process_copy_stays_bounded():
    copies = configuration._ShortLived(60, entries=3)  # noqa: SLF001 - the map behind every copy
    for number in range(7):
        copies.put(number, f"value {number}")
    assert copies.get(6) == "value 6" and sum(copies.get(number) is not None for number in range(7)) <= 3
