"""
The Django cache as the plugin uses it: an accelerator that may be down, never a reason to fail.

The plugin keeps course mappings, template definitions, image locations, remembered POK answers and rate limits in
the cache the LMS configures (memcached or Redis in production). When that cache cannot be reached, each helper
here behaves as an empty cache that stores nothing: the plugin then pays a query or a POK call, and the row in the
database (status, backoff) still decides what happens. Failures are logged once per process at warning level.
"""
import logging

from django.core.cache import cache

log = logging.getLogger(__name__)

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


def delete(key):
    """``cache.delete``; nothing when the cache is down."""
    try:
        cache.delete(key)
    except Exception as exc:  # noqa: BLE001
        _down("delete", exc)
