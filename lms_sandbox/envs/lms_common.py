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
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    # django-waffle's flag tables, as lms/envs/common.py installs them; the course and org overrides of
    # openedx/core/djangoapps/waffle_utils/models.py live in lms_sandbox.
    "waffle",
    "lms_sandbox",
]

MIDDLEWARE = [
    # As the LMS: the current request is available to code without one (django-crum), early in the chain.
    "crum.CurrentRequestUserMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

############## Plugin Django Apps (as lms/envs/common.py: found through their entry points) ##############
INSTALLED_APPS.extend(get_plugin_apps("lms.djangoapp"))
add_plugins(__name__, "lms.djangoapp", "common")

# Settings the real file assigns after the plugins' phase win over anything a plugin set for them.
SESSION_COOKIE_NAME = "sessionid"
