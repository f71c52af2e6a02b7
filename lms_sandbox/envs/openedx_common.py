"""
Settings shared by the sandbox LMS and CMS: the sandbox's ``openedx/envs/common.py`` (openedx-platform Ulmo and
later; Teak and Sumac define the same values in ``lms/envs/common.py`` and ``cms/envs/common.py``).

What matters to the plugin is the *shape* of the settings its ``common`` phase meets. ``LOCALE_PATHS`` is a
``Derived`` placeholder there, computed only by ``derive_settings`` in ``production.py``; ``SANDBOX_LOCALE_PATHS``
(an environment variable, read here because settings modules have nothing else to go by) selects the shape of other
releases or deployments, so the tests can load the plugin against each:

- ``derived`` (the default): ``Derived(_make_locale_paths)``, Teak and later;
- ``function``: the function itself, registered with ``derived("LOCALE_PATHS")``, Sumac and earlier;
- ``list`` / ``tuple``: a value already computed (an operator's own settings module);
- ``absent``: no ``LOCALE_PATHS`` at all (Django's default then applies).
"""
import os
from pathlib import Path

from lms_sandbox.envs.derived import Derived, derived

# The platform repository's root; its own catalogs live in conf/locale (edx-platform/conf/locale/).
REPO_ROOT = Path(__file__).resolve().parent.parent
PREPEND_LOCALE_PATHS = []
COMPREHENSIVE_THEME_LOCALE_PATHS = []
ENABLE_COMPREHENSIVE_THEMING = False


def _make_locale_paths(settings):
    """The platform's catalogs: the prepended paths, its own conf/locale, and the themes' when theming is on."""
    paths = [*settings.PREPEND_LOCALE_PATHS, str(settings.REPO_ROOT / "conf" / "locale")]
    if settings.ENABLE_COMPREHENSIVE_THEMING:
        paths += list(settings.COMPREHENSIVE_THEME_LOCALE_PATHS)
    return paths


_LOCALE_PATHS_SHAPE = os.environ.get("SANDBOX_LOCALE_PATHS", "derived")
if _LOCALE_PATHS_SHAPE == "derived":
    LOCALE_PATHS = Derived(_make_locale_paths)
elif _LOCALE_PATHS_SHAPE == "function":
    LOCALE_PATHS = _make_locale_paths
    derived("LOCALE_PATHS")
elif _LOCALE_PATHS_SHAPE == "list":
    LOCALE_PATHS = [str(REPO_ROOT / "conf" / "locale")]
elif _LOCALE_PATHS_SHAPE == "tuple":
    LOCALE_PATHS = (str(REPO_ROOT / "conf" / "locale"),)
elif _LOCALE_PATHS_SHAPE != "absent":
    raise ValueError(f"SANDBOX_LOCALE_PATHS={_LOCALE_PATHS_SHAPE!r}: use derived, function, list, tuple or absent")

# Another Derived placeholder of that file, which nothing in the plugin may evaluate before the platform does.
ROOT_URLCONF = Derived(lambda settings: settings.SANDBOX_ROOT_URLCONF)

USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
USE_I18N = True
LANGUAGES = [("en", "English"), ("es-419", "Spanish (Latin America)"), ("pt-br", "Portuguese (Brazil)")]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
DEBUG = False
ALLOWED_HOSTS = ["*"]

# What the LMS's and the CMS's lists share (each project extends them, as their own common.py do).
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
    # As the LMS and the CMS: the current request is available to code without one (django-crum), early on.
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

# As openedx/envs/common.py: MySQL with ATOMIC_REQUESTS, replaced by the operator's YAML (Tutor: partials/auth.yml).
# The sandbox's default is the embedded SQLite; each project sets its own database after the production phase.
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:", "ATOMIC_REQUESTS": True}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "sandbox"}}

# The sandbox's one departure from the real settings: the plugin's platform door (openedx_pok.compat) reads the
# sandbox's tables instead of the LMS's modules, which do not exist here.
POK_COMPAT_BACKEND = "lms_sandbox.compat.SandboxBackend"
