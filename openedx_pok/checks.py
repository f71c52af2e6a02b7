"""
The plugin's doctor: Django system checks (``openedx_pok.E0xx`` errors, ``openedx_pok.W0xx`` warnings).

They are deployment checks: they run with ``manage.py lms check --deploy`` and from ``pok_check`` (which a deploy
pipeline can gate on), never before ``migrate``, ``runserver`` or any other command, because a POK misconfiguration
must never stop a platform deploy: it delays credentials, and ``pok_check`` reports it. Each message says how to fix
it. Checks that read the database are tagged ``database`` and, by Django's convention, read it only when the command
passes ``databases`` (``pok_check`` does, ``check --deploy --database default`` too); they tolerate a missing table
(before ``migrate``) by reporting nothing. No setting shape makes a check raise; an exception one did not expect
becomes E006 naming that check, and the other checks still run.
"""
import functools

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, router
from django.utils.translation import gettext as _

from openedx_pok.course_setup import accounts, parameters, payload
from openedx_pok.exceptions import PokConfigurationError
from openedx_pok.models import CertificateTemplate, PokTemplate
from openedx_pok.settings.common import PIPELINE_STEPS

TAG = "openedx_pok"
RECONCILE_TASK = "openedx_pok.tasks.reconcile_credentials"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# openedx-pok 21.x/22.x step paths that still work (filters.py aliases them to the pipeline steps).
LEGACY_STEPS = {"openedx_pok.filters.CertificateCreatedFilter", "openedx_pok.filters.CertificateRenderFilter"}


