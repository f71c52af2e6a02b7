"""
How the plugin reads the LMS's own tables, given their model classes: the keyset walk of GeneratedCertificate, the
courses a learner is enrolled in or certified for, and the course waffle flag with its override tables.

Both backends of ``compat`` call these functions: the platform backend with the LMS's models, the sandbox's with
its own copies of them, so the tests run the very queries the plugin runs in the LMS. Nothing here imports platform
code; what the functions return are the small frozen data classes that cross the platform door.
"""
import logging
from collections import namedtuple
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.db import DatabaseError, transaction
from opaque_keys.edx.keys import CourseKey

from openedx_pok.compiled_reads import CompiledRead
from openedx_pok.keyset import keyset_pages

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CourseFlagState:
    """
    Where a course waffle flag (``CourseWaffleFlag``) is switched on or off, as the LMS would decide it.

    ``everyone`` is the flag itself: True (on for everyone), False (off or absent), or None when it is rolled out
    to some users only (percent, groups, staff...), which no course-wide decision can express. Overrides are the
    current "force on" (True) / "force off" (False) of a course key (string) or an organization; unset ones are
    left out. A course override wins over its organization's, which wins over the flag.
    """

    everyone: bool | None = False
    course_overrides: tuple = ()   # ((course key string, on), ...)
    org_overrides: tuple = ()      # ((organization short name, on), ...)


@dataclass(frozen=True)
class CertificateRecord:
    """One downloadable Open edX certificate as the backfill reads it: ids and dates, no personal data."""

    certificate_id: int
    user_id: int
    course_key: object
    created: datetime | None = None
    verify_uuid: str = ""


def keyset_certificates(model, course_keys, since=None, until=None, after_id=0, batch_size=500):
    """
    Downloadable certificates of ``model`` (the LMS's or the sandbox's GeneratedCertificate), by ascending id.

    Keyset pages (``id > last id ORDER BY id LIMIT batch_size``), never OFFSET and never the whole table at once: the
    memory is one page whatever the number of learners, and each page is a short query. The LMS table has no index
    on ``course_id`` alone, so a walk along the primary key is the one plan that reads the table only once.
    ``since`` (inclusive) and ``until`` (exclusive) bound the certificate's creation date.
    """
    query = model.objects.filter(status="downloadable", course_id__in=list(course_keys))
    if since is not None:
        query = query.filter(created_date__gte=since)
    if until is not None:
        query = query.filter(created_date__lt=until)
    fields = query.values_list("id", "user_id", "course_id", "created_date", "verify_uuid")
    for page in keyset_pages(fields, batch_size, after_id=after_id, id_of=lambda row: row[0]):
        for certificate_id, user_id, course_key, created, verify_uuid in page:
            yield CertificateRecord(certificate_id=certificate_id, user_id=user_id, course_key=course_key,
                                    created=created, verify_uuid=verify_uuid or "")


def count_certificates(model, course_keys, since=None, until=None):
    """How many certificates :func:`keyset_certificates` yields (one COUNT query; for a progress bar)."""
    query = model.objects.filter(status="downloadable", course_id__in=list(course_keys))
    if since is not None:
        query = query.filter(created_date__gte=since)
    if until is not None:
        query = query.filter(created_date__lt=until)
    return query.count()


def learner_course_keys(enrollment_model, certificate_model, user, course_keys):
    """
    The course runs among ``course_keys`` that ``user`` is a learner of: an active enrollment (``CourseEnrollment``)
    or a certificate of any status (``GeneratedCertificate``). Two indexed queries.
    """
    course_keys = list(course_keys)
    enrolled = enrollment_model.objects.filter(user=user, is_active=True, course_id__in=course_keys)
    certified = certificate_model.objects.filter(user=user, course_id__in=course_keys)
    return frozenset([*enrolled.values_list("course_id", flat=True), *certified.values_list("course_id", flat=True)])


