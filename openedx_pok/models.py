"""
Data of the plugin: which courses issue POK credentials, and one credential record per learner and course.

Business rules live in ``issuance.py`` (the state machine) and ``states.py`` (statuses); this module keeps the data
and the small invariants that the database itself can enforce: one credential per (learner, course), one POK id per
credential, one mapping per course and one default mapping per organization.

The classes keep the names of the earlier openedx-pok (``CertificateTemplate`` is a *course mapping*,
``PokCertificate`` a *credential*) so that an upgrade in place finds familiar names; see
docs/decisions/0005-layers-and-names.rst.

Table and migration names deliberately differ from those of the earlier openedx-pok 21.x, which used the same app
label (see docs/decisions/0002-tables-and-migrations.rst).
"""
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from model_utils.models import TimeStampedModel
from opaque_keys.edx.django.models import CourseKeyField

from openedx_pok.issuance.history import Cause
from openedx_pok.issuance.states import ISSUABLE_STATUSES, CredentialStatus  # noqa: F401 - re-exported for callers


class EmissionType(models.TextChoices):
    """How POK emits the credential; ``blockchain`` consumes the POK organization's credits."""

    POK = "pok", _("POK (free)")
    BLOCKCHAIN = "blockchain", _("Blockchain (uses credits)")


def default_emission_type():
    """
    The emission type a new course mapping starts with: the ``POK_DEFAULT_EMISSION_TYPE`` setting.

    A callable so that changing the setting needs no migration and takes effect for the next mapping. A value that is
    not an :class:`EmissionType` falls back to the free ``pok`` emission rather than spending credits by mistake.
    """
    value = getattr(settings, "POK_DEFAULT_EMISSION_TYPE", EmissionType.POK)
    try:
        return EmissionType(str(value).strip().lower())
    except ValueError:
        return EmissionType.POK


class CertificateTemplateQuerySet(models.QuerySet):
    """
    Lookups of the mapping that applies to a course.

    ``configuration`` caches the mappings and forgets them on ``post_save`` / ``post_delete`` (a queryset delete
    sends one per row). ``update``, ``bulk_create`` and ``bulk_update`` send no signal: whoever calls them calls
    ``configuration.forget_mappings()`` after (the legacy import does).
    """

    def for_course(self, course_key):
        """
        Return the mapping that applies to ``course_key``, or None.

        A course's own mapping wins over its organization's default, even when it is disabled: that is how an
        admin opts one course out of an organization-wide default.
        """
        candidates = self.filter(
            Q(course_key=course_key) | Q(course_key=CourseKeyField.Empty, organization=course_key.org)
        )
        best = None
        for mapping in candidates:
            if mapping.course_key:
                return mapping
            best = mapping
        return best


