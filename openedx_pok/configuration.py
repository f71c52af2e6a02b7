"""
How the plugin is configured to reach POK, and how a course is set up for POK credentials.

This module turns settings and course mappings into ready-to-use things: a pooled API client per POK account, cached
template definitions (so issuing a credential costs one POST and no template GET), and the :class:`CourseSetup` of a
course (its mapping, template and course data) or a :class:`~openedx_pok.exceptions.CourseSetupError` that says what
an admin has to fix. It reads settings; the client below it never does.
"""
import hashlib
import logging
import threading
import time
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.utils.translation import gettext as _

from openedx_pok import caching, compat
from openedx_pok.client import PokApiClient
from openedx_pok.exceptions import CourseSetupError, PokNotFoundError
from openedx_pok.models import CertificateTemplate, mappings_changed

log = logging.getLogger(__name__)


@lru_cache(maxsize=8)
def _cached_client(api_url, api_key, timeout, connect_timeout, max_response_bytes):
    # The whole call is bounded by timeout + connect timeout, however slowly POK drips its answer.
    return PokApiClient(api_url, api_key, timeout=timeout, connect_timeout=connect_timeout,
                        max_response_bytes=max_response_bytes)


def get_client():
    """A pooled client for the configured POK account (one per process and configuration)."""
    return _cached_client(
        settings.POK_API_URL, settings.POK_API_KEY, settings.POK_TIMEOUT, settings.POK_CONNECT_TIMEOUT,
        settings.POK_MAX_RESPONSE_BYTES,
    )


def reset_clients():
    """Forget the pooled clients, e.g. after the POK settings changed (tests, the demo, the benchmarks)."""
    _cached_client.cache_clear()


def digest(*parts):
    """A stable cache-key fragment (the same in every worker process, unlike ``hash``)."""
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:32]


# Waiting for another worker's template fetch: polls of the cache before fetching anyway.
TEMPLATE_FETCH_WAIT_SECONDS = 5
TEMPLATE_FETCH_POLL_SECONDS = 0.05
_template_locks = {}
_template_locks_guard = threading.Lock()


def _local_lock(key):
    with _template_locks_guard:
        return _template_locks.setdefault(key, threading.Lock())


def get_template(client, template_id):
    """
    The template definition, cached so that issuing a credential costs one POST and no template GET.

    Single-flight on a miss: the threads of one process wait for each other (a lock), and the processes of all
    workers share the fetch through the Django cache (``cache.add`` as a short lease), so one template is fetched
    once per cache period, not once per thread or worker. The cache key includes the API URL so a sandbox and a
    production account never share entries.
    """
    key = f"openedx_pok:template:{digest(client.api_url, template_id)}"
    template = caching.get(key)
    if template is not None:
        return template
    with _local_lock(key):
        template = caching.get(key)
        if template is not None:
            return template
        lease = f"{key}:fetching"
        if not caching.add(lease, 1, TEMPLATE_FETCH_WAIT_SECONDS * 2):
            deadline = time.monotonic() + TEMPLATE_FETCH_WAIT_SECONDS
            while time.monotonic() < deadline:
                time.sleep(TEMPLATE_FETCH_POLL_SECONDS)
                template = caching.get(key)
                if template is not None:
                    return template
        try:
            template = client.get_template(template_id)
            caching.set(key, template, settings.POK_TEMPLATE_CACHE_TIMEOUT)
        finally:
            caching.delete(lease)
    return template


def template(template_id):
    """The template definition (cached); a template deleted on POK becomes a CourseSetupError staff can act on."""
    try:
        return get_template(get_client(), template_id)
    except PokNotFoundError as exc:
        raise CourseSetupError(
            _("The POK template {template} does not exist (was it deleted on POK?).").format(template=template_id)
        ) from exc


@dataclass(frozen=True)
class CourseSetup:
    """What issuing a credential in a course needs from its mapping and the course itself."""

    mapping: CertificateTemplate
    template_id: str
    course: compat.CourseInfo

    @property
    def emission_type(self):
        return self.mapping.emission_type

    @property
    def page_id(self):
        return self.mapping.page_id or settings.POK_DEFAULT_PAGE_ID


