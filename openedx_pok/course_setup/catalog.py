"""
Course setup without knowing POK's ids: each account's templates and pages in local tables, connection tests,
validation of a course mapping, and the staff preview of a mapping with a real learner's values.

The catalog sync (``pok_sync_templates``, the admin action, the reconcile task at most hourly) pulls every account's
templates (name, version, custom parameters) and pages into :class:`~openedx_pok.models.PokTemplate` and
:class:`~openedx_pok.models.PokPage`. An object POK stops listing is flagged ``missing_on_pok``, never deleted, and
only when the list was complete: POK has no pagination, so a list that reached the limit may be cut short and is
reported as possibly truncated. Pickers and checks read these tables; only staff clicks and the sync call POK.
"""
import logging
import ssl
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from openedx_pok import caching, compat
from openedx_pok.client import is_usable_id
from openedx_pok.compat import CertificateInfo
from openedx_pok.course_setup import accounts, configuration, parameters, payload
from openedx_pok.exceptions import (
    CourseSetupError,
    PokApiError,
    PokAuthenticationError,
    PokConfigurationError,
    PokNetworkError,
    PokNotFoundError,
)
from openedx_pok.models import PokCertificate, PokPage, PokTemplate

log = logging.getLogger(__name__)

# The reconcile task syncs at most once per POK_CATALOG_SYNC_SECONDS, across all workers (a cache lease).
SYNC_LEASE_KEY = "openedx_pok:catalog-sync-lease"
# The mapping form syncs an account whose catalog is empty at most this often (a failed sync is not retried on every
# page view; "Sync templates from POK" syncs at once).
EMPTY_SYNC_LEASE_KEY = "openedx_pok:catalog-empty-sync"
EMPTY_SYNC_SECONDS = 300
# How long an account's organization data (credits) from the last sync or connection test is shown.
ACCOUNT_INFO_SECONDS = 24 * 3600
# The longest POK id the catalog tables (and the mappings) can store; a longer one would fail the whole sync on MySQL.
MAX_POK_ID_LENGTH = PokTemplate._meta.get_field("pok_id").max_length


def _info_key(name):
    return f"openedx_pok:account-info:{configuration.digest(name)}"


@dataclass(frozen=True)
class ConnectionReport:
    """The answer to "test connection" for one account: the organization POK knows the key by, or why it failed."""

    account: str
    ok: bool
    api_url: str = ""
    organization: str = ""
    wallet: str = ""
    available_credits: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class AccountSync:
    """What one account's catalog sync did; ``error`` says why it could not run (nothing was changed then)."""

    account: str
    templates: int = 0
    pages: int = 0
    missing_templates: tuple = ()
    missing_pages: tuple = ()
    templates_truncated: bool = False
    pages_truncated: bool = False
    error: str = ""
    organization: str = ""
    skipped: tuple = ()  # why templates or pages POK listed were left out (an id that cannot be used)

    @property
    def messages(self):
        """Sentences for a command's output or an admin message."""
        if self.error:
            return [self.error]
        templates = ngettext("{count} template", "{count} templates", self.templates).format(count=self.templates)
        pages = ngettext("{count} page", "{count} pages", self.pages).format(count=self.pages)
        lines = [_("POK account '{account}' ({organization}): {templates}, {pages}.").format(
            account=self.account, organization=self.organization or "-", templates=templates, pages=pages)]
        if self.templates_truncated or self.pages_truncated:
            lines.append(_("The list of {what} reached POK_CATALOG_LIST_LIMIT and may be truncated: raise the limit "
                           "to see them all; nothing was marked missing.").format(
                what=_("templates") if self.templates_truncated else _("pages")))
        if self.missing_templates:
            lines.append(_("Missing on POK now (templates): {ids}.").format(ids=", ".join(self.missing_templates)))
        if self.missing_pages:
            lines.append(_("Missing on POK now (pages): {ids}.").format(ids=", ".join(self.missing_pages)))
        return lines + list(self.skipped)


def _is_tls_failure(exc):
    seen, current = 0, exc
    while current is not None and seen < 20:
        if isinstance(current, ssl.SSLError) or "SSL" in type(current).__name__:
            return True
        current = current.__cause__ or next((arg for arg in getattr(current, "args", ())
                                             if isinstance(arg, BaseException)), None)
        seen += 1
    return False


