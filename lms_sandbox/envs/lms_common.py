"""
The sandbox LMS's common settings: the sandbox's ``lms/envs/common.py`` (openedx-platform Verawood and master).

As there, the plugins' apps are appended to ``INSTALLED_APPS`` and their ``common`` settings phase runs part-way
through, while ``LOCALE_PATHS`` and other settings are still ``Derived`` placeholders (see ``openedx_common``), and a
few settings are assigned after it. Nothing here derives them: ``lms_production`` (or ``lms_test``, ``lms_build``)
does, as the real modules do.
"""
from edx_django_utils.plugins import add_plugins, get_plugin_apps

from lms_sandbox.envs.openedx_common import *  # noqa: F403 - a settings module extends the shared one, as the LMS's

PLATFORM_NAME = "Sandbox LMS"
LMS_ROOT_URL = "http://localhost:8000"
SANDBOX_ROOT_URLCONF = "lms_sandbox.urls"

INSTALLED_APPS = [
    *INSTALLED_APPS,  # noqa: F405 - from openedx_common
    # django-waffle's flag tables, as lms/envs/common.py installs them; the course and org overrides of
    # openedx/core/djangoapps/waffle_utils/models.py live in lms_sandbox.
    "waffle",
    "lms_sandbox",
]

############## Plugin Django Apps (as lms/envs/common.py: found through their entry points) ##############
INSTALLED_APPS.extend(get_plugin_apps("lms.djangoapp"))
add_plugins(__name__, "lms.djangoapp", "common")

# Settings the real file assigns after the plugins' phase win over anything a plugin set for them.
SESSION_COOKIE_NAME = "sessionid"
