"""
The caches as the plugin uses them: the LMS's own, as accelerators that may be down, never a reason to fail.

The plugin keeps course mappings, template definitions, course facts, image locations, remembered POK answers and
rate limits in the Django cache the LMS configures (memcached or Redis in production). What one request or task asks
for several times (the mappings, a template, a course's facts, an account's wait) goes through edx-django-utils'
``TieredCache``: the request cache in front of the Django cache, as the platform does it.

When the Django cache cannot be reached, each helper here behaves as an empty cache that stores nothing: the plugin
then pays a query or a POK call, and the row in the database (status, backoff) still decides what happens. Failures
are logged once per process at warning level.

The request cache lives as long as the thread's request: the LMS clears it per request (``RequestCacheMiddleware``)
and, in its Celery workers, after each task (``task_postrun`` in ``openedx/core/djangoapps/util/signals.py``). A
worker that does not clear it would keep the plugin's copies for ever, so every plugin task starts by dropping them
(:func:`clear_request_cache`).
"""
import logging

from celery.signals import task_prerun
from django.core.cache import cache
from edx_django_utils.cache import DEFAULT_REQUEST_CACHE, TieredCache

log = logging.getLogger(__name__)

PREFIX = "openedx_pok:"  # every key the plugin puts in the caches
TASK_PREFIX = "openedx_pok."  # every task the plugin registers
_MISS = object()
_ABSENT = object()  # in the request tier: :func:`prefetch` found the key missing from the Django cache too
_warned = set()


def _down(operation, exc):
    if operation not in _warned:
        _warned.add(operation)
        log.warning("POK: the Django cache is unavailable (%s failed: %s); working without it", operation,
                    type(exc).__name__)


def get(key, default=None):
    """``cache.get``; ``default`` when the cache is down."""
    try:
        return cache.get(key, default)
    except Exception as exc:  # noqa: BLE001 - any backend error means "no cache"
        _down("get", exc)
        return default


def set(key, value, timeout):
    """``cache.set``; nothing when the cache is down."""
    try:
        cache.set(key, value, timeout)
    except Exception as exc:  # noqa: BLE001
        _down("set", exc)


def add(key, value, timeout, when_down=True):
    """``cache.add`` (True when the key was free); ``when_down`` when the cache is down."""
    try:
        return cache.add(key, value, timeout)
    except Exception as exc:  # noqa: BLE001
        _down("add", exc)
        return when_down


def incr(key, timeout):
    """
    Add one to the counter under ``key`` (created at 0, kept ``timeout`` seconds from then) and return it, atomically
    where the backend is (Redis, memcached); None when the cache is down.
    """
    try:
        cache.add(key, 0, timeout)
        return cache.incr(key)
    except ValueError:  # evicted or expired between add and incr: this is the first again
        return 1 if add(key, 1, timeout, when_down=False) else None
    except Exception as exc:  # noqa: BLE001
        _down("incr", exc)
        return None


def delete(*keys):
    """``cache.delete`` of ``keys``, several in one round trip (``delete_many``); nothing when the cache is down."""
    if not keys:
        return
    try:
        if len(keys) == 1:
            cache.delete(keys[0])
        else:
            cache.delete_many(keys)
    except Exception as exc:  # noqa: BLE001
        _down("delete", exc)


def _tiered_get(key):
    try:
        cached = TieredCache.get_cached_response(key)
    except Exception as exc:  # noqa: BLE001 - TieredCache asked the Django cache, which is down
        _down("get", exc)
        return _MISS
    return cached.value if cached.is_found and cached.value is not _ABSENT else _MISS


def tiered(key, compute, timeout):
    """
    The value under ``key``: this request's copy, else the Django cache's, else ``compute()`` kept in both.

    A None from ``compute`` is not kept (asked again next time). With the Django cache down, the request still
    keeps its copy: a request or task pays once, not at every ask.
    """
    value = _tiered_get(key)
    if value is not _MISS:
        return value
    value = compute()
    if value is not None:
        set_tiers(key, value, timeout)
    return value


def tiered_get(key, default):
    """
    The value under ``key``: this request's copy, else the Django cache's, else ``default``. A miss is kept for the
    request too (in the request cache only: the Django cache's key stays free for whoever writes it).
    """
    value = _tiered_get(key)
    if value is not _MISS:
        return value
    remember(key, default)
    return default


COMPUTE = object()  # :func:`prefetch`: a key its reader computes when the Django cache does not have it


def prefetch(defaults):
    """
    Read the keys of ``defaults`` ({key: default}) from the Django cache in one round trip into this request's
    copies, as :func:`tiered_get` would one by one: a key found keeps its value, a key not found its default, or for
    a :data:`COMPUTE` one a mark that sends its reader (:func:`tiered`) to compute it without asking the Django cache
    again. Keys this request holds already are not read.
    """
    wanted = [key for key in defaults if key not in DEFAULT_REQUEST_CACHE.data]
    try:
        found = cache.get_many(wanted) if wanted else {}
    except Exception as exc:  # noqa: BLE001
        _down("get", exc)
        return
    for key in wanted:
        remember(key, found[key] if key in found else _ABSENT if defaults[key] is COMPUTE else defaults[key])


UNKNOWN = object()  # :func:`known`: this request holds no copy of the key


def known(key):
    """This request's copy of ``key`` (None or a default when the Django cache had none), or :data:`UNKNOWN`."""
    value = DEFAULT_REQUEST_CACHE.data.get(key, UNKNOWN)
    return None if value is _ABSENT else value


def remember(key, value):
    """Keep ``value`` under ``key`` in this request's copy only (TieredCache's request tier)."""
    DEFAULT_REQUEST_CACHE.set(key, value)


def set_tiers(key, value, timeout):
    """``TieredCache.set_all_tiers``: this request's copy always, the Django cache's when it is up."""
    try:
        TieredCache.set_all_tiers(key, value, timeout)
    except Exception as exc:  # noqa: BLE001 - the request's copy is set before the Django cache is asked
        _down("set", exc)


def forget(key):
    """``TieredCache.delete_all_tiers``: this request's copy and the Django cache's (when it is up)."""
    try:
        TieredCache.delete_all_tiers(key)
    except Exception as exc:  # noqa: BLE001 - the request's copy is dropped before the Django cache is asked
        _down("delete", exc)


def clear_request_cache():
    """Drop this thread's request-cache copies of the plugin's keys (TieredCache's tier; other keys are not ours)."""
    copies = DEFAULT_REQUEST_CACHE.data
    for key in [key for key in copies if isinstance(key, str) and key.startswith(PREFIX)]:
        del copies[key]


@task_prerun.connect(dispatch_uid="openedx_pok.caching.clear_request_cache")
def _clear_before_plugin_tasks(sender=None, **kwargs):
    # Correct whether or not the LMS clears the request cache after tasks: a task sees the mappings, templates and
    # course facts of its own time, not those of an earlier task that ran in the same worker process.
    if getattr(sender, "name", "").startswith(TASK_PREFIX):
        clear_request_cache()
