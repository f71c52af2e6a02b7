"""
Default settings of the plugin, applied by the platform while it builds its own settings.

The ``common`` phase runs part-way through the LMS's and Studio's ``common.py``, where some settings are still
``Derived`` placeholders (``LOCALE_PATHS``, ``ROOT_URLCONF`` ...) computed only at the end; it also runs in Tutor's
image build, where no ``production`` phase follows. So this module touches nothing but its own ``POK_*`` names and
``OPEN_EDX_FILTERS_CONFIG``, and never evaluates or iterates a value it did not set: the translations need no
setting at all (they live in ``openedx_pok/locale``, where Django finds an installed app's catalogs).

Every ``POK_*`` setting gets a default here so the rest of the plugin can read ``settings.POK_*`` without guards.
Values already present (set by a settings module loaded earlier) are kept. Each default is documented where it is
defined, in the Open edX annotation format (setting annotations; OEP-17 toggle annotations for the booleans) that
the platform's settings documentation and ``make quality`` read. Values are not validated here (a settings phase
must never fail the platform's start): ``pok_check`` and ``manage.py check --deploy`` report bad ones.

The pipeline steps (issuance, the certificate page, the course team's instructor dashboard tab) are merged into
``OPEN_EDX_FILTERS_CONFIG``; see :func:`register_pipeline_steps`.
"""
from openedx_filters.learning.filters import (
    CertificateCreationRequested,
    CertificateRenderStarted,
    InstructorDashboardRenderStarted,
)

CREATION_FILTER = CertificateCreationRequested.filter_type
RENDER_FILTER = CertificateRenderStarted.filter_type
# The instructor dashboard: the legacy page's filter (every release) and the instructor dashboard app's tabs filter
# (InstructorDashboardTabsRequested, openedx-filters 3.4.0 and later: Verawood and master; named by its type, as
# Ulmo's openedx-filters 2.1.0 has no such class and its LMS never runs it).
LEGACY_DASHBOARD_FILTER = InstructorDashboardRenderStarted.filter_type
DASHBOARD_TABS_FILTER = "org.openedx.learning.instructor.dashboard.tabs.requested.v1"

#: The steps that issue and show credentials: ``pok_check`` reports them missing (openedx_pok.E004).
PIPELINE_STEPS = {
    CREATION_FILTER: "openedx_pok.pipeline.RequestPokCredential",
    RENDER_FILTER: "openedx_pok.pipeline.RenderPokCredential",
}
#: The course team's POK tab in the instructor dashboard (``openedx_pok.course_team``): merged the same way; without
#: them credentials are issued and shown all the same, only the tab is missing.
COURSE_TEAM_STEPS = {
    LEGACY_DASHBOARD_FILTER: "openedx_pok.course_team.dashboard.AddPokSection",
    DASHBOARD_TABS_FILTER: "openedx_pok.course_team.dashboard.AddPokTab",
}

