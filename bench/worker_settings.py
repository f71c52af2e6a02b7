"""
Django settings of ``bench.worker``: ``bench.settings`` on MariaDB, with Celery on the real Redis broker.

Read by three kinds of process, all configured through the environment that ``bench.worker`` sets:

- the benchmark itself (it awards certificates in the LMS path and runs the backfill, both publishing to Redis);
- the ``celery -A lms_sandbox.celery worker`` process it starts (prefork, like the LMS's workers);
- the ``pok_backfill`` command it runs in a subprocess to read that command's peak memory.

``POK_BENCH_MYSQL_DB`` names the scratch database (required: ``bench.settings`` reads it), ``POK_BENCH_REDIS_URL``
the broker (a scratch database number of the local Redis), ``POK_BENCH_QUEUE`` the run's own queue, and
``POK_BENCH_API_URL`` / ``POK_BENCH_API_KEY`` the POK simulator of the run. The Django cache is Redis too, under a
key prefix of the run, through the backend a Tutor LMS configures (``django_redis``; Django's own Redis backend builds
a client object per cache call): every worker process shares one cache, so the template definition is fetched from
POK once for all of them rather than once per process.
"""
import os

os.environ.setdefault("POK_BENCH_DB", "mysql")

from bench.settings import *  # noqa: F403 - these settings are bench.settings with a few values replaced

REDIS_URL = os.environ.get("POK_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")

CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_IGNORE_RESULT = True
# As the LMS's workers: one message reserved per process beyond the one it runs, so a long queue spreads evenly.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": os.environ.get("POK_BENCH_CACHE_PREFIX", "openedx-pok-bench-worker"),
    }
}

# The plugin reads these at call time; set after bench.settings so that its add_plugins() defaults do not win.
POK_CELERY_QUEUE = os.environ.get("POK_BENCH_QUEUE") or None
POK_API_URL = os.environ.get("POK_BENCH_API_URL", "http://127.0.0.1:9")
POK_API_KEY = os.environ.get("POK_BENCH_API_KEY", "00000000-0000-4000-8000-000000000000")