def failure_reason(exc, account):
    """Why a call to ``account`` failed, in words an operator can act on (never the key)."""
    if isinstance(exc, PokConfigurationError):
        return str(exc)
    if isinstance(exc, PokAuthenticationError):
        return _("POK refused the API key of account '{account}' (HTTP {status}): check its key in POK_ACCOUNTS "
                 "(POK_API_KEY for the default account).").format(account=account, status=exc.status_code)
    if isinstance(exc, PokNetworkError) and _is_tls_failure(exc):
        return _("The TLS connection to POK account '{account}' failed ({error}): check that its URL is https:// "
                 "on the right host and that the server's certificate is trusted.").format(
            account=account, error=exc.message)
    if isinstance(exc, PokNetworkError):
        return _("POK account '{account}' is unreachable: {error} Check its URL and the network.").format(
            account=account, error=exc.message)
    return _("POK account '{account}' answered with an error: {error}").format(
        account=account, error=getattr(exc, "message", str(exc)))


def _remember_organization(name, organization):
    caching.set(_info_key(name), {"organization": organization.name or "", "wallet": organization.wallet or "",
                                  "available_credits": organization.available_credits,
                                  "checked_at": timezone.now()}, ACCOUNT_INFO_SECONDS)


def account_info(name):
    """The organization data of the account's last sync or connection test ({organization, available_credits,
    checked_at}), or None; never calls POK (the mapping form shows it)."""
    return caching.get(_info_key(name or accounts.DEFAULT_ACCOUNT))


def test_connection(name=None):
    """A live call to the account (``GET /organization/me``): a :class:`ConnectionReport`, never an exception."""
    name = name or accounts.DEFAULT_ACCOUNT
    try:
        api_url = accounts.get_account(name).api_url
        organization = configuration.get_client(name).get_organization()
    except (PokConfigurationError, PokApiError) as exc:
        log.info("POK: connection test of account %s failed (%s)", name, type(exc).__name__)
        return ConnectionReport(account=name, ok=False, reason=failure_reason(exc, name))
    _remember_organization(name, organization)
    return ConnectionReport(account=name, ok=True, api_url=api_url, organization=organization.name or "",
                            wallet=organization.wallet or "", available_credits=organization.available_credits)


def sync(account=None):
    """Sync one account (a name) or every configured one; a list of :class:`AccountSync`, one per account."""
    names = [account] if account else accounts.account_names()
    return [sync_account(name) for name in names]


def id_problem(pok_id, what):
    """Why ``pok_id`` cannot be a POK id of a template or page (``what``, a word), or ""."""
    if not is_usable_id(pok_id):
        return _("'{id}' cannot be the id of a POK {what}.").format(id=pok_id, what=what)
    if len(pok_id) > MAX_POK_ID_LENGTH:
        return _("The id of a POK {what} cannot be longer than {limit} characters ('{start}...').").format(
            what=what, limit=MAX_POK_ID_LENGTH, start=pok_id[:40])
    return ""


def _usable(name, items, what, skipped):
    """The items whose id can be stored and used; a sentence in ``skipped`` for each other one."""
    kept = []
    for item in items:
        problem = id_problem(item.id, what)
        if problem:
            log.warning("POK: account %s listed a %s with an unusable id (%s characters); skipped", name, what,
                        len(item.id))
            skipped.append(_("Skipped: {problem}").format(problem=problem))
        else:
            kept.append(item)
    return kept


def _fetch(client, name):
    limit = settings.POK_CATALOG_LIST_LIMIT
    organization = client.get_organization()
    listed = client.list_templates(limit=limit)
    skipped = []
    templates = []
    for template in _usable(name, listed.templates, _("template"), skipped):
        if not template.custom_parameters:
            try:  # lists may leave the parameters out: E3 has them
                template = client.get_template(template.id)
            except PokNotFoundError:
                log.info("POK: template %s vanished during the catalog sync", template.id)
        templates.append(template)
    pages = client.list_pages(limit=limit)
    return organization, listed, templates, pages, _usable(name, pages.pages, _("page"), skipped), tuple(skipped)


def sync_account(name):
    """Pull the account's templates and pages into the local tables; an :class:`AccountSync` (never raises)."""
    try:
        organization, listed, templates, pages, kept_pages, skipped = _fetch(configuration.get_client(name), name)
    except (PokConfigurationError, PokApiError) as exc:
        log.warning("POK: catalog sync of account %s failed (%s)", name, type(exc).__name__)
        return AccountSync(account=name, error=failure_reason(exc, name))
    _remember_organization(name, organization)
    now = timezone.now()
    with transaction.atomic():
        for template in templates:
            declared = [{"id": parameter.id, "label": parameter.label} for parameter in template.custom_parameters]
            # Issuance reads the definition afresh after every sync, the first one included: the one it cached may
            # predate a parameter added on POK (or one removed there) even when this table saw no change.
            configuration.forget_template(template.id, name)
            PokTemplate.objects.update_or_create(account=name, pok_id=template.id, defaults={
                "name": (template.name or "")[:255], "version": (template.version or "")[:64],
                "parameters": declared, "last_seen": now, "missing_on_pok": False})
        missing_templates = _flag_missing(PokTemplate, name, {t.id for t in templates}, listed.possibly_truncated)
        for page in kept_pages:
            PokPage.objects.update_or_create(account=name, pok_id=page.id, defaults={
                "name": (page.name or "")[:255], "last_seen": now, "missing_on_pok": False})
        missing_pages = _flag_missing(PokPage, name, {p.id for p in kept_pages}, pages.possibly_truncated)
    for template_id in missing_templates:
        configuration.forget_template(template_id, name)
    log.info("POK: catalog of account %s synced: %s templates, %s pages", name, len(templates), len(kept_pages))
    return AccountSync(account=name, templates=len(templates), pages=len(kept_pages),
                       missing_templates=missing_templates, missing_pages=missing_pages,
                       templates_truncated=listed.possibly_truncated, pages_truncated=pages.possibly_truncated,
                       organization=organization.name or "", skipped=skipped)


