"""
The one door from the plugin to the Open edX platform.

Only this module knows the platform's modules (``lms.*``, ``openedx.*``, ``common.*``), and it imports them lazily,
inside methods, so the plugin imports cleanly outside the LMS. The functions below delegate to a backend chosen by
the ``POK_COMPAT_BACKEND`` setting: the platform backend in the LMS, the sandbox LMS backend in tests and the demo.
Everything crosses the door as small frozen data classes, never as platform model instances.
"""
import logging
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone
from django.utils.module_loading import import_string
from edx_django_utils.cache import DEFAULT_REQUEST_CACHE

from openedx_pok.lms_tables import (  # the readings both backends share; their results cross the door too
    count_certificates,
    course_flag_state,
    keyset_certificates,
    language_preferences,
    learner_certificates,
    learner_course_keys,
)

log = logging.getLogger(__name__)

DEFAULT_BACKEND = "openedx_pok.compat.PlatformBackend"


@dataclass(frozen=True)
class Signatory:
    """A person who signs the course certificate."""

    name: str
    title: str = ""
    organization: str = ""


@dataclass(frozen=True)
class CertificatesRelease:
    """
    Whether the LMS shows the course's certificates to learners now, and from when if it does not yet.

    ``date`` is the moment they become visible (None: already visible, or not before the course team sets a date or
    an end); ``released`` whether they are visible at the moment it was decided.
    """

    released: bool
    date: datetime | None = None


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
    # When the LMS shows the certificates: the course overview's fields of the same names.
    self_paced: bool = False
    certificates_display_behavior: str = "end"
    certificate_available_date: datetime | None = None
    certificates_show_before_end: bool = False

    @classmethod
    def from_overview(cls, overview, course_key, org_name, certificate_title, signatories):
        """From a course overview (the LMS's or the sandbox's) and what the backend read beside it."""
        return cls(
            course_key=course_key, display_name=overview.display_name or "", org=overview.org or course_key.org,
            org_name=org_name or "", start=overview.start, end=overview.end, language=overview.language or "",
            certificate_title=certificate_title or "", signatories=tuple(signatories),
            self_paced=bool(overview.self_paced),
            certificates_display_behavior=str(overview.certificates_display_behavior or "end"),
            certificate_available_date=overview.certificate_available_date,
            certificates_show_before_end=bool(overview.certificates_show_before_end),
        )

    def certificates_release(self, now=None):
        """
        The rule of the LMS's ``certificates_viewable_for_course`` (``lms/djangoapps/certificates/utils.py``
        ``should_certificate_be_visible``, openedx-platform Verawood): a self-paced course shows certificates at
        once, as does "early_no_info" (or the deprecated show-before-end); "end_with_date" once the certificate
        available date has passed; "end" once the course has ended. No date, no end: not shown.
        """
        now = now or timezone.now()
        behavior = self.certificates_display_behavior
        if self.self_paced or behavior == "early_no_info" or self.certificates_show_before_end:
            return CertificatesRelease(released=True)
        date = {"end_with_date": self.certificate_available_date, "end": self.end}.get(behavior)
        return CertificatesRelease(released=date is not None and date < now, date=date)


