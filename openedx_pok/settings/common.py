"""
Default settings of the plugin, applied by the platform before the operator's YAML configuration.

Every ``POK_*`` setting gets a default here so the rest of the plugin can read ``settings.POK_*`` without guards.
Values already present (set by a settings module loaded earlier) are kept. The pipeline steps are merged into
``OPEN_EDX_FILTERS_CONFIG``; see :func:`register_pipeline_steps`. The plugin's translation catalogs
(``conf/locale``) are added to ``LOCALE_PATHS``; see :func:`register_locale_path`.
"""
import os

CREATION_FILTER = "org.openedx.learning.certificate.creation.requested.v1"
RENDER_FILTER = "org.openedx.learning.certificate.render.started.v1"

# The plugin's translation catalogs: conf/locale/<language>/LC_MESSAGES/django.po/.mo (Open edX layout).
LOCALE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "conf", "locale")

PIPELINE_STEPS = {
    CREATION_FILTER: "openedx_pok.pipeline.RequestPokCredential",
    RENDER_FILTER: "openedx_pok.pipeline.RenderPokCredential",
}

DEFAULTS = {
    # Where POK lives and how to authenticate. Sandbox: https://api.credentity.xyz
    "POK_API_URL": "https://api.pok.tech",
    "POK_API_KEY": "",
    # Connect and read timeouts (seconds) of every POK call. Only Celery tasks call POK, never a page view.
    "POK_CONNECT_TIMEOUT": 3.05,
    "POK_TIMEOUT": 10,
    # Used by course mappings that leave these fields empty.
    "POK_DEFAULT_TEMPLATE_ID": "",
    "POK_DEFAULT_PAGE_ID": "",
    "POK_DEFAULT_EMISSION_TYPE": "pok",
    # dd/MM/yyyy or MM/dd/yyyy: how POK prints the emission date on the credential.
    "POK_DATE_FORMAT": "dd/MM/yyyy",
    # False asks the learner to accept the credential by email before it is emitted (state waitingForApproval).
    "POK_SKIP_ACCEPTANCE": True,
    # Extra tags added to every credential, e.g. ["openedx"].
    "POK_CREDENTIAL_TAGS": [],
    # Retry policy for transient POK failures (429, 5xx, network): exponential backoff with full jitter.
    "POK_MAX_RETRIES": 8,
    "POK_RETRY_BACKOFF_BASE": 30,
    "POK_RETRY_BACKOFF_MAX": 3600,
    # Whether a POST that may have reached POK (timeout after sending) is retried automatically.
    "POK_RETRY_AMBIGUOUS": True,
    # How long to wait for the Open edX certificate to become downloadable before giving up (tries x delay).
    "POK_CERTIFICATE_WAIT_RETRIES": 20,
    "POK_CERTIFICATE_WAIT_DELAY": 15,
    # Reconcile (pok_sync and the periodic task): how many credentials one run refreshes.
    "POK_SYNC_BATCH_SIZE": 200,
    # How long template definitions fetched from POK are cached (seconds).
    "POK_TEMPLATE_CACHE_TIMEOUT": 3600,
    # Celery queue for the plugin's tasks; None uses the default queue.
    "POK_CELERY_QUEUE": None,
    # Certificate page of an emitted credential: "redirect" to POK's page, or "embed" the credential image.
    "POK_CERTIFICATE_PAGE": "redirect",
    # True shows the standard Open edX certificate while a credential is held or failed (instead of a notice).
    "POK_FALLBACK_TO_OPEN_EDX_CERTIFICATE": False,
    # How often the status page asks whether the credential is ready (seconds).
    "POK_STATUS_POLL_SECONDS": 5,
    # Opening the status page asks POK for news at most this often per credential (seconds).
    "POK_REFRESH_ON_VIEW_SECONDS": 60,
    # Share links offered for an emitted credential ("linkedin", "x", "facebook"); per site via site configuration.
    "POK_SHARE_LINKS": ["linkedin"],
    # LinkedIn organization id for add-to-profile (better than the organization name when known).
    "POK_LINKEDIN_ORGANIZATION_ID": "",
    # Hosts the plugin may download credential images from (the API host is always allowed).
    "POK_IMAGE_HOSTS": ["pok.tech", "credentity.xyz"],
    # How long credential image locations and staff previews are cached (seconds).
    "POK_IMAGE_CACHE_TIMEOUT": 3600,
}


def register_pipeline_steps(settings):
    """
    Merge the plugin's pipeline steps into ``settings.OPEN_EDX_FILTERS_CONFIG``.

    Runs in both the ``common`` and the ``production`` phase because the operator's YAML replaces the whole key in
    between. It is idempotent, keeps every other plugin's steps in order, accepts a single string as pipeline and
    never changes an existing ``fail_silently``. The dict is rebuilt rather than mutated so a configuration shared
    with another settings module is not changed behind its back.
    """
    current = getattr(settings, "OPEN_EDX_FILTERS_CONFIG", None) or {}
    merged = dict(current)
    for filter_type, step in PIPELINE_STEPS.items():
        filter_config = dict(merged.get(filter_type) or {})
        pipeline = filter_config.get("pipeline") or []
        if isinstance(pipeline, str):
            pipeline = [pipeline]
        pipeline = list(pipeline)
        if step not in pipeline:
            pipeline.append(step)
        filter_config["pipeline"] = pipeline
        filter_config.setdefault("fail_silently", True)
        merged[filter_type] = filter_config
    settings.OPEN_EDX_FILTERS_CONFIG = merged


def register_locale_path(settings):
    """
    Append the plugin's ``conf/locale`` to ``settings.LOCALE_PATHS`` so Django loads its translations.

    Django only looks for an app's catalogs in ``<app>/locale``; Open edX keeps them in ``conf/locale``. Idempotent,
    keeps the platform's own paths first (they win for a message both translate) and keeps a tuple a tuple.
    """
    current = getattr(settings, "LOCALE_PATHS", None)
    paths = list(current or [])
    if not any(os.path.normpath(os.fspath(path)) == LOCALE_DIR for path in paths):
        paths.append(LOCALE_DIR)
    settings.LOCALE_PATHS = tuple(paths) if isinstance(current, tuple) else paths


def plugin_settings(settings):
    """Apply the plugin defaults, register its pipeline steps and its translations."""
    for name, value in DEFAULTS.items():
        if not hasattr(settings, name):
            setattr(settings, name, value)
    register_pipeline_steps(settings)
    register_locale_path(settings)
