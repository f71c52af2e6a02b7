"""
The course mapping admin's form: pickers by name, parameter rows that follow the template, validation on save.

Staff choose a POK account, a template and a page by name from the synced catalog (``catalog.py``), never by typing
raw ids, and say where each template parameter takes its value from. The form holds a row for every parameter of
every synced template; the page shows those of the chosen template (a small script follows the template picker at
once; without it, the server shows the rows of the template last posted) and a fixed-text box only where "Fixed text"
is chosen. Saving checks against POK's catalog (synced on demand) that the template exists on that account and that
every parameter of the chosen template has a source; each error names what to fix. The pages around the form (sync,
preview, accounts) are in ``mapping_pages``.
"""
import hashlib
import logging
from datetime import datetime

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.utils.formats import localize
from django.utils.timezone import localtime
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from openedx_pok.course_setup import accounts, catalog, parameters
from openedx_pok.keys import parse_course_key
from openedx_pok.models import CertificateTemplate

log = logging.getLogger(__name__)

AUTOMATIC = ""
DEFAULT_ACCOUNT = "default"
#: The attribute the page's script and stylesheet hide a parameter row by (``.form-row:has([data-pok-hidden])``).
HIDDEN = "data-pok-hidden"


def _in_words(checked_at):
    """When the account was last checked, in the reader's format (a previous release cached an ISO string)."""
    return localize(localtime(checked_at)) if isinstance(checked_at, datetime) else str(checked_at)


def _field_suffix(parameter_id):
    return hashlib.sha256(str(parameter_id).encode()).hexdigest()[:12]


def template_label(template):
    """A synced template as staff read it: its name, version, and whether POK still lists it."""
    label = template.name or template.pok_id
    if template.version:
        label = _("{name} (version {version})").format(name=label, version=template.version)
    if template.missing_on_pok:
        label = _("{name} - missing on POK").format(name=label)
    return label


def default_template_label():
    """The first option of the template picker: the default template by name, or a request to choose one."""
    default = settings.POK_DEFAULT_TEMPLATE_ID
    if not default:
        return _("Choose a POK template")
    synced = next((t for account in accounts.account_names() for t in catalog.templates_of(account)
                   if t.pok_id == default), None)
    return _("Default template: {name}").format(name=template_label(synced) if synced else default)


def template_choices(current=""):
    """Templates of every account, grouped by account, labelled by name (missing ones flagged)."""
    options = [("", default_template_label())]
    values = set()
    for account in accounts.account_names():
        group = []
        for template in catalog.templates_of(account):
            group.append((template.pok_id, f"{template_label(template)} [{account}]"))
            values.add(template.pok_id)
        if group:
            options.append((_("Account {account}").format(account=account), group))
    if current and current not in values:
        options.append((current, _("{id} (not in the synced catalog)").format(id=current)))
    return options


