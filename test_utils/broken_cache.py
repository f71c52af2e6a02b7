"""
A Django cache backend that is down: every operation raises, like a memcached or Redis the LMS cannot reach.

Used to prove that a cache outage costs the plugin queries or POK calls, never an error or a lost credential.
"""
from django.core.cache.backends.base import BaseCache


class BrokenCache(BaseCache):
    """Every operation fails with ConnectionError."""

    def __init__(self, location=None, params=None):
        super().__init__(params or {})

    def _down(self, *args, **kwargs):
        raise ConnectionError("the cache is down (test_utils.broken_cache)")

    add = get = set = delete = touch = clear = has_key = incr = get_many = set_many = delete_many = _down
