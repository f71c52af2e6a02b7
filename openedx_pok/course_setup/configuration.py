"""
How the plugin is configured to reach POK, and how a course is set up for POK credentials.

This module turns settings and course mappings into ready-to-use things: a pooled API client per POK account, cached
template definitions (so issuing a credential costs one POST and no template GET), and the :class:`CourseSetup` of a
course (its mapping, template and course data) or a :class:`~openedx_pok.exceptions.CourseSetupError` that says what
an admin has to fix. It reads settings; the client below it never does.
"""
import hashlib
import logging
import time
from dataclasses import dataclass
from functools import cached_property, lru_cache

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from django.utils.translation import gettext as _

from openedx_pok import caching, compat
from openedx_pok.client import PokApiClient
from openedx_pok.course_setup import accounts
from openedx_pok.exceptions import CourseSetupError, PokConfigurationError, PokNotFoundError
from openedx_pok.models import CertificateTemplate

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
    Forget the pooled clients and this request's copies (mappings, templates, course facts), e.g. after the POK
    settings changed (tests, the demo, the benchmarks).
    """
    _cached_client.cache_clear()
    caching.clear_request_cache()


def account_api_hosts():
    """The API hosts of every usable POK account (credential images may be served from them)."""
    return accounts.api_hosts()


@lru_cache(maxsize=1024, typed=True)  # the same few accounts and courses, asked for several times per credential
def digest(*parts):
    """A stable cache-key fragment (the same in every worker process, unlike ``hash``)."""
    return hashlib.sha256("\x1f".join(str(part) for part in parts).encode()).hexdigest()[:32]


def get_template(client, template_id, scope=""):
    """
    The template definition, cached so that issuing a credential costs one POST and no template GET.

    In the Django cache for ``POK_TEMPLATE_CACHE_TIMEOUT``, shared by every worker (one GET per cache period; workers
    that miss it at the same moment each fetch it once), and in the request cache for the rest of the request or
    task. The cache key includes the API URL and ``scope`` (the account) so a sandbox and a production account, or
    two organizations on one POK, never share entries.
    """
    return caching.tiered(_template_key(client, template_id, scope), lambda: client.get_template(template_id),
                          settings.POK_TEMPLATE_CACHE_TIMEOUT)


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
    """
    Drop a cached template definition, so the next issuance reads it from POK: after a catalog sync of it, a staff
    retry, a change of a mapping that uses it, or POK refusing a credential made with it.
    """
    if not template_id:
        return
    try:
        client = get_client(account)
    except PokConfigurationError:
        return
    caching.forget(_template_key(client, template_id, _account_scope(account)))


def forget_course_template(course_key):
    """Drop the cached definition of the template ``course_key`` issues with (see :func:`forget_template`)."""
    mapping = mapping_for(course_key)
    if mapping is not None:
        forget_template(mapping.template_id or settings.POK_DEFAULT_TEMPLATE_ID, mapping.account)


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


@dataclass(frozen=True, eq=False)
class CourseSetup:
    """What issuing a credential in a course needs from its mapping (its cached fields) and the course itself."""

    values: dict
    template_id: str
    course: compat.CourseInfo

    @cached_property
    def mapping(self):
        """The mapping as an unsaved model instance, for what needs the model (its labels); built only then."""
        return CertificateTemplate(**self.values)

    @property
    def emission_type(self):
        return self.values["emission_type"]

    @property
    def page_id(self):
        return self.values["page_id"] or settings.POK_DEFAULT_PAGE_ID

    @property
    def account(self):
        """The name of the POK account this course issues with."""
        return self.values["account"] or accounts.DEFAULT_ACCOUNT

    @property
    def parameter_sources(self):
        """{parameter id: source spec} chosen on the mapping; empty means automatic resolution."""
        return self.values["parameter_sources"] or {}


# Every course mapping, as plain data, in the Django cache (and the request cache: an award, an issuance and a busy
# certificate page ask several times): most courses of an LMS are not mapped, and their certificate pages must not pay
# a query to learn it. Saving or deleting a mapping forgets it; the timeout bounds staleness where a mapping changes
# without signals and its caller forgot to forget, or in another process's local-memory cache.
MAPPINGS_CACHE_KEY = "openedx_pok:mappings:v3"
MAPPINGS_CACHE_TIMEOUT = 300
_MAPPING_FIELDS = ("id", "course_key", "organization", "template_id", "emission_type", "page_id", "enabled",
                   "account", "parameter_sources")
# Course facts (title, organization name, dates, signatories) per course run, shared for a minute: every learner of a
# course needs the same ones, and in the LMS reading them loads the course from the modulestore. A changed course
# title reaches new credentials within that minute.
COURSE_INFO_SECONDS = 60


def _load_mappings():
    courses, organizations = {}, {}
    for values in CertificateTemplate.objects.values(*_MAPPING_FIELDS):
        if values["course_key"]:
            # As a string: every request and task unpickles all the mappings, and a CourseKey is slow to unpickle.
            values["course_key"] = str(values["course_key"])
            courses[values["course_key"]] = values
        else:
            organizations[values["organization"]] = values
    return {"courses": courses, "organizations": organizations}


def forget_mappings(instance=None, **kwargs):
    """
    Drop the cached mappings: on a mapping's post_save and post_delete, and after any bulk change (its caller). A
    saved or deleted mapping also drops its template's cached definition (the course team may have just fixed it).
    """
    caching.forget(MAPPINGS_CACHE_KEY)
    if instance is not None:
        forget_template(instance.template_id or settings.POK_DEFAULT_TEMPLATE_ID, instance.account)


post_save.connect(forget_mappings, sender=CertificateTemplate, dispatch_uid="openedx_pok.forget_mappings.save")
post_delete.connect(forget_mappings, sender=CertificateTemplate, dispatch_uid="openedx_pok.forget_mappings.delete")


def _course_cache_key(course_key):
    return f"openedx_pok:course:{digest(course_key)}"


def course_info(course_key):
    """The course's :class:`~openedx_pok.compat.CourseInfo` (None when it does not exist), kept for a minute."""
    # A course that does not exist yet is not kept: it is asked for again.
    return caching.tiered(_course_cache_key(course_key), lambda: compat.get_course(course_key), COURSE_INFO_SECONDS)


