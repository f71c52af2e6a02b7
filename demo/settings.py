"""
Django settings of the demo: the sandbox LMS on a SQLite file, with the plugin loaded the way the LMS loads it.

The structure mirrors ``test_settings.py`` (the sandbox LMS's production settings, loaded in the LMS's phases, then
the demo's own values, as Tutor's settings follow the LMS's) so that the demo exercises the same wiring as the tests
and the LMS. What differs
is what a person at a terminal needs: a database file that survives the run so the served admin shows the credentials
(``var/demo/db.sqlite3``, or ``$POK_DEMO_DIR/db.sqlite3`` so the tests never clobber a developer's demo), DEBUG so
``runserver`` serves the admin's static files, and the POK account taken from the environment.

POK: with ``POK_API_URL`` (and ``POK_API_KEY``) in the environment the demo talks to that POK, e.g. the sandbox
``https://api.credentity.xyz`` with ``POK_DEMO_TEMPLATE_ID``; without it ``demo.run`` starts the POK simulator and
points these settings at it at runtime (the plugin reads them at call time).
"""
import os
from pathlib import Path

from lms_sandbox.envs.lms_production import *  # noqa: F403 - the sandbox LMS, loaded as the LMS loads its settings

REPO_DIR = Path(__file__).resolve().parent.parent
DEMO_DIR = Path(os.environ.get("POK_DEMO_DIR") or REPO_DIR / "var" / "demo")
DEMO_DIR.mkdir(parents=True, exist_ok=True)
DEMO_DB_PATH = DEMO_DIR / "db.sqlite3"

SECRET_KEY = "insecure-demo-key-only-for-a-local-sandbox"  # noqa: S105 - a throw-away local sandbox, never deployed
# DEBUG lets runserver serve the admin's static files; openedx-events then re-raises receiver errors, which is what a
# demo wants (the plugin's receivers catch their own errors anyway).
DEBUG = True
# testserver: the demo opens the certificate page with Django's test Client before serving.
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
PLATFORM_NAME = "Demo Academy"
LMS_ROOT_URL = "http://127.0.0.1:8000"
# The sandbox LMS's URLs and the demo's "log in as this learner" links.
ROOT_URLCONF = "demo.urls"
POK_DEMO_COURSE_ID = "course-v1:DemoX+POK101+2026"

DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DEMO_DB_PATH), "ATOMIC_REQUESTS": True}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "openedx-pok-demo"}}

# No broker in the demo: tasks run in-process, eagerly, when the LMS transaction commits (transaction.on_commit).
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"

# Where POK is. Empty means "no POK given": demo.run then starts the simulator and fills both in.
POK_API_URL = os.environ.get("POK_API_URL", "")
POK_API_KEY = os.environ.get("POK_API_KEY", "")
POK_DEMO_TEMPLATE_ID = os.environ.get("POK_DEMO_TEMPLATE_ID", "")
# Eager tasks ignore countdowns; short waits keep a misbehaving POK from stalling the demo for minutes.
POK_TIMEOUT = 10
POK_MAX_RETRIES = 2
POK_RETRY_BACKOFF_BASE = 0
POK_CERTIFICATE_WAIT_DELAY = 0




class SkipFilterControlFlow:
    """
    Drop openedx-filters' ERROR + traceback for exceptions that a step raises on purpose.

    ``openedx_filters.tooling`` logs every ``OpenEdxFilterException`` with a traceback before re-raising it, including
    ``RedirectToPage``, which is how the plugin sends a certificate page to POK. In a demo that reads as a crash on
    every page view; the demo prints the outcome (the redirect) itself. Real errors of a step are other exception
    types and are still logged.
    """

    def filter(self, record):
        # Imported here: settings are read before the apps, and the filter runs only once logging is in use.
        from openedx_filters.exceptions import OpenEdxFilterException

        exc_type = record.exc_info[0] if record.exc_info else None
        return not (exc_type and issubclass(exc_type, OpenEdxFilterException))


# Plugin and sandbox log lines at WARNING and above reach the terminal (ids only, per the plugin's logging rules).
# django.request's "Not Found" warnings would interleave with the demo's steps (which show the 404s themselves);
# runserver's own request log (django.server) stays on.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"skip_filter_control_flow": {"()": SkipFilterControlFlow}},
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "filters_console": {"class": "logging.StreamHandler", "formatter": "plain",
                            "filters": ["skip_filter_control_flow"]},
    },
    "loggers": {
        "openedx_pok": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "lms_sandbox": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "openedx_filters": {"handlers": ["filters_console"], "level": "WARNING", "propagate": False},
        "django.request": {"level": "ERROR"},
    },
}
