"""
Production settings phase: runs after the operator's YAML has been loaded.

The YAML may have replaced ``OPEN_EDX_FILTERS_CONFIG`` wholesale, so the pipeline steps are merged in again; the
``POK_*`` values from the YAML are kept and only missing ones get their defaults.
"""
from openedx_pok.settings.common import plugin_settings as common_plugin_settings


def plugin_settings(settings):
    """Re-apply defaults for missing settings and re-register the pipeline steps."""
    common_plugin_settings(settings)
