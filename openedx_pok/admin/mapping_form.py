"""
The course mapping admin's form and pages: pickers by name, validation on save, accounts, preview.

Staff choose a POK account, a template and a page by name from the synced catalog (``catalog.py``), never by typing
raw ids, and say where each template parameter takes its value from. Saving checks against POK's catalog (synced on
demand) that the template exists on that account and that every parameter has a source; each error names what to
fix. The accounts page tests each account's connection and the preview page renders the template with a chosen
learner's real values: both call POK only on the staff member's click. Everything goes through ``api``.
"""
import hashlib
import logging

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from openedx_pok.course_setup import accounts, catalog, parameters
from openedx_pok.exceptions import IssuanceError, OpenedxPokError
from openedx_pok.models import CertificateTemplate
from openedx_pok.pages import media

log = logging.getLogger(__name__)

AUTOMATIC = ""
DEFAULT_ACCOUNT = "default"


def _field_suffix(parameter_id):
    return hashlib.sha256(str(parameter_id).encode()).hexdigest()[:12]


def template_choices(current=""):
    """Templates of every account, grouped by account, labelled by name (missing ones flagged)."""
    options = [("", _("(POK_DEFAULT_TEMPLATE_ID)"))]
    values = set()
    for account in accounts.account_names():
        group = []
        for template in catalog.templates_of(account):
            label = template.name or template.pok_id
            if template.version:
                label = _("{name} (version {version})").format(name=label, version=template.version)
            if template.missing_on_pok:
                label = _("{name} - missing on POK").format(name=label)
            group.append((template.pok_id, f"{label} [{account}]"))
            values.add(template.pok_id)
        if group:
            options.append((_("Account {account}").format(account=account), group))
    if current and current not in values:
        options.append((current, _("{id} (not in the synced catalog)").format(id=current)))
    return options


def page_choices(current=""):
    """Pages of every account, grouped by account, labelled by name."""
    options = [("", _("(POK_DEFAULT_PAGE_ID, or POK's default page)"))]
    values = set()
    for account in accounts.account_names():
        group = [(page.pok_id, f"{page.name or page.pok_id}{_(' - missing on POK') if page.missing_on_pok else ''}"
                  f" [{account}]") for page in catalog.pages_of(account)]
        values.update(value for value, _label in group)
        if group:
            options.append((_("Account {account}").format(account=account), group))
    if current and current not in values:
        options.append((current, _("{id} (not in the synced catalog)").format(id=current)))
    return options


def account_choices(current=""):
    names = accounts.account_names()
    if current and current not in names:
        names.append(current)
    return [(name, name) for name in names]


class MappingForm(forms.ModelForm):
    """A course mapping with pickers; :func:`mapping_form` adds one source picker per template parameter."""

    parameters = ()  # ({"id", "label"}, ...) of the template the form shows, set by mapping_form

    account = forms.ChoiceField(required=False, label=gettext_lazy("POK account"))
    template_id = forms.ChoiceField(required=False, label=gettext_lazy("POK template"))
    page_id = forms.ChoiceField(required=False, label=gettext_lazy("POK page"))
    refresh_catalog = forms.BooleanField(
        required=False, label=gettext_lazy("Refresh templates and pages from POK before validating"))

    class Meta:
        model = CertificateTemplate
        fields = ("course_key", "organization", "account", "template_id", "emission_type", "page_id", "enabled")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

        def value(name):
            return self.data.get(name) if self.is_bound else getattr(self.instance, name, "")

        self.fields["account"].choices = account_choices(value("account") or "")
        self.fields["template_id"].choices = template_choices(value("template_id") or "")
        self.fields["page_id"].choices = page_choices(value("page_id") or "")
        self.fields["account"].initial = self.instance.account or DEFAULT_ACCOUNT
        account = value("account") or DEFAULT_ACCOUNT
        info = catalog.account_info(account)
        if info is None:
            credits = _("The remaining credits of account '{account}' are not known yet: sync the catalog or test "
                        "the connection.").format(account=account)
        else:
            credits = _("Account '{account}' has {credits} credits left (checked {when}); blockchain emission "
                        "uses them.").format(account=account, credits=info["available_credits"],
                                             when=info["checked_at"])
        self.fields["emission_type"].help_text = credits
        sources = self.instance.parameter_sources or {}
        for parameter in self.parameters:
            suffix, spec = _field_suffix(parameter["id"]), sources.get(parameter["id"]) or {}
            self.fields[f"source_{suffix}"].initial = spec.get("source", AUTOMATIC)
            self.fields[f"value_{suffix}"].initial = spec.get("value", "")

    def chosen_sources(self):
        chosen = {}
        for parameter in self.parameters:
            suffix = _field_suffix(parameter["id"])
            source = self.cleaned_data.get(f"source_{suffix}") or AUTOMATIC
            if source == "fixed":
                chosen[parameter["id"]] = {"source": "fixed", "value": self.cleaned_data.get(f"value_{suffix}", "")}
            elif source:
                chosen[parameter["id"]] = {"source": source}
        return chosen

    def clean(self):
        cleaned = super().clean()
        account = cleaned.get("account") or DEFAULT_ACCOUNT
        cleaned["account"] = account
        sources = self.chosen_sources()
        for field_name, message in catalog.validate_mapping(account, cleaned.get("template_id"), cleaned.get("page_id"),
                                                        sources, refresh=cleaned.get("refresh_catalog", False)):
            target = None
            if field_name.startswith("parameter:"):
                candidate = f"source_{_field_suffix(field_name.split(':', 1)[1])}"
                target = candidate if candidate in self.fields else None
            elif field_name in self.fields:
                target = field_name
            self.add_error(target, message)
        self.instance.parameter_sources = sources
        return cleaned