def _flag_missing(model, name, seen, truncated):
    """Flag what POK no longer lists; nothing when the list may be cut short (it may just be past the limit)."""
    if truncated:
        return ()
    gone = model.objects.filter(account=name, missing_on_pok=False).exclude(pok_id__in=seen)
    ids = tuple(sorted(gone.values_list("pok_id", flat=True)))
    model.objects.filter(account=name, pok_id__in=ids).update(missing_on_pok=True)
    return ids


def sync_if_due():
    """The reconcile task's catalog sync: at most once per POK_CATALOG_SYNC_SECONDS, never raising."""
    period = settings.POK_CATALOG_SYNC_SECONDS
    if not period or not caching.add(SYNC_LEASE_KEY, 1, int(period), when_down=False):
        return None
    try:
        return sync()
    except Exception:  # the reconcile run must go on: a sync failure is logged and retried next period
        log.exception("POK: the periodic catalog sync failed")
        return None


def sync_if_empty(account=None):
    """
    The mapping form's first sync: the account's catalog (every account's when None) when it holds no template yet,
    so a fresh install offers POK's templates by name. At most once per :data:`EMPTY_SYNC_SECONDS` and account (a
    cache lease), so POK down or a wrong key does not slow every page; None when nothing was tried.
    """
    names = [account or accounts.DEFAULT_ACCOUNT] if account else accounts.account_names()
    empty = [name for name in names if accounts.is_set(name) and not PokTemplate.objects.filter(account=name).exists()]
    due = [name for name in empty if caching.add(f"{EMPTY_SYNC_LEASE_KEY}:{configuration.digest(name)}", 1,
                                                 EMPTY_SYNC_SECONDS, when_down=False)]
    return [sync_account(name) for name in due] or None


# --- validation of a course mapping ------------------------------------------------------------------------------


def templates_of(account):
    """The synced templates of an account, by name (missing ones included, flagged)."""
    return list(PokTemplate.objects.filter(account=account).order_by("missing_on_pok", "name", "pok_id"))


def pages_of(account):
    return list(PokPage.objects.filter(account=account).order_by("missing_on_pok", "name", "pok_id"))


def find_template(account, template_id, refresh=False):
    """(synced template or None, sync error) of an account, synced from POK on demand when unknown or ``refresh``."""
    found = PokTemplate.objects.filter(account=account, pok_id=template_id, missing_on_pok=False).first()
    error = ""
    if found is None or refresh:
        error = sync_account(account).error
        found = PokTemplate.objects.filter(account=account, pok_id=template_id, missing_on_pok=False).first()
    return found, error


def unsourced_parameters(declared, sources):
    """[(parameter id, message)] for each declared parameter without a usable source (chosen or automatic)."""
    problems = []
    for parameter in declared:
        parameter_id, label = parameter.get("id", ""), parameter.get("label", "")
        spec = (sources or {}).get(parameter_id)
        if spec:  # named by the label staff read on the form (the id only when POK gives no label)
            error = parameters.spec_error(spec)
            if error:
                problems.append((parameter_id, _("Parameter '{label}': {error}.").format(
                    label=label or parameter_id, error=error)))
        elif not payload.has_automatic_source(parameter_id, label):
            problems.append((parameter_id, _("Parameter '{label}' has no source: choose where its value comes "
                                             "from.").format(label=label or parameter_id)))
    return problems


