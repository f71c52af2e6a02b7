"""
The pages around the course mapping form: its own buttons (sync POK's catalog now, preview with a learner before
saving), the first sync of an empty catalog, the accounts page and the saved mapping's preview page.

POK is called when staff click (sync, test connection, preview) and once when the form opens on an account whose
catalog holds no template yet (a fresh install), at most every few minutes (``catalog.sync_if_empty``). The form's
buttons never save: the page comes back with what was typed, the synced templates and the preview.
"""
import logging
from dataclasses import replace

from django import forms
from django.contrib import messages
from django.contrib.admin import helpers
from django.contrib.admin.options import csrf_protect_m
from django.contrib.admin.utils import flatten_fieldsets, unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from openedx_pok.admin.credential_filters import as_id
from openedx_pok.admin.mapping_form import DEFAULT_ACCOUNT, mapping_form
from openedx_pok.course_setup import accounts, catalog
from openedx_pok.exceptions import IssuanceError, OpenedxPokError
from openedx_pok.models import CertificateTemplate
from openedx_pok.pages import media

log = logging.getLogger(__name__)

#: The names of the form's own submit buttons: neither saves.
SYNC, PREVIEW = "_pok_sync", "_pok_preview"


def find_learner(text):
    """The user a username or an id names, or None (the preview then says who it can render, for either)."""
    users = get_user_model().objects
    return users.filter(username=text).first() or (
        users.filter(pk=as_id(text)).first() if as_id(text) is not None else None)


def render_preview(mapping, text):
    """(StaffPreview or None, error) of ``mapping`` (saved or not) with the learner ``text`` names."""
    try:  # only a learner of the mapping's courses (catalog.preview_for_learner), none: the same message
        preview = catalog.preview_for_learner(mapping, find_learner(text))
    except IssuanceError as exc:
        return None, exc.reason
    except OpenedxPokError as exc:
        return None, _("POK could not render the preview: {error}").format(error=getattr(exc, "message", str(exc)))
    if preview.image_url and not media.image_url_allowed(preview.image_url):
        preview = replace(preview, image_url="", error=_("POK answered with a preview on a host that is not allowed."))
    return preview, ""


def _posted_initial(post, form_class):
    """What was typed, as the initial values of an unbound form (a box left unticked is posted as nothing)."""
    initial = {}
    for name, field in form_class.base_fields.items():
        if isinstance(field, forms.BooleanField):
            initial[name] = name in post
        elif name in post:
            initial[name] = post.get(name)
    return initial


