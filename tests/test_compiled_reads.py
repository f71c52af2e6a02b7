"""
The worker's reads compiled once per shape (``openedx_pok/compiled_reads.py``) answer exactly what their querysets
answer, on SQLite and MariaDB: the credential rows with their learners, the eligible certificates, the language
preferences, and the cache values a message reads ahead in two round trips.
"""
import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache, caches
from django.db import connection
from django.test.utils import CaptureQueriesContext
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.factories import UserFactory
from lms_sandbox.models import GeneratedCertificate, UserPreference, UserProfile
from openedx_pok import caching, lms_tables, tasks
from openedx_pok.compiled_reads import CompiledRead
from openedx_pok.course_setup import configuration
from openedx_pok.issuance import machine
from openedx_pok.models import PokCertificate
from test_utils.helpers import credential_of

pytestmark = pytest.mark.django_db

OTHER = CourseKey.from_string("course-v1:DemoX+Other+2026")


@pytest.fixture
def awarded(pok, course, lms):
    """Four learners with a credential in the course: one without a profile, one with a language preference."""
    learners = [UserFactory(profile__name=f"Ada{index} Lovelace") for index in range(4)]
    UserProfile.objects.filter(user=learners[3]).delete()
    UserPreference.objects.create(user=learners[1], key="pref-lang", value="es-419")
    UserPreference.objects.create(user=learners[2], key="other", value="x")
    for learner in learners:
        lms.award(learner, course)
    return learners


def test_a_read_answers_what_its_queryset_answers_for_every_size(awarded, course):
    users = [learner.id for learner in awarded]
    read = CompiledRead(GeneratedCertificate, lambda user_ids, course_keys: GeneratedCertificate.eligible_certificates
                        .filter(user_id__in=user_ids, course_id__in=course_keys)
                        .values_list("user_id", "course_id", "status", "created_date").order_by("user_id"),
                        stand_ins=(lambda n: -1 - n, lambda n: CourseKey.from_string(f"course-v1:s+s+{n}")))
    for size in range(1, len(users) + 1):
        expected = list(GeneratedCertificate.eligible_certificates.filter(
            user_id__in=users[:size], course_id__in=[course.id, OTHER]).values_list(
            "user_id", "course_id", "status", "created_date").order_by("user_id"))
        # Ids twice, keys as objects or strings: each is asked for once, as ``__in`` asks.
        assert read(users[:size] + users[:1], [course.id, str(OTHER), str(course.id)]) == expected
        assert isinstance(expected[0][1], CourseKey) and expected[0][3].tzinfo is not None  # the ORM's converters
    assert read([], [course.id]) == [] and read(users, []) == []


def test_a_read_is_compiled_once_per_shape(awarded, course):
    read = CompiledRead(UserPreference, lambda user_ids: UserPreference.objects.filter(
        user_id__in=user_ids, key="pref-lang").values_list("user_id", "value"), stand_ins=(lambda n: -1 - n,))
    read([awarded[0].id])
    read([awarded[1].id])
    read([awarded[0].id, awarded[1].id])
    assert read.compiled.cache_info().misses == 2 and read.compiled.cache_info().hits == 1
    assert read([awarded[1].id, awarded[2].id]) == [(awarded[1].id, "es-419")]  # a constant stays as written


def test_a_stand_in_the_query_does_not_write_as_given_is_refused():
    read = CompiledRead(UserPreference, lambda user_ids: UserPreference.objects.filter(
        user_id__in=[user_id + 1 for user_id in user_ids]).values_list("user_id"), stand_ins=(lambda n: -1 - n,))
    with pytest.raises(ValueError, match="stand-in"):
        read([7])


