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
  ``tutor dev`` there is no worker to run what a beat sends);
- with tutor-mfe: two learner widgets (``tutorpok/mfe/pok_widgets.js``) inserted into the Learning MFE's progress page
  and the learner dashboard's side panel through tutor-mfe's ``PLUGIN_SLOTS`` and its ``mfe-env-config-buildtime-*``
  patches (docs/decisions/0009-mfe-widgets.rst); ``POK_MFE_WIDGETS: false`` leaves the MFEs untouched;
- an in-place upgrade from the earlier tutor-contrib-pok (21.x/22.x, same module and plugin name) leaves its keys in
  config.yml: its ``POK_TEMPLATE_ID`` stands in for an empty ``POK_DEFAULT_TEMPLATE_ID`` (``openedx-common-settings``)
  and a notice, printed whenever Tutor loads the configuration, says what to rename or remove.

The patch texts live in ``tutorpok/patches/<patch name>`` and are Jinja templates rendered by Tutor.
"""
import json
import re
import shlex
from importlib import resources

from tutor import fmt, hooks

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
    # False: no credential widgets in the MFEs (progress page, learner dashboard); needs `tutor images build mfe`.
    "MFE_WIDGETS": True,
}

hooks.Filters.CONFIG_DEFAULTS.add_items([(f"POK_{key}", value) for key, value in CONFIG_DEFAULTS.items()])

hooks.Filters.ENV_PATCHES.add_items(
    [(patch.name, patch.read_text(encoding="utf-8")) for patch in sorted(PATCHES.iterdir(), key=lambda p: p.name)
     if patch.is_file() and not patch.name.startswith(".")]
)


# --- the MFE widgets (tutor-mfe) ---------------------------------------------------------------------------------

WIDGETS_SOURCE = resources.files("tutorpok") / "mfe" / "pok_widgets.js"
#: (MFE, slot, widget id, component of pok_widgets.js): where the widgets go, next to the slot's own content.
MFE_SLOTS = (
    ("learning", "org.openedx.frontend.learning.progress_certificate_status.v1", "pok_credential_status",
     "PokWidgets.CredentialStatus"),
    ("learner-dashboard", "org.openedx.frontend.learner_dashboard.widget_sidebar.v1", "pok_my_credentials",
     "PokWidgets.MyCredentials"),
)


def widgets_patches(source):
    """
    (imports, definitions) of the widgets' source for tutor-mfe's ``mfe-env-config-buildtime-imports`` and
    ``mfe-env-config-buildtime-definitions`` patches: kept as they are (Jinja ``raw``: the JavaScript is not a
    template) and rendered only while ``POK_MFE_WIDGETS`` is on.
    """
    lines = source.splitlines()
    imports = [line for line in lines if line.startswith("import ")]
    definitions = [line for line in lines if not line.startswith("import ") and not line.startswith("//")]

    def when_on(text):
        return "{%- if POK_MFE_WIDGETS %}\n{% raw %}" + text.strip("\n") + "\n{% endraw %}\n{%- endif %}"

    return when_on("\n".join(imports)), when_on("// openedx-pok: learner credential widgets\n" + "\n".join(definitions))


def slot_config(widget_id, component):
    """One ``PLUGIN_SLOTS`` entry: insert the widget beside the slot's default content (never hide or replace it)."""
    return (f"{{ op: PLUGIN_OPERATIONS.Insert, widget: {{ id: '{widget_id}', type: DIRECT_PLUGIN, priority: 60, "
            f"RenderWidget: {component} }} }}")


_IMPORTS, _DEFINITIONS = widgets_patches(WIDGETS_SOURCE.read_text(encoding="utf-8"))
hooks.Filters.ENV_PATCHES.add_items([("mfe-env-config-buildtime-imports", _IMPORTS),
                                     ("mfe-env-config-buildtime-definitions", _DEFINITIONS)])

# PLUGIN_SLOTS items are inserted into env.config.jsx as they are, not rendered with the configuration, so the
# setting is read when Tutor loads the configuration it renders the environment from (CONFIG_LOADED, which
# `config save`, `local launch`, `images build`... run right before rendering).
_mfe_widgets = {"on": True}