def _declared_parameters(account, template_id):
    for template in catalog.templates_of(account or DEFAULT_ACCOUNT):
        if template.pok_id == template_id:
            return tuple(template.parameters)
    return ()


def mapping_form(request, obj):
    """The form class for this request: the pickers plus a source picker per parameter of the chosen template."""
    if request.method == "POST":
        account, template_id = request.POST.get("account"), request.POST.get("template_id")
    else:
        account, template_id = getattr(obj, "account", ""), getattr(obj, "template_id", "")
    declared = _declared_parameters(account, template_id)
    attrs = {"parameters": declared}
    for parameter in declared:  # declared fields, so the admin's fieldsets show them
        suffix = _field_suffix(parameter["id"])
        attrs[f"source_{suffix}"] = forms.ChoiceField(
            required=False, choices=[(AUTOMATIC, _("Automatic (by id, then label)")), *parameters.choices()],
            label=_("Source of parameter '{id}' ({label})").format(id=parameter["id"], label=parameter["label"]))
        attrs[f"value_{suffix}"] = forms.CharField(
            required=False, max_length=255, label=_("Fixed text of parameter '{id}'").format(id=parameter["id"]))
    return type("MappingForm", (MappingForm,), attrs)


class CourseSetupAdminMixin:
    """What the course mapping admin adds for course setup: the form, the catalog sync, accounts and preview."""

    change_form_template = "openedx_pok/admin/mapping_change_form.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["form"] = mapping_form(request, obj)
        return super().get_form(request, obj, change=change, **kwargs)

    def get_urls(self):
        own = [
            path("accounts/", self.admin_site.admin_view(self.accounts_view), name="openedx_pok_accounts"),
            path("<int:mapping_id>/preview/", self.admin_site.admin_view(self.preview_view),
                 name="openedx_pok_mapping_preview"),
        ]
        return own + super().get_urls()

    def sync_pok_catalog(self, request, queryset):
        """Sync the templates and pages of the selected mappings' accounts (every account when none is usable)."""
        names = sorted({mapping.account or DEFAULT_ACCOUNT for mapping in queryset}) or [None]
        for name in names:
            for report in catalog.sync(name):
                for line in report.messages:
                    self.message_user(request, line, messages.ERROR if report.error else messages.SUCCESS)

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
                   "report": report, "opts": self.model._meta}
        return TemplateResponse(request, "openedx_pok/admin/accounts.html", context)

    def preview_view(self, request, mapping_id):
        """POK's preview of the mapping's template with a chosen learner's real values (POK is called on submit)."""
        if not (request.user.is_active and request.user.is_staff and self.has_change_permission(request)):
            raise PermissionDenied
        mapping = get_object_or_404(CertificateTemplate, pk=mapping_id)
        image_url, error, wanted = "", "", request.POST.get("learner", "").strip()
        if request.method == "POST":
            users = get_user_model().objects
            learner = users.filter(username=wanted).first() or (
                users.filter(pk=int(wanted)).first() if wanted.isdigit() else None)
            if learner is None:
                error = _("No learner with that username or id.")
            else:
                try:
                    image_url = catalog.preview_for_learner(mapping, learner)
                except IssuanceError as exc:
                    error = exc.reason
                except OpenedxPokError as exc:
                    error = _("POK could not render the preview: {error}").format(
                        error=getattr(exc, "message", str(exc)))
            if image_url and not media.image_url_allowed(image_url):
                image_url, error = "", _("POK answered with a preview on a host that is not allowed.")
        context = {**self.admin_site.each_context(request), "title": _("Preview of {mapping}").format(mapping=mapping),
                   "mapping": mapping, "image_url": image_url, "error": error, "learner": wanted,
                   "opts": self.model._meta,
                   "change_url": reverse("admin:openedx_pok_certificatetemplate_change", args=[mapping.pk])}
        return TemplateResponse(request, "openedx_pok/admin/preview.html", context)


__all__ = ["CourseSetupAdminMixin", "MappingForm", "mapping_form"]