class CourseSetupAdminMixin:
    """What the course mapping admin adds for course setup: the form, its buttons, the sync, accounts and preview."""

    change_form_template = "openedx_pok/admin/mapping_change_form.html"
    change_list_template = "openedx_pok/admin/mapping_change_list.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        # One form class per request and mapping: the admin asks for it several times (fieldsets, the form itself).
        classes = request.__dict__.setdefault("_pok_mapping_forms", {})
        key = getattr(obj, "pk", None)
        if key not in classes:
            classes[key] = mapping_form(request, obj)
        kwargs["form"] = classes[key]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        """The mapping's fields, then the parameter rows in a section of their own."""
        fields = flatten_fieldsets(super().get_fieldsets(request, obj))
        rows = [name for name in fields if name.startswith(("source_", "value_"))]
        fieldsets = [(None, {"fields": [name for name in fields if name not in rows]})]
        if rows:
            fieldsets.append((_("Template parameters"), {"fields": rows, "classes": ["pok-parameter-rows"],
                                                         "description": _(
                "Where each parameter of the chosen template takes its value from on every credential. Its rows "
                "appear once a template is chosen; “Automatic” finds the value by the parameter's name "
                "when it can.")}))
        return fieldsets

    def get_urls(self):
        own = [
            path("accounts/", self.admin_site.admin_view(self.accounts_view), name="openedx_pok_accounts"),
            path("<int:mapping_id>/preview/", self.admin_site.admin_view(self.preview_view),
                 name="openedx_pok_mapping_preview"),
        ]
        return own + super().get_urls()

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context.setdefault("pok_preview", None)
        context.setdefault("pok_preview_error", "")
        context.setdefault("pok_preview_learner", "")
        context["pok_links"] = self.pok_links(request)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    def pok_links(self, request):
        """[(url, label)] of the course setup pages this staff member may open: accounts, synced templates."""
        links = []
        if self.has_view_permission(request):
            links.append((reverse("admin:openedx_pok_accounts"), _("POK accounts")))
        if request.user.has_perm("openedx_pok.view_poktemplate"):
            links.append((reverse("admin:openedx_pok_poktemplate_changelist"), _("POK templates")))
        return links

    def changelist_view(self, request, extra_context=None):
        return super().changelist_view(request, {"pok_links": self.pok_links(request), **(extra_context or {})})

    @csrf_protect_m
    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        """The form's own buttons (sync now, preview) answer with the form again, never saving; opening the form on
        an account whose catalog is empty syncs it first."""
        if request.method == "POST" and (SYNC in request.POST or PREVIEW in request.POST):
            return self._form_button_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and (self.has_add_permission(request) or self.has_change_permission(request)):
            for report in catalog.sync_if_empty() or ():
                for line in report.messages:
                    self.message_user(request, line, messages.ERROR if report.error else messages.INFO)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def _form_button_view(self, request, object_id, form_url, extra_context):
        add = object_id is None
        obj = None if add else self.get_object(request, unquote(object_id))
        if not add and obj is None:
            raise Http404(_("No such course mapping."))
        if not (self.has_add_permission(request) if add else self.has_change_permission(request, obj)):
            raise PermissionDenied
        context = {}
        if SYNC in request.POST:  # before the form class is built: its pickers and rows show what the sync brought
            name = request.POST.get("account")
            self.sync_accounts(request, [name if name in accounts.account_names() else DEFAULT_ACCOUNT])
        fieldsets = self.get_fieldsets(request, obj)
        form_class = self.get_form(request, obj, change=not add, fields=flatten_fieldsets(fieldsets))
        if SYNC in request.POST:
            form = form_class(instance=obj, initial=_posted_initial(request.POST, form_class))
        else:
            form = form_class(request.POST, instance=obj)
            context["pok_preview_learner"] = request.POST.get("preview_learner", "").strip()
            if form.is_valid():
                context["pok_preview"], context["pok_preview_error"] = render_preview(
                    form.instance, context["pok_preview_learner"])
            else:
                context["pok_preview_error"] = _("Correct the errors above first: the preview uses the values of "
                                                 "the form.")
        admin_form = helpers.AdminForm(form, list(fieldsets), self.get_prepopulated_fields(request, obj),
                                       self.get_readonly_fields(request, obj), model_admin=self)
        context.update({
            **self.admin_site.each_context(request),
            "title": (_("Add %s") if add else _("Change %s")) % self.opts.verbose_name,
            "subtitle": str(obj) if obj else None, "adminform": admin_form, "object_id": object_id, "original": obj,
            "is_popup": False, "to_field": None, "media": self.media + admin_form.media,
            "inline_admin_formsets": [], "errors": helpers.AdminErrorList(form, []),
            "preserved_filters": self.get_preserved_filters(request), **(extra_context or {}),
        })
        return self.render_change_form(request, context, add=add, change=not add, obj=obj, form_url=form_url)

    def sync_accounts(self, request, names):
        """Sync these accounts' catalogs (None: every account) and say what each sync did."""
        for name in names:
            for report in catalog.sync(name):
                for line in report.messages:
                    self.message_user(request, line, messages.ERROR if report.error else messages.SUCCESS)

    def sync_pok_catalog(self, request, queryset):
        """Sync the templates and pages of the selected mappings' accounts (every account when none is usable)."""
        self.sync_accounts(request, sorted({mapping.account or DEFAULT_ACCOUNT for mapping in queryset}) or [None])

    sync_pok_catalog.short_description = gettext_lazy("Sync POK templates and pages of these mappings' accounts")
    sync_pok_catalog.allowed_permissions = ("change",)

    def accounts_view(self, request):
        """Every account (name, URL; never the key) and, on a click, its live connection test."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        report = None
        if request.method == "POST":
            if not self.has_change_permission(request):
                raise PermissionDenied
            name = request.POST.get("account", "")
            if name not in accounts.account_names():
                messages.error(request, _("Unknown POK account."))
            elif request.POST.get("do") == "sync":
                for line in catalog.sync(name)[0].messages:
                    messages.info(request, line)
            else:
                report = catalog.test_connection(name)
        rows = [{"name": name, "info": catalog.account_info(name)} for name in accounts.account_names()]
        context = {**self.admin_site.each_context(request), "title": _("POK accounts"), "accounts": rows,
                   "report": report, "opts": self.model._meta,
                   "pok_links": [link for link in self.pok_links(request) if link[0] != request.path]}
        return TemplateResponse(request, "openedx_pok/admin/accounts.html", context)

    def preview_view(self, request, mapping_id):
        """POK's preview of the saved mapping with a chosen learner's real values (POK is called on submit)."""
        if not (request.user.is_active and request.user.is_staff and self.has_change_permission(request)):
            raise PermissionDenied
        mapping = get_object_or_404(CertificateTemplate, pk=mapping_id)
        preview, error, wanted = None, "", request.POST.get("learner", "").strip()
        if request.method == "POST":
            preview, error = render_preview(mapping, wanted)
        context = {**self.admin_site.each_context(request), "title": _("Preview of {mapping}").format(mapping=mapping),
                   "mapping": mapping, "preview": preview, "image_url": preview.image_url if preview else "",
                   "error": error or (preview.error if preview else ""), "learner": wanted, "opts": self.model._meta,
                   "change_url": reverse("admin:openedx_pok_certificatetemplate_change", args=[mapping.pk])}
        return TemplateResponse(request, "openedx_pok/admin/preview.html", context)


__all__ = ["CourseSetupAdminMixin"]
