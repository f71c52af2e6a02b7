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


class PlatformBackend:
    """Reads the real LMS. Each import happens inside the method that needs it."""

    def get_course(self, course_key):
        """Course overview plus the active certificate configuration (title, signatories) of the course block."""
        from openedx.core.djangoapps.content.course_overviews.models import (  # pylint: disable=import-outside-toplevel
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
        from lms.djangoapps.courseware.courses import get_course_by_id  # pylint: disable=import-outside-toplevel

        try:
            course = get_course_by_id(course_key)
        except Exception:  # pylint: disable=broad-except
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
        from lms.djangoapps.certificates.api import get_certificate_for_user  # pylint: disable=import-outside-toplevel

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
        from openedx.core.djangoapps.user_api.preferences.api import (  # pylint: disable=import-outside-toplevel
            get_user_preference,
        )

        return get_user_preference(user, "pref-lang")

    def get_platform_name(self):
        from openedx.core.djangoapps.site_configuration import (  # pylint: disable=import-outside-toplevel
            helpers as configuration_helpers,
        )

        return configuration_helpers.get_value("PLATFORM_NAME", settings.PLATFORM_NAME)

    def get_site_setting(self, name, default):
        from openedx.core.djangoapps.site_configuration import (  # pylint: disable=import-outside-toplevel
            helpers as configuration_helpers,
        )

        return configuration_helpers.get_value(name, default)

    def get_organization_name(self, org_short_name):
        from organizations.api import get_organization_by_short_name  # pylint: disable=import-outside-toplevel

        try:
            return get_organization_by_short_name(org_short_name).get("name")
        except Exception:  # pylint: disable=broad-except
            # The organizations app raises its own InvalidOrganizationException; a missing org is not an error.
            return None


@lru_cache(maxsize=4)
def _load_backend(path):
    return import_string(path)()


def backend():
    """The configured backend instance (cached per dotted path, so override_settings in tests switches it)."""
    return _load_backend(getattr(settings, "POK_COMPAT_BACKEND", DEFAULT_BACKEND) or DEFAULT_BACKEND)


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
