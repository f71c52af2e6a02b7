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
from django.utils import timezone
from django.utils.translation import gettext as _

from openedx_pok import accounts, caching, compat
from openedx_pok.client import PokApiClient
from openedx_pok.exceptions import CourseSetupError, PokConfigurationError, PokNotFoundError
from openedx_pok.models import CertificateTemplate, mappings_changed

log = logging.getLogger(__name__)


@lru_cache(maxsize=32)
def _cached_client(api_url, api_key, timeout, connect_timeout, max_response_bytes):
    # The whole call is bounded by timeout + connect timeout, however slowly POK drips its answer.
    return PokApiClient(api_url, api_key, timeout=timeout, connect_timeout=connect_timeout,
                        max_response_bytes=max_response_bytes)


def get_client(account=None):
    """
    A pooled client for the POK account called ``account`` (None: ``default``), one per process and configuration.

    PokConfigurationError (naming the account, never its key) when the account is missing or malformed.
    """
    resolved = accounts.get_account(account)
    return _cached_client(
        resolved.api_url, resolved.api_key, settings.POK_TIMEOUT, settings.POK_CONNECT_TIMEOUT,
        settings.POK_MAX_RESPONSE_BYTES,
    )


def reset_clients():
    """
    Forget the pooled clients and this process's short-lived copies (mappings, course facts), e.g. after the POK
    settings or the course data changed (tests, the demo, the benchmarks).
    """
    _cached_client.cache_clear()
    process_copies.clear()


def account_api_hosts():
    """The API hosts of every usable POK account (credential images may be served from them)."""
    return accounts.api_hosts()


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


def get_template(client, template_id, scope=""):
    """
    The template definition, cached so that issuing a credential costs one POST and no template GET.

    Single-flight on a miss: the threads of one process wait for each other (a lock), and the processes of all
    workers share the fetch through the Django cache (``cache.add`` as a short lease), so one template is fetched
    once per cache period, not once per thread or worker. The cache key includes the API URL and ``scope`` (the
    account) so a sandbox and a production account, or two organizations on one POK, never share entries.
    """
    key = _template_key(client, template_id, scope)
    template = process_copies.templates.get(key)
    if template is None:
        template = _shared_template(key, client, template_id)
        process_copies.templates.put(key, template)
    return template


def _shared_template(key, client, template_id):
    """The definition from the shared cache, else fetched once for every thread and worker (see get_template)."""
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


def template(template_id, account=None):
    """The template definition (cached); a template deleted on POK becomes a CourseSetupError staff can act on."""
    client = get_client(account)
    try:
        return get_template(client, template_id, scope=_account_scope(account))
    except PokNotFoundError as exc:
        raise CourseSetupError(
            _("The POK template {template} does not exist on POK account '{account}' (was it deleted on POK?).")
            .format(template=template_id, account=account or accounts.DEFAULT_ACCOUNT)
        ) from exc


def forget_template(template_id, account=None):
    """Drop a cached template definition (the catalog sync saw it change on POK)."""
    try:
        client = get_client(account)
    except PokConfigurationError:
        return
    key = _template_key(client, template_id, _account_scope(account))
    process_copies.templates.pop(key)
    caching.delete(key)


def _template_key(client, template_id, scope):
    parts = (client.api_url, scope, template_id) if scope else (client.api_url, template_id)
    return f"openedx_pok:template:{digest(*parts)}"


def _account_scope(account):
    # The account's key, hashed: two POK organizations on one API URL have different templates under equal ids.
    try:
        resolved = accounts.get_account(account)
    except PokConfigurationError:
        return str(account or accounts.DEFAULT_ACCOUNT)
    return digest(resolved.name, resolved.api_key)


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

    @property
    def account(self):
        """The name of the POK account this course issues with."""
        return self.mapping.account or accounts.DEFAULT_ACCOUNT

    @property
    def parameter_sources(self):
        """{parameter id: source spec} chosen on the mapping; empty means automatic resolution."""
        return self.mapping.parameter_sources or {}


