"""
The few LMS tables the plugin reads, reduced to the columns it uses.

``GeneratedCertificate.save()`` and its revocation methods send the openedx-events certificate signals with the same
timing and payload as the LMS model, because the plugin's receivers rely on exactly that: ``CERTIFICATE_CREATED`` on
*every* save of a passing certificate (not only the first), ``CERTIFICATE_CHANGED`` on every save, and
``CERTIFICATE_REVOKED`` after a revocation.
"""
import logging
from datetime import UTC
from uuid import uuid4

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.utils import timezone
from opaque_keys.edx.django.models import CourseKeyField
from openedx_events.learning.data import CertificateData, CourseData, UserData, UserPersonalData
from openedx_events.learning.signals import CERTIFICATE_CHANGED, CERTIFICATE_CREATED, CERTIFICATE_REVOKED

log = logging.getLogger(__name__)


def new_verify_uuid():
    """A fresh 32-hex verify_uuid, the public id of a certificate page (module-level so migrations can import it)."""
    return uuid4().hex


class CourseOverview(models.Model):
    """
    The LMS course overview plus the certificate configuration that the LMS keeps on the course block.

    ``certificate_title`` and ``signatories`` come from ``course.certificates['certificates'][active]`` in the LMS;
    they live here so the sandbox needs no modulestore.

    .. no_pii:
    """

    id = CourseKeyField(max_length=255, primary_key=True, db_index=True)
    display_name = models.TextField(blank=True, default="")
    org = models.TextField(max_length=255, default="")
    display_org_with_default = models.TextField(blank=True, default="")
    start = models.DateTimeField(null=True, blank=True)
    end = models.DateTimeField(null=True, blank=True)
    language = models.CharField(max_length=16, blank=True, default="")
    # When the LMS shows the course's certificates (lms/djangoapps/certificates/api.py certificates_viewable_for_course,
    # openedx-platform Verawood): self-paced at once; otherwise by the display behaviour, "early_no_info" at once,
    # "end" once the course has ended, "end_with_date" once certificate_available_date has passed.
    self_paced = models.BooleanField(default=False)
    certificates_display_behavior = models.TextField(null=True, blank=True)
    certificate_available_date = models.DateTimeField(default=None, null=True, blank=True)
    certificates_show_before_end = models.BooleanField(default=False)  # deprecated in the LMS, still honoured
    cert_html_view_enabled = models.BooleanField(
        default=True, help_text="Like the LMS course setting: without it the certificate page shows 'invalid'.",
    )
    certificate_title = models.CharField(
        max_length=255, blank=True, default="", help_text="course_title of the active certificate configuration",
    )
    signatories = models.JSONField(
        default=list, blank=True, help_text='List of {"name": ..., "title": ..., "organization": ...}',
    )

    class Meta:
        app_label = "lms_sandbox"

    def __str__(self):
        return str(self.id)

    def save(self, *args, **kwargs):
        # The LMS derives org from the key; keep the sandbox rows consistent when a test gives only the key.
        if self.id and not self.org:
            self.org = self.id.org
        if not self.display_org_with_default:
            self.display_org_with_default = self.org
        self.certificate_available_date, self.certificates_display_behavior = self._validated_certificate_settings()
        super().save(*args, **kwargs)

    def _validated_certificate_settings(self):
        """
        As the LMS stores them (openedx/core/djangoapps/models/course_details.py validate_certificate_settings):
        "early_no_info" drops the date; a date makes the behaviour "end_with_date"; anything else is "end".
        """
        if self.certificates_display_behavior == "early_no_info":
            return None, "early_no_info"
        if self.certificate_available_date:
            return self.certificate_available_date, "end_with_date"
        return None, "end"

    def has_ended(self):
        """As ``CourseOverview.has_ended``: a course without an end date never ends."""
        return self.end is not None and timezone.now() > self.end


class UserProfile(models.Model):
    """
    The LMS user profile: the certificate name (the language preference is a ``UserPreference``, as in the LMS).

    .. pii: name of the learner
    .. pii_types: name
    .. pii_retirement: local_api
    """

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    name = models.CharField(max_length=255, blank=True, db_index=True)

    class Meta:
        app_label = "lms_sandbox"

    def __str__(self):
        return f"profile of user {self.user_id}"