def _doctor(*tags):
    """Register a check as one of the plugin's deployment checks, behind a guard: an exception it did not expect
    becomes one E006 naming it, so no configuration makes ``check --deploy`` or ``pok_check`` crash."""
    def decorate(check):
        @functools.wraps(check)
        def guarded(*args, **kwargs):
            try:
                return check(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - the last guard: reported as E006, by check and exception type
                return [Error(_("The POK check {check} could not run: {error}.").format(
                    check=check.__name__, error=type(exc).__name__),
                    hint=_("The other POK checks still ran. Please report this to the openedx-pok maintainers."),
                    id="openedx_pok.E006")]
        return register(TAG, *tags, deploy=True)(guarded)
    return decorate


def _reads(databases, model):
    """Whether a check may read ``model``'s table: only the databases the command asked for (none by default)."""
    return bool(databases) and router.db_for_read(model) in databases


def _used_accounts():
    """Account names that an enabled mapping uses (None when the table does not exist yet)."""
    try:
        return set(CertificateTemplate.objects.filter(enabled=True).values_list("account", flat=True))
    except DatabaseError:
        return None


@_doctor(Tags.database)
def check_accounts(databases=None, **kwargs):
    """E001 an account a mapping uses cannot be used (no key, a key with spaces, a URL with a bad port...); E002
    POK_ACCOUNTS is not a dict; E003 an account URL is not https outside DEBUG; W006 a malformed account no mapping
    uses (or not known to), the default account included once its key is set."""
    found = []
    readable = _reads(databases, CertificateTemplate)
    used = _used_accounts() if readable else None
    # Mappings not read (before migrate, or no databases given): a broken account is a warning that does not claim
    # to be unused.
    if used is not None:
        unused_hint = _("Fix or remove this POK_ACCOUNTS entry (no course mapping uses it).")
    elif readable:
        unused_hint = _("Fix or remove this POK_ACCOUNTS entry (the course mappings cannot be read yet: run migrate).")
    else:
        unused_hint = _("Fix or remove this POK_ACCOUNTS entry (manage.py lms pok_check says whether a course "
                        "mapping uses it).")
    for name, message in accounts.problems():
        if name is None:
            found.append(Error(message, hint=_("Fix POK_ACCOUNTS in the LMS settings."), id="openedx_pok.E002"))
        elif name in (used or ()):
            found.append(Error(message, hint=_("Set the account's key in POK_ACCOUNTS (POK_API_KEY for the default "
                                               "account), or move its course mappings to another account."),
                               id="openedx_pok.E001"))
        elif name != accounts.DEFAULT_ACCOUNT:
            found.append(Warning(message, hint=unused_hint, id="openedx_pok.W006"))
        elif accounts.is_set(name):
            # The default account is not required (an LMS may not use it), but one set up wrongly is worth a word.
            found.append(Warning(message, hint=_("Fix POK_API_URL / POK_API_KEY (or the 'default' entry of "
                                                 "POK_ACCOUNTS)."), id="openedx_pok.W006"))
    if not settings.DEBUG:
        for name in accounts.account_names():
            try:
                account = accounts.get_account(name)
            except PokConfigurationError:
                continue  # reported above
            # A loopback URL (a local simulator, a sidecar proxy) never carries the key over a network.
            if not account.api_url.lower().startswith("https://") and account.host not in LOOPBACK_HOSTS:
                found.append(Error(
                    _("The API URL of POK account '{name}' is not https: the API key would travel in clear.").format(
                        name=name),
                    hint=_("Use the https:// URL of POK (https://api.pok.tech) in POK_ACCOUNTS / POK_API_URL."),
                    id="openedx_pok.E003"))
    return found


def _steps(entry):
    """The step paths of one filter's ``OPEN_EDX_FILTERS_CONFIG`` entry as openedx-filters reads it (a dict with a
    pipeline, a list of paths, one path); None when the filter cannot run with it."""
    if not entry:
        return []
    if isinstance(entry, dict):
        # A single path as the pipeline of a dict is read by openedx-filters one character at a time: malformed (the
        # plugin's own settings phases turn it into a list; a settings file loaded after them may bring it back).
        pipeline = entry.get("pipeline") or []
    elif isinstance(entry, (list, str)):
        pipeline = [entry] if isinstance(entry, str) else entry
    else:
        return None
    if isinstance(pipeline, (list, tuple)) and all(isinstance(step, str) for step in pipeline):
        return list(pipeline)
    return None


@_doctor()
def check_pipeline_steps(**kwargs):
    """E004 the plugin's pipeline steps are missing from OPEN_EDX_FILTERS_CONFIG after all settings; E005 that
    setting (or the entry of one of the plugin's filters) has a shape the LMS's filters cannot work with."""
    config = getattr(settings, "OPEN_EDX_FILTERS_CONFIG", {})
    hint = _("Fix OPEN_EDX_FILTERS_CONFIG in the LMS settings: each filter type maps to {\"pipeline\": [step "
             "paths], \"fail_silently\": True}; the LMS's filters cannot work with it as it is.")
    if not isinstance(config, dict):
        return [Error(_("OPEN_EDX_FILTERS_CONFIG is not a dictionary (it is a {kind}): no POK credential is "
                        "requested or shown.").format(kind=type(config).__name__), hint=hint, id="openedx_pok.E005")]
    found = []
    for filter_type, step in PIPELINE_STEPS.items():
        pipeline = _steps(config.get(filter_type))
        if pipeline is None:
            found.append(Error(_("OPEN_EDX_FILTERS_CONFIG['{filter_type}'] is malformed: no POK credential is "
                                 "requested or shown.").format(filter_type=filter_type), hint=hint,
                               id="openedx_pok.E005"))
        elif step not in pipeline and not LEGACY_STEPS & set(pipeline):
            found.append(Error(
                _("The pipeline step {step} is missing from OPEN_EDX_FILTERS_CONFIG['{filter_type}']: no POK "
                  "credential is requested or shown.").format(step=step, filter_type=filter_type),
                hint=_("A settings file loaded after the plugin replaced OPEN_EDX_FILTERS_CONFIG: add the step to "
                       "its pipeline (or merge instead of replacing the key)."), id="openedx_pok.E004"))
    return found


@_doctor()
def check_celery(**kwargs):
    """W001: Celery runs tasks eagerly (POK calls inside LMS requests)."""
    eager = getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False) or getattr(settings, "CELERY_ALWAYS_EAGER", False)
    if eager:
        return [Warning(_("Celery runs tasks eagerly (CELERY_TASK_ALWAYS_EAGER): POK is then called inside LMS "
                          "requests."), hint=_("Set CELERY_TASK_ALWAYS_EAGER = False and run Celery workers."),
                        id="openedx_pok.W001")]
    return []