def scope_warning(course_key, organization):
    """
    Why a mapping's course (or, for an organization's default, its organization) is not in Open edX yet, for staff,
    or "". A warning, not an error: a mapping may be made before its course is created.
    """
    if course_key:
        if compat.get_course(course_key) is None:
            return _("The course {course} does not exist in Open edX yet (is the key spelled right?): the mapping "
                     "was saved and applies once the course is created.").format(course=course_key)
        return ""
    if organization and not compat.get_course_keys_for_org(organization) and \
            compat.get_organization_name(organization) is None:
        return _("The organization {org} is not known to Open edX yet and has no courses (is its short name "
                 "spelled right?): the mapping was saved and applies to its courses once they exist.").format(
            org=organization)
    return ""


def forget_course(course_key):
    """Drop a course's cached facts: the next credential reads the course again rather than within the minute."""
    caching.forget(_course_cache_key(course_key))


def certificates_release(course):
    """
    When the LMS shows the certificates of ``course`` (a CourseInfo): :meth:`CourseInfo.certificates_release`.

    The cached copy of the course may be up to a minute old. A release it says happened within that minute is
    checked against the course itself before anything is sent: the course team may just have moved the date.
    """
    release = course.certificates_release()
    if release.released and release.date is not None and \
            (timezone.now() - release.date).total_seconds() < COURSE_INFO_SECONDS:
        fresh = compat.get_course(course.course_key)
        if fresh is not None:
            caching.set_tiers(_course_cache_key(course.course_key), fresh, COURSE_INFO_SECONDS)
            release = fresh.certificates_release()
    return release