# Every course mapping, as plain data, in the Django cache: most courses of an LMS are not mapped, and their
# certificate pages must not pay a query to learn it. Saving or deleting a mapping forgets it; the timeout bounds
# staleness where a mapping changes without signals (bulk updates, another process's local-memory cache).
MAPPINGS_CACHE_KEY = "openedx_pok:mappings:v2"
MAPPINGS_CACHE_TIMEOUT = 300
_MAPPING_FIELDS = ("id", "course_key", "organization", "template_id", "emission_type", "page_id", "enabled",
                   "account", "parameter_sources")


def _load_mappings():
    courses, organizations = {}, {}
    for values in CertificateTemplate.objects.values(*_MAPPING_FIELDS):
        if values["course_key"]:
            courses[str(values["course_key"])] = values
        else:
            organizations[values["organization"]] = values
    return {"courses": courses, "organizations": organizations}


# On top of the shared cache, each process keeps what it read for about a second: an award (the creation step, then
# CERTIFICATE_CREATED), an issuance (the account's wait, then the course setup) and a busy certificate page ask for
# the mappings several times in a row, and each ask was a cache round trip and an unpickling of every mapping. The
# local copy only ever answers for a course it finds mapped: "not mapped" is asked of the shared cache again, so a
# course mapped a moment ago in another process (the admin, then its backfill) is never skipped nor held for it. A
# changed or disabled mapping reaches the other processes up to that second later; this process forgets at once.
MAPPINGS_LOCAL_SECONDS = 1.0
# Course facts (title, organization name, dates, signatories) per course run, kept for a minute in each process: every
# learner of a course needs the same ones, and in the LMS reading them loads the course from the modulestore. A
# changed course title reaches new credentials within that minute.
COURSE_INFO_SECONDS = 60.0
COURSE_INFO_ENTRIES = 512
# A template definition, kept for 10 s in each process: every credential needs it, and each read was a cache round
# trip and an unpickling. forget_template (the catalog sync saw it change) drops this process's copy at once; other
# processes follow within those seconds.
TEMPLATE_LOCAL_SECONDS = 10.0
# An account's shared wait (POK's Retry-After), kept for a second: every issuance asks for it before its POST. A 429
# seen by another worker reaches this process up to that second later; one this process sees applies here at once.
ACCOUNT_WAIT_LOCAL_SECONDS = 1.0


class _ShortLived:
    """A map of this process whose entries expire ``seconds`` after they were put; bounded, refilled by use."""

    def __init__(self, seconds, entries=COURSE_INFO_ENTRIES):
        self.seconds, self.entries = seconds, entries
        self._values = {}  # key -> (expires at, value)

    def get(self, key):
        """The value put under ``key`` less than ``seconds`` ago, else None."""
        entry = self._values.get(key)
        return entry[1] if entry is not None and time.monotonic() < entry[0] else None

    def put(self, key, value):
        if len(self._values) >= self.entries:
            self._values.clear()
        self._values[key] = (time.monotonic() + self.seconds, value)

    def pop(self, key):
        self._values.pop(key, None)

    def clear(self):
        self._values.clear()


class _ProcessCopies:
    """This process's short-lived copies (module state: every thread of a worker shares them)."""

    def __init__(self):
        self.courses = _ShortLived(COURSE_INFO_SECONDS)  # str(course key) -> CourseInfo
        self.templates = _ShortLived(TEMPLATE_LOCAL_SECONDS)  # template cache key -> definition
        self.account_waits = _ShortLived(ACCOUNT_WAIT_LOCAL_SECONDS)  # account key -> not before (wall clock) or 0
        self.clear()

    def clear(self):
        self.mappings = (0.0, None)  # (expires at, mappings): answers only for mapped courses, see _mappings
        for copies in (self.courses, self.templates, self.account_waits):
            copies.clear()


process_copies = _ProcessCopies()


def _mappings(local=True):
    """(every mapping, whether this process's copy answered)."""
    expires, mappings = process_copies.mappings
    if local and mappings is not None and time.monotonic() < expires:
        return mappings, True
    mappings = caching.get(MAPPINGS_CACHE_KEY)  # a cache outage costs a query, never an error
    if mappings is None:
        mappings = _load_mappings()
        caching.set(MAPPINGS_CACHE_KEY, mappings, MAPPINGS_CACHE_TIMEOUT)
    process_copies.mappings = (time.monotonic() + MAPPINGS_LOCAL_SECONDS, mappings)
    return mappings, False


