"""
The synced POK catalog in Django admin, on the admin index: each account's templates as the last sync saw them
(name, version, parameters, missing on POK), read-only, with the accounts (connection test, sync) above the list.

The sync itself (``catalog.sync``) writes these rows; staff read them here to choose and check templates without
knowing POK's ids, and reach the accounts page from the index instead of only from a saved mapping.
"""
from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from openedx_pok.course_setup import accounts, catalog
from openedx_pok.models import CertificateTemplate, PokAccount, PokTemplate


class NothingToEdit:
    """Rows nobody adds, changes or deletes in the admin: the catalog sync writes them, settings hold the accounts."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(PokTemplate)
class PokTemplateAdmin(NothingToEdit, admin.ModelAdmin):
    """POK's templates per account, read-only (the sync writes them)."""

    change_list_template = "openedx_pok/admin/catalog_change_list.html"
    list_display = ("template_name", "version", "parameter_labels", "account", "missing_column", "last_seen")
    list_filter = ("account", "missing_on_pok")
    search_fields = ("name", "pok_id")
    ordering = ("account", "missing_on_pok", "name")
    readonly_fields = ("account", "pok_id", "name", "version", "parameter_labels", "missing_on_pok", "last_seen")
    fields = readonly_fields

    @admin.display(description=_("name"), ordering="name")
    def template_name(self, obj):
        return obj.name or obj.pok_id

    @admin.display(description=_("parameters"))
    def parameter_labels(self, obj):
        labels = [str(p.get("label") or p.get("id")) for p in obj.parameters or () if isinstance(p, dict)]
        return ", ".join(labels) or gettext("none")

    @admin.display(description=_("on POK"), ordering="missing_on_pok")
    def missing_column(self, obj):
        return gettext("Missing on POK") if obj.missing_on_pok else gettext("Listed")

    def changelist_view(self, request, extra_context=None):
        """The list, with the accounts above it (last known organization and credits; test and sync buttons)."""
        rows = [{"name": name, "info": catalog.account_info(name)} for name in accounts.account_names()]
        context = {"pok_accounts": rows, "pok_accounts_url": reverse("admin:openedx_pok_accounts"),
                   "pok_mappings_url": reverse("admin:openedx_pok_certificatetemplate_changelist"),
                   **(extra_context or {})}
        return super().changelist_view(request, context)


@admin.register(PokAccount)
class PokAccountAdmin(NothingToEdit, admin.ModelAdmin):
    """The admin index's "POK accounts": opens the accounts page, for whoever may open it (the mappings' viewers)."""

    def _mappings_admin(self):
        return self.admin_site._registry[CertificateTemplate]  # noqa: SLF001 - get_model_admin is Django 5.0+

    def has_view_permission(self, request, obj=None):
        return self._mappings_admin().has_view_permission(request)

    def has_module_permission(self, request):
        return self._mappings_admin().has_module_permission(request)

    def changelist_view(self, request, extra_context=None):
        return HttpResponseRedirect(reverse("admin:openedx_pok_accounts"))