def mapping_for(course_key):
    """
    The mapping that applies to ``course_key`` (an unsaved CertificateTemplate built from the cache), or None.

    Same rule as ``CertificateTemplate.objects.for_course``: a course's own mapping wins over its organization's
    default, even when disabled (that is how one course opts out). No query when the mappings are cached.
    """
    values = _mapping_values(course_key)
    return CertificateTemplate(**values) if values is not None else None


def _mapping_values(course_key):
    """The cached fields of the mapping :func:`mapping_for` finds, or None."""
    mappings = caching.tiered(MAPPINGS_CACHE_KEY, _load_mappings, MAPPINGS_CACHE_TIMEOUT)
    values = mappings["courses"].get(str(course_key))
    if values is None:
        values = mappings["organizations"].get(getattr(course_key, "org", None))
    return values


def course_setup(course_key):
    """The :class:`CourseSetup` of a POK-enabled course; CourseSetupError saying what is missing otherwise."""
    values = _mapping_values(course_key)
    if values is None or not values["enabled"]:
        raise CourseSetupError(_("The course is not mapped to a POK template (or its mapping is disabled)."))
    template_id = values["template_id"] or settings.POK_DEFAULT_TEMPLATE_ID
    if not template_id:
        raise CourseSetupError(
            _("No POK template is set for this course (course mapping or POK_DEFAULT_TEMPLATE_ID).")
        )
    course = course_info(course_key)
    if course is None:
        raise CourseSetupError(_("The course {course} does not exist in Open edX.").format(course=course_key))
    return CourseSetup(values=values, template_id=template_id, course=course)


def read_ahead(course_keys, per_account=None):
    """
    What issuing credentials of ``course_keys`` reads from the Django cache (the mappings and the courses, then each
    mapped course's template definition and account wait, and ``per_account``: {key of an account: its default}
    functions), read into this task's copies in two round trips instead of one per value (``caching.prefetch``).
    """
    caching.prefetch({MAPPINGS_CACHE_KEY: caching.COMPUTE, **{
        _course_cache_key(course_key): caching.COMPUTE for course_key in course_keys}})
    second = {}
    for course_key in course_keys:
        try:
            setup = course_setup(course_key)
            client = get_client(setup.account)
        except (CourseSetupError, PokConfigurationError):
            continue  # issuance holds the credential with what to fix
        second[_template_key(client, setup.template_id, _account_scope(setup.account))] = caching.COMPUTE
        second[_account_key(setup.account)] = 0
        second.update({key_of(setup.account): default for key_of, default in (per_account or {}).items()})
    caching.prefetch(second)


def account_for(course_key):
    """The POK account name of the course's mapping (``default`` when unmapped); no query when cached."""
    # From the cached fields, without building a model instance: asked before every POST and after every failure.
    values = _mapping_values(course_key)
    return (values["account"] if values is not None else "") or accounts.DEFAULT_ACCOUNT


def _account_key(account=None):
    # Per POK account (name, API URL and key), hashed: the key never appears in a cache key in clear.
    return f"openedx_pok:account-not-before:{_account_scope(account)}"


def account_wait_seconds(account=None):
    """
    Seconds every worker must still wait before calling this POK account (it answered 429 with Retry-After), else 0.

    Shared through the Django cache the LMS configures, so one rate limit holds for all workers and all task chains
    of that account, and only of that account: another POK organization is not slowed down by it. Read once per
    request or task (a task issues a few credentials): a 429 another worker saw applies from this worker's next task.
    """
    not_before = caching.tiered_get(_account_key(account), 0)  # cache down: no shared wait, the row's backoff holds
    return max(0.0, not_before - time.time()) if not_before else 0.0


def note_rate_limited(seconds, account=None):
    """Record that this POK account asked every caller to wait ``seconds`` (POK's Retry-After, capped)."""
    if seconds <= 0:
        return
    until = time.time() + seconds
    key = _account_key(account)
    shared = caching.get(key) or 0
    if until > shared:  # never shortens a longer wait already shared
        caching.set(key, until, int(seconds) + 1)
    caching.remember(key, max(until, shared))  # this request or task waits at once, even with the cache down