@hooks.Actions.CONFIG_LOADED.add()
def _read_mfe_widgets(config):
    _mfe_widgets["on"] = bool(config.get("POK_MFE_WIDGETS", True))


try:
    from tutormfe.hooks import PLUGIN_SLOTS
except ImportError:  # no tutor-mfe: no MFEs to put widgets in, and the patches above land nowhere
    PLUGIN_SLOTS = None

if PLUGIN_SLOTS is not None:
    @PLUGIN_SLOTS.add()
    def _add_widget_slots(items):
        if _mfe_widgets["on"]:
            items += [(mfe, slot, slot_config(widget_id, component)) for mfe, slot, widget_id, component in MFE_SLOTS]
        return items


def python_str(value):
    """
    ``value`` as a Python string literal, for the settings files (Jinja filter ``pok_python_str``).

    A JSON string without ``ensure_ascii`` is also a Python literal of the same text, quotes and backslashes included.
    ``tojson`` alone would write ``12345`` or ``true`` for a value YAML reads as a number or a boolean (``--set
    POK_API_KEY=12345``), and escape non-BMP characters as surrogate pairs that Python does not join.
    """
    return json.dumps(str(value), ensure_ascii=False)


hooks.Filters.ENV_TEMPLATE_FILTERS.add_item(("pok_python_str", python_str))

# The earlier tutor-contrib-pok's keys that do nothing here (POK_PLUGIN_PIP_REQUIREMENT was in its README only).
EARLIER_IGNORED_KEYS = ("POK_PLUGIN_VERSION", "POK_PLUGIN_PIP_REQUIREMENT")
# openedx-pok releases before 23 are the earlier backend, which has none of the pipeline steps these settings name.
FIRST_VERSION = 23


def earlier_plugin_notice(config):
    """What the earlier tutor-contrib-pok's keys in ``config`` become, and the command to clean them up ("" if none)."""
    lines, options = [], []
    if "POK_TEMPLATE_ID" in config:
        template = config["POK_TEMPLATE_ID"]
        # The same rule as openedx-common-settings: a non-empty POK_DEFAULT_TEMPLATE_ID wins.
        if template and not config["POK_DEFAULT_TEMPLATE_ID"]:
            lines.append(f"POK_TEMPLATE_ID={template} is used as POK_DEFAULT_TEMPLATE_ID "
                         "(mappings without a template).")
            options += ["--set", f"POK_DEFAULT_TEMPLATE_ID={template}"]
        else:
            lines.append("POK_TEMPLATE_ID is ignored" + (": POK_DEFAULT_TEMPLATE_ID is set." if template else "."))
        options += ["--unset", "POK_TEMPLATE_ID"]
    for key in EARLIER_IGNORED_KEYS:
        if key in config:
            lines.append(f"{key} is ignored: the image installs {config['POK_PIP_REQUIREMENT']} (POK_PIP_REQUIREMENT).")
            options += ["--unset", key]
    # Both plugins have POK_VERSION; here it chooses what pip installs, so an earlier plugin's value would install the
    # earlier backend. It is an explicit setting, so it is reported, not overridden.
    version = str(config.get("POK_VERSION", ""))
    major = re.match(r"v?(\d+)", version)
    if major and int(major.group(1)) < FIRST_VERSION:
        lines.append(f"POK_VERSION={version} makes the image install the earlier openedx-pok {version}, which this "
                     f"plugin does not work with (unset: {__version__}).")
        options += ["--unset", "POK_VERSION"]
    if not lines:
        return ""
    return "\n".join([
        "tutor-contrib-pok: config.yml holds keys of the earlier tutor-contrib-pok (21.x/22.x).",
        *(f"  - {line}" for line in lines),
        f"  Rename or remove them: tutor config save {shlex.join(options)}",
    ])


@hooks.Actions.CONFIG_LOADED.add()
def _print_earlier_plugin_notice(config):
    # Tutor keeps unknown keys in config.yml and says nothing about them; the operator has to hear it from us.
    notice = earlier_plugin_notice(config)
    if notice:
        fmt.echo_alert(notice)