DEFAULTS = {
    # Every entry carries its Open edX annotation (OEP-17 toggles for the booleans, setting annotations for the
    # rest); ``make quality`` lints them with code_annotations (setting_annotations.yaml, toggle_annotations.yaml).
    #
    # .. setting_name: POK_API_URL
    # .. setting_default: "https://api.pok.tech"
    # .. setting_description: Base URL of the POK API that the plugin's Celery tasks call (never a page view). The
    #   POK sandbox is "https://api.credentity.xyz". Its host is always allowed for credential images (see
    #   POK_IMAGE_HOSTS).
    "POK_API_URL": "https://api.pok.tech",
    # .. setting_name: POK_API_KEY
    # .. setting_default: ""
    # .. setting_description: API key of the POK organization that issues the credentials, sent as
    #   "Authorization: ApiKey <key>". Empty means POK is not configured: issuance is held with a reason for staff.
    # .. setting_warning: A secret. Keep it in the operator's secret configuration (e.g. Tutor's config.yml or a
    #   vault), never in a committed settings file; the plugin never logs it.
    "POK_API_KEY": "",
    # .. setting_name: POK_ACCOUNTS
    # .. setting_default: {}
    # .. setting_description: Further POK organizations this LMS issues with, by account name:
    #   {"name": {"url": "https://api.pok.tech", "key": "<API key>"}}. A course or organization mapping chooses its
    #   account by name; issuance, refreshes, images and previews then use that account's URL and key. The account
    #   "default" is POK_API_URL / POK_API_KEY unless this setting defines it. A malformed entry (not a dictionary,
    #   no url or key, a URL that is not absolute) holds the credentials of the mappings that use it with a reason,
    #   and ``manage.py lms pok_check`` reports it.
    # .. setting_warning: Holds secrets. Keep it in the operator's secret configuration; the plugin never stores the
    #   keys in the database nor shows or logs them.
    "POK_ACCOUNTS": {},
    # .. setting_name: POK_PARAMETER_SOURCES
    # .. setting_default: {}
    # .. setting_description: An operator's own sources of template parameter values, offered in the course
    #   mapping admin as "custom.<name>": {"name": "dotted.path.to.function"} or {"name": {"function": "dotted.path",
    #   "label": "Shown in the admin"}}. The function gets the issuance context and returns the text; an empty
    #   value or an exception holds the credential with a reason naming the parameter and the source.
    "POK_PARAMETER_SOURCES": {},
    # .. setting_name: POK_CATALOG_LIST_LIMIT
    # .. setting_default: 500
    # .. setting_description: How many templates and pages the catalog sync (pok_sync_templates, the admin action,
    #   the hourly run from the reconcile task) asks POK for per account. POK has no pagination: a list that
    #   reaches this limit is reported as possibly truncated, and nothing it may have cut off is marked missing.
    "POK_CATALOG_LIST_LIMIT": 500,
    # .. setting_name: POK_CATALOG_SYNC_SECONDS
    # .. setting_default: 3600
    # .. setting_description: The periodic reconcile task syncs the POK templates and pages of every account at
    #   most once per this many seconds (0 turns that off; the command and the admin action still work).
    "POK_CATALOG_SYNC_SECONDS": 3600,
    # .. setting_name: POK_CONNECT_TIMEOUT
    # .. setting_default: 3.05
    # .. setting_description: Seconds to wait for a TCP connection to POK, for every POK call. Slightly above a TCP
    #   retransmit window; only Celery tasks call POK, so this never slows a page.
    "POK_CONNECT_TIMEOUT": 3.05,
    # .. setting_name: POK_TIMEOUT
    # .. setting_default: 10
    # .. setting_description: Seconds to wait for POK's answer (read timeout) of every POK call, and for a credential
    #   image download. Long enough for POK's slowest normal answer (credential creation), short enough that a
    #   hung connection does not hold a Celery worker.
    "POK_TIMEOUT": 10,
    # .. setting_name: POK_DEFAULT_TEMPLATE_ID
    # .. setting_default: ""
    # .. setting_description: POK template used by course mappings that leave their template id empty. Empty here
    #   and on the mapping holds issuance with a reason for staff.
    "POK_DEFAULT_TEMPLATE_ID": "",
    # .. setting_name: POK_DEFAULT_PAGE_ID
    # .. setting_default: ""
    # .. setting_description: POK page that shows the credential, used by course mappings that leave their page id
    #   empty. Empty sends no page, so POK shows the credential on its default page.
    "POK_DEFAULT_PAGE_ID": "",
    # .. setting_name: POK_DEFAULT_EMISSION_TYPE
    # .. setting_default: "pok"
    # .. setting_description: Emission type a new course mapping starts with: "pok" (free) or "blockchain" (uses
    #   the POK organization's credits). It is the initial value in Django admin and the value of a mapping created
    #   without one; existing mappings keep theirs. Any other value falls back to "pok" (see
    #   openedx_pok.models.default_emission_type).
    "POK_DEFAULT_EMISSION_TYPE": "pok",
    # .. setting_name: POK_DATE_FORMAT
    # .. setting_default: "dd/MM/yyyy"
    # .. setting_description: How POK prints the emission date on the credential: "dd/MM/yyyy" or "MM/dd/yyyy".
    "POK_DATE_FORMAT": "dd/MM/yyyy",
    # .. toggle_name: POK_SKIP_ACCEPTANCE
    # .. toggle_implementation: DjangoSetting
    # .. toggle_default: True
    # .. toggle_description: True emits a credential as soon as POK accepts it. False asks the learner to accept the
    #   credential by email first (POK state waitingForApproval); until then the certificate page shows the status
    #   page.
    # .. toggle_use_cases: open_edx
    # .. toggle_creation_date: 2026-11-23
    "POK_SKIP_ACCEPTANCE": True,
    # .. setting_name: POK_CREDENTIAL_TAGS
    # .. setting_default: []
    # .. setting_description: Extra tags added to every credential, e.g. ["openedx"]. The course key is always
    #   added as a tag.
    "POK_CREDENTIAL_TAGS": [],
    # .. setting_name: POK_MAX_RETRIES
    # .. setting_default: 8
    # .. setting_description: How many times a transient POK failure (429, 5xx, network) is retried before the
    #   credential is marked failed; the reconcile run still retries failures marked retryable.
    "POK_MAX_RETRIES": 8,
    # .. setting_name: POK_RETRY_BACKOFF_BASE
    # .. setting_default: 30
    # .. setting_description: Seconds of the first retry's backoff ceiling; it doubles with every try (exponential
    #   backoff with full jitter) up to POK_RETRY_BACKOFF_MAX.
    "POK_RETRY_BACKOFF_BASE": 30,
    # .. setting_name: POK_RETRY_BACKOFF_MAX
    # .. setting_default: 3600
    # .. setting_description: Longest wait in seconds between two retries, also the cap of a Retry-After header
    #   sent by POK.
    "POK_RETRY_BACKOFF_MAX": 3600,
    # .. toggle_name: POK_RETRY_AMBIGUOUS
    # .. toggle_implementation: DjangoSetting
    # .. toggle_default: True
    # .. toggle_description: What happens to a POST that may have reached POK without an answer (timeout after
    #   sending, or a worker that died mid-request). True sends it again with the same idempotency key; False
    #   fails the credential so staff check POK before retrying. Ambiguous attempts are counted either way.
    # .. toggle_use_cases: open_edx
    # .. toggle_creation_date: 2026-11-23
    "POK_RETRY_AMBIGUOUS": True,
    # .. setting_name: POK_CERTIFICATE_WAIT_RETRIES
    # .. setting_default: 20
    # .. setting_description: How many times the issuance task waits for the Open edX certificate to become
    #   downloadable before giving up (tries, POK_CERTIFICATE_WAIT_DELAY seconds apart).
    "POK_CERTIFICATE_WAIT_RETRIES": 20,
    # .. setting_name: POK_CERTIFICATE_WAIT_DELAY
    # .. setting_default: 15
    # .. setting_description: Seconds between two checks of whether the Open edX certificate is downloadable.
    "POK_CERTIFICATE_WAIT_DELAY": 15,
    # .. setting_name: POK_SYNC_BATCH_SIZE
    # .. setting_default: 200
    # .. setting_description: How many credentials one reconcile run (the pok_sync command and the periodic task)
    #   refreshes from POK.
    "POK_SYNC_BATCH_SIZE": 200,
    # .. setting_name: POK_TEMPLATE_CACHE_TIMEOUT
    # .. setting_default: 3600
    # .. setting_description: Seconds that template definitions fetched from POK are kept in the Django cache.
    "POK_TEMPLATE_CACHE_TIMEOUT": 3600,
    # .. setting_name: POK_CELERY_QUEUE
    # .. setting_default: None
    # .. setting_description: Celery queue the plugin's tasks are sent to; None uses the default queue. A worker
    #   must consume the queue named here.
    "POK_CELERY_QUEUE": None,
    # .. setting_name: POK_CERTIFICATE_PAGE
    # .. setting_default: "redirect"
    # .. setting_description: What the certificate page of an emitted credential does: "redirect" to the
    #   credential's POK page, or "embed" the credential image in an LMS page.
    "POK_CERTIFICATE_PAGE": "redirect",
    # .. toggle_name: POK_FALLBACK_TO_OPEN_EDX_CERTIFICATE
    # .. toggle_implementation: DjangoSetting
    # .. toggle_default: False
    # .. toggle_description: True shows the standard Open edX certificate while a learner's credential is held or
    #   failed; False shows a notice that the credential is delayed.
    # .. toggle_use_cases: open_edx
    # .. toggle_creation_date: 2026-11-23
    "POK_FALLBACK_TO_OPEN_EDX_CERTIFICATE": False,
    # .. setting_name: POK_STATUS_POLL_SECONDS
    # .. setting_default: 5
    # .. setting_description: How often, in seconds, the status page asks whether the credential is ready.
    "POK_STATUS_POLL_SECONDS": 5,
    # .. setting_name: POK_REFRESH_ON_VIEW_SECONDS
    # .. setting_default: 60
    # .. setting_description: Opening the status page schedules a refresh from POK at most once per this many
    #   seconds and credential; the page itself never calls POK.
    "POK_REFRESH_ON_VIEW_SECONDS": 60,
    # .. setting_name: POK_SHARE_LINKS
    # .. setting_default: ["linkedin"]
    # .. setting_description: Share links offered for an emitted credential, any of "linkedin", "x" and
    #   "facebook". A site configuration value of the same name wins for its site.
    "POK_SHARE_LINKS": ["linkedin"],
    # .. setting_name: POK_LINKEDIN_ORGANIZATION_ID
    # .. setting_default: ""
    # .. setting_description: LinkedIn organization id used by the add-to-profile link (better than the
    #   organization name when known). A site configuration value of the same name wins for its site.
    "POK_LINKEDIN_ORGANIZATION_ID": "",
    # .. setting_name: POK_IMAGE_HOSTS
    # .. setting_default: ["pok.tech", "credentity.xyz"]
    # .. setting_description: Hosts the plugin may download credential images from; the host of POK_API_URL is
    #   always allowed.
    "POK_IMAGE_HOSTS": ["pok.tech", "credentity.xyz"],
    # .. setting_name: POK_IMAGE_CACHE_TIMEOUT
    # .. setting_default: 3600
    # .. setting_description: Seconds that credential image locations and staff template previews are kept in the
    #   Django cache.
    "POK_IMAGE_CACHE_TIMEOUT": 3600,
    # .. setting_name: POK_COMPAT_BACKEND
    # .. setting_default: "openedx_pok.compat.PlatformBackend"
    # .. setting_description: Dotted path of the class through which the plugin reads the platform (courses,
    #   certificates, preferences, site configuration, organizations); see openedx_pok/compat.py. The default reads
    #   the Open edX LMS; the test suite, the demo and the benchmarks use "lms_sandbox.compat.SandboxBackend".
    # .. setting_warning: Leave the default in an Open edX deployment.
    "POK_COMPAT_BACKEND": "openedx_pok.compat.PlatformBackend",
    # .. setting_name: POK_VIEW_URL_HOSTS
    # .. setting_default: ["pok.tech", "credentity.xyz"]
    # .. setting_description: Hosts (and their subdomains) a learner's certificate page may redirect to: POK's own
    #   credential pages plus any custom page domain configured on POK. A credential whose view URL is on another
    #   host is not shown; staff see why in its reason.
    "POK_VIEW_URL_HOSTS": ["pok.tech", "credentity.xyz"],
    # .. setting_name: POK_MAX_RESPONSE_BYTES
    # .. setting_default: 1048576
    # .. setting_description: Largest POK API answer read, in bytes after decompression; a larger one is refused.
    "POK_MAX_RESPONSE_BYTES": 1024 * 1024,
    # .. setting_name: POK_PUBLISH_TIMEOUT
    # .. setting_default: 2
    # .. setting_description: Seconds an LMS request may wait for the Celery broker when it schedules a task; a
    #   broker that does not answer in time is skipped (the reconcile run sends the credential later).
    "POK_PUBLISH_TIMEOUT": 2,
}