# What issuance reads of a certificate (``compat.CertificateInfo.from_certificate``), and of a preference.
CERTIFICATE_COLUMNS = ("user_id", "course_id", "status", "verify_uuid", "mode", "grade", "created_date",
                       "modified_date")
CertificateRow = namedtuple("CertificateRow", CERTIFICATE_COLUMNS)


def _stand_in_id(n):
    return -1 - n  # no user has a negative id


def _stand_in_course(n):
    return CourseKey.from_string(f"course-v1:openedx-pok+stand-in+{n}")


@lru_cache(maxsize=8)
def _certificates_read(certificate_model):
    return CompiledRead(certificate_model, lambda user_ids, course_keys: certificate_model.eligible_certificates.filter(
        user_id__in=user_ids, course_id__in=course_keys).values_list(*CERTIFICATE_COLUMNS),
        stand_ins=(_stand_in_id, _stand_in_course))


@lru_cache(maxsize=8)
def _preferences_read(preference_model):
    return CompiledRead(preference_model, lambda user_ids: preference_model.objects.filter(
        user_id__in=user_ids, key="pref-lang").values_list("user_id", "value"), stand_ins=(_stand_in_id,))


def learner_certificates(certificate_model, learners):
    """
    {(user id, course key string): :class:`CertificateRow`} of ``learners`` ((user id, course key) pairs) in one
    statement, compiled once (``compiled_reads``): the learners' eligible certificates (audit ones left out), as the
    LMS's ``get_certificate_for_user`` reads one.
    """
    learners = list(learners)
    rows = _certificates_read(certificate_model)([user_id for user_id, _course_key in learners],
                                                 [course_key for _user_id, course_key in learners])
    return {(row.user_id, str(row.course_id)): row for row in map(CertificateRow._make, rows)}


def language_preferences(preference_model, user_ids):
    """{user id: language} of the learners who set one (``pref-lang``), in one statement compiled once."""
    return dict(_preferences_read(preference_model)(user_ids))


def course_flag_state(flag_name, flag_model, course_override_model, org_override_model=None):
    """:class:`CourseFlagState` of a course waffle flag from waffle's Flag model and the override models of
    openedx/core/djangoapps/waffle_utils/models.py (the LMS's or the sandbox's; no org model on older platforms)."""
    flags = _read(flag_model, lambda objects: list(objects.filter(name=flag_name)[:1]))
    everyone = flags[0].everyone if flags else False
    if everyone is None and not _flag_rolled_out(flags[0]):
        everyone = False
    org_overrides = _current_overrides(org_override_model, flag_name, "org") if org_override_model else ()
    return CourseFlagState(everyone=everyone, org_overrides=org_overrides,
                           course_overrides=_current_overrides(course_override_model, flag_name, "course_id"))


def _read(model, query):
    """``query(model.objects)``, or () when the table is not there yet (an LMS migrating several apps at once)."""
    try:
        with transaction.atomic():
            return query(model.objects)
    except DatabaseError:
        log.warning("POK: could not read %s; treated as empty", model._meta.db_table)
        return ()


def _flag_rolled_out(flag):
    """Whether the flag is rolled out to some users; not "superusers", waffle's default, which says nothing."""
    return bool(flag.percent or flag.staff or flag.authenticated or flag.testing or flag.rollout
                or flag.languages or flag.users.exists() or flag.groups.exists())


def _current_overrides(model, flag_name, key_field):
    """The current override per key, like ``override_value``: the latest row decides, if it is enabled."""
    rows = _read(model, lambda objects: list(objects.filter(waffle_flag=flag_name).order_by(
        key_field, "-change_date", "-id").values_list(key_field, "override_choice", "enabled")))
    current = {}
    for key, choice, enabled in rows:
        current.setdefault(str(key), choice if enabled else None)
    return tuple((key, choice == "on") for key, choice in current.items() if choice in ("on", "off"))
