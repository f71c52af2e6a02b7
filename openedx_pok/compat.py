"""
The one door from the plugin to the Open edX platform.

Only this module knows the platform's modules (``lms.*``, ``openedx.*``, ``common.*``), and it imports them lazily,
inside methods, so the plugin imports cleanly outside the LMS. The functions below delegate to a backend chosen by
the ``POK_COMPAT_BACKEND`` setting: the platform backend in the LMS, the sandbox LMS backend in tests and the demo.
Everything crosses the door as small frozen data classes, never as platform model instances.
"""
import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import DatabaseError, transaction
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "openedx_pok.compat.PlatformBackend"


@dataclass(frozen=True)
class Signatory:
    """A person who signs the course certificate."""

    name: str
    title: str = ""
    organization: str = ""


@dataclass(frozen=True)
class CourseInfo:
    """What the plugin needs to know of a course run."""

    course_key: object
    display_name: str
    org: str
    org_name: str = ""
    start: datetime | None = None
    end: datetime | None = None
    language: str = ""
    certificate_title: str = ""
    signatories: tuple = field(default_factory=tuple)


@dataclass(frozen=True)
class CertificateInfo:
    """The learner's Open edX certificate (GeneratedCertificate) as far as issuance cares."""

    status: str
    verify_uuid: str = ""
    mode: str = ""
    grade: str = ""
    created: datetime | None = None
    modified: datetime | None = None

    @property
    def is_downloadable(self):
        return self.status == "downloadable"


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
    fields = ("id", "user_id", "course_id", "created_date", "verify_uuid")
    while True:
        page = list(query.filter(id__gt=after_id).order_by("id").values_list(*fields)[:batch_size])
        for certificate_id, user_id, course_key, created, verify_uuid in page:
            yield CertificateRecord(certificate_id=certificate_id, user_id=user_id, course_key=course_key,
                                    created=created, verify_uuid=verify_uuid or "")
        if len(page) < batch_size:
            return
        after_id = page[-1][0]


def count_certificates(model, course_keys, since=None, until=None):
    """How many certificates :func:`keyset_certificates` yields (one COUNT query; for a progress bar)."""
    query = model.objects.filter(status="downloadable", course_id__in=list(course_keys))
    if since is not None:
        query = query.filter(created_date__gte=since)
    if until is not None:
        query = query.filter(created_date__lt=until)
    return query.count()