def _with_steps(config):
    """
    ``config`` (the value of ``OPEN_EDX_FILTERS_CONFIG``) with the plugin's steps merged in, as a new dict.

    Keeps every other plugin's steps in order and an existing ``fail_silently``, lists each step once, and accepts
    every filter entry openedx-filters accepts (a dict, a list of step paths, a single path). A value of any other
    shape is returned as it is: the LMS cannot run filters with it either, and ``pok_check`` says so.
    """
    if config is None:
        config = {}
    if not isinstance(config, dict):
        return config
    merged = dict(config)
    for filter_type, step in {**PIPELINE_STEPS, **COURSE_TEAM_STEPS}.items():
        entry = merged.get(filter_type)
        if isinstance(entry, (list, tuple, str)):
            entry = {"pipeline": entry}
        elif not entry:
            entry = {}
        elif not isinstance(entry, dict):
            continue  # reported by pok_check, left as the operator wrote it
        pipeline = entry.get("pipeline") or []
        if isinstance(pipeline, str):
            pipeline = [pipeline]
        if not isinstance(pipeline, (list, tuple)):
            continue
        entry, pipeline = dict(entry), list(pipeline)
        if step not in pipeline:
            pipeline.append(step)
        entry["pipeline"] = pipeline
        entry.setdefault("fail_silently", True)
        merged[filter_type] = entry
    return merged