class CertificateTemplate(TimeStampedModel):
    """
    Maps a course, or a whole organization as the default for its courses, to a POK template.

    A course is POK-enabled exactly when an enabled mapping applies to it (see ``for_course``).

    .. no_pii:
    """

    course_key = CourseKeyField(
        max_length=255, blank=True, db_index=True, verbose_name=_("course"),
        help_text=_("The course run, e.g. course-v1:Org+Course+Run. Leave empty to make this the default of an "
                    "organization."),
    )
    organization = models.CharField(
        max_length=255, blank=True, db_index=True, verbose_name=_("organization"),
        help_text=_("Open edX organization short name. Filled from the course for course mappings."),
    )
    template_id = models.CharField(
        max_length=255, blank=True, verbose_name=_("POK template id"),
        help_text=_("Empty uses the POK_DEFAULT_TEMPLATE_ID setting."),
    )
    emission_type = models.CharField(
        max_length=16, choices=EmissionType.choices, default=default_emission_type, verbose_name=_("emission type"),
    )
    page_id = models.CharField(
        max_length=255, blank=True, verbose_name=_("POK page id"),
        help_text=_("Optional POK page that shows the credential. Empty uses the POK_DEFAULT_PAGE_ID setting."),
    )
    enabled = models.BooleanField(default=True, verbose_name=_("enabled"))
    # Course setup: the POK account (a name from POK_ACCOUNTS; keys stay in settings) and where each
    # template parameter takes its value from.
    account = models.CharField(
        max_length=64, default="default", verbose_name=_("POK account"),
        help_text=_("The POK organization that issues this course's credentials: a name from the POK_ACCOUNTS "
                    "setting ('default' is POK_API_URL / POK_API_KEY)."),
    )
    parameter_sources = models.JSONField(
        default=dict, blank=True, verbose_name=_("parameter sources"),
        help_text=_("Where each template parameter takes its value from, by parameter id. A parameter left out is "
                    "resolved automatically by its id or label."),
    )

    objects = CertificateTemplateQuerySet.as_manager()

    class Meta:
        db_table = "openedx_pok_course_template_mapping"
        verbose_name = _("course template mapping")
        verbose_name_plural = _("course template mappings")
        constraints = [
            # Course mappings store their course's org, so this is "one mapping per course" and "one default per
            # organization" at once, and it holds on MySQL too (no partial indexes needed).
            models.UniqueConstraint(fields=["organization", "course_key"], name="pok_mapping_unique_scope"),
        ]

    def __str__(self):
        # What the mapping is for, as staff name it (the admin's "... was added" message, the history): the
        # template's POK id would mean nothing to them, and its name costs a query.
        return str(self.course_key) if self.course_key else _("organization {org}").format(org=self.organization)

    def clean(self):
        """Require a course or an organization, and keep a course mapping's organization in step with its key."""
        super().clean()
        if self.course_key:
            self.organization = self.course_key.org
        elif not self.organization:
            raise ValidationError(_("Choose a course, or an organization for an organization-wide default."))

    def save(self, *args, **kwargs):
        """Fill the organization from the course key so the uniqueness constraint covers course mappings."""
        if self.course_key:
            self.organization = self.course_key.org
        super().save(*args, **kwargs)


class CredentialQuerySet(models.QuerySet):
    """Credential lookups."""

    def one(self):
        """
        The row a lookup on a unique key finds (an id, a learner and course), or None.

        Unlike ``first()`` it adds no ``ORDER BY`` to sort one row: Django compiles that on every call, and these
        lookups run on every certificate page, award and issuance.
        """
        rows = list(self[:1])
        return rows[0] if rows else None

    def count_up_to(self, limit):
        """
        How many rows match, counting no further than ``limit``: ``SELECT COUNT(*) FROM (SELECT id ... LIMIT n)``.

        Why: an exact ``COUNT(*)`` reads every matching index entry, which on a table of millions costs more than the
        page it counts for; this reads at most ``limit`` of them, whatever the size of the table.
        """
        return self.order_by().values("pk")[:limit].count()