def test_the_rows_come_with_their_learners_as_select_related_loads_them(awarded, course):
    ids = [credential_of(learner, course).id for learner in awarded]
    with CaptureQueriesContext(connection) as queries:
        rows = machine.read_rows(ids + [0])
        names = [rows[row_id].user.profile.name for row_id in ids[:3]]
        assert [rows[row_id].user.email for row_id in ids] == [learner.email for learner in awarded]
        assert [rows[row_id].user.username for row_id in ids] == [learner.username for learner in awarded]
        with pytest.raises(get_user_model().profile.RelatedObjectDoesNotExist):
            rows[ids[3]].user.profile  # noqa: B018 - no profile: as select_related leaves it
    assert len(queries) == 1 and names == [f"Ada{index} Lovelace" for index in range(3)]
    for row_id, row in rows.items():
        expected = PokCertificate.objects.get(id=row_id)
        assert [getattr(row, name) for name in ("uuid", "user_id", "course_key", "status", "receiver", "issuance",
                                                "attempts", "tries", "not_before", "pok_credential_id")] == \
            [getattr(expected, name) for name in ("uuid", "user_id", "course_key", "status", "receiver", "issuance",
                                                  "attempts", "tries", "not_before", "pok_credential_id")]
        assert row.idempotency_key == expected.idempotency_key
    assert set(rows) == set(ids)


def test_certificates_and_languages_of_many_learners(awarded, course):
    learners = [(learner.id, course.id) for learner in awarded] + [(awarded[0].id, OTHER)]
    certificates = lms_tables.learner_certificates(GeneratedCertificate, learners)
    assert set(certificates) == {(learner.id, str(course.id)) for learner in awarded}
    certificate = GeneratedCertificate.objects.get(user=awarded[0], course_id=course.id)
    read = certificates[(awarded[0].id, str(course.id))]
    assert (read.status, read.verify_uuid, read.created_date) == (certificate.status, certificate.verify_uuid,
                                                                  certificate.created_date)
    assert lms_tables.language_preferences(UserPreference, [learner.id for learner in awarded]) == {
        awarded[1].id: "es-419"}


def test_a_prefetch_reads_in_one_round_trip_and_nothing_again(monkeypatch):
    cache.set("openedx_pok:found", "value", 60)
    asked = []
    backend = type(caches["default"])
    real_get, real_get_many = backend.get, backend.get_many

    def get_many(self, keys, version=None):
        asked.append(list(keys))
        monkeypatch.setattr(backend, "get", real_get)  # the local-memory cache's get_many gets each key
        try:
            return real_get_many(self, keys, version)
        finally:
            monkeypatch.setattr(backend, "get", get)

    def get(self, key, default=None, version=None):
        asked.append(key)
        return real_get(self, key, default, version)

    monkeypatch.setattr(backend, "get_many", get_many)
    monkeypatch.setattr(backend, "get", get)
    caching.prefetch({"openedx_pok:found": caching.COMPUTE, "openedx_pok:computed": caching.COMPUTE,
                      "openedx_pok:default": 0})
    assert caching.tiered("openedx_pok:found", lambda: "other", 60) == "value"
    assert caching.tiered("openedx_pok:computed", lambda: "computed", 60) == "computed"  # a miss: computed, kept
    assert caching.tiered_get("openedx_pok:default", 5) == 0
    assert len(asked) == 1 and sorted(asked[0]) == ["openedx_pok:computed", "openedx_pok:default", "openedx_pok:found"]
    caching.prefetch({"openedx_pok:found": caching.COMPUTE})
    assert len(asked) == 1  # this request holds it already
    assert real_get(caches["default"], "openedx_pok:computed") == "computed"


def test_a_prefetch_with_the_cache_down_leaves_each_reader_to_its_own(monkeypatch):
    def down(*args, **kwargs):
        raise ConnectionError("cache down")

    monkeypatch.setattr(type(caches["default"]), "get_many", down)
    caching.prefetch({"openedx_pok:key": caching.COMPUTE})
    assert caching.tiered("openedx_pok:key", lambda: "computed", 60) == "computed"


def test_a_message_whose_cache_read_ahead_fails_still_issues(awarded, course, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("unexpected")

    rows = [credential_of(learner, course) for learner in awarded[:2]]
    PokCertificate.objects.filter(id__in=[row.id for row in rows]).update(status="pending", pok_credential_id=None)
    monkeypatch.setattr(configuration, "read_ahead", broken)
    tasks.issue_credentials_task.apply(args=[[row.id for row in rows]])
    assert "could not read a message's cached course set-up ahead" in caplog.text
    assert set(PokCertificate.objects.filter(id__in=[row.id for row in rows]).values_list("status", flat=True)) == {
        "emitted"}