def register_pipeline_steps(settings):
    """
    Merge the plugin's pipeline steps into ``settings.OPEN_EDX_FILTERS_CONFIG`` (see :func:`_with_steps`).

    Runs in both the ``common`` and the ``production`` phase because the operator's YAML replaces the whole key in
    between; idempotent. The dict is rebuilt rather than mutated so a configuration shared with another settings
    module is not changed behind its back. A value the platform computes later (a ``Derived`` placeholder, or a
    function of the settings on releases before Teak) is not evaluated now: it is wrapped so that the steps are
    merged into its value when the platform derives it.
    """
    current = getattr(settings, "OPEN_EDX_FILTERS_CONFIG", None)
    calculate = getattr(current, "calculate_value", None)
    if callable(calculate):
        settings.OPEN_EDX_FILTERS_CONFIG = type(current)(lambda platform: _with_steps(calculate(platform)))
    elif callable(current):
        settings.OPEN_EDX_FILTERS_CONFIG = lambda platform: _with_steps(current(platform))
    else:
        settings.OPEN_EDX_FILTERS_CONFIG = _with_steps(current)


# openedx-pok 21.x/22.x names whose value becomes the default of the new name when that one is empty.
#
# .. setting_name: POK_TEMPLATE_ID
# .. setting_default: None (not set)
# .. setting_description: The openedx-pok 21.x/22.x name of POK_DEFAULT_TEMPLATE_ID. When it is set and
#   POK_DEFAULT_TEMPLATE_ID is empty, its value becomes POK_DEFAULT_TEMPLATE_ID, so an upgrade keeps issuing.
# .. setting_warning: Deprecated: rename it to POK_DEFAULT_TEMPLATE_ID.

