"""
Settings shared by every project that runs the sandbox LMS: the tests, the demo and the benchmarks.

Only what makes the sandbox an LMS-like Django project lives here (apps, middleware, templates, languages); each
project adds its own database, Celery and POK settings, and ends with ``add_plugins`` as the LMS does.
"""
from edx_django_utils.plugins import get_plugin_apps

LANGUAGES = [("en", "English"), ("es-419", "Spanish (Latin America)"), ("pt-br", "Portuguese (Brazil)")]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "lms_sandbox",
    # Plugin apps are found through their entry points, as the LMS does (the package must be installed).
    *get_plugin_apps("lms.djangoapp"),
]

MIDDLEWARE = [
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