class UserPreference(models.Model):
    """
    A user's preference, e.g. ``pref-lang`` (the learner's language), as the LMS keeps it: one text value per user
    and key (openedx/core/djangoapps/user_api/models.py, openedx-platform Verawood).

    .. pii: the learner's preferences (language, time zone, ...)
    .. pii_types: other
    .. pii_retirement: local_api
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, db_index=True, related_name="preferences",
                             on_delete=models.CASCADE)
    key = models.CharField(max_length=255, db_index=True)
    value = models.TextField()

    class Meta:
        app_label = "lms_sandbox"
        unique_together = (("user", "key"),)

    def __str__(self):
        return f"{self.key} of user {self.user_id}"

    @classmethod
    def get_value(cls, user, preference_key, default=None):
        """The value, or ``default`` when the user has not set it (what ``get_user_preference`` returns)."""
        try:
            return cls.objects.get(user=user, key=preference_key).value
        except cls.DoesNotExist:
            return default


class ConfigurationModel(models.Model):
    """
    The fields of django-config-models' ``ConfigurationModel`` that the waffle overrides inherit: every change is a
    new row, and the latest row (by ``change_date``) is the current one, in force only when ``enabled``.
    """

    change_date = models.DateTimeField(auto_now_add=True)
    changed_by = models.ForeignKey(settings.AUTH_USER_MODEL, editable=False, null=True, on_delete=models.PROTECT,
                                   related_name="+")
    enabled = models.BooleanField(default=False)

    class Meta:
        abstract = True
        ordering = ("-change_date",)


OVERRIDE_CHOICES = (("on", "Force On"), ("off", "Force Off"))


class WaffleFlagCourseOverrideModel(ConfigurationModel):
    """
    A course waffle flag forced on or off for one course run (openedx/core/djangoapps/waffle_utils/models.py,
    openedx-platform Verawood); it wins over the organization's override, which wins over the flag.

    .. no_pii:
    """

    waffle_flag = models.CharField(max_length=255, db_index=True)
    course_id = CourseKeyField(max_length=255, db_index=True)
    override_choice = models.CharField(choices=OVERRIDE_CHOICES, default="on", max_length=3)
    note = models.TextField(blank=True, help_text="e.g. why this exists and when/if it can be dropped")

    class Meta(ConfigurationModel.Meta):
        app_label = "lms_sandbox"

    def __str__(self):
        return f"Course {self.course_id}: Waffle Override {'Enabled' if self.enabled else 'Not Enabled'}"

    @classmethod
    def override_value(cls, waffle_flag, course_id):
        """"on", "off" or "unset", as the LMS model decides it (without its per-request cache)."""
        effective = cls.objects.filter(waffle_flag=waffle_flag, course_id=course_id).order_by("-change_date").first()
        return effective.override_choice if effective and effective.enabled else "unset"


class WaffleFlagOrgOverrideModel(ConfigurationModel):
    """
    A course waffle flag forced on or off for every course of an organization (same file and release as above).

    .. no_pii:
    """

    waffle_flag = models.CharField(max_length=255, db_index=True)
    org = models.CharField(max_length=255, db_index=True)
    override_choice = models.CharField(choices=OVERRIDE_CHOICES, default="on", max_length=3)
    note = models.TextField(blank=True, help_text="e.g. why this exists and when/if it can be dropped")

    class Meta(ConfigurationModel.Meta):
        app_label = "lms_sandbox"
        indexes = [models.Index(name="waffle_org_and_waffle_flag", fields=["org", "waffle_flag"])]

    def __str__(self):
        return f"Org {self.org}: Waffle Override {'Enabled' if self.enabled else 'Not Enabled'}"

    @classmethod
    def override_value(cls, waffle_flag, org):
        """"on", "off" or "unset", as the LMS model decides it (without its per-request cache)."""
        effective = cls.objects.filter(waffle_flag=waffle_flag, org=org).order_by("-change_date").first()
        return effective.override_choice if effective and effective.enabled else "unset"


class Organization(models.Model):
    """
    An entry of the edx-organizations app: the long name of an org short name.

    .. no_pii:
    """

    short_name = models.CharField(max_length=255, unique=True)
    name = models.CharField(max_length=255)

    class Meta:
        app_label = "lms_sandbox"

    def __str__(self):
        return self.short_name


class CourseEnrollment(models.Model):
    """
    A learner's enrollment in a course run, as the LMS keeps it (common/djangoapps/student/models/
    course_enrollment.py, openedx-platform Verawood): ``course`` points at the overview without a database
    constraint, ``is_active`` is False once the learner unenrolled.

    .. no_pii:
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    course = models.ForeignKey(CourseOverview, db_constraint=False, on_delete=models.DO_NOTHING)
    created = models.DateTimeField(auto_now_add=True, null=True, db_index=True)
    is_active = models.BooleanField(default=True)
    mode = models.CharField(default="audit", max_length=100)

    class Meta:
        app_label = "lms_sandbox"
        unique_together = (("user", "course"),)

    def __str__(self):
        return f"enrollment of user {self.user_id} in {self.course_id}"


class CourseAccessRole(models.Model):
    """
    A user's role in a course or an organization, as the LMS keeps it: ``CourseAccessRole`` of
    common/djangoapps/student/models/user.py (openedx-platform Ulmo, Verawood and master), one row per user,
    organization, course and role (``staff``, ``limited_staff``, ``instructor``, ``data_researcher`` ...); a blank
    ``course_id`` is an organization-wide role. Read through ``lms_sandbox.roles``, the LMS's ``student/roles.py``.

    .. no_pii:
    """

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    org = models.CharField(max_length=64, db_index=True, blank=True)
    course_id = CourseKeyField(max_length=255, db_index=True, blank=True)
    role = models.CharField(max_length=64, db_index=True)

    class Meta:
        app_label = "lms_sandbox"
        unique_together = ("user", "org", "course_id", "role")

    def __str__(self):
        return f"{self.role} of user {self.user_id} in {self.course_id or self.org}"


