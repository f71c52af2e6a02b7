"""
Django admin for course mappings and credentials: where staff see issuance and repair it.

Actions go through ``api`` (never straight to tasks or POK), so the admin follows the same rules as the LMS paths.
"""
from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format, number_format
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.text import Truncator, capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from openedx_pok.admin import credential_page, credential_search
from openedx_pok.admin.credential_filters import (
    AccountFilter,
    CourseFilter,
    HistoryInline,
    OrganizationFilter,
    PokStateFilter,
    confirmed,
)
from openedx_pok.issuance import csv_report, staff_actions, states
from openedx_pok.issuance.states import CredentialStatus
from openedx_pok.models import PokCertificate

# The list must stay fast on a table of hundreds of thousands of credentials in an LMS with millions of learners: no
# statement joins the users table, every filter, search and sort is served by an index, and a page costs the same
# few statements whatever its number or its rows.

#: Characters of the reason shown in the list (the whole reason is in the tooltip and on the change page).
REASON_LENGTH = 50
#: Credentials the list counts and pages through at most, in any order and filter (100 pages of 100).
LIST_DEPTH = staff_actions.COUNT_LIMIT


class CredentialPaginator(Paginator):
    """
    Counts up to :data:`LIST_DEPTH` rows, and fetches a page's ids first, then the page's rows by id.

    Why the limit: an exact count reads every matching index entry (a million of them for the unfiltered list), and
    a page at offset 500,000 walks half the table: neither is needed to find a credential, which filters, the search
    and the sorts reach in their first pages. So the list counts no further than its depth, ``more`` says when more
    rows match (the page says so), and no page skips more than the depth.
    Why ids first: for ``ORDER BY ... LIMIT 100 OFFSET n`` MySQL reads (and, for a search, sorts) whole rows, and a
    credential row is heavy (reason, receiver, POK's answer); reading ids from an index first and then 100 rows by
    primary key is several times cheaper for later pages, filtered sorts and broad searches.
    """

    more = False

    @cached_property
    def count(self):
        if not hasattr(self.object_list, "count_up_to"):
            return super().count
        counted = self.object_list.count_up_to(LIST_DEPTH + 1)
        self.more = counted > LIST_DEPTH
        return min(counted, LIST_DEPTH)

    def page(self, number):
        page = super().page(number)
        queryset = self.object_list
        if not hasattr(queryset, "values_list") or not queryset.ordered or not self.count:
            return page
        ids = list(queryset.values_list("pk", flat=True)[page.start_index() - 1:page.end_index()])
        page.object_list = queryset.filter(pk__in=ids)
        return page


class CredentialChangeList(ChangeList):
    """The credential list: the page's learners in one extra query, and sorts that an index can serve."""

    def get_results(self, request):
        super().get_results(request)
        # The learners of the shown rows only, one query: joining auth_user into the page query makes MySQL read the
        # whole users table and sort the join (list_select_related), which is what made the list slow.
        self.result_list = self.result_list.prefetch_related(
            Prefetch("user", queryset=get_user_model().objects.only("id", "username")),
        )

    def get_ordering(self, request, queryset):
        """
        Break ties by id in the direction of the sort.

        Django always adds ``-pk`` to make the order total; for an ascending sort that gives
        ``ORDER BY course_key ASC, id DESC``, which no index serves (a filesort of every row), while
        ``course_key ASC, id ASC`` is the index itself (InnoDB keeps the primary key at the end of every index).
        """
        ordering = super().get_ordering(request, queryset)
        if len(ordering) > 1 and ordering[-1] == "-pk" and isinstance(ordering[0], str) \
                and not ordering[0].startswith("-"):
            ordering = [*ordering[:-1], "pk"]
        return ordering