class PokCertificate(TimeStampedModel):
    """
    The POK credential of one learner for one course: what was sent, what POK answered, and where it stands.

    .. pii: The receiver snapshot (and POK's last answer) hold the learner's name and email as sent to POK. Retired
       by openedx_pok.receivers.handle_learner_retired on the LMS's USER_RETIRE_LMS_MISC signal
       (openedx_pok.issuance.retirement.retire_learner): names and email are blanked, the row and its ids are kept.
    .. pii_types: name, email_address
    .. pii_retirement: local_api
    """

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False, verbose_name=_("reference"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pok_credentials", verbose_name=_("learner"),
    )
    course_key = CourseKeyField(max_length=255, db_index=True, verbose_name=_("course"))
    status = models.CharField(
        max_length=16, choices=CredentialStatus.choices, default=CredentialStatus.PENDING, db_index=True,
        verbose_name=_("status"),
    )
    status_reason = models.TextField(
        blank=True, verbose_name=_("reason"),
        help_text=_("Why the credential is held, failed or revoked, in words staff can act on."),
    )
    # What was (or will be) sent to POK.
    template_id = models.CharField(max_length=255, blank=True, verbose_name=_("POK template id"))
    page_id = models.CharField(max_length=255, blank=True, verbose_name=_("POK page id"))
    emission_type = models.CharField(
        max_length=16, choices=EmissionType.choices, default=EmissionType.POK, verbose_name=_("emission type"),
    )
    title = models.CharField(max_length=255, blank=True, verbose_name=_("title"))
    emitter = models.CharField(max_length=255, blank=True, verbose_name=_("emitter"))
    tags = models.JSONField(default=list, blank=True, verbose_name=_("tags"))
    receiver = models.JSONField(default=dict, blank=True, verbose_name=_("receiver sent"))
    custom_parameters = models.JSONField(default=dict, blank=True, verbose_name=_("custom parameters sent"))
    emission_date = models.DateTimeField(null=True, blank=True, verbose_name=_("emission date"))
    grade = models.FloatField(
        null=True, blank=True, verbose_name=_("grade"),
        help_text=_("Course grade (0 to 1) the LMS passed when it requested the certificate."),
    )
    # What POK answered.
    pok_credential_id = models.CharField(
        max_length=255, null=True, blank=True, unique=True, verbose_name=_("POK credential id"),
    )
    pok_state = models.CharField(max_length=64, blank=True, verbose_name=_("POK state"))
    view_url = models.URLField(max_length=1024, blank=True, verbose_name=_("view URL"))
    # Bookkeeping of the issuance.
    verify_uuid = models.CharField(
        max_length=32, blank=True, db_index=True, verbose_name=_("Open edX certificate verify_uuid"),
    )
    issuance = models.PositiveIntegerField(
        default=1, verbose_name=_("issuance"),
        help_text=_("Incremented when a new credential replaces a revoked one; part of the idempotency key."),
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("POST attempts"))
    ambiguous_attempts = models.PositiveIntegerField(
        default=0, verbose_name=_("ambiguous attempts"),
        help_text=_("POSTs that may have reached POK without an answer (e.g. timeout after sending)."),
    )
    previous_credential_ids = models.JSONField(
        default=list, blank=True, verbose_name=_("previous POK credential ids"),
        help_text=_("Credentials issued earlier for this learner and course, then revoked or replaced."),
    )
    retryable = models.BooleanField(
        default=False, verbose_name=_("retryable"),
        help_text=_("A failure that the reconcile run will retry by itself (POK was unavailable)."),
    )
    possible_duplicate = models.BooleanField(
        default=False, db_index=True, verbose_name=_("possible duplicate"),
        help_text=_("The request was sent again after POK may already have received it: check POK for a second "
                    "credential of this learner."),
    )
    tries = models.PositiveIntegerField(
        default=0, verbose_name=_("temporary failures"),
        help_text=_("Temporary POK failures (429, 5xx, network) of this issuance, across tasks and reconcile runs."),
    )
    not_before = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("next try not before"),
        help_text=_("Backoff or POK's Retry-After: nothing sends this credential before then."),
    )
    pok_response = models.TextField(
        blank=True, verbose_name=_("last POK answer"),
        help_text=_("POK's last answer to this credential's request, as received (shortened), for staff."),
    )
    account = models.CharField(
        max_length=64, default="default", blank=True, verbose_name=_("POK account"),
        help_text=_("The POK account the credential was issued with; refreshes and images use the same one."),
    )
    requested_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last POST at"))
    last_synced_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last refreshed from POK"))

    objects = CredentialQuerySet.as_manager()

    class Meta:
        db_table = "openedx_pok_credential"
        verbose_name = _("POK credential")
        verbose_name_plural = _("POK credentials")
        constraints = [
            models.UniqueConstraint(fields=["user", "course_key"], name="pok_credential_one_per_learner_course"),
        ]
        indexes = [
            models.Index(fields=["status", "modified"], name="pok_credential_status_mod"),
            # The reconcile run polls in-progress credentials, least recently refreshed first, in bounded batches.
            models.Index(fields=["status", "last_synced_at"], name="pok_credential_status_synced"),
            # The reconcile run finds the courses whose credentials wait for their certificate release, and moves
            # only those whose date the course team changed (a range on the date within the course).
            models.Index(fields=["status", "course_key", "not_before"], name="pok_credential_status_course"),
            # The credential admin's filters and sort (admin.py): each counts and pages through its index.
            models.Index(fields=["retryable"], name="pok_credential_retryable"),
            # The reconcile run's retryable failures and the admin's "failed + retryable": one range, in id order
            # (InnoDB ends every index with the primary key), however large the table.
            models.Index(fields=["status", "retryable"], name="pok_credential_status_retry"),
            models.Index(fields=["emission_type"], name="pok_credential_emission_type"),
            models.Index(fields=["modified"], name="pok_credential_modified"),
            models.Index(fields=["pok_state"], name="pok_credential_pok_state"),
            models.Index(fields=["account"], name="pok_credential_account"),
            models.Index(fields=["emission_date"], name="pok_credential_emission_date"),
        ]

    def __str__(self):
        return f"{self.user_id} / {self.course_key}: {self.status}"

    @property
    def idempotency_key(self):
        """Key sent with every POST of this issuance: stable across retries, new after a re-issue."""
        return f"openedx-pok-{self.uuid}-{self.issuance}"


