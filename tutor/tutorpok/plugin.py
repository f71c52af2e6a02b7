"""
Tutor hooks of the ``pok`` plugin: configuration, the image install, the LMS settings and the reconcile beat.

What each piece is for:

- ``POK_*`` configuration keys (``tutor config save --set POK_API_KEY=...``), rendered into the LMS/CMS settings;
- ``openedx-dockerfile-post-python-requirements``: installs ``POK_PIP_REQUIREMENT`` into the openedx image;
- ``openedx-lms-common-settings``: merges the plugin's pipeline steps into ``OPEN_EDX_FILTERS_CONFIG`` (Tutor applies
  its patches after the plugins' own production settings, so assigning the key would drop other plugins' steps) and
  schedules ``openedx_pok.tasks.reconcile_credentials``;
- ``local-docker-compose-prod-services`` / ``k8s-deployments``: a ``pok-beat`` Celery beat service, because Tutor 22
  runs Celery workers but no beat. It sits next to Tutor's own ``lms-worker`` (``tutor local`` and Kubernetes; in
  ``tutor dev`` there is no worker to run what a beat sends).

The patch texts live in ``tutorpok/patches/<patch name>`` and are Jinja templates rendered by Tutor.
"""
from importlib import resources

from tutor import hooks

from .__about__ import __version__

PATCHES = resources.files("tutorpok") / "patches"

# Every key is prefixed with the plugin name (Tutor's rule) and matches the openedx-pok Django setting it feeds.
CONFIG_DEFAULTS = {
    "VERSION": __version__,
    # What pip installs into the openedx image: a PyPI requirement, or e.g. "git+https://...@main" for a fork.
    "PIP_REQUIREMENT": "openedx-pok=={{ POK_VERSION }}",
    # POK account. The sandbox is https://api.credentity.xyz.
    "API_URL": "https://api.pok.tech",
    "API_KEY": "",
    # Template and page for course mappings that leave them empty (empty: not set here, the LMS defaults apply).
    "DEFAULT_TEMPLATE_ID": "",
    "DEFAULT_PAGE_ID": "",
    # Seconds between two runs of the reconcile task (credentials in progress, retries, interrupted work).
    "RECONCILE_INTERVAL": 300,
    # False: no pok-beat service (for a platform that already runs its own Celery beat: the schedule is still set).
    "RUN_BEAT": True,
}

hooks.Filters.CONFIG_DEFAULTS.add_items([(f"POK_{key}", value) for key, value in CONFIG_DEFAULTS.items()])

hooks.Filters.ENV_PATCHES.add_items(
    [(patch.name, patch.read_text(encoding="utf-8")) for patch in sorted(PATCHES.iterdir(), key=lambda p: p.name)
     if patch.is_file() and not patch.name.startswith(".")]
)
