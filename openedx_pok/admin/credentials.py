"""
Django admin for course mappings and credentials: where staff see issuance and repair it.

Actions go through ``api`` (never straight to tasks or POK), so the admin follows the same rules as the LMS paths.
"""
import uuid

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth import get_user_model
from django.core.paginator import Paginator
from django.db.models import Prefetch, Q
from django.utils.html import format_html
from django.utils.text import Truncator, smart_split, unescape_string_literal
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext_lazy

from openedx_pok.admin.credential_filters import (
    COURSE_KEY_PREFIXES,
    AccountFilter,
    CourseFilter,
    HistoryInline,
    OrganizationFilter,
    PokStateFilter,
    confirmed,
)
from openedx_pok.issuance import csv_report, staff_actions, states
from openedx_pok.issuance.states import CredentialStatus
from openedx_pok.keys import parse_course_key
from openedx_pok.models import PokCertificate

# The list must stay fast on a table of hundreds of thousands of credentials in an LMS with millions of learners: no
# statement joins the users table, every filter, search and sort is served by an index, and a page costs the same
# few statements whatever its number or its rows.

#: Learners one search term may stand for; past it a username prefix names the first ones (by username) and says so.
LEARNER_LOOKUP_LIMIT = 200
#: Characters of the reason shown in the list (the whole reason is in the tooltip and on the change page).
REASON_LENGTH = 50


class CredentialPaginator(Paginator):
    """
    Fetches a page's ids first, then the page's rows by id.

    Why: for ``ORDER BY ... LIMIT 100 OFFSET n`` MySQL reads (and, for a search, sorts) whole rows, and a credential
    row is heavy (reason, receiver, POK's answer); reading ids from an index first and then 100 rows by primary key
    is several times cheaper for deep pages, filtered sorts and broad searches, at the price of one cheap statement.
    Pages past the middle are counted from the end, so no page skips more than half of the rows.
    """

    def page(self, number):
        page = super().page(number)
        queryset = self.object_list
        if not hasattr(queryset, "values_list") or not queryset.ordered or not self.count:
            return page
        bottom, top = page.start_index() - 1, page.end_index()
        ids = queryset.values_list("pk", flat=True)
        if bottom > self.count - top:
            # Nearer the end than the start: skip from the end in the reverse order, so the last page costs what the
            # first does (the rows query below puts them back in the page's order).
            ids = list(ids.reverse()[self.count - top:self.count - bottom])
        else:
            ids = list(ids[bottom:top])
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


def _search_terms(search_term):
    """The words of a search, as Django's own search splits them (quotes keep a phrase together)."""
    for bit in smart_split(search_term):
        if len(bit) > 1 and bit[0] in "\"'" and bit[0] == bit[-1]:
            bit = unescape_string_literal(bit)
        if bit.strip():
            yield bit.strip()


def _as_uuid(term):
    try:
        return uuid.UUID(term)
    except ValueError:
        return None


#: Every field of a credential (all read-only: the issuance writes them) and those that say what was sent to POK.
CREDENTIAL_FIELDS = [field.name for field in PokCertificate._meta.fields if field.name != "id"]
SENT_TO_POK = ("template_id", "page_id", "emission_type", "title", "emitter", "tags", "receiver", "custom_parameters",
               "emission_date", "grade", "verify_uuid", "uuid", "pok_response")