def _settings_schedule():
    """Task names of the beat schedule in the settings; entries of any other shape schedule nothing."""
    tasks = set()
    for name in ("CELERYBEAT_SCHEDULE", "CELERY_BEAT_SCHEDULE"):
        schedule = getattr(settings, name, None)
        if isinstance(schedule, dict):
            tasks.update(entry.get("task") for entry in schedule.values()
                         if isinstance(entry, dict) and isinstance(entry.get("task"), str))
    return tasks


def _database_schedule(databases):
    """Task names enabled in django_celery_beat's table; None when it is installed but was not read."""
    try:
        from django_celery_beat.models import PeriodicTask  # noqa: PLC0415 - optional: only where it is installed
    except (ImportError, RuntimeError):
        return set()  # not installed: the settings schedule is all there is
    if not _reads(databases, PeriodicTask):
        return None
    try:
        return set(PeriodicTask.objects.filter(enabled=True).values_list("task", flat=True))
    except DatabaseError:
        return set()  # not migrated: nothing is scheduled there


@_doctor(Tags.database)
def check_periodic_reconcile(databases=None, **kwargs):
    """W002: no periodic reconcile is scheduled (credentials left pending after an outage stay pending)."""
    if RECONCILE_TASK in _settings_schedule():
        return []
    scheduled = _database_schedule(databases)
    if scheduled is None or RECONCILE_TASK in scheduled:
        return []  # None: it may be in django_celery_beat's table, which only pok_check reads
    return [Warning(_("No periodic run of the POK reconcile task is configured: credentials left pending or in "
                      "progress after an outage are not sent or refreshed."),
                    hint=_("Add {task} to CELERYBEAT_SCHEDULE (every few minutes), or run 'manage.py lms pok_sync' "
                           "from cron.").format(task=RECONCILE_TASK), id="openedx_pok.W002")]


@_doctor(Tags.database)
def check_mapped_templates(databases=None, **kwargs):
    """W003 a mapped template is missing on POK; W004 a mapping has parameters without a source; W005 bad
    POK_PARAMETER_SOURCES."""
    found = [Warning(message, hint=_("Fix POK_PARAMETER_SOURCES."), id="openedx_pok.W005")
             for message in parameters.settings_problems()]
    if not (_reads(databases, CertificateTemplate) and _reads(databases, PokTemplate)):
        return found
    try:
        mappings = list(CertificateTemplate.objects.filter(enabled=True))
        catalog = {(row.account, row.pok_id): row for row in PokTemplate.objects.all()}
    except DatabaseError:
        return found
    for mapping in mappings:
        template_id = mapping.template_id or settings.POK_DEFAULT_TEMPLATE_ID
        template = catalog.get((mapping.account, template_id))
        if template is None:
            continue  # never synced: the form validates on save, pok_sync_templates fills the catalog
        if template.missing_on_pok:
            found.append(Warning(
                _("Course mapping '{mapping}' uses template {template}, which POK account '{account}' no longer "
                  "has.").format(mapping=mapping, template=template_id, account=mapping.account),
                hint=_("Choose another template in the course mapping admin."), id="openedx_pok.W003"))
            continue
        for parameter in template.parameters:
            spec = (mapping.parameter_sources or {}).get(parameter.get("id"))
            if (spec and parameters.spec_error(spec)) or (
                    not spec and not payload.has_automatic_source(parameter.get("id"), parameter.get("label"))):
                found.append(Warning(
                    _("Course mapping '{mapping}': parameter '{parameter}' of template {template} has no source; its "
                      "credentials are held.").format(mapping=mapping, parameter=parameter.get("id"),
                                                      template=template_id),
                    hint=_("Choose a source for it in the course mapping admin."), id="openedx_pok.W004"))
    return found
