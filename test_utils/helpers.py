"""
Small look-ups the tests repeat: kept here so every test reads the plugin's rows the same way.
"""
from contextlib import contextmanager

import kombu.pools

from openedx_pok.models import PokCertificate


def credential_of(user, course):
    """
    The learner's credential row for ``course`` (a sandbox ``CourseOverview``), read fresh from the database.

    Fresh on purpose: the tests assert what the tasks committed, never a Python object they still hold.
    """
    return PokCertificate.objects.get(user=user, course_key=course.id)


@contextmanager
def celery_conf(app, **overrides):
    """
    Change the Celery app's configuration for a block, then restore it and drop the connections made meanwhile.

    The sandbox app reads Django settings with ``namespace="CELERY"``; Celery 5.6 (the Open edX releases' pin) then
    lets the namespaced key (``CELERY_TASK_ALWAYS_EAGER``) win over ``task_always_eager``, so both are set. The
    broker connection pools are reset on the way in and out, so no test publishes to another test's broker.
    """
    keys = [*overrides, *(f"CELERY_{name.upper()}" for name in overrides)]
    changes = app.conf.changes  # the explicit layer: restoring means taking our keys out of it again
    saved = {key: changes[key] for key in keys if key in changes}

    def drop_connections():
        kombu.pools.reset()
        app._pool = None  # noqa: SLF001 - as Celery itself does after a fork
        app.amqp._producer_pool = None  # noqa: SLF001

    drop_connections()
    for name, value in overrides.items():
        app.conf[name] = value
        app.conf[f"CELERY_{name.upper()}"] = value
    try:
        yield app
    finally:
        for key in keys:
            if key in saved:
                changes[key] = saved[key]
            else:
                changes.pop(key, None)
        drop_connections()
