"""
Django settings of the benchmarks: the sandbox LMS on a fresh SQLite file, with the plugin loaded as the LMS loads it.

Why not ``test_settings``: the benchmark must run the issuance task the way the LMS does, in a worker and not in the
request, so Celery is *not* eager here; ``apply_async`` only puts a message on an in-memory broker and the benchmark
drains that broker itself afterwards. The database is a file (WAL, like a server database that lets readers and the
writer overlap) that ``bench.run`` deletes before each run, so every run starts from the same empty state.

The POK simulator listens on a free port chosen at start-up, so ``bench.run`` sets ``POK_API_URL`` at runtime (the
plugin reads its settings at call time).
"""
import os
from pathlib import Path

from edx_django_utils.plugins import add_plugins

from lms_sandbox import settings as sandbox

REPO_DIR = Path(__file__).resolve().parent.parent
# POK_BENCH_DIR lets the test-suite run the benchmark without overwriting a developer's var/bench results.
BENCH_DIR = Path(os.environ.get("POK_BENCH_DIR") or REPO_DIR / "var" / "bench")
BENCH_DB_PATH = BENCH_DIR / "bench.sqlite3"

SECRET_KEY = "insecure-bench-key-only-for-a-local-sandbox"  # noqa: S105 - a throw-away local sandbox
# DEBUG off, as in production: no query log on the connection (queries are counted with CaptureQueriesContext).
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
LANGUAGE_CODE = "en"
LANGUAGES = sandbox.LANGUAGES
USE_I18N = True
ROOT_URLCONF = "lms_sandbox.urls"
ALLOWED_HOSTS = ["testserver"]
PLATFORM_NAME = "Bench Academy"
LMS_ROOT_URL = "http://testserver"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # learners are created, never log in by password

INSTALLED_APPS = list(sandbox.INSTALLED_APPS)
MIDDLEWARE = list(sandbox.MIDDLEWARE)
TEMPLATES = sandbox.TEMPLATES
STATIC_URL = "/static/"

# POK_BENCH_DB=mysql: the MariaDB part (``bench.mysql``) on a scratch database that it creates and drops itself.
BENCH_DB = os.environ.get("POK_BENCH_DB", "sqlite")
if BENCH_DB == "mysql":
    from bench.db import install_driver

    # The driver the LMS runs (mysqlclient) unless POK_BENCH_MYSQL_DRIVER=pymysql asks for the pure-Python one.
    MYSQL_DRIVER = install_driver(os.environ.get("POK_BENCH_MYSQL_DRIVER", "mysqlclient"))
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ["POK_BENCH_MYSQL_DB"],
            "USER": os.environ.get("POK_TEST_MYSQL_USER", "root"),
            "PASSWORD": os.environ.get("POK_TEST_MYSQL_PASSWORD", ""),
            "HOST": os.environ.get("POK_TEST_MYSQL_HOST", "127.0.0.1"),
            "PORT": os.environ.get("POK_TEST_MYSQL_PORT", "3306"),
            # As the LMS: no persistent connection (CONN_MAX_AGE 0), so every request connects once.
            "CONN_MAX_AGE": 0,
            "OPTIONS": {"charset": "utf8mb4", "isolation_level": "read committed"},
        }
    }
else:
    MYSQL_DRIVER = None
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BENCH_DB_PATH),
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"},
        }
    }
# The template definition cache of the tasks lives here; one process, so a local-memory cache is the real thing.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "openedx-pok-bench"}}

# Celery as in the LMS: tasks go to a broker and run in a worker, never inside the request that scheduled them.
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_IGNORE_RESULT = True

# Placeholder: bench.run points the plugin at the simulator it starts.
POK_API_URL = "http://127.0.0.1:9"
POK_API_KEY = "00000000-0000-4000-8000-000000000000"
# The platform door goes to the sandbox LMS instead of the real one.
POK_COMPAT_BACKEND = "lms_sandbox.compat.SandboxBackend"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # Warnings and errors only: an INFO line per credential would be noise in the table and cost time in the loop.
    "root": {"handlers": ["console"], "level": "WARNING"},
}

# Applied last, like the LMS does at the end of its settings.
add_plugins(__name__, "lms.djangoapp", "common")