def page_choices(current=""):
    """Pages of every account, grouped by account, labelled by name."""
    default = settings.POK_DEFAULT_PAGE_ID
    synced = next((p for account in accounts.account_names() for p in catalog.pages_of(account) if p.pok_id == default),
                  None) if default else None
    options = [("", _("Default page: {name}").format(name=synced.name or default if synced else default) if default
                else _("POK's default page"))]
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
    """
    A course mapping with pickers; :func:`mapping_form` adds a source picker and a fixed-text box for every parameter
    of every synced template (``parameter_map`` says which rows each template shows).
    """

    parameters = ()  # ({"id", "label"}, ...) of the chosen template, set by mapping_form
    parameter_map = {}  # the page's script: {"accounts": {account: {template id: [row suffixes]}}, "fixed": ...}
    catalog_refreshed = False  # mapping_form synced the account already ("Refresh ..." ticked)

    account = forms.ChoiceField(required=False, label=gettext_lazy("POK account"))
    template_id = forms.ChoiceField(
        required=False, label=gettext_lazy("POK template"),
        help_text=gettext_lazy("POK's templates as last synced. Not in the list? “Sync templates from POK” "
                               "under the form fetches the current list and keeps what you typed."))
    page_id = forms.ChoiceField(required=False, label=gettext_lazy("POK page"))
    refresh_catalog = forms.BooleanField(
        required=False, label=gettext_lazy("Refresh templates and pages from POK before validating"))

    class Meta:
        model = CertificateTemplate
        fields = ("course_key", "organization", "account", "template_id", "emission_type", "page_id", "enabled")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)

        def value(name, default=""):
            if self.is_bound:
                return self.data.get(name, "")
            return self.initial.get(name, getattr(self.instance, name, default))

        self.fields["account"].choices = account_choices(value("account") or "")
        self.fields["template_id"].choices = template_choices(value("template_id") or "")
        self.fields["page_id"].choices = page_choices(value("page_id") or "")
        self.fields["account"].initial = self.instance.account or DEFAULT_ACCOUNT
        if not settings.POK_DEFAULT_TEMPLATE_ID:  # without a template every learner's credential would be held
            self.fields["template_id"].required = True
            self.fields["template_id"].error_messages["required"] = _(
                "Choose the POK template of this mapping: no default template is set (POK_DEFAULT_TEMPLATE_ID), so "
                "without one every learner's credential would be held.")
        account = value("account") or DEFAULT_ACCOUNT
        info = catalog.account_info(account)
        if info is None:
            credits = _("The remaining credits of account '{account}' are not known yet: sync the catalog or test "
                        "the connection.").format(account=account)
        else:
            credits = _("Account '{account}' has {credits} credits left (checked {when}); blockchain emission "
                        "uses them.").format(account=account, credits=info["available_credits"],
                                             when=_in_words(info["checked_at"]))
        self.fields["emission_type"].help_text = credits
        self._show_parameter_rows(value)

    def _show_parameter_rows(self, value):
        """Label each parameter row as the chosen template does; hide the rows of other templates, and fixed-text
        boxes where another source is chosen (the page's script does the same on every change)."""
        chosen = {parameter["id"]: parameter.get("label") for parameter in self.parameters}
        sources = self.instance.parameter_sources or {}
        for name, field in self.fields.items():
            parameter_id = getattr(field, "parameter_id", None)
            if parameter_id is None:
                continue
            spec, label = sources.get(parameter_id) or {}, chosen.get(parameter_id) or field.parameter_label
            if name.startswith("source_"):
                field.initial, field.label = spec.get("source", AUTOMATIC), label
                hidden = parameter_id not in chosen
            else:
                field.initial, field.label = spec.get("value", ""), _("{label}: fixed text").format(label=label)
                source = value(f"source_{_field_suffix(parameter_id)}", spec.get("source", AUTOMATIC))
                hidden = parameter_id not in chosen or source != parameters.FIXED
            if hidden:
                field.widget.attrs[HIDDEN] = ""

    def clean_course_key(self):
        """A course key, or a message that shows what one looks like (a typo used to answer HTTP 500)."""
        text = str(self.cleaned_data.get("course_key") or "").strip()
        if not text:
            return text
        key = parse_course_key(text)
        if key is None:
            raise ValidationError(_("'{value}' is not a course key. A course key looks like course-v1:Org+Number+Run, "
                                    "e.g. course-v1:DemoX+DATA303+2026: copy it from the course's address in the LMS "
                                    "or Studio.").format(value=text), code="invalid")
        return str(key)

    def chosen_sources(self):
        chosen = {}
        for parameter in self.parameters:
            suffix = _field_suffix(parameter["id"])
            source = self.cleaned_data.get(f"source_{suffix}") or AUTOMATIC
            if source == parameters.FIXED:
                chosen[parameter["id"]] = {"source": parameters.FIXED,
                                           "value": self.cleaned_data.get(f"value_{suffix}", "")}
            elif source:
                chosen[parameter["id"]] = {"source": source}
        return chosen

    def clean(self):
        cleaned = super().clean()
        account = cleaned.get("account") or DEFAULT_ACCOUNT
        cleaned["account"] = account
        sources = self.chosen_sources()
        if "template_id" in self.errors:  # no template and no default: nothing to check it against
            self.instance.parameter_sources = sources
            return cleaned
        refresh = cleaned.get("refresh_catalog", False) and not self.catalog_refreshed
        for field_name, message in catalog.validate_mapping(account, cleaned.get("template_id"), cleaned.get("page_id"),
                                                        sources, refresh=refresh):
            target = None
            if field_name.startswith("parameter:"):
                candidate = f"source_{_field_suffix(field_name.split(':', 1)[1])}"
                target = candidate if candidate in self.fields else None
            elif field_name in self.fields:
                target = field_name
            self.add_error(target, message)
        self.instance.parameter_sources = sources
        return cleaned


def _synced_parameters():
    """
    ({parameter id: label}, {account: {template id: (parameter, ...)}}) of every synced template of every account;
    the default template (POK_DEFAULT_TEMPLATE_ID) is also filed under "".
    """
    labels, by_account = {}, {}
    default = settings.POK_DEFAULT_TEMPLATE_ID
    for account in accounts.account_names():
        templates = by_account.setdefault(account, {})
        for template in catalog.templates_of(account):
            declared = tuple(p for p in template.parameters if isinstance(p, dict) and p.get("id"))
            templates[template.pok_id] = declared
            if template.pok_id == default:
                templates[""] = declared
            for parameter in declared:
                labels.setdefault(parameter["id"], parameter.get("label") or parameter["id"])
    return labels, by_account


def mapping_form(request, obj):
    """
    The form class for this request: the pickers plus, for every parameter of every synced template, a source picker
    and a fixed-text box (the rows of the chosen template are shown; validation reads those only).
    """
    if request.method == "POST":
        account, template_id = request.POST.get("account"), request.POST.get("template_id")
    else:
        account, template_id = getattr(obj, "account", ""), getattr(obj, "template_id", "")
    account = account or DEFAULT_ACCOUNT
    refreshed = request.method == "POST" and bool(request.POST.get("refresh_catalog"))
    if refreshed:  # before the rows are built, so they show the templates the sync brings (a template or not)
        report = catalog.sync_account(account)
        for line in report.messages:
            messages.add_message(request, messages.ERROR if report.error else messages.INFO, line)
    labels, by_account = _synced_parameters()
    rows = {name: {template: [_field_suffix(p["id"]) for p in declared] for template, declared in templates.items()}
            for name, templates in by_account.items()}
    attrs = {"parameters": by_account.get(account, {}).get(template_id or "") or (), "catalog_refreshed": refreshed,
             "parameter_map": {"fixed": parameters.FIXED, "accounts": rows}}
    choices = [(AUTOMATIC, _("Automatic (found by the parameter's name)")), *parameters.choices()]
    for parameter_id, label in labels.items():  # declared fields, so the admin's fieldsets show them
        suffix = _field_suffix(parameter_id)
        source = forms.ChoiceField(required=False, choices=choices, label=label)
        value = forms.CharField(required=False, max_length=255, label=label)
        for field in (source, value):
            field.parameter_id, field.parameter_label = parameter_id, label
        attrs[f"source_{suffix}"], attrs[f"value_{suffix}"] = source, value
    return type("MappingForm", (MappingForm,), attrs)


__all__ = ["MappingForm", "mapping_form"]
