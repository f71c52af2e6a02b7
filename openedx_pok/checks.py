"""
The plugin's doctor: Django system checks (``openedx_pok.E0xx`` errors, ``openedx_pok.W0xx`` warnings).

They run with every ``manage.py`` command (``check``, ``migrate``, ``runserver``) and from ``pok_check``, so bad
configuration shows up at deployment instead of as held credentials. Each message says how to fix it. Checks that
read the database tolerate a missing table (before ``migrate``) by reporting nothing.
"""
import sys

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.db import DatabaseError

from openedx_pok import accounts, parameters, payload
from openedx_pok.exceptions import PokConfigurationError
from openedx_pok.models import CertificateTemplate, PokTemplate
from openedx_pok.settings.common import PIPELINE_STEPS

TAG = "openedx_pok"
RECONCILE_TASK = "openedx_pok.tasks.reconcile_credentials"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
# openedx-pok 21.x/22.x step paths that still work (filters.py aliases them to the pipeline steps).
LEGACY_STEPS = {"openedx_pok.filters.CertificateCreatedFilter", "openedx_pok.filters.CertificateRenderFilter"}


def _used_accounts():
    """Account names that an enabled mapping uses (None when the table does not exist yet)."""
    try:
        return set(CertificateTemplate.objects.filter(enabled=True).values_list("account", flat=True))
    except DatabaseError:
        return None


@register(TAG)
def check_accounts(**kwargs):
    """E001 an account a mapping uses cannot be used (no key, malformed); E002 POK_ACCOUNTS is not a dict;
    E003 an account URL is not https outside DEBUG; W006 a malformed account no mapping uses."""
    found = []
    used = _used_accounts()
    # Before migrate nothing can use an account yet: a broken one is a warning, and it must not claim to be unused.
    unused_hint = ("Fix or remove this POK_ACCOUNTS entry (no course mapping uses it)." if used is not None else
                   "Fix or remove this POK_ACCOUNTS entry (the course mappings cannot be read yet: run migrate).")
    for name, message in accounts.problems():
        if name is None:
            found.append(Error(message, hint="Fix POK_ACCOUNTS in the LMS settings.", id="openedx_pok.E002"))
        elif name in (used or ()):
            found.append(Error(message, hint="Set the account's key in POK_ACCOUNTS (POK_API_KEY for the default "
                                             "account), or move its course mappings to another account.",
                               id="openedx_pok.E001"))
        elif name != accounts.DEFAULT_ACCOUNT:
            found.append(Warning(message, hint=unused_hint, id="openedx_pok.W006"))
    if not settings.DEBUG:
        for name in accounts.account_names():
            try:
                account = accounts.get_account(name)
            except PokConfigurationError:
                continue  # reported above
            # A loopback URL (a local simulator, a sidecar proxy) never carries the key over a network.
            if not account.api_url.lower().startswith("https://") and account.host not in LOOPBACK_HOSTS:
                found.append(Error(
                    f"The API URL of POK account '{name}' is not https: the API key would travel in clear.",
                    hint="Use the https:// URL of POK (https://api.pok.tech) in POK_ACCOUNTS / POK_API_URL.",
                    id="openedx_pok.E003"))
    return found


@register(TAG)
def check_pipeline_steps(**kwargs):
    """E004: the plugin's pipeline steps are missing from OPEN_EDX_FILTERS_CONFIG after all settings."""
    config = getattr(settings, "OPEN_EDX_FILTERS_CONFIG", None) or {}
    found = []
    for filter_type, step in PIPELINE_STEPS.items():
        pipeline = (config.get(filter_type) or {}).get("pipeline") if isinstance(config, dict) else None
        pipeline = [pipeline] if isinstance(pipeline, str) else list(pipeline or [])
        if step not in pipeline and not LEGACY_STEPS & set(pipeline):
            found.append(Error(
                f"The pipeline step {step} is missing from OPEN_EDX_FILTERS_CONFIG['{filter_type}']: no POK "
                "credential is requested or shown.",
                hint="A settings file loaded after the plugin replaced OPEN_EDX_FILTERS_CONFIG: add the step to its "
                     "pipeline (or merge instead of replacing the key).", id="openedx_pok.E004"))
    return found


def _running_tests():
    return "pytest" in sys.modules or (len(sys.argv) > 1 and sys.argv[1] == "test")


@register(TAG)
def check_celery(running_tests=None, **kwargs):
    """W001: Celery runs tasks eagerly outside tests (POK calls inside LMS requests)."""
    running_tests = _running_tests() if running_tests is None else running_tests
    eager = getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False) or getattr(settings, "CELERY_ALWAYS_EAGER", False)
    if eager and not running_tests:
        return [Warning("Celery runs tasks eagerly (CELERY_TASK_ALWAYS_EAGER): POK is then called inside LMS "
                        "requests.", hint="Set CELERY_TASK_ALWAYS_EAGER = False and run Celery workers.",
                        id="openedx_pok.W001")]
    return []


def _scheduled_tasks():
    tasks = set()
    for name in ("CELERYBEAT_SCHEDULE", "CELERY_BEAT_SCHEDULE"):
        schedule = getattr(settings, name, None) or {}
        if isinstance(schedule, dict):
            tasks.update(entry.get("task") for entry in schedule.values() if isinstance(entry, dict))
    try:
        from django_celery_beat.models import PeriodicTask  # noqa: PLC0415 - optional: only where it is installed

        tasks.update(PeriodicTask.objects.filter(enabled=True).values_list("task", flat=True))
    except (ImportError, RuntimeError, DatabaseError):
        pass  # not installed (or not migrated): the settings schedule is all there is
    return tasks


@register(TAG)
def check_periodic_reconcile(**kwargs):
    """W002: no periodic reconcile is scheduled (credentials left pending after an outage stay pending)."""
    if RECONCILE_TASK in _scheduled_tasks():
        return []
    return [Warning("No periodic run of the POK reconcile task is configured: credentials left pending or in "
                    "progress after an outage are not sent or refreshed.",
                    hint=f"Add {RECONCILE_TASK} to CELERYBEAT_SCHEDULE (every few minutes), or run "
                         "'manage.py lms pok_sync' from cron.", id="openedx_pok.W002")]


@register(TAG)
def check_mapped_templates(**kwargs):
    """W003 a mapped template is missing on POK; W004 a mapping has parameters without a source; W005 bad
    POK_PARAMETER_SOURCES."""
    found = [Warning(message, hint="Fix POK_PARAMETER_SOURCES.", id="openedx_pok.W005")
             for message in parameters.settings_problems()]
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
                f"Course mapping '{mapping}' uses template {template_id}, which POK account '{mapping.account}' no "
                "longer has.", hint="Choose another template in the course mapping admin.", id="openedx_pok.W003"))
            continue
        for parameter in template.parameters:
            spec = (mapping.parameter_sources or {}).get(parameter.get("id"))
            if (spec and parameters.spec_error(spec)) or (
                    not spec and not payload.has_automatic_source(parameter.get("id"), parameter.get("label"))):
                found.append(Warning(
                    f"Course mapping '{mapping}': parameter '{parameter.get('id')}' of template {template_id} has no "
                    "source; its credentials are held.",
                    hint="Choose a source for it in the course mapping admin.", id="openedx_pok.W004"))
    return found