class PokCatalogEntry(models.Model):
    """
    What the catalog sync last saw of one POK object of an account (template or page), for pickers and checks.

    An object POK no longer lists is kept and flagged ``missing_on_pok`` rather than deleted, so mappings that use
    it can say what happened.

    .. no_pii:
    """

    account = models.CharField(max_length=64, verbose_name=_("POK account"))
    pok_id = models.CharField(max_length=255, verbose_name=_("POK id"))
    name = models.CharField(max_length=255, blank=True, verbose_name=_("name"))
    last_seen = models.DateTimeField(null=True, blank=True, verbose_name=_("last seen on POK"))
    missing_on_pok = models.BooleanField(default=False, verbose_name=_("missing on POK"))

    class Meta:
        abstract = True

    def __str__(self):
        return f"{self.name or self.pok_id} ({self.account})"


class PokTemplate(PokCatalogEntry):
    """
    A POK template of an account, with the custom parameters a credential must fill.

    .. no_pii:
    """

    version = models.CharField(max_length=64, blank=True, verbose_name=_("version"))
    parameters = models.JSONField(default=list, blank=True, verbose_name=_("custom parameters"),
                                  help_text=_("[{\"id\": ..., \"label\": ...}] as POK declares them."))

    class Meta:
        db_table = "openedx_pok_template"
        verbose_name = _("POK template")
        verbose_name_plural = _("POK templates")
        constraints = [models.UniqueConstraint(fields=["account", "pok_id"], name="pok_template_unique_account_id")]


class PokAccount(PokTemplate):
    """
    The POK accounts' entry on the admin index. Accounts live in settings (``POK_ACCOUNTS``), not in rows: this proxy
    has no table of its own, and its admin opens the accounts page (connection test, catalog sync).

    .. no_pii:
    """

    class Meta:
        proxy = True
        verbose_name = _("POK account")
        verbose_name_plural = _("POK accounts")


class PokPage(PokCatalogEntry):
    """
    A POK public page of an account, under which credentials are shown.

    .. no_pii:
    """

    class Meta:
        db_table = "openedx_pok_page"
        verbose_name = _("POK page")
        verbose_name_plural = _("POK pages")
        constraints = [models.UniqueConstraint(fields=["account", "pok_id"], name="pok_page_unique_account_id")]


class CredentialEvent(models.Model):
    """
    One line of a credential's history: a status change (or a staff request) with its time, cause and reason.

    Written by the state machine only (``openedx_pok.issuance.history``); read-only in the admin.

    .. pii: Ids only (the credential, the staff member who acted). The reason is the plugin's own text; learner
       retirement (openedx_pok.issuance.retirement.retire_learner) blanks any reason that mentions the learner.
    .. pii_types: id
    .. pii_retirement: local_api
    """

    credential = models.ForeignKey(PokCertificate, on_delete=models.CASCADE, related_name="history",
                                   verbose_name=_("credential"))
    created = models.DateTimeField(default=timezone.now, verbose_name=_("time"))
    cause = models.CharField(max_length=32, blank=True, choices=Cause.choices, verbose_name=_("cause"))
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+", verbose_name=_("staff member"))
    from_status = models.CharField(max_length=16, blank=True, choices=CredentialStatus.choices,
                                   verbose_name=_("from"))
    to_status = models.CharField(max_length=16, blank=True, choices=CredentialStatus.choices, verbose_name=_("to"))
    attempt = models.PositiveIntegerField(default=0, verbose_name=_("POST attempts"),
                                          help_text=_("The credential's POST attempts at that time."))
    pok_id = models.CharField(max_length=255, blank=True, verbose_name=_("POK credential id"))
    reason = models.TextField(blank=True, verbose_name=_("reason"))

    class Meta:
        db_table = "openedx_pok_credential_event"
        verbose_name = _("credential history entry")
        verbose_name_plural = _("credential history")
        indexes = [models.Index(fields=["credential", "created"], name="pok_credential_event_time")]

    def __str__(self):
        return f"{self.credential_id}: {self.from_status} -> {self.to_status} ({self.cause})"