#: Every field of a credential (all read-only: the issuance writes them) and those that say what was sent to POK
#: (with POK's state as POK sent it).
CREDENTIAL_FIELDS = [field.name for field in PokCertificate._meta.fields if field.name != "id"]
SENT_TO_POK = ("template_id", "page_id", "emission_type", "title", "emitter", "tags", "receiver", "custom_parameters",
               "emission_date", "grade", "verify_uuid", "uuid", "pok_state", "pok_response")
#: Fields the change page shows as sentences instead (the learner with their id, the status with POK's state in the
#: reader's language, the POSTs with the tries), first among where the credential stands.
IN_WORDS = {"user": "learner_line", "status": "status_line", "attempts": "attempts_line"}
FOLDED_INTO_WORDS = ("ambiguous_attempts", "tries")
WHERE_IT_STANDS = ["learner_line", "course_key", "status_line", "status_reason", "attempts_line", "pok_page",
                   *[name for name in CREDENTIAL_FIELDS if name not in SENT_TO_POK and name not in IN_WORDS
                     and name not in FOLDED_INTO_WORDS and name not in ("course_key", "status_reason")]]


def count_text(count):
    """A count of :func:`staff_actions.status_counts` in words: "1,234", or "more than 10,000" past the limit."""
    if count > staff_actions.COUNT_LIMIT:
        return _("more than %(count)s") % {"count": number_format(staff_actions.COUNT_LIMIT, force_grouping=True)}
    return number_format(count, force_grouping=True)