# Every course mapping, as plain data, in the Django cache: most courses of an LMS are not mapped, and their
# certificate pages must not pay a query to learn it. Saving or deleting a mapping forgets it; the timeout bounds
# staleness where a mapping changes without signals (bulk updates, another process's local-memory cache).
MAPPINGS_CACHE_KEY = "openedx_pok:mappings:v1"
MAPPINGS_CACHE_TIMEOUT = 300
_MAPPING_FIELDS = ("id", "course_key", "organization", "template_id", "emission_type", "page_id", "enabled")


def _load_mappings():
    courses, organizations = {}, {}
    for values in CertificateTemplate.objects.values(*_MAPPING_FIELDS):
        if values["course_key"]:
            courses[str(values["course_key"])] = values
        else:
            organizations[values["organization"]] = values
    return {"courses": courses, "organizations": organizations}


def _mappings():
    mappings = caching.get(MAPPINGS_CACHE_KEY)  # a cache outage costs a query, never an error
    if mappings is None:
        mappings = _load_mappings()
        caching.set(MAPPINGS_CACHE_KEY, mappings, MAPPINGS_CACHE_TIMEOUT)
    return mappings


def forget_mappings(**kwargs):
    """Drop the cached mappings (connected to the mapping model's save and delete signals)."""
    caching.delete(MAPPINGS_CACHE_KEY)


post_save.connect(forget_mappings, sender=CertificateTemplate, dispatch_uid="openedx_pok.forget_mappings.save")
post_delete.connect(forget_mappings, sender=CertificateTemplate, dispatch_uid="openedx_pok.forget_mappings.delete")
mappings_changed.connect(forget_mappings, sender=CertificateTemplate, dispatch_uid="openedx_pok.forget_mappings.bulk")


def mapping_for(course_key):
    """
    The mapping that applies to ``course_key`` (an unsaved CertificateTemplate built from the cache), or None.

    Same rule as ``CertificateTemplate.objects.for_course``: a course's own mapping wins over its organization's
    default, even when disabled (that is how one course opts out). No query when the mappings are cached.
    """
    mappings = _mappings()
    values = mappings["courses"].get(str(course_key))
    if values is None:
        values = mappings["organizations"].get(getattr(course_key, "org", None))
    return CertificateTemplate(**values) if values is not None else None


def course_setup(course_key):
    """The :class:`CourseSetup` of a POK-enabled course; CourseSetupError saying what is missing otherwise."""
    mapping = mapping_for(course_key)
    if mapping is None or not mapping.enabled:
        raise CourseSetupError(_("The course is not mapped to a POK template (or its mapping is disabled)."))
    template_id = mapping.template_id or settings.POK_DEFAULT_TEMPLATE_ID
    if not template_id:
        raise CourseSetupError(
            _("No POK template is set for this course (course mapping or POK_DEFAULT_TEMPLATE_ID).")
        )
    course = compat.get_course(course_key)
    if course is None:
        raise CourseSetupError(_("The course {course} does not exist in Open edX.").format(course=course_key))
    return CourseSetup(mapping=mapping, template_id=template_id, course=course)


def _account_key():
    # Per POK account (API URL and key), hashed: the key never appears in a cache key in clear.
    return f"openedx_pok:account-not-before:{digest(settings.POK_API_URL, settings.POK_API_KEY)}"


def account_wait_seconds():
    """
    Seconds every worker must still wait before calling this POK account (it answered 429 with Retry-After), else 0.

    Shared through the Django cache the LMS configures, so one rate limit holds for all workers and all task chains.
    """
    not_before = caching.get(_account_key())  # a cache outage: no shared wait, the per-row backoff still applies
    if not not_before:
        return 0.0
    return max(0.0, not_before - time.time())


def note_rate_limited(seconds):
    """Record that this POK account asked every caller to wait ``seconds`` (POK's Retry-After, capped)."""
    if seconds <= 0:
        return
    until = time.time() + seconds
    if until > (caching.get(_account_key()) or 0):
        caching.set(_account_key(), until, int(seconds) + 1)