class PlatformBackend:
    """Reads the real LMS. Each import happens inside the method that needs it."""

    #: What to read with a credential row so that the learner's name costs no query of its own (the LMS's
    #: ``UserProfile`` is the user's ``profile``).
    learner_relations = ("user", "user__profile")

    def get_course(self, course_key):
        """Course overview plus the active certificate configuration (title, signatories) of the course block."""
        from openedx.core.djangoapps.content.course_overviews.models import (  # noqa: PLC0415
            CourseOverview,
        )

        try:
            overview = CourseOverview.get_from_id(course_key)
        except CourseOverview.DoesNotExist:
            return None
        title, signatories = self._certificate_configuration(course_key)
        return CourseInfo(
            course_key=course_key,
            display_name=overview.display_name or "",
            org=overview.org or course_key.org,
            org_name=overview.display_org_with_default or "",
            start=overview.start,
            end=overview.end,
            language=overview.language or "",
            certificate_title=title,
            signatories=signatories,
        )

    @staticmethod
    def _certificate_configuration(course_key):
        """The active certificate configuration's course_title and signatories; empty when there is none."""
        from lms.djangoapps.courseware.courses import get_course_by_id  # noqa: PLC0415

        try:
            course = get_course_by_id(course_key)
        except Exception:  # noqa: BLE001
            # A missing or broken course block must not stop issuance: title falls back to the course name.
            log.warning("POK: could not load the course block of %s for its certificate configuration", course_key)
            return "", ()
        configurations = (getattr(course, "certificates", None) or {}).get("certificates") or []
        active = next((c for c in configurations if c.get("is_active")), configurations[0] if configurations else {})
        signatories = tuple(
            Signatory(name=s.get("name") or "", title=s.get("title") or "", organization=s.get("organization") or "")
            for s in active.get("signatories") or []
            if s.get("name")
        )
        return active.get("course_title") or "", signatories

    def get_certificate(self, user, course_key):
        from lms.djangoapps.certificates.api import get_certificate_for_user  # noqa: PLC0415

        certificate = get_certificate_for_user(user.username, course_key, format_results=False)
        if certificate is None:
            return None
        return CertificateInfo(
            status=certificate.status,
            verify_uuid=certificate.verify_uuid or "",
            mode=certificate.mode or "",
            grade=certificate.grade or "",
            created=certificate.created_date,
            modified=certificate.modified_date,
        )

    def get_profile_name(self, user):
        try:
            return user.profile.name
        except ObjectDoesNotExist:
            return None

    def get_language_preference(self, user):
        from openedx.core.djangoapps.user_api.preferences.api import (  # noqa: PLC0415
            get_user_preference,
        )

        return get_user_preference(user, "pref-lang")

    def get_platform_name(self):
        from openedx.core.djangoapps.site_configuration import (  # noqa: PLC0415
            helpers as configuration_helpers,
        )

        return configuration_helpers.get_value("PLATFORM_NAME", settings.PLATFORM_NAME)

    def get_site_setting(self, name, default):
        from openedx.core.djangoapps.site_configuration import (  # noqa: PLC0415
            helpers as configuration_helpers,
        )

        return configuration_helpers.get_value(name, default)

    def get_organization_name(self, org_short_name):
        from organizations.api import get_organization_by_short_name  # noqa: PLC0415

        try:
            return get_organization_by_short_name(org_short_name).get("name")
        except Exception:  # noqa: BLE001
            # The organizations app raises its own InvalidOrganizationException; a missing org is not an error.
            return None

    def get_course_flag_state(self, flag_name):
        """The flag and its current course and organization overrides, from the waffle and waffle_utils tables."""
        from openedx.core.djangoapps.waffle_utils import models as waffle_utils  # noqa: PLC0415
        from waffle import get_waffle_flag_model  # noqa: PLC0415

        flags = self._read(get_waffle_flag_model(), lambda objects: list(objects.filter(name=flag_name)[:1]))
        everyone = False
        if flags:
            everyone = flags[0].everyone
            if everyone is None and not self._flag_rolled_out(flags[0]):
                everyone = False
        org_model = getattr(waffle_utils, "WaffleFlagOrgOverrideModel", None)  # newer platforms only
        return CourseFlagState(
            everyone=everyone,
            course_overrides=self._current_overrides(waffle_utils.WaffleFlagCourseOverrideModel, flag_name,
                                                     "course_id"),
            org_overrides=self._current_overrides(org_model, flag_name, "org") if org_model else (),
        )

    @staticmethod
    def _read(model, query):
        """``query(model.objects)``, or () when the table is not there yet (an LMS migrating several apps at once)."""
        try:
            with transaction.atomic():
                return query(model.objects)
        except DatabaseError:
            log.warning("POK: could not read %s; treated as empty", model._meta.db_table)
            return ()

    @staticmethod
    def _flag_rolled_out(flag):
        """
        Whether a flag without "everyone" is rolled out to some users (the LMS then decides per user). Superusers
        are left out: waffle turns that on by default, so it says nothing about a rollout.
        """
        return bool(flag.percent or flag.staff or flag.authenticated or flag.testing or flag.rollout
                    or flag.languages or flag.users.exists() or flag.groups.exists())

    @classmethod
    def _current_overrides(cls, model, flag_name, key_field):
        """The current override per key, like ``override_value``: the latest row decides, if it is enabled."""
        rows = cls._read(model, lambda objects: list(objects.filter(waffle_flag=flag_name).order_by(
            key_field, "-change_date", "-id").values_list(key_field, "override_choice", "enabled")))
        current = {}
        for key, choice, enabled in rows:
            current.setdefault(str(key), choice if enabled else None)
        return tuple((key, choice == "on") for key, choice in current.items() if choice in ("on", "off"))

    def iter_downloadable_certificates(self, course_keys, since=None, until=None, after_id=0, batch_size=500):
        from lms.djangoapps.certificates.models import GeneratedCertificate  # noqa: PLC0415

        return keyset_certificates(GeneratedCertificate, course_keys, since, until, after_id, batch_size)

    def count_downloadable_certificates(self, course_keys, since=None, until=None):
        from lms.djangoapps.certificates.models import GeneratedCertificate  # noqa: PLC0415

        return count_certificates(GeneratedCertificate, course_keys, since, until)

    def get_course_keys_for_org(self, org):
        from openedx.core.djangoapps.content.course_overviews.models import (  # noqa: PLC0415
            CourseOverview,
        )

        return tuple(CourseOverview.objects.filter(org=org).order_by("id").values_list("id", flat=True))

    def emit_tracking_event(self, name, data):
        """Through the LMS's event tracker (``eventtracking``); nothing where it is not installed (e.g. the CMS)."""
        try:
            from eventtracking import tracker  # noqa: PLC0415
        except ImportError:
            return False
        tracker.emit(name, data)
        return True

    def get_retirement_signal(self):
        from openedx.core.djangoapps.user_api.accounts.signals import USER_RETIRE_LMS_MISC  # noqa: PLC0415

        return USER_RETIRE_LMS_MISC


