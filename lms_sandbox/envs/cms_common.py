"""
The sandbox CMS's (Studio's) common settings: the sandbox's ``cms/envs/common.py`` (openedx-platform Verawood, master).

The CMS loads the plugins found through the ``cms.djangoapp`` entry points and runs their ``common`` phase part-way
through, with the same ``Derived`` placeholders as the LMS (see ``openedx_common``).
"""
from edx_django_utils.plugins import add_plugins, get_plugin_apps

from lms_sandbox.envs.openedx_common import *  # noqa: F403 - a settings module extends the shared one, as the CMS's

PLATFORM_NAME = "Sandbox Studio"
SANDBOX_ROOT_URLCONF = "lms_sandbox.cms_urls"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
]

MIDDLEWARE = [
    "crum.CurrentRequestUserMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True, "OPTIONS": {
    "context_processors": ["django.template.context_processors.request",
                           "django.contrib.auth.context_processors.auth",
                           "django.contrib.messages.context_processors.messages"]}}]

INSTALLED_APPS.extend(get_plugin_apps("cms.djangoapp"))
add_plugins(__name__, "cms.djangoapp", "common")