class CertificateStatuses:
    """The LMS certificate statuses (``lms.djangoapps.certificates.data.CertificateStatuses``) the sandbox uses."""

    downloadable = "downloadable"
    generating = "generating"
    notpassing = "notpassing"
    unverified = "unverified"
    unavailable = "unavailable"
    audit_passing = "audit_passing"
    audit_notpassing = "audit_notpassing"
    error = "error"
    deleted = "deleted"

    # The LMS sends CERTIFICATE_CREATED for these on every save (CertificateStatuses.is_passing_status).
    PASSED_STATUSES = (downloadable, generating)

    CHOICES = [(status, status) for status in (
        downloadable, generating, notpassing, unverified, unavailable, audit_passing, audit_notpassing, error, deleted,
    )]

    @classmethod
    def is_passing_status(cls, status):
        return status in cls.PASSED_STATUSES


class EligibleCertificateManager(models.Manager):
    """
    Certificates that count as the learner's certificate: audit ones left out, whatever their status otherwise
    (lms/djangoapps/certificates/models.py ``EligibleCertificateManager``, openedx-platform Verawood).
    """

    def get_queryset(self):
        return super().get_queryset().exclude(
            status__in=(CertificateStatuses.audit_passing, CertificateStatuses.audit_notpassing),
        )


class GeneratedCertificate(models.Model):
    """
    A learner's Open edX course certificate, sending the certificate signals as the LMS model does.

    .. pii: the learner's certificate name
    .. pii_types: name
    .. pii_retirement: local_api
    """

    # As the LMS model: ``objects`` sees every row, ``eligible_certificates`` is what the certificates API reads.
    objects = models.Manager()
    eligible_certificates = EligibleCertificateManager()

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    course_id = CourseKeyField(max_length=255, blank=True, default=None, db_index=True)
    verify_uuid = models.CharField(max_length=32, blank=True, default=new_verify_uuid, db_index=True)
    status = models.CharField(
        max_length=32, choices=CertificateStatuses.CHOICES, default=CertificateStatuses.unavailable,
    )
    mode = models.CharField(max_length=32, default="honor")
    # The LMS stores the grade as text, e.g. "0.85" (str(CourseGrade.percent)), or "" when unknown.
    grade = models.CharField(max_length=5, blank=True, default="")
    name = models.CharField(max_length=255, blank=True)
    download_url = models.CharField(max_length=128, blank=True, default="")
    created_date = models.DateTimeField(default=timezone.now)
    modified_date = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "lms_sandbox"
        unique_together = (("user", "course_id"),)

    def __str__(self):
        return f"certificate of user {self.user_id} in {self.course_id} ({self.status})"

    def save(self, *args, **kwargs):
        """Save, then send CERTIFICATE_CHANGED, and CERTIFICATE_CREATED when the status is a passing one."""
        super().save(*args, **kwargs)
        time = self.modified_date.astimezone(UTC)
        CERTIFICATE_CHANGED.send_event(time=time, certificate=self.event_data())
        if CertificateStatuses.is_passing_status(self.status):
            CERTIFICATE_CREATED.send_event(time=time, certificate=self.event_data())

    def event_data(self):
        """
        The ``CertificateData`` payload of the certificate signals, built like the LMS builds it.

        The LMS leaves ``previous_status`` empty, so receivers must not depend on it; neither does the sandbox set it.
        """
        user = self.user
        return CertificateData(
            user=UserData(
                id=user.id,
                is_active=user.is_active,
                pii=UserPersonalData(username=user.username, email=user.email, name=_profile_name(user)),
            ),
            course=CourseData(course_key=self.course_id),
            mode=self.mode,
            grade=self.grade,
            current_status=self.status,
            download_url=self.download_url,
            name=self.name,
        )

    def invalidate(self, mode=None):
        """Revoke the certificate (status ``unavailable``), like an instructor invalidation in the LMS."""
        log.info("Sandbox LMS: invalidating the certificate of user %s in %s", self.user_id, self.course_id)
        self._revoke(CertificateStatuses.unavailable, mode=mode)

    def mark_notpassing(self, grade, mode=None):
        """Revoke because the learner no longer passes (e.g. after a regrade)."""
        self._revoke(CertificateStatuses.notpassing, mode=mode, grade=grade)

    def mark_unverified(self, mode=None):
        """Revoke because the learner's identity verification is no longer valid."""
        self._revoke(CertificateStatuses.unverified, mode=mode)

    def _revoke(self, status, mode=None, grade=None):
        """Save the revoked state, then send CERTIFICATE_REVOKED (after the CHANGED sent by save, as the LMS does)."""
        # A float grade can arrive here; the event defines grade as str.
        self.grade = str(grade) if grade not in (None, "") else ""
        self.status = status
        self.mode = mode or self.mode
        self.download_url = ""
        self.save()
        CERTIFICATE_REVOKED.send_event(
            time=self.modified_date.astimezone(UTC), certificate=self.event_data(),
        )


def _profile_name(user):
    """The profile name for the event payload; "" when the user has no profile (every LMS user has one)."""
    try:
        return user.profile.name
    except ObjectDoesNotExist:
        return ""
