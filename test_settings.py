"""
Django settings of the plugin's test suite: the sandbox LMS's production settings, then the suite's own values.

The sandbox LMS's settings load in the real LMS's phases and order (``lms_sandbox/envs``): the plugin's ``common``
phase meets ``Derived`` placeholders, the operator's YAML replaces whole keys, ``derive_settings`` runs, then the
plugin's ``production`` phase. The values below come after all of that, as Tutor's settings do after
``from lms.envs.production import *``.

``POK_TEST_DB=mysql`` runs the suite on MariaDB/MySQL (127.0.0.1:3306 by default) through mysqlclient, the driver
the LMS runs (``POK_TEST_MYSQL_DRIVER=pymysql`` for the pure-Python PyMySQL), with Tutor's database options; the
default is SQLite, the embedded database a new user gets.
"""
import os

from lms_sandbox.envs.lms_production import *  # noqa: F403 - the sandbox LMS, loaded as the LMS loads its settings

SECRET_KEY = "insecure-test-key"  # noqa: S105 - tests only
PLATFORM_NAME = "Test Academy"
LMS_ROOT_URL = "http://lms.test"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast users in tests

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
            # Tutor's options (tutor/templates/apps/openedx/config/partials/auth.yml, Tutor 19 to 22): every request
            # in a transaction, strict mode, a utf8mb4 connection (Tutor's charset for the MySQL it runs; Django
            # 5.2's default for an operator's own). No isolation level: Django's default for MySQL, read committed.
            "ATOMIC_REQUESTS": True,
            "OPTIONS": {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"},
            # The database itself in utf8mb3, as an edxapp database created before utf8mb4 was MySQL's default (the
            # plugin's tables take the database's charset at migrate): the stricter case, where a 4-byte character
            # in a learner's name cannot be stored and strict mode refuses it instead of truncating.
            "TEST": {"NAME": os.environ.get("POK_TEST_MYSQL_TEST_DB", "test_openedx_pok"), "CHARSET": "utf8mb3"},
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("POK_TEST_SQLITE_NAME", ":memory:"),
            "ATOMIC_REQUESTS": True,  # as the LMS's own settings (openedx/envs/common.py)
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
# A worker process started by a test may need to wait for the LMS's generation task (queued 2 s after the filter).
POK_CERTIFICATE_WAIT_DELAY = int(os.environ.get("POK_TEST_CERTIFICATE_WAIT_DELAY", "0"))


# The simulator serves credential pages on the loopback host; a real POK serves them on pok.tech (the default).
POK_VIEW_URL_HOSTS = ["pok.tech", "credentity.xyz", "127.0.0.1", "localhost"]