@dataclass(frozen=True)
class CertificateInfo:
    """The learner's Open edX certificate (GeneratedCertificate) as far as issuance cares."""

    status: str
    verify_uuid: str = ""
    mode: str = ""
    grade: str = ""
    created: datetime | None = None
    modified: datetime | None = None

    @classmethod
    def from_certificate(cls, certificate):
        """From a GeneratedCertificate (the LMS's or the sandbox's)."""
        return cls(status=certificate.status, verify_uuid=certificate.verify_uuid or "", mode=certificate.mode or "",
                   grade=certificate.grade or "", created=certificate.created_date,
                   modified=certificate.modified_date)

    @property
    def is_downloadable(self):
        return self.status == "downloadable"


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
        return CourseInfo.from_overview(overview, course_key, overview.display_org_with_default, title, signatories)

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
        return CertificateInfo.from_certificate(certificate) if certificate is not None else None

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

    def get_certificates(self, learners):
        """
        :meth:`get_certificate` of many (user id, course key) pairs in one statement, from the model the LMS's
        ``get_certificate_for_user`` reads (``lms/djangoapps/certificates/api.py``: ``eligible_certificates``).
        """
        from lms.djangoapps.certificates.models import GeneratedCertificate  # noqa: PLC0415

        return learner_certificates(GeneratedCertificate, learners)

    def get_language_preferences(self, user_ids):
        """:meth:`get_language_preference` of many learners in one statement (the ``UserPreference`` table)."""
        from openedx.core.djangoapps.user_api.models import UserPreference  # noqa: PLC0415

        return language_preferences(UserPreference, user_ids)

    def get_platform_name(self):
        from openedx.core.djangoapps.site_configuration import (  # noqa: PLC0415
            helpers as configuration_helpers,
        )

        # Lowercase, the LMS's key (site_configuration/helpers.py, certificates webview; openedx-platform Verawood).
        return configuration_helpers.get_value("platform_name", settings.PLATFORM_NAME)

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

        return course_flag_state(flag_name, get_waffle_flag_model(), waffle_utils.WaffleFlagCourseOverrideModel,
                                 getattr(waffle_utils, "WaffleFlagOrgOverrideModel", None))  # newer platforms only

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

    def get_learner_course_keys(self, user, course_keys):
        from common.djangoapps.student.models import CourseEnrollment  # noqa: PLC0415
        from lms.djangoapps.certificates.models import GeneratedCertificate  # noqa: PLC0415

        return learner_course_keys(CourseEnrollment, GeneratedCertificate, user, course_keys)

    def has_course_team_role(self, user, course_key):
        """
        The course's staff (limited staff included) or instructor role: ``CourseStaffRole`` / ``CourseInstructorRole``
        of ``common/djangoapps/student/roles.py`` (Ulmo, Verawood, master; on master also openedx-authz assignments).
        """
        from common.djangoapps.student.roles import CourseInstructorRole, CourseStaffRole  # noqa: PLC0415

        return CourseStaffRole(course_key).has_user(user) or CourseInstructorRole(course_key).has_user(user)

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

    def get_profile_model(self):
        """The learner's profile, where the LMS keeps the full name (``common/djangoapps/student/models/user.py``)."""
        from common.djangoapps.student.models import UserProfile  # noqa: PLC0415

        return UserProfile


@lru_cache(maxsize=4)
def _load_backend(path):
    return import_string(path)()


def backend():
    """The configured backend instance (cached per dotted path, so override_settings in tests switches it)."""
    return _load_backend(getattr(settings, "POK_COMPAT_BACKEND", DEFAULT_BACKEND) or DEFAULT_BACKEND)


def learner_relations():
    """The relations to ``select_related`` with a credential row for issuing it (at least its ``user``)."""
    return getattr(backend(), "learner_relations", ("user",))


def is_retiring(user):
    """
    Whether the learner asked to delete their account: the LMS replaces the e-mail by a retired one at once
    (``openedx/core/djangoapps/user_api/accounts/utils.py``, ``get_retired_email_by_email``: the prefix and domain
    of its settings ``RETIRED_EMAIL_PREFIX`` / ``RETIRED_EMAIL_DOMAIN``), days before its retirement pipeline runs.
    """
    prefix = getattr(settings, "RETIRED_EMAIL_PREFIX", "retired__user_")
    domain = getattr(settings, "RETIRED_EMAIL_DOMAIN", "retired.invalid")
    email = (getattr(user, "email", "") or "").lower()
    return email.startswith(prefix.lower()) and email.endswith(f"@{domain.lower()}")


def get_course(course_key):
    """The course run's :class:`CourseInfo`, or None when the course does not exist."""
    return backend().get_course(course_key)


