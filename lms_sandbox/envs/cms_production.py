"""
The sandbox CMS's production settings: the sandbox's ``cms/envs/production.py`` (openedx-platform Verawood, master),
in the real order: ``cms_common`` (plugins' ``common`` phase), the operator's YAML (``CMS_CFG``), ``derive_settings``,
then the plugins' ``production`` phase.
"""

from lms_sandbox.envs.cms_common import *  # noqa: F403 - as the real production.py
from lms_sandbox.envs.cms_common import add_plugins
from lms_sandbox.envs.derived import derive_settings
from lms_sandbox.envs.yaml_config import operator_settings

vars().update(operator_settings("CMS_CFG"))

derive_settings(__name__)

add_plugins(__name__, "cms.djangoapp", "production")
