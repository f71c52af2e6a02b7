"""
Django admin for course mappings: the list (what each course issues with, by the template's name), the form
(``mapping_form``, with its pages in ``mapping_pages``) and the backfill action, confirmed with its dry run first.

Actions go through ``api`` (never straight to tasks or POK), so the admin follows the same rules as the LMS paths.
"""

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db.models import OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, NullIf
from django.template.response import TemplateResponse
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from openedx_pok import api
from openedx_pok.admin.mapping_form import template_label
from openedx_pok.admin.mapping_pages import CourseSetupAdminMixin
from openedx_pok.course_setup import accounts, configuration
from openedx_pok.exceptions import IssuanceError
from openedx_pok.issuance import outage
from openedx_pok.models import CertificateTemplate, PokTemplate


@admin.register(CertificateTemplate)
class CertificateTemplateAdmin(CourseSetupAdminMixin, admin.ModelAdmin):
    """Map courses (or whole organizations) to POK templates (form: mapping_form.py, its pages: mapping_pages.py)."""

    # Few, short columns: the list fits a 1366 px screen beside its filters without scrolling sideways.
    list_display = ("applies_to", "template_column", "account", "emission_type", "enabled", "modified")
    list_display_links = ("applies_to",)
    list_filter = ("enabled", "emission_type", "account", "organization")
    search_fields = ("course_key", "organization", "template_id")
    actions = ("backfill_courses", "sync_pok_catalog")

    def get_list_display(self, request):
        """The account column only where there is more than one account to tell apart."""
        shown = super().get_list_display(request)
        return shown if len(accounts.account_names()) > 1 else tuple(name for name in shown if name != "account")

    def get_queryset(self, request):
        """Each mapping with its template as last synced (name, version, missing), in the list's one query."""
        queryset = super().get_queryset(request).annotate(pok_template=Coalesce(
            NullIf("template_id", Value("")), Value(settings.POK_DEFAULT_TEMPLATE_ID or "")))
        synced = PokTemplate.objects.filter(account=OuterRef("account"), pok_id=OuterRef("pok_template"))
        return queryset.annotate(**{f"pok_template_{name}": Subquery(synced.values(name)[:1])
                                    for name in ("name", "version", "missing_on_pok")})

    def get_search_results(self, request, queryset, search_term):
        """Also find mappings by their template's name, as the list shows it."""
        found, distinct = super().get_search_results(request, queryset, search_term)
        if search_term.strip():
            named = PokTemplate.objects.filter(name__icontains=search_term.strip()).values("pok_id")
            found = found | queryset.filter(template_id__in=named)
        return found, distinct

    @admin.display(description=_("Course or organization"), ordering="course_key")
    def applies_to(self, obj):
        return str(obj.course_key) if obj.course_key else gettext("All courses of {org}").format(org=obj.organization)

    @admin.display(description=_("POK template"), ordering="template_id")
    def template_column(self, obj):
        """The template by name (a default one says so); an id only when the synced catalog does not know it."""
        template_id = getattr(obj, "pok_template", obj.template_id or settings.POK_DEFAULT_TEMPLATE_ID)
        if not template_id:
            return gettext("None: credentials are held until a template is chosen")
        name = getattr(obj, "pok_template_name", None)
        if name is None:
            label = gettext("{id} (not in the synced catalog)").format(id=template_id)
        else:
            label = template_label(PokTemplate(pok_id=template_id, name=name, version=obj.pok_template_version or "",
                                               missing_on_pok=bool(obj.pok_template_missing_on_pok)))
        return label if obj.template_id else gettext("Default: {name}").format(name=label)

    def save_model(self, request, obj, form, change):
        """Save, and warn (never refuse) when Open edX does not know the course or organization yet."""
        super().save_model(request, obj, form, change)
        warning = configuration.scope_warning(obj.course_key, obj.organization)
        if warning:
            self.message_user(request, warning, messages.WARNING)

    def changelist_view(self, request, extra_context=None):
        """Say which POK accounts an outage paused (issue 22): their credentials wait and resume by themselves."""
        for name, pause in outage.paused_accounts():
            self.message_user(request, outage.describe(name, pause), messages.WARNING)
        return super().changelist_view(request, extra_context)

    @admin.action(description=_("Backfill: request credentials for earlier certificates"), permissions=["change"])
    def backfill_courses(self, request, queryset):
        """
        The backfill of the selected courses (an organization default: its POK-enabled courses), in a task, once
        staff confirmed it on a page that shows its dry run (what it would request).
        """
        mappings = list(queryset)
        course_keys = [mapping.course_key for mapping in mappings if mapping.course_key]
        orgs = [mapping.organization for mapping in mappings if not mapping.course_key]
        if request.POST.get("post") != "yes":
            return self._confirm_backfill(request, mappings, course_keys, orgs)
        try:
            report = api.backfill(course_keys, orgs, background=True, actor_id=request.user.id)
        except IssuanceError as exc:
            self.message_user(request, exc.reason, messages.ERROR)
            return
        counts = report.counts
        if (counts["requested"] or counts["scheduled"]) and not report.started:
            self.message_user(request, _("The backfill could not be started: the task queue cannot be reached."),
                              messages.ERROR)
            return
        message = ngettext(
            "Backfill of %(courses)d course: %(requested)d credentials requested in the background; %(had)d learners "
            "already had one, %(held)d held, %(failed)d failed.",
            "Backfill of %(courses)d courses: %(requested)d credentials requested in the background; %(had)d "
            "learners already had one, %(held)d held, %(failed)d failed.",
            counts["courses"],
        ) % {"courses": counts["courses"], "requested": counts["requested"], "had": counts["already_had"],
             "held": counts["held"], "failed": counts["failed"]}
        self.message_user(request, message, messages.SUCCESS if counts["requested"] else messages.INFO)
        if counts["scheduled"]:
            self.message_user(request, ngettext(
                "%(count)d credential waits for its course to release certificates; it is issued then.",
                "%(count)d credentials wait for their course to release certificates; they are issued then.",
                counts["scheduled"]) % {"count": counts["scheduled"]}, messages.INFO)

    def _confirm_backfill(self, request, mappings, course_keys, orgs):
        """The confirmation page of the backfill, with its dry run's counts (nothing is written or sent)."""
        try:
            report = api.backfill(course_keys, orgs, dry_run=True, actor_id=request.user.id)
        except IssuanceError as exc:
            self.message_user(request, exc.reason, messages.ERROR)
            return None
        counts = report.counts
        to_do = counts["requested"] + counts["scheduled"]
        question = ngettext(
            "The backfill would request %(count)d credential. Request it now, in the background?",
            "The backfill would request %(count)d credentials. Request them now, in the background?", to_do,
        ) % {"count": to_do} if to_do else gettext("The backfill has nothing to request: every learner with a "
                                                   "certificate already has a credential, or is counted below.")
        context = {
            **self.admin_site.each_context(request), "title": gettext("Backfill: request credentials for earlier "
                                                                      "certificates"),
            "opts": self.model._meta, "question": question, "mappings": mappings, "counts": counts,
            "can_confirm": bool(to_do), "limit_reached": report.limit_reached,
            "action": request.POST.get("action", ""), "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "openedx_pok/admin/mapping_backfill_confirm.html", context)


# ---- the credential list at scale (docs/benchmarks.rst, "The credential admin at 100,000 credentials") ----------