#: The request-cache key of what :func:`reading_ahead` read for the next issuance of a learner and course.
_READ_AHEAD = "openedx_pok:read_ahead:{kind}:{user_id}:{course_key}"


@contextmanager
def reading_ahead(learners):
    """
    Within the block, the certificates and language preferences of many learners ((user, course key) pairs: a
    message's credentials) read in two statements, for the next :func:`get_certificate` /
    :func:`get_language_preference` of each: one call each (then the backend is asked again), and what was not
    asked for is forgotten when the block ends, so a value read ahead is never older than its message.
    """
    learners = list(learners)
    keys = []
    try:
        certificates = backend().get_certificates([(user.id, course_key) for user, course_key in learners])
        languages = backend().get_language_preferences({user.id for user, _course_key in learners})
    except Exception:  # only a shortcut: each issuance then reads its own, as without it
        log.warning("POK: could not read a message's certificates and languages ahead; reading them one by one",
                    exc_info=True)
        learners = []
    for user, course_key in learners:
        certificate = certificates.get((user.id, str(course_key)))
        values = {"certificate": CertificateInfo.from_certificate(certificate) if certificate is not None else None,
                  "language": languages.get(user.id)}
        for kind, value in values.items():
            keys.append(_READ_AHEAD.format(kind=kind, user_id=user.id, course_key=course_key))
            DEFAULT_REQUEST_CACHE.set(keys[-1], value)
    try:
        yield
    finally:
        for key in keys:
            DEFAULT_REQUEST_CACHE.data.pop(key, None)


def _read_ahead(kind, user, course_key):
    """(True, value) read ahead for this call (and forgotten), or (False, None)."""
    key = _READ_AHEAD.format(kind=kind, user_id=getattr(user, "id", None), course_key=course_key)
    if key not in DEFAULT_REQUEST_CACHE.data:
        return False, None
    return True, DEFAULT_REQUEST_CACHE.data.pop(key)


def get_certificate(user, course_key):
    """The learner's :class:`CertificateInfo` for the course, or None when the LMS has none."""
    found, certificate = _read_ahead("certificate", user, course_key)
    return certificate if found else backend().get_certificate(user, course_key)


def get_profile_name(user):
    """The learner's certificate name (profile name), or None without a profile."""
    return backend().get_profile_name(user)


def get_language_preference(user, course_key=None):
    """
    The learner's own language preference (never the language of whoever triggered the request); ``course_key``: the
    issuance it is read for, which may have read it ahead (:func:`reading_ahead`).
    """
    found, language = _read_ahead("language", user, course_key) if course_key is not None else (False, None)
    return language if found else backend().get_language_preference(user)


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


def get_learner_course_keys(user, course_keys):
    """The course runs among ``course_keys`` the user is enrolled in or holds a certificate of (a frozenset)."""
    return backend().get_learner_course_keys(user, course_keys)


def has_course_team_role(user, course_key):
    """Whether the user is on the course's team: its staff or instructor (the LMS's course access roles)."""
    return backend().has_course_team_role(user, course_key)


def emit_tracking_event(name, data):
    """Emit an analytics tracking event where the LMS's tracker exists; returns whether it was emitted."""
    return backend().emit_tracking_event(name, data)


def __getattr__(name):
    """
    ``openedx_pok.compat.USER_RETIRE_LMS_MISC``: the LMS's learner-retirement signal, and ``UserProfile``, its model of
    the learner's profile, looked up only when asked for.

    ``plugin_app["signals_config"]`` names a signal by its dotted path, which the platform imports at start-up.
    Naming the platform's own module there would fail wherever it does not exist (the sandbox LMS, tests); this
    attribute resolves it through the backend instead, so the path is written once, in the platform backend.
    """
    if name == "USER_RETIRE_LMS_MISC":
        return backend().get_retirement_signal()
    if name == "UserProfile":  # the sender of the post_save a name change sends
        return backend().get_profile_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
