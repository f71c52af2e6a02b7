"""
Django admin of the sandbox LMS tables, so the demo can create courses, learners and certificates by hand.

Saving a certificate here goes through ``GeneratedCertificate.save()`` and therefore sends the certificate signals,
exactly as a change made by the LMS would.
"""
from django.contrib import admin
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from lms_sandbox.models import (
    CourseOverview,
    GeneratedCertificate,
    Organization,
    UserPreference,
    UserProfile,
    WaffleFlagCourseOverrideModel,
    WaffleFlagOrgOverrideModel,
)


@admin.register(CourseOverview)
class CourseOverviewAdmin(admin.ModelAdmin):
    list_display = ("id", "display_name", "org", "language", "start", "end")
    search_fields = ("display_name", "org")


@admin.register(UserProfile)
class UserProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "name")
    search_fields = ("user__username", "name")
    raw_id_fields = ("user",)


@admin.register(UserPreference)
class UserPreferenceAdmin(admin.ModelAdmin):
    list_display = ("user", "key", "value")
    search_fields = ("user__username", "key")
    raw_id_fields = ("user",)


@admin.register(WaffleFlagCourseOverrideModel)
class WaffleFlagCourseOverrideAdmin(admin.ModelAdmin):
    list_display = ("waffle_flag", "course_id", "override_choice", "enabled", "change_date")


@admin.register(WaffleFlagOrgOverrideModel)
class WaffleFlagOrgOverrideAdmin(admin.ModelAdmin):
    list_display = ("waffle_flag", "org", "override_choice", "enabled", "change_date")


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("short_name", "name")
    search_fields = ("short_name", "name")


@admin.register(GeneratedCertificate)
class GeneratedCertificateAdmin(admin.ModelAdmin):
    list_display = ("user", "course_id", "status", "mode", "grade", "verify_uuid", "modified_date")
    list_filter = ("status", "mode")
    search_fields = ("user__username", "verify_uuid")
    raw_id_fields = ("user",)
    readonly_fields = ("modified_date",)
    actions = ("invalidate",)

    @admin.action(description=gettext_lazy("Invalidate (revoke) the selected certificates"))
    def invalidate(self, request, queryset):
        # One by one through the model method, so each sends CERTIFICATE_REVOKED like an LMS invalidation.
        count = 0
        for certificate in queryset:
            certificate.invalidate()
            count += 1
        self.message_user(request, _("%(count)d certificate(s) invalidated.") % {"count": count})