@admin.register(PokCertificate)
class PokCertificateAdmin(admin.ModelAdmin):
    """Every credential with its state and reason; its actions from the list and from its own page."""

    # List, filters and search are built for 100,000s of credentials (see CredentialChangeList and
    # get_search_results): measured by ``make bench``, pinned by tests/test_admin_performance.py.
    # Six narrow columns that wrap: on a 1366 px laptop, with the navigation and the filters beside it, the list has
    # about 700 px. The status cell carries the reason (and the POSTs when they say something), the course key breaks
    # at its "+"; the rest is on the credential's page.
    list_display = ("id", "learner", "status_column", "course_column", "modified_column", "pok_link")
    # Each one filters on an index (the organization: the course key's prefix); see credential_filters.py.
    list_filter = ("status", PokStateFilter, CourseFilter, OrganizationFilter, AccountFilter,
                   ("emission_date", admin.DateFieldListFilter), "retryable", "emission_type", "possible_duplicate")
    # Only what an index serves in both directions (see CredentialChangeList.get_ordering).
    sortable_by = ("id", "course_column", "status_column", "modified_column")
    # What the search understands; credential_search routes each word to one of them instead of LIKE '%word%' over
    # the credentials (the learner's name: a part of it, in the profiles).
    search_fields = ("=user__id", "=user__email", "^user__username", "user__profile__name", "=course_key",
                     "=pok_credential_id", "=uuid", "=verify_uuid")
    search_help_text = _(
        "Finds a learner by id, e-mail, username (or its beginning) or a part of their full name; a course by its key "
        "(or its beginning) or its number (e.g. POK101); a credential by its POK id, reference or certificate "
        "verify_uuid. Several words must all match.")
    list_select_related = False
    paginator = CredentialPaginator
    # The total next to a filtered count would count the whole table on every filtered page.
    show_full_result_count = False
    if hasattr(admin, "ShowFacets"):  # Django 5.0+
        # Facet counts ("Show counts") run a full-table aggregate per filter on every page view.
        show_facets = admin.ShowFacets.NEVER
    raw_id_fields = ("user",)
    readonly_fields = ["pok_page", *IN_WORDS.values(), *CREDENTIAL_FIELDS]
    # Where the credential stands first, then what was sent to POK (folded), then its history.
    fieldsets = (
        (None, {"fields": WHERE_IT_STANDS}),
        (_("What was sent to POK, and its last answer"), {"fields": SENT_TO_POK, "classes": ("collapse",)}),
    )
    inlines = (HistoryInline,)
    change_list_template = "openedx_pok/admin/credential_change_list.html"
    change_form_template = "openedx_pok/admin/credential_change_form.html"
    actions = ("retry_issuance", "refresh_from_pok", "reissue_credentials", "mark_revoked", "export_csv",
               "export_csv_with_emails")

    def changelist_view(self, request, extra_context=None):
        """The list, with the credentials per status above it (whole table, at most a few seconds old)."""
        counts = staff_actions.status_counts()
        extra_context = {
            "title": capfirst(self.opts.verbose_name_plural), **(extra_context or {}),
            "status_counts": [(status, label, counts.get(status, 0), count_text(counts.get(status, 0)))
                              for status, label in CredentialStatus.choices],
            "list_depth": number_format(LIST_DEPTH, force_grouping=True),
        }
        return super().changelist_view(request, extra_context)

    @admin.action(description=_("Export selected/filtered as CSV"), permissions=["view"])
    def export_csv(self, request, queryset):
        return self._export_csv(request, queryset, include_emails=False)

    @admin.action(description=_("Export selected/filtered as CSV, with emails"), permissions=["change"])
    def export_csv_with_emails(self, request, queryset):
        return self._export_csv(request, queryset, include_emails=True)

    def _export_csv(self, request, queryset, include_emails):
        """A streamed CSV download; staff only, even for a user given the admin permissions without staff status."""
        if not (request.user.is_active and request.user.is_staff):
            self.message_user(request, _("Only staff can export credentials."), messages.ERROR)
            return None
        return csv_report.csv_response(queryset, include_emails=include_emails)

    def has_add_permission(self, request):
        # Credentials are created by the LMS flow (or the backfill command), never typed in by hand.
        return False

    def get_actions(self, request):
        # No "Delete selected": the row is what keeps a learner from being issued a second credential for the course
        # (a deleted row is a new issuance at the next award or backfill). Mark revoked stops one instead.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def delete_view(self, request, object_id, extra_context=None):
        # Deleting a learner in the user admin still takes their credentials with them (has_delete_permission).
        raise PermissionDenied

    # ---- the credential's page: read-only, with what happens next and its actions --------------------------------
    def get_urls(self):
        info = self.opts.app_label, self.opts.model_name
        return [
            path("<path:object_id>/act/<str:action>/", self.admin_site.admin_view(self.page_action_view),
                 name="%s_%s_page_action" % info),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The page of one credential: no Save or Delete (nothing on it is edited), its actions at the top."""
        row = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if row is not None:
            allowed = self.has_change_permission(request, row)
            extra_context.update({
                "title": capfirst(self.opts.verbose_name),  # not "Change ...": nothing on it is edited
                # The header names the credential by the number the list shows, then its learner and course.
                "subtitle": _("Credential %(id)s: %(username)s in %(course)s") % {
                    "id": row.pk, "username": row.user.username, "course": row.course_key},
                "next_step": credential_page.next_step(row),
                "page_actions": [
                    (name, label, reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_page_action",
                                          args=[row.pk, name]))
                    for name, label in credential_page.page_actions(row)] if allowed else [],
                "show_save": False, "show_save_and_continue": False, "show_delete": False,
            })
        return super().change_view(request, object_id, form_url, extra_context)

    def page_action_view(self, request, object_id, action):
        """
        A list action on the one credential of this page: the same confirmation page (answered here), the same staff
        action; then back to the credential's page.
        """
        if action not in {name for name, _label, _applies in credential_page.PAGE_ACTIONS}:
            raise Http404
        if not self.has_change_permission(request):
            raise PermissionDenied
        queryset = self.get_queryset(request).filter(pk=object_id)
        if not queryset.exists():
            raise Http404
        page_url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_change", args=[object_id])
        request.pok_back_url = page_url
        response = getattr(self, action)(request, queryset)
        return response if response is not None else HttpResponseRedirect(page_url)

    @admin.display(description=_("learner"))
    def learner_line(self, obj):
        """The username with the user id (the number other LMS pages show), linked to the user's admin page."""
        text = _("%(username)s (user id %(id)s)") % {"username": obj.user.username, "id": obj.user_id}
        if not self.admin_site.is_registered(type(obj.user)):
            return text
        opts = obj.user._meta
        return format_html('<a href="{}">{}</a>', reverse(f"admin:{opts.app_label}_{opts.model_name}_change",
                                                          args=[obj.user_id]), text)

    @admin.display(description=_("status"))
    def status_line(self, obj):
        return credential_page.status_text(obj)

    @admin.display(description=_("POSTs and tries"))
    def attempts_line(self, obj):
        return credential_page.attempts_text(obj)

    # ---- list columns and search ------------------------------------------------------------------------------
    def get_changelist(self, request, **kwargs):
        return CredentialChangeList

    @admin.display(description=_("learner"))
    def learner(self, obj):
        return obj.user.username

    @admin.display(description=_("status"), ordering="status")
    def status_column(self, obj):
        """
        The status (with POK's state where it says more), then the start of the reason (the whole of it on hover)
        and the POSTs and tries when they say something: one cell, so the list stays narrow.
        """
        lines = [("pok-status", credential_page.status_text(obj), "")]
        if obj.status_reason:
            lines.append(("pok-reason", Truncator(obj.status_reason).chars(REASON_LENGTH), obj.status_reason))
        attempts = credential_page.attempts_short(obj)
        if attempts:
            lines.append(("pok-attempts", attempts, credential_page.attempts_text(obj)))
        return format_html_join(mark_safe(""), '<span class="{}" title="{}">{}</span>',
                                ((css, title, text) for css, text, title in lines))

    @admin.display(description=_("course"), ordering="course_key")
    def course_column(self, obj):
        """The course key, allowed to break after its ":" and "+" (it has no spaces)."""
        parts = str(obj.course_key).replace(":", ":\n").replace("+", "+\n").split("\n")
        return format_html_join(mark_safe("<wbr>"), "{}", ((part,) for part in parts))

    @admin.display(description=_("modified"), ordering="modified")
    def modified_column(self, obj):
        """The short date and time, which may wrap (Django keeps a date field's cell on one line)."""
        return date_format(timezone.localtime(obj.modified), "SHORT_DATETIME_FORMAT")

    @admin.display(description=_("POK page"))
    def pok_page(self, obj):
        """A link to the credential on POK, for a credential page on an allowed host only."""
        if not obj.view_url or not states.is_allowed_view_url(obj.view_url):
            return ""
        return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', obj.view_url, _("open"))

    @admin.display(description=_("POK"))
    def pok_link(self, obj):
        """The list's narrow column of the same link (the page's field keeps its longer label)."""
        return self.pok_page(obj)

    def get_search_results(self, request, queryset, search_term):
        """Each word to the lookups it can be (``credential_search``), combined with AND; never a duplicate row."""
        for term in credential_search.search_terms(search_term):
            queryset = queryset.filter(credential_search.condition(self, request, term))
        return queryset, False

    # ---- actions: each confirmed on a page of its own, each written to the credentials' history -----------------
    def _confirm_then_apply(self, request, queryset, action, done_message, skipped_message, with_reason=False,
                            **confirmation):
        """
        The confirmation page first (``confirmed``: title, question, what will change, optionally a reason); once
        confirmed, run ``action(row, [reason,] actor=staff)`` on every selected credential and tell staff what
        happened. The messages are ``ngettext_lazy(..., "count")``.
        """
        page = confirmed(self, request, queryset, staff_action=action, with_reason=with_reason, **confirmation)
        if page is not None:
            return page
        args = (request.POST["reason"].strip(),) if with_reason else ()
        done = skipped = 0
        for row in queryset.iterator(chunk_size=500):
            if action(row, *args, actor=request.user):
                done += 1
            else:
                skipped += 1
        self.message_user(request, done_message % {"count": done}, messages.SUCCESS if done else messages.WARNING)
        if skipped:
            self.message_user(request, skipped_message % {"count": skipped}, messages.WARNING)
        return None

    @admin.action(description=_("Retry issuance of held or failed credentials"), permissions=["change"])
    def retry_issuance(self, request, queryset):
        return self._confirm_then_apply(request, queryset, staff_actions.retry, ngettext_lazy(
            "%(count)d credential scheduled for issuance.",
            "%(count)d credentials scheduled for issuance.", "count",
        ), ngettext_lazy(
            "%(count)d credential was not held or failed and was left as it is.",
            "%(count)d credentials were not held or failed and were left as they are.", "count",
        ), title=_("Retry issuance"), question=_(
            "Send the held or failed credentials among these to POK again? The others are left as they are."),
            will_change=ngettext_lazy("%(count)d of them is held or failed: it will be sent again.",
                                      "%(count)d of them are held or failed: they will be sent again.", "count"))

    @admin.action(description=_("Refresh in-progress credentials from POK"), permissions=["change"])
    def refresh_from_pok(self, request, queryset):
        return self._confirm_then_apply(request, queryset, staff_actions.refresh, ngettext_lazy(
            "%(count)d credential scheduled for a refresh.",
            "%(count)d credentials scheduled for a refresh.", "count",
        ), ngettext_lazy(
            "%(count)d credential was not in progress on POK and was left as it is.",
            "%(count)d credentials were not in progress on POK and were left as they are.", "count",
        ), title=_("Refresh from POK"), question=_(
            "Ask POK now for the state of the credentials among these that are in progress?"),
            will_change=ngettext_lazy("%(count)d of them is in progress on POK: it will be refreshed.",
                                      "%(count)d of them are in progress on POK: they will be refreshed.", "count"))

    @admin.action(description=_("Re-issue: a new POK credential replacing the current one"), permissions=["change"])
    def reissue_credentials(self, request, queryset):
        return self._confirm_then_apply(request, queryset, staff_actions.reissue, ngettext_lazy(
            "%(count)d credential scheduled for re-issue. Revoke the replaced one on POK if it should no longer be "
            "valid.",
            "%(count)d credentials scheduled for re-issue. Revoke the replaced ones on POK if they should no longer "
            "be valid.", "count",
        ), ngettext_lazy(
            "%(count)d credential has no POK credential to replace (or is being sent) and was left as it is; use "
            "retry for a held or failed one.",
            "%(count)d credentials have no POK credential to replace (or are being sent) and were left as they are; "
            "use retry for held or failed ones.", "count",
        ), title=_("Re-issue credentials"), question=_(
            "Issue a new POK credential for each of these that POK holds one for? The current POK credential is kept "
            "in the record as replaced; it stays valid on POK until you revoke it there."),
            will_change=ngettext_lazy("%(count)d of them holds a POK credential: it will be re-issued.",
                                      "%(count)d of them hold a POK credential: they will be re-issued.", "count"))

    @admin.action(description=_("Mark revoked (then revoke on POK too)"), permissions=["change"])
    def mark_revoked(self, request, queryset):
        return self._confirm_then_apply(request, queryset, staff_actions.mark_revoked, ngettext_lazy(
            "%(count)d credential marked revoked. Revoke it on POK as well.",
            "%(count)d credentials marked revoked. Revoke them on POK as well.", "count",
        ), ngettext_lazy(
            "%(count)d credential was already revoked.",
            "%(count)d credentials were already revoked.", "count",
        ), with_reason=True, title=_("Mark credentials revoked"), question=_(
            "Mark these credentials revoked? Learners are no longer sent to them. POK is not told: revoke each one "
            "on POK as well (its reason will say so)."),
            will_change=ngettext_lazy("%(count)d of them is not revoked yet: it will be marked revoked.",
                                      "%(count)d of them are not revoked yet: they will be marked revoked.", "count"))
