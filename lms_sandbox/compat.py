"""
The sandbox side of the plugin's platform door (``openedx_pok.compat``).

Selected with ``POK_COMPAT_BACKEND = "lms_sandbox.compat.SandboxBackend"``. It answers the same questions as the
platform backend from the sandbox tables, with the same fallbacks, so the plugin's code paths are the ones it takes
inside the LMS.
"""
from django.conf import settings
from waffle import get_waffle_flag_model

from lms_sandbox import retirement, roles
from lms_sandbox.models import (
    CourseEnrollment,
    CourseOverview,
    GeneratedCertificate,
    Organization,
    UserPreference,
    UserProfile,
    WaffleFlagCourseOverrideModel,
    WaffleFlagOrgOverrideModel,
)
from openedx_pok.compat import CertificateInfo, CourseInfo, PlatformBackend, Signatory
from openedx_pok.lms_tables import (
    count_certificates,
    course_flag_state,
    keyset_certificates,
    language_preferences,
    learner_certificates,
    learner_course_keys,
)


class SandboxBackend(PlatformBackend):
    """
    Reads the sandbox LMS models; read-only and one or two indexed queries per call. What the platform backend reads
    without platform imports (the learner's profile name) is inherited, so the tests run the platform's code there.

    Tracking events are kept in ``tracked_events`` (``(name, data)`` pairs, oldest first) where the LMS would hand
    them to its event tracker, so tests can see exactly what analytics would receive.
    """

    #: As the LMS: the learner's profile is the user's ``profile``, read with the credential row.
    learner_relations = ("user", "user__profile")

    def __init__(self):
        self.tracked_events = []

    def get_course(self, course_key):
        """The course run's CourseInfo, or None when there is no overview for it."""
        try:
            overview = CourseOverview.objects.get(id=course_key)
        except CourseOverview.DoesNotExist:
            return None
        org = overview.org or course_key.org
        signatories = (
            Signatory(name=s.get("name") or "", title=s.get("title") or "", organization=s.get("organization") or "")
            for s in overview.signatories or []
            # The platform backend drops signatories without a name as well.
            if isinstance(s, dict) and s.get("name")
        )
        org_name = self.get_organization_name(org) or overview.display_org_with_default
        return CourseInfo.from_overview(overview, course_key, org_name, overview.certificate_title, signatories)

    def get_certificate(self, user, course_key):
        """
        The learner's certificate as CertificateInfo, or None; read as ``get_certificate_for_user`` reads it
        (lms/djangoapps/certificates/api.py, openedx-platform Verawood): by username, audit certificates left out.
        """
        certificate = GeneratedCertificate.eligible_certificates.filter(
            user__username=user.username, course_id=course_key).first()
        return CertificateInfo.from_certificate(certificate) if certificate is not None else None

    def get_language_preference(self, user):
        """
        The learner's "pref-lang" preference, None when unset: ``get_user_preference(user, "pref-lang")`` reads the
        UserPreference table (openedx/core/djangoapps/user_api/preferences/api.py, openedx-platform Verawood).
        """
        return UserPreference.get_value(user, "pref-lang")

    def get_certificates(self, learners):
        """The platform backend's query (``lms_tables.learner_certificates``) on the sandbox's certificates."""
        return learner_certificates(GeneratedCertificate, learners)

    def get_language_preferences(self, user_ids):
        """The platform backend's query (``lms_tables.language_preferences``) on the sandbox's preferences."""
        return language_preferences(UserPreference, user_ids)

    def get_platform_name(self):
        """The site's "platform_name" (lowercase, the LMS's key), else the PLATFORM_NAME setting."""
        return self.get_site_setting("platform_name", settings.PLATFORM_NAME)

    def get_site_setting(self, name, default):
        """Site configuration of the sandbox: the SANDBOX_SITE_CONFIGURATION dict setting, like one site's values."""
        return getattr(settings, "SANDBOX_SITE_CONFIGURATION", {}).get(name, default)

    def get_organization_name(self, org_short_name):
        """The organization's long name, or None when it is not registered."""
        if not org_short_name:
            return None
        return Organization.objects.filter(short_name=org_short_name).values_list("name", flat=True).first()

    def get_course_flag_state(self, flag_name):
        """
        The platform backend's own reading (``compat.course_flag_state``) of django-waffle's Flag table and the
        sandbox's copies of the LMS's override tables, so tests exercise the code that runs in the LMS.
        """
        return course_flag_state(flag_name, get_waffle_flag_model(), WaffleFlagCourseOverrideModel,
                                 WaffleFlagOrgOverrideModel)

    def iter_downloadable_certificates(self, course_keys, since=None, until=None, after_id=0, batch_size=500):
        """The same keyset walk as the platform backend, over the sandbox's GeneratedCertificate."""
        return keyset_certificates(GeneratedCertificate, course_keys, since, until, after_id, batch_size)

    def count_downloadable_certificates(self, course_keys, since=None, until=None):
        return count_certificates(GeneratedCertificate, course_keys, since, until)

    def get_course_keys_for_org(self, org):
        return tuple(CourseOverview.objects.filter(org=org).order_by("id").values_list("id", flat=True))

    def get_learner_course_keys(self, user, course_keys):
        return learner_course_keys(CourseEnrollment, GeneratedCertificate, user, course_keys)

    def has_course_team_role(self, user, course_key):
        """The platform backend's check on the sandbox's copy of the LMS's roles (``lms_sandbox.roles``)."""
        return roles.CourseStaffRole(course_key).has_user(user) or roles.CourseInstructorRole(course_key).has_user(user)

    def emit_tracking_event(self, name, data):
        """Record the event as the LMS tracker would receive it."""
        self.tracked_events.append((name, dict(data)))
        return True

    def get_retirement_signal(self):
        """The sandbox's stand-in for ``openedx.core.djangoapps.user_api.accounts.signals.USER_RETIRE_LMS_MISC``."""
        return retirement.USER_RETIRE_LMS_MISC

    def get_profile_model(self):
        """The sandbox's ``UserProfile`` (the LMS's ``common.djangoapps.student.models.UserProfile``)."""
        return UserProfile
