"""
The sandbox CMS's (Studio's) common settings: the sandbox's ``cms/envs/common.py`` (openedx-platform Verawood, master).

The CMS loads the plugins found through the ``cms.djangoapp`` entry points and runs their ``common`` phase part-way
through, with the same ``Derived`` placeholders as the LMS (see ``openedx_common``).
"""
from edx_django_utils.plugins import add_plugins, get_plugin_apps

from lms_sandbox.envs.openedx_common import *  # noqa: F403 - a settings module extends the shared one, as the CMS's

PLATFORM_NAME = "Sandbox Studio"
SANDBOX_ROOT_URLCONF = "lms_sandbox.cms_urls"

INSTALLED_APPS = [*INSTALLED_APPS, *get_plugin_apps("cms.djangoapp")]  # noqa: F405 - from openedx_common
add_plugins(__name__, "cms.djangoapp", "common")