# .. setting_name: POK_PAGE_ID
# .. setting_default: None (not set)
# .. setting_description: The openedx-pok 21.x/22.x name of POK_DEFAULT_PAGE_ID. When it is set and
#   POK_DEFAULT_PAGE_ID is empty, its value becomes POK_DEFAULT_PAGE_ID.
# .. setting_warning: Deprecated: rename it to POK_DEFAULT_PAGE_ID.
LEGACY_DEFAULTS = {"POK_DEFAULT_TEMPLATE_ID": "POK_TEMPLATE_ID", "POK_DEFAULT_PAGE_ID": "POK_PAGE_ID"}


def apply_legacy_defaults(settings):
    """
    Let an upgraded operator's ``POK_TEMPLATE_ID`` / ``POK_PAGE_ID`` stand in for the new, empty default names.

    Runs in every phase (the YAML, loaded before ``production``, is where those names live) so every reader of the
    new names sees them; a non-empty new name always wins.
    """
    for name, legacy_name in LEGACY_DEFAULTS.items():
        legacy_value = getattr(settings, legacy_name, None)
        if legacy_value and not getattr(settings, name, None):
            setattr(settings, name, legacy_value)


def plugin_settings(settings):
    """Apply the plugin defaults and register its pipeline steps."""
    for name, value in DEFAULTS.items():
        if not hasattr(settings, name):
            setattr(settings, name, value)
    apply_legacy_defaults(settings)
    register_pipeline_steps(settings)
