"""
The sandbox LMS's production settings: the sandbox's ``lms/envs/production.py`` (openedx-platform Verawood, master).

The order is the real one, because the plugin's settings code depends on it:

1. everything of ``lms_common``, the plugins' ``common`` phase included;
2. the operator's YAML (the file named by ``LMS_CFG``; optional here), each key replacing the whole setting;
3. ``derive_settings``: the ``Derived`` placeholders get their values;
4. the plugins' ``production`` phase.
"""

from lms_sandbox.envs.derived import derive_settings
from lms_sandbox.envs.lms_common import *  # noqa: F403 - as the real production.py
from lms_sandbox.envs.lms_common import add_plugins
from lms_sandbox.envs.yaml_config import operator_settings

vars().update(operator_settings("LMS_CFG"))

derive_settings(__name__)

add_plugins(__name__, "lms.djangoapp", "production")
