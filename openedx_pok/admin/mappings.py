"""
Django admin for course mappings and credentials: where staff see issuance and repair it.

Actions go through ``api`` (never straight to tasks or POK), so the admin follows the same rules as the LMS paths.
"""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from openedx_pok import api
from openedx_pok.admin.mapping_form import CourseSetupAdminMixin
from openedx_pok.exceptions import IssuanceError
from openedx_pok.models import CertificateTemplate


@admin.register(CertificateTemplate)
class CertificateTemplateAdmin(CourseSetupAdminMixin, admin.ModelAdmin):
    """Map courses (or whole organizations) to POK templates (form, pickers and accounts: admin_forms.py)."""

    list_display = ("course_key", "organization", "account", "template_id", "emission_type", "page_id", "enabled",
                    "modified")
    list_filter = ("enabled", "emission_type", "account", "organization")
    search_fields = ("course_key", "organization", "template_id")
    actions = ("backfill_courses", "sync_pok_catalog")

    @admin.action(description=_("Backfill: request credentials for earlier certificates"), permissions=["change"])
    def backfill_courses(self, request, queryset):
        """The backfill of the selected courses (an organization default: its POK-enabled courses), in a task."""
        mappings = list(queryset)
        try:
            report = api.backfill([mapping.course_key for mapping in mappings if mapping.course_key],
                                  [mapping.organization for mapping in mappings if not mapping.course_key],
                                  background=True)
        except IssuanceError as exc:
            self.message_user(request, exc.reason, messages.ERROR)
            return
        counts = report.counts
        if (counts["requested"] or counts["scheduled"]) and not report.started:
            self.message_user(request, _("The backfill could not be started: the task queue cannot be reached."),
                              messages.ERROR)
            return
        message = ngettext(
            "Backfill of %(courses)d course: %(requested)d credentials requested in the background; %(had)d learners "
            "already had one, %(held)d held, %(failed)d failed.",
            "Backfill of %(courses)d courses: %(requested)d credentials requested in the background; %(had)d "
            "learners already had one, %(held)d held, %(failed)d failed.",
            counts["courses"],
        ) % {"courses": counts["courses"], "requested": counts["requested"], "had": counts["already_had"],
             "held": counts["held"], "failed": counts["failed"]}
        self.message_user(request, message, messages.SUCCESS if counts["requested"] else messages.INFO)
        if counts["scheduled"]:
            self.message_user(request, ngettext(
                "%(count)d credential waits for its course to release certificates; it is issued then.",
                "%(count)d credentials wait for their course to release certificates; they are issued then.",
                counts["scheduled"]) % {"count": counts["scheduled"]}, messages.INFO)


# ---- the credential list at scale (docs/benchmarks.rst, "The credential admin at 100,000 credentials") ----------
