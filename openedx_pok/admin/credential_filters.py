"""
The credential admin's filters, its read-only history under each credential, and the confirmation page of its
actions (retry, refresh, re-issue, mark revoked).

Filters are built for 100,000s of credentials: each filters on an indexed column (a course's organization is the
indexed prefix of its key), and their choices come from the small mappings table or an index, never from a scan of
the credentials (see docs/benchmarks.rst).
"""
from django.contrib import admin
from django.contrib.admin import helpers
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from opaque_keys.edx.keys import CourseKey

from openedx_pok.course_setup import accounts
from openedx_pok.keys import parse_course_key
from openedx_pok.models import CertificateTemplate, CredentialEvent, PokCertificate

#: Choices a filter lists at most (the filter still accepts any value in the URL).
FILTER_CHOICES_LIMIT = 100
#: Credentials the confirmation page names (the count covers all of them).
CONFIRM_PREVIEW = 20
#: What a course key of each kind starts with, before its organization (the credential search treats a pasted
#: beginning of one as a course prefix).
COURSE_KEY_PREFIXES = ("course-v1:", "ccx-v1:")


def _mapped(request):
    """(course keys, organizations) of the course mappings: one query per request for both filters."""
    if not hasattr(request, "pok_mapped_courses"):
        rows = CertificateTemplate.objects.order_by().values_list("course_key", "organization")[:FILTER_CHOICES_LIMIT]
        courses = sorted({str(key) for key, _org in rows if key})
        orgs = sorted({org for _key, org in rows if org} | {CourseKey.from_string(key).org for key in courses})
        request.pok_mapped_courses = (courses, orgs)
    return request.pok_mapped_courses


class _ChoiceFilter(admin.SimpleListFilter):
    """
    A filter that applies whatever value its URL carries, listed or not: Django applies (and shows) a list filter only
    when it has choices, so a course key in a shared link would otherwise show every credential.
    """

    def choices_from(self, values):
        values = list(values)
        if self.value() and self.value() not in values:
            values.append(self.value())
        return [(value, value) for value in values]

    def has_output(self):
        return bool(self.lookup_choices)


class CourseFilter(_ChoiceFilter):
    """Credentials of one course; the choices are the mapped courses."""

    title = _("course")
    parameter_name = "course"

    def lookups(self, request, model_admin):
        return self.choices_from(_mapped(request)[0])

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        course_key = parse_course_key(self.value())
        return queryset.none() if course_key is None else queryset.filter(course_key=course_key)


class OrganizationFilter(_ChoiceFilter):
    """Credentials of one organization's courses: the indexed prefix of the course key, never a join."""

    title = _("organization")
    parameter_name = "org"

    def lookups(self, request, model_admin):
        return self.choices_from(_mapped(request)[1])

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        condition = Q()
        for prefix in COURSE_KEY_PREFIXES:
            condition |= Q(course_key__startswith=f"{prefix}{self.value()}+")
        return queryset.filter(condition)


class PokStateFilter(_ChoiceFilter):
    """POK's own state (e.g. waitingForApproval); the choices come from the state's index."""

    title = _("POK state")
    parameter_name = "pok_state"

    def lookups(self, request, model_admin):
        states = (PokCertificate.objects.exclude(pok_state="").order_by("pok_state")
                  .values_list("pok_state", flat=True).distinct()[:FILTER_CHOICES_LIMIT])
        return self.choices_from(states)

    def queryset(self, request, queryset):
        return queryset.filter(pok_state=self.value()) if self.value() else queryset


class AccountFilter(_ChoiceFilter):
    """The POK account a credential was issued with; the choices are the configured accounts."""

    title = _("POK account")
    parameter_name = "account"

    def lookups(self, request, model_admin):
        return self.choices_from(accounts.account_names())

    def queryset(self, request, queryset):
        return queryset.filter(account=self.value()) if self.value() else queryset


class HistoryInline(admin.TabularInline):
    """Every status change of the credential, oldest first, with its cause and the staff member: read-only."""

    model = CredentialEvent
    fields = ("created", "cause", "actor", "from_status", "to_status", "attempt", "pok_id", "reason")
    readonly_fields = fields
    ordering = ("created", "id")
    extra = 0
    can_delete = False
    verbose_name = _("history entry")
    verbose_name_plural = _("history")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor").only(
            *[name for name in self.fields if name != "actor"], "credential_id", "actor__username")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def confirmed(model_admin, request, queryset, *, title, question, with_reason=False):
    """
    None once staff confirmed the action on the page this returns (and gave a reason where one is asked);
    otherwise that confirmation page, which posts the same action, selection and filters back.
    """
    reason = (request.POST.get("reason") or "").strip()
    if request.POST.get("post") == "yes" and (reason or not with_reason):
        return None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "question": question,
        "opts": model_admin.model._meta,
        "action": request.POST.get("action", ""),
        "select_across": request.POST.get("select_across", "0"),
        "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "count": queryset.count(),
        "preview": list(queryset.order_by("-id")[:CONFIRM_PREVIEW]),
        "with_reason": with_reason,
        "reason": reason,
        "reason_missing": with_reason and request.POST.get("post") == "yes" and not reason,
    }
    return TemplateResponse(request, "openedx_pok/admin/confirm_action.html", context)