@lru_cache(maxsize=4)
def _load_backend(path):
    return import_string(path)()


def backend():
    """The configured backend instance (cached per dotted path, so override_settings in tests switches it)."""
    return _load_backend(getattr(settings, "POK_COMPAT_BACKEND", DEFAULT_BACKEND) or DEFAULT_BACKEND)


def learner_relations():
    """The relations to ``select_related`` with a credential row for issuing it (at least its ``user``)."""
    return getattr(backend(), "learner_relations", ("user",))


def get_course(course_key):
    """The course run's :class:`CourseInfo`, or None when the course does not exist."""
    return backend().get_course(course_key)


def get_certificate(user, course_key):
    """The learner's :class:`CertificateInfo` for the course, or None when the LMS has none."""
    return backend().get_certificate(user, course_key)


def get_profile_name(user):
    """The learner's certificate name (profile name), or None without a profile."""
    return backend().get_profile_name(user)


def get_language_preference(user):
    """The learner's own language preference (never the language of whoever triggered the request)."""
    return backend().get_language_preference(user)


def get_platform_name():
    """The site's platform name."""
    return backend().get_platform_name()


def get_organization_name(org_short_name):
    """The organization's long name, or None when the organizations app does not know it."""
    return backend().get_organization_name(org_short_name)


def get_site_setting(name, default):
    """A value of the current site's configuration (Open edX site configuration), else ``default``."""
    return backend().get_site_setting(name, default)


def get_course_flag_state(flag_name):
    """Where the course waffle flag ``flag_name`` is on or off (:class:`CourseFlagState`)."""
    return backend().get_course_flag_state(flag_name)


def iter_downloadable_certificates(course_keys, since=None, until=None, after_id=0, batch_size=500):
    """
    Every downloadable Open edX certificate of the courses as :class:`CertificateRecord`, by ascending id, read in
    keyset pages of ``batch_size`` (memory stays flat in the number of learners); see :func:`keyset_certificates`.
    """
    return backend().iter_downloadable_certificates(course_keys, since=since, until=until, after_id=after_id,
                                                    batch_size=batch_size)


def count_downloadable_certificates(course_keys, since=None, until=None):
    """How many certificates :func:`iter_downloadable_certificates` yields (one query)."""
    return backend().count_downloadable_certificates(course_keys, since=since, until=until)


def get_course_keys_for_org(org):
    """The course runs (CourseKeys) of an organization, from the course overviews."""
    return backend().get_course_keys_for_org(org)


def emit_tracking_event(name, data):
    """Emit an analytics tracking event where the LMS's tracker exists; returns whether it was emitted."""
    return backend().emit_tracking_event(name, data)


def __getattr__(name):
    """
    ``openedx_pok.compat.USER_RETIRE_LMS_MISC``: the LMS's learner-retirement signal, looked up only when asked for.

    ``plugin_app["signals_config"]`` names a signal by its dotted path, which the platform imports at start-up.
    Naming the platform's own module there would fail wherever it does not exist (the sandbox LMS, tests); this
    attribute resolves it through the backend instead, so the path is written once, in the platform backend.
    """
    if name == "USER_RETIRE_LMS_MISC":
        return backend().get_retirement_signal()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