def validate_mapping(account, template_id, page_id="", sources=None, refresh=False):
    """
    What is wrong with a course mapping's account, template, page and parameter sources: [(field, message)].

    The template is looked up in the synced table and, when it is not there (or ``refresh``), synced from POK first.
    """
    account = account or accounts.DEFAULT_ACCOUNT
    try:
        accounts.get_account(account)
    except PokConfigurationError as exc:
        return [("account", str(exc))]
    problems = [(field_name, id_problem(value, what)) for field_name, value, what in (
        ("template_id", template_id, _("template")), ("page_id", page_id, _("page")))
        if value and id_problem(value, what)]
    if problems:  # never sent to POK nor looked up
        return problems
    template_id = template_id or settings.POK_DEFAULT_TEMPLATE_ID
    if template_id:
        template, error = find_template(account, template_id, refresh=refresh)
        if template is None:
            problems.append(("template_id", _("The template {template} does not exist on POK account '{account}' "
                                              "(deleted on POK, or the catalog could not be synced{detail}).").format(
                template=template_id, account=account, detail=f": {error}" if error else "")))
        else:
            problems += [(f"parameter:{parameter_id}", message) for parameter_id, message in
                         unsourced_parameters(template.parameters, sources)]
    if page_id and not PokPage.objects.filter(account=account, pok_id=page_id, missing_on_pok=False).exists():
        sync_account(account)
        if not PokPage.objects.filter(account=account, pok_id=page_id, missing_on_pok=False).exists():
            problems.append(("page_id", _("The page {page} does not exist on POK account '{account}'.").format(
                page=page_id, account=account)))
    return problems


# --- the staff preview with a learner's real values --------------------------------------------------------------


@dataclass(frozen=True)
class StaffPreview:
    """
    A staff preview: POK's image (or why POK could not render it) and ``fields``, the ``POST /credential`` body an
    issuance for this learner would send, as (field, value) pairs (the API key travels in a header, never here).
    """

    image_url: str
    fields: tuple = ()
    error: str = ""


def payload_fields(body, prefix=""):
    """A POK request body as ((dotted field, text), ...) in its own order, for staff to read."""
    rows = []
    for key, value in body.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += payload_fields(value, f"{name}.")
        else:
            rows.append((name, ", ".join(map(str, value)) if isinstance(value, list | tuple) else str(value)))
    return tuple(rows)


def preview_for_learner(mapping, user):
    """
    A :class:`StaffPreview` of a course mapping (saved or not) with ``user``'s real values (name, email, grade,
    certificate), rendered on a staff click: POK's image and the values an issuance would send. IssuanceError (what
    to fix) or PokApiError when the template cannot be read; a failed rendering is the preview's ``error``.

    Only for a learner of the course (enrolled, or holding its certificate; for an organization's mapping, of one of
    its courses, whose data the preview then uses): staff who may edit a mapping must not have POK render the name
    of any other user, a colleague for instance. ``user`` None (no such user) gets the same answer.
    """
    learner_of = []
    if user is not None:
        course_keys = [mapping.course_key] if mapping.course_key else \
            compat.get_course_keys_for_org(mapping.organization)
        learner_of = sorted(compat.get_learner_course_keys(user, course_keys), key=str)
    if not learner_of:
        raise CourseSetupError(_("No learner of this course has that username or id: the preview only renders a "
                                 "learner enrolled in the course or holding its certificate (for an organization's "
                                 "mapping, in one of its courses)."))
    course_key = learner_of[0]
    course = compat.get_course(course_key)
    if course is None:
        raise CourseSetupError(_("The course {course} does not exist in Open edX.").format(course=course_key))
    account = mapping.account or accounts.DEFAULT_ACCOUNT
    template_id = mapping.template_id or settings.POK_DEFAULT_TEMPLATE_ID
    template = configuration.template(template_id, account)
    now = timezone.now()
    certificate = compat.get_certificate(user, course_key) or CertificateInfo(
        status="downloadable", mode="verified", created=now, modified=now)
    row = PokCertificate.objects.filter(user=user, course_key=course_key).first()
    context = payload.IssuanceContext(
        course=course, certificate=certificate, template=template, email=user.email,
        profile_name=compat.get_profile_name(user), language=compat.get_language_preference(user),
        platform_name=compat.get_platform_name(), emission_type=mapping.emission_type,
        date_format=settings.POK_DATE_FORMAT, skip_acceptance=settings.POK_SKIP_ACCEPTANCE,
        grade=row.grade if row else None, username=user.username, parameter_sources=mapping.parameter_sources or {},
        page_id=mapping.page_id or settings.POK_DEFAULT_PAGE_ID,
        tags=tuple(settings.POK_CREDENTIAL_TAGS) + (str(course_key),),  # as issuance sends them
    )
    fields = payload_fields(payload.build_credential_payload(context))
    log.info("POK: staff preview of mapping %s with user %s", mapping.pk, user.pk)
    try:
        image_url = configuration.get_client(account).preview_template(payload.build_preview_payload(context))
    except (PokConfigurationError, PokApiError) as exc:
        return StaffPreview(image_url="", fields=fields, error=_("POK could not render the preview: {error}").format(
            error=failure_reason(exc, account)))
    return StaffPreview(image_url=image_url, fields=fields)