@admin.register(PokCertificate)
class PokCertificateAdmin(admin.ModelAdmin):
    """Every credential with its state and reason; retry and refresh without leaving the admin."""

    # List, filters and search are built for 100,000s of credentials (see CredentialChangeList and
    # get_search_results): measured by ``make bench``, pinned by tests/test_admin_performance.py.
    # Status and reason first after the learner: on a laptop screen, with the navigation and the filters beside it,
    # they stay in view; the long course key comes after them.
    list_display = ("id", "learner", "status_column", "reason", "course_key", "attempts_column", "modified",
                    "pok_page")
    # Each one filters on an index (the organization: the course key's prefix); see admin_credentials.py.
    list_filter = ("status", PokStateFilter, CourseFilter, OrganizationFilter, AccountFilter,
                   ("emission_date", admin.DateFieldListFilter), "retryable", "emission_type", "possible_duplicate")
    # Only what an index serves in both directions (see CredentialChangeList.get_ordering).
    sortable_by = ("id", "course_key", "status_column", "modified")
    # What the search understands; get_search_results routes each term to one of them instead of LIKE '%term%'.
    search_fields = ("=user__id", "=user__email", "^user__username", "=course_key", "=pok_credential_id", "=uuid",
                     "=verify_uuid")
    search_help_text = _("Search by learner id, email or username (or its beginning), course key (or its beginning), "
                         "POK credential id, reference or certificate verify_uuid.")
    list_select_related = False
    paginator = CredentialPaginator
    # The total next to a filtered count would count the whole table on every filtered page.
    show_full_result_count = False
    if hasattr(admin, "ShowFacets"):  # Django 5.0+
        # Facet counts ("Show counts") run a full-table aggregate per filter on every page view.
        show_facets = admin.ShowFacets.NEVER
    raw_id_fields = ("user",)
    readonly_fields = ["pok_page", *CREDENTIAL_FIELDS]
    # Where the credential stands first, then what was sent to POK (folded), then its history.
    fieldsets = (
        (None, {"fields": [name for name in ["pok_page", *CREDENTIAL_FIELDS] if name not in SENT_TO_POK]}),
        (_("What was sent to POK, and its last answer"), {"fields": SENT_TO_POK, "classes": ("collapse",)}),
    )
    inlines = (HistoryInline,)
    change_list_template = "openedx_pok/admin/credential_change_list.html"
    actions = ("retry_issuance", "refresh_from_pok", "reissue_credentials", "mark_revoked", "export_csv",
               "export_csv_with_emails")

    def changelist_view(self, request, extra_context=None):
        """The list, with the credentials per status above it (whole table, at most a few seconds old)."""
        counts = staff_actions.status_counts()
        extra_context = {**(extra_context or {}), "status_counts": [
            (status, label, counts.get(status, 0)) for status, label in CredentialStatus.choices]}
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

    # ---- list columns and search ------------------------------------------------------------------------------
    def get_changelist(self, request, **kwargs):
        return CredentialChangeList

    @admin.display(description=_("learner"))
    def learner(self, obj):
        return obj.user.username

    @admin.display(description=_("status"), ordering="status")
    def status_column(self, obj):
        """The status, with POK's own state when it says more (e.g. in progress: waitingForApproval)."""
        if obj.pok_state and obj.pok_state != obj.status:
            return f"{obj.get_status_display()} ({obj.pok_state})"
        return obj.get_status_display()

    @admin.display(description=_("reason"))
    def reason(self, obj):
        """The start of the reason, the whole of it on hover: the list stays readable without scrolling sideways."""
        if not obj.status_reason:
            return ""
        # A minimum width: beside an unbreakable course key the column would shrink to a word per line.
        return format_html('<span title="{}" style="display: inline-block; min-width: 14em">{}</span>',
                           obj.status_reason, Truncator(obj.status_reason).chars(REASON_LENGTH))

    @admin.display(description=_("POK page"))
    def pok_page(self, obj):
        """A link to the credential on POK, for a credential page on an allowed host only."""
        if not obj.view_url or not states.is_allowed_view_url(obj.view_url):
            return ""
        return format_html('<a href="{}" target="_blank" rel="noopener noreferrer">{}</a>', obj.view_url, _("open"))

    @admin.display(description=_("POST attempts"))
    def attempts_column(self, obj):
        if obj.ambiguous_attempts:
            return _("%(attempts)d (%(ambiguous)d ambiguous)") % {"attempts": obj.attempts,
                                                                  "ambiguous": obj.ambiguous_attempts}
        return str(obj.attempts)

    def get_search_results(self, request, queryset, search_term):
        """
        Route each search term to the one indexed lookup it can be, instead of ``LIKE '%term%'`` on every column.

        Digits are a learner id; a term with ``@`` an email; a course key (or the beginning of one) a course; a UUID
        or 32 hex digits a reference, a certificate verify_uuid or a POK id; anything else a POK id or the
        beginning of a username. Learners are looked up first, in one query on auth_user's indexes, so the
        credential query never joins the users table. Terms are combined with AND, as in Django's own search.
        """
        for term in _search_terms(search_term):
            queryset = queryset.filter(self._search_condition(request, term))
        return queryset, False

    def _search_condition(self, request, term):
        if term.isascii() and term.isdigit():
            return Q(user_id=int(term))
        users = get_user_model().objects
        if "@" in term:
            matches = users.filter(email__iexact=term).values_list("id", flat=True)
            return Q(user_id__in=list(matches[:LEARNER_LOOKUP_LIMIT]))
        course_key = parse_course_key(term)
        if course_key is not None:
            return Q(course_key=course_key)
        if term.lower().startswith(COURSE_KEY_PREFIXES):
            return Q(course_key__istartswith=term)
        reference = _as_uuid(term)
        if reference is not None:
            return (Q(uuid=reference) | Q(verify_uuid=reference.hex)
                    | Q(pok_credential_id__in=sorted({term, str(reference)})))
        learner_ids = list(users.filter(username__istartswith=term).order_by("username")
                           .values_list("id", flat=True)[:LEARNER_LOOKUP_LIMIT + 1])
        if len(learner_ids) > LEARNER_LOOKUP_LIMIT:
            learner_ids = learner_ids[:LEARNER_LOOKUP_LIMIT]
            self.message_user(request, _(
                "More than %(limit)d usernames start with \"%(term)s\": showing the credentials of the first "
                "%(limit)d of them (by username). Type more of the username to see the others."
            ) % {"limit": LEARNER_LOOKUP_LIMIT, "term": term}, messages.WARNING)
        return Q(pok_credential_id=term) | Q(user_id__in=learner_ids)

    # ---- actions: each confirmed on a page of its own, each written to the credentials' history -----------------
    def _confirm_then_apply(self, request, queryset, action, done_message, skipped_message, with_reason=False,
                            **confirmation):
        """
        The confirmation page first (``confirmed``: title, question, optionally a reason); once confirmed, run
        ``action(row, [reason,] actor=staff)`` on every selected credential and tell staff what happened. The
        messages are ``ngettext_lazy(..., "count")``.
        """
        page = confirmed(self, request, queryset, with_reason=with_reason, **confirmation)
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
            "Send the held or failed credentials among these to POK again? The others are left as they are."))

    @admin.action(description=_("Refresh in-progress credentials from POK"), permissions=["change"])
    def refresh_from_pok(self, request, queryset):
        return self._confirm_then_apply(request, queryset, staff_actions.refresh, ngettext_lazy(
            "%(count)d credential scheduled for a refresh.",
            "%(count)d credentials scheduled for a refresh.", "count",
        ), ngettext_lazy(
            "%(count)d credential was not in progress on POK and was left as it is.",
            "%(count)d credentials were not in progress on POK and were left as they are.", "count",
        ), title=_("Refresh from POK"), question=_(
            "Ask POK now for the state of the credentials among these that are in progress?"))

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
            "in the record as replaced; it stays valid on POK until you revoke it there."))

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
            "on POK as well (its reason will say so)."))
