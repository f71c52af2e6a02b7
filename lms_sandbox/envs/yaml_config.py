"""
The operator's YAML, as ``lms/envs/production.py`` and ``cms/envs/production.py`` read it (openedx-platform Verawood).

Each key of the file replaces the whole setting of that name, except the few the real files merge themselves.
Tutor writes this file (``lms.env.yml`` / ``cms.env.yml``), its database options included (``partials/auth.yml``).
"""
import os

import yaml

MERGED_KEYS = {"FEATURES", "TRACKING_BACKENDS", "EVENT_TRACKING_BACKENDS", "JWT_AUTH", "CELERY_QUEUES",
               "REST_FRAMEWORK", "EVENT_BUS_PRODUCER_CONFIG", "DEFAULT_FILE_STORAGE", "STATICFILES_STORAGE"}


def operator_settings(variable):
    """The settings of the YAML file named by the environment ``variable``; none when it is not set (sandbox only)."""
    path = os.environ.get(variable)
    if not path:
        return {}
    with open(path, encoding="utf-8") as config_file:
        tokens = yaml.safe_load(config_file) or {}
    return {key: value for key, value in tokens.items() if key not in MERGED_KEYS}