def forget_mappings(**kwargs):
    """Drop the cached mappings (connected to the mapping model's save and delete signals)."""
    process_copies.mappings = (0.0, None)
    caching.delete(MAPPINGS_CACHE_KEY)


def course_info(course_key):
    """The course's :class:`~openedx_pok.compat.CourseInfo` (None when it does not exist), kept for a minute."""
    key = str(course_key)
    course = process_copies.courses.get(key)
    if course is None:
        course = compat.get_course(course_key)
        if course is not None:  # a course that does not exist yet is asked for again
            process_copies.courses.put(key, course)
    return course


def certificates_release(course):
    """
    When the LMS shows the certificates of ``course`` (a CourseInfo): :meth:`CourseInfo.certificates_release`.

    This process's copy of the course may be up to a minute old. A release it says happened within that minute is
    checked against the course itself before anything is sent: the course team may just have moved the date.
    """
    release = course.certificates_release()
    if release.released and release.date is not None and \
            (timezone.now() - release.date).total_seconds() < COURSE_INFO_SECONDS:
        fresh = compat.get_course(course.course_key)
        if fresh is not None:
            process_copies.courses.put(str(course.course_key), fresh)
            release = fresh.certificates_release()
    return release


post_save.connect(forget_mappings, sender=CertificateTemplate, dispatch_uid="openedx_pok.forget_mappings.save")
post_delete.connect(forget_mappings, sender=CertificateTemplate, dispatch_uid="openedx_pok.forget_mappings.delete")
mappings_changed.connect(forget_mappings, sender=CertificateTemplate, dispatch_uid="openedx_pok.forget_mappings.bulk")


def mapping_for(course_key):
    """
    The mapping that applies to ``course_key`` (an unsaved CertificateTemplate built from the cache), or None.

    Same rule as ``CertificateTemplate.objects.for_course``: a course's own mapping wins over its organization's
    default, even when disabled (that is how one course opts out). No query when the mappings are cached.
    """
    mappings, local = _mappings()
    values = _mapping_values(mappings, course_key)
    if values is None and local:
        values = _mapping_values(_mappings(local=False)[0], course_key)  # "not mapped": only the shared cache says
    return CertificateTemplate(**values) if values is not None else None


def _mapping_values(mappings, course_key):
    values = mappings["courses"].get(str(course_key))
    if values is None:
        values = mappings["organizations"].get(getattr(course_key, "org", None))
    return values


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
    course = course_info(course_key)
    if course is None:
        raise CourseSetupError(_("The course {course} does not exist in Open edX.").format(course=course_key))
    return CourseSetup(mapping=mapping, template_id=template_id, course=course)


def account_for(course_key):
    """The POK account name of the course's mapping (``default`` when unmapped); no query when cached."""
    mapping = mapping_for(course_key)
    return (mapping.account if mapping is not None else "") or accounts.DEFAULT_ACCOUNT


def _account_key(account=None):
    # Per POK account (name, API URL and key), hashed: the key never appears in a cache key in clear.
    return f"openedx_pok:account-not-before:{_account_scope(account)}"


def account_wait_seconds(account=None):
    """
    Seconds every worker must still wait before calling this POK account (it answered 429 with Retry-After), else 0.

    Shared through the Django cache the LMS configures, so one rate limit holds for all workers and all task chains
    of that account, and only of that account: another POK organization is not slowed down by it.
    """
    key = _account_key(account)
    not_before = process_copies.account_waits.get(key)
    if not_before is None:
        not_before = caching.get(key) or 0  # a cache outage: no shared wait, the per-row backoff applies
        process_copies.account_waits.put(key, not_before)
    return max(0.0, not_before - time.time()) if not_before else 0.0


def note_rate_limited(seconds, account=None):
    """Record that this POK account asked every caller to wait ``seconds`` (POK's Retry-After, capped)."""
    if seconds <= 0:
        return
    until = time.time() + seconds
    key = _account_key(account)
    shared = caching.get(key) or 0
    if until > shared:
        caching.set(key, until, int(seconds) + 1)
    process_copies.account_waits.put(key, max(until, shared))
