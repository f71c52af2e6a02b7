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

from lms_sandbox.envs.lms_production import *  # noqa: F403 - the sandbox LMS, loaded as the LMS loads its settings

REPO_DIR = Path(__file__).resolve().parent.parent
# POK_BENCH_DIR lets the test-suite run the benchmark without overwriting a developer's var/bench results.
BENCH_DIR = Path(os.environ.get("POK_BENCH_DIR") or REPO_DIR / "var" / "bench")
BENCH_DB_PATH = BENCH_DIR / "bench.sqlite3"

SECRET_KEY = "insecure-bench-key-only-for-a-local-sandbox"  # noqa: S105 - a throw-away local sandbox
# DEBUG off, as in production: no query log on the connection (queries are counted with CaptureQueriesContext).
DEBUG = False
ALLOWED_HOSTS = ["testserver"]
PLATFORM_NAME = "Bench Academy"
LMS_ROOT_URL = "http://testserver"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # learners are created, never log in by password

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
            # Tutor's options (partials/auth.yml, with the MySQL Tutor runs): requests in a transaction, strict mode.
            "ATOMIC_REQUESTS": True,
            "OPTIONS": {"charset": "utf8mb4", "init_command": "SET sql_mode='STRICT_TRANS_TABLES'"},
        }
    }
else:
    MYSQL_DRIVER = None
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(BENCH_DB_PATH),
            "ATOMIC_REQUESTS": True,
            "OPTIONS": {"init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"},
        }
    }
# The template definition cache of the tasks lives here; one process, so a local-memory cache is the real thing.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "openedx-pok-bench"}}

# Celery as in the LMS: tasks go to a broker and run in a worker, never inside the request that scheduled them.
CELERY_TASK_ALWAYS_EAGER = False
CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_IGNORE_RESULT = True
# The LMS's own certificate generation task on a queue of its own, so the benchmark can play the LMS's worker for it
# (``bench.run.Bench.award``) apart from the plugin's tasks, which it counts.
BENCH_LMS_QUEUE = "bench-lms-certificates"
CELERY_TASK_ROUTES = {"lms_sandbox.tasks.generate_certificate": {"queue": BENCH_LMS_QUEUE}}

# Placeholder: bench.run points the plugin at the simulator it starts.
POK_API_URL = "http://127.0.0.1:9"
POK_API_KEY = "00000000-0000-4000-8000-000000000000"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    # Warnings and errors only: an INFO line per credential would be noise in the table and cost time in the loop.
    "root": {"handlers": ["console"], "level": "WARNING"},
}
