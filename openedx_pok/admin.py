"""
Django admin for course mappings and credentials: where staff see issuance and repair it.

Actions go through ``api`` (never straight to tasks or POK), so the admin follows the same rules as the LMS paths.
"""
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from openedx_pok import api
from openedx_pok.models import CertificateTemplate, PokCertificate


@admin.register(CertificateTemplate)
class CertificateTemplateAdmin(admin.ModelAdmin):
    """Map courses (or whole organizations) to POK templates."""

    list_display = ("course_key", "organization", "template_id", "emission_type", "page_id", "enabled", "modified")
    list_filter = ("enabled", "emission_type", "organization")
    search_fields = ("course_key", "organization", "template_id")
    fields = ("course_key", "organization", "template_id", "emission_type", "page_id", "enabled")


@admin.register(PokCertificate)
class PokCertificateAdmin(admin.ModelAdmin):
    """Every credential with its state and reason; retry and refresh without leaving the admin."""

    list_display = ("id", "user", "course_key", "status", "pok_state", "attempts", "ambiguous_attempts", "modified")
    list_filter = ("status", "retryable", "emission_type")
    search_fields = ("=user__id", "user__username", "course_key", "pok_credential_id", "=uuid", "verify_uuid")
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    readonly_fields = [field.name for field in PokCertificate._meta.fields if field.name != "id"]
    actions = ("retry_issuance", "refresh_from_pok")

    def has_add_permission(self, request):
        # Credentials are created by the LMS flow (or the backfill command), never typed in by hand.
        return False

    @admin.action(description=_("Retry issuance of held or failed credentials"))
    def retry_issuance(self, request, queryset):
        scheduled = sum(1 for row in queryset if api.retry(row))
        self.message_user(request, ngettext(
            "%(count)d credential scheduled for issuance.",
            "%(count)d credentials scheduled for issuance.",
            scheduled,
        ) % {"count": scheduled}, messages.SUCCESS)

    @admin.action(description=_("Refresh in-progress credentials from POK"))
    def refresh_from_pok(self, request, queryset):
        scheduled = sum(1 for row in queryset if api.refresh(row))
        self.message_user(request, ngettext(
            "%(count)d credential scheduled for a refresh.",
            "%(count)d credentials scheduled for a refresh.",
            scheduled,
        ) % {"count": scheduled}, messages.SUCCESS)
