"""
The credential admin's filters, its read-only history under each credential, and the confirmation page of its
actions (retry, refresh, re-issue, mark revoked).

Filters are built for 100,000s of credentials: each filters on an indexed column (a course's organization is the
indexed prefix of its key), and their choices come from the small mappings table or an index, never from a scan of
the credentials (see docs/benchmarks.rst).
"""
from django.contrib import admin
from django.contrib.admin import helpers
from django.contrib.auth import get_user_model
from django.db.models import Prefetch, Q
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from opaque_keys.edx.keys import CourseKey

from openedx_pok.admin import credential_page
from openedx_pok.course_setup import accounts
from openedx_pok.issuance import staff_actions
from openedx_pok.issuance.states import pok_state_label
from openedx_pok.keys import parse_course_key
from openedx_pok.models import CertificateTemplate, CredentialEvent, PokCertificate

#: Choices a filter lists at most (the filter still accepts any value in the URL).
FILTER_CHOICES_LIMIT = 100
#: Credentials the confirmation page names (the count covers all of them).
CONFIRM_PREVIEW = 20
#: What a course key of each kind starts with, before its organization (the credential search treats a pasted
#: beginning of one as a course prefix).
COURSE_KEY_PREFIXES = ("course-v1:", "ccx-v1:")
#: The largest id a database column holds (a signed 64-bit integer): SQLite cannot even compare with a larger one.
MAX_ID = 2 ** 63 - 1


def as_id(text):
    """``text`` as a row id (ASCII digits, within :data:`MAX_ID`), or None: ``²`` is a digit to ``str.isdigit``."""
    return int(text) if text.isascii() and text.isdigit() and int(text) <= MAX_ID else None


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

    def choices_from(self, values, label=str):
        values = list(values)
        if self.value() and self.value() not in values:
            values.append(self.value())
        return [(value, label(value)) for value in values]

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
            start = f"{prefix}{self.value()}+"
            # ``LIKE 'x%'`` in the column's collation is a range of the course key's index; Django's ``startswith``
            # alone is ``LIKE BINARY``, which MariaDB cannot range over a case-insensitive column and so walks the
            # whole index, whatever the organization. The case-exact prefix then filters the range.
            condition |= Q(course_key__istartswith=start, course_key__startswith=start)
        return queryset.filter(condition)


class PokStateFilter(_ChoiceFilter):
    """
    POK's own state (e.g. waitingForApproval), in the reader's language where known (an unknown one as POK sent it);
    the choices come from the state's index.
    """

    title = _("POK state")
    parameter_name = "pok_state"

    def lookups(self, request, model_admin):
        states = (PokCertificate.objects.exclude(pok_state="").order_by("pok_state")
                  .values_list("pok_state", flat=True).distinct()[:FILTER_CHOICES_LIMIT])
        return self.choices_from(states, label=pok_state_label)

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
    """
    Every status change of the credential, oldest first, each a sentence naming its cause and the staff member:
    read-only, in a table of its own (no form row, no raw ``__str__`` of the line).
    """

    model = CredentialEvent
    fields = ("created", "what_happened", "posts_so_far", "pok_id", "reason")
    readonly_fields = fields
    ordering = ("created", "id")
    extra = 0
    can_delete = False
    verbose_name = _("history entry")
    verbose_name_plural = _("history")
    template = "openedx_pok/admin/credential_history.html"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor").only(
            "created", "cause", "actor__username", "from_status", "to_status", "attempt", "pok_id", "reason",
            "credential_id")

    @admin.display(description=_("what happened"))
    def what_happened(self, obj):
        return credential_page.history_text(obj)

    @admin.display(description=_("POSTs so far"))
    def posts_so_far(self, obj):
        return obj.attempt

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


def confirmed(model_admin, request, queryset, *, staff_action, title, question, will_change, with_reason=False):
    """
    None once staff confirmed the action on the page this returns (and gave a reason where one is asked);
    otherwise that confirmation page, which posts the same action, selection and filters back.

    The page says how many of the selection ``staff_action`` (``staff_actions.retry``, ...) will change
    (``will_change``: an ``ngettext_lazy`` with ``count``) and names the newest credentials with their learners'
    usernames, each marked with whether it will change.
    """
    reason = (request.POST.get("reason") or "").strip()
    if request.POST.get("post") == "yes" and (reason or not with_reason):
        return None
    learners = Prefetch("user", queryset=get_user_model().objects.only("id", "username"))
    preview = list(queryset.order_by("-id").prefetch_related(learners)[:CONFIRM_PREVIEW])
    changes = staff_actions.count_changed_by(staff_action, queryset)
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
        "changes": changes,
        "will_change": will_change % {"count": changes},
        "preview": [(row, staff_actions.changes(staff_action, row)) for row in preview],
        "with_reason": with_reason,
        "reason": reason,
        "reason_missing": with_reason and request.POST.get("post") == "yes" and not reason,
        # From a credential's own page: back to it (the list's confirmation goes back to the list it came from).
        "back_url": getattr(request, "pok_back_url", ""),
    }
    return TemplateResponse(request, "openedx_pok/admin/confirm_action.html", context)
