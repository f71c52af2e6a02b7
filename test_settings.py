"""
Django settings for the plugin's test suite: a minimal stand-in for the LMS settings.

``POK_TEST_DB=mysql`` runs the suite on MariaDB/MySQL (127.0.0.1:3306 by default) through mysqlclient, the driver
the LMS runs (``POK_TEST_MYSQL_DRIVER=pymysql`` for the pure-Python PyMySQL); the default is SQLite, the embedded
database a new user gets. The plugin's own ``plugin_settings`` is applied at the end, exactly
as the platform does after its own settings.
"""
import os

from edx_django_utils.plugins import add_plugins

from lms_sandbox import settings as sandbox

SECRET_KEY = "insecure-test-key"  # noqa: S105 - tests only
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
LANGUAGES = sandbox.LANGUAGES
USE_I18N = True
ROOT_URLCONF = "lms_sandbox.urls"
ALLOWED_HOSTS = ["*"]
PLATFORM_NAME = "Test Academy"
LMS_ROOT_URL = "http://lms.test"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users in tests

INSTALLED_APPS = list(sandbox.INSTALLED_APPS)
MIDDLEWARE = list(sandbox.MIDDLEWARE)
TEMPLATES = sandbox.TEMPLATES
STATIC_URL = "/static/"

if os.environ.get("POK_TEST_DB", "sqlite") == "mysql":
    # mysqlclient (``MySQLdb``, the C client library), as in the LMS: PyMySQL builds a TLS context on every connect
    # (about 20 ms here) and decodes rows in Python, which hides what the plugin itself costs. No silent fall back:
    # without mysqlclient (``make system-deps requirements``) the import fails and says so.
    if os.environ.get("POK_TEST_MYSQL_DRIVER", "mysqlclient") == "pymysql":
        import pymysql

        pymysql.install_as_MySQLdb()
    else:
        import MySQLdb  # noqa: F401 - mysqlclient
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ.get("POK_TEST_MYSQL_DB", "test"),
            "USER": os.environ.get("POK_TEST_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("POK_TEST_MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("POK_TEST_MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("POK_TEST_MYSQL_PORT", "3306"),
            "OPTIONS": {"charset": "utf8mb4", "isolation_level": "read committed"},
            "TEST": {"NAME": os.environ.get("POK_TEST_MYSQL_TEST_DB", "test_openedx_pok"), "CHARSET": "utf8mb4"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("POK_TEST_SQLITE_NAME", ":memory:"),
            "TEST": {"NAME": os.environ.get("POK_TEST_SQLITE_TEST_NAME", None)},
        }
    }

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "openedx-pok-tests"}}

# Celery: tasks run eagerly unless a test starts a real worker (see tests/test_celery_worker.py).
CELERY_TASK_ALWAYS_EAGER = os.environ.get("POK_TEST_CELERY_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = os.environ.get("POK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")

# The POK API the tests talk to is the simulator; fixtures override the URL with the running server's.
POK_API_URL = os.environ.get("POK_TEST_API_URL", "http://127.0.0.1:9")
POK_API_KEY = os.environ.get("POK_TEST_API_KEY", "00000000-0000-4000-8000-000000000000")
# A worker process started by a test listens on (and re-enqueues retries to) that test's own queue.
POK_CELERY_QUEUE = os.environ.get("POK_TEST_CELERY_QUEUE") or None
POK_DEFAULT_TEMPLATE_ID = ""
POK_RETRY_BACKOFF_BASE = 0
POK_CERTIFICATE_WAIT_DELAY = 0

# The platform door goes to the sandbox LMS instead of the real one.
POK_COMPAT_BACKEND = "lms_sandbox.compat.SandboxBackend"

# Applied last, like the LMS does at the end of its settings.
add_plugins(__name__, "lms.djangoapp", "common")

# The simulator serves credential pages on the loopback host; a real POK serves them on pok.tech (the default).
POK_VIEW_URL_HOSTS = ["pok.tech", "credentity.xyz", "127.0.0.1", "localhost"]
