"""
A POK outage (a deploy, an overload): the account's work waits for POK instead of spending every credential's tries,
and resumes by itself. Staff see the pause (``pok_check``, the admin); each credential that waits says why.

When :data:`PAUSE_AFTER_FAILURES` requests in a row to one POK account fail without POK processing them
(``PokApiError.unprocessed``: a refused or timed-out connection, a TLS failure before sending, 429, 503), the account
is *paused*. The pause holds through the account's Retry-After gate (``configuration.note_rate_limited`` and
``account_wait_seconds``), so every worker, task chain, reconcile run and staff retry of that account waits, and
waiting spends no try. Once the gate opens, one task (a lock in the Django cache) asks POK's health with
``GET /organization/me``: still unavailable, the gate closes again for twice as long (at most
:data:`PROBE_DELAY_MAX`); any other answer ends the pause and that task goes on with its credential. The others
follow as their own waits end, spread over the last wait so that POK is not hit by all of them at once.

Why ours (ADR 0008): Celery's retry and rate limits are per task and per worker, an outage is per POK account and
seen by all of them. Its state lives in the Django cache, as the gate's does: with the cache down there is no pause,
and each credential's own backoff and tries hold (ending failed + retryable, which the reconcile run sends again).
"""
import logging
import time
from datetime import UTC, datetime

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from openedx_pok import caching
from openedx_pok.course_setup import accounts, configuration
from openedx_pok.exceptions import PokApiError, PokConfigurationError

log = logging.getLogger(__name__)

# Requests in a row, to one account, that POK did not process: then the account pauses. A few, so that one refused
# connection (a restarting proxy) costs a retry, not a pause, and an outage costs a handful of tries in all.
PAUSE_AFTER_FAILURES = 5
# A streak is forgotten this long after its first failure: failures spread over a quiet day are no outage.
STREAK_SECONDS = 120
# Seconds from the pause to the first health check; doubled after each failed one, up to the maximum, so that a
# recovered POK is noticed within that much and a long outage costs two GETs a minute.
PROBE_DELAY_BASE = 2
PROBE_DELAY_MAX = 30
# The health check's lock: longer than one request may take (connect timeout + read deadline).
PROBE_LOCK_SECONDS = 60
# How long a pause is remembered without a health check (a worker that died mid-check leaves it to the next one).
PAUSE_SECONDS = 7 * 24 * 3600


def _scope(account):
    # Per account name, API URL and key, hashed as for the gate: a changed key or URL starts without a pause.
    try:
        resolved = accounts.get_account(account)
    except PokConfigurationError:
        return configuration.digest(account or accounts.DEFAULT_ACCOUNT)
    return configuration.digest(resolved.name, resolved.api_url, resolved.api_key)


def _key(kind, account):
    return f"openedx_pok:account-{kind}:{_scope(account)}"


def pause_key(account):
    """The cache key of the account's pause (:func:`current`)."""
    return _key("pause", account)


def streak_key(account):
    """The cache key of the account's streak of requests POK did not process; deleting it ends the streak."""
    return _key("streak", account)


def streak_to_end(account):
    """
    The keys a request POK processed must delete to end the account's streak: its key, unless this task knows there
    is no streak. A message reads the streak with the account's pause (``machine.message``), once, as it reads the
    pause; a failure this task counts is known too. So a streak other workers start while a message runs is ended
    by their next processed request or by a later message's, as a pause they start is seen at a later task.
    """
    known = caching.known(streak_key(account))
    return [] if known is not caching.UNKNOWN and not known else [streak_key(account)]


def _kind(exc):
    """What failed, for logs: a status or an exception class, never a message (it may quote a body)."""
    return f"HTTP {exc.status_code}" if getattr(exc, "status_code", None) else type(exc).__name__


def probe_delay(probes):
    """Seconds to the next health check after ``probes`` failed ones."""
    return min(PROBE_DELAY_MAX, PROBE_DELAY_BASE * 2 ** probes)


def current(account):
    """
    The account's pause, or None: ``{"since", "failures", "error", "probes", "next_check"}`` (times as Unix
    seconds). Read once per task, as the gate is (a pause another worker starts is seen at this task's next failure).
    """
    return caching.tiered_get(pause_key(account), None)


def note(account, exc=None):
    """
    Count the outcome of a request to ``account``: ``exc`` None or processed by POK breaks the streak; one that POK
    did not process adds to it, and the one that reaches :data:`PAUSE_AFTER_FAILURES` starts the pause.
    """
    if exc is None or not exc.unprocessed:
        caching.delete(*streak_to_end(account))
        return
    count = caching.incr(streak_key(account), STREAK_SECONDS)
    caching.remember(streak_key(account), count or 1)  # this task knows of a streak now (:func:`streak_to_end`)
    if not count or count < PAUSE_AFTER_FAILURES:
        return
    now = time.time()
    pause = {"since": now, "failures": count, "error": exc.message, "probes": 0, "next_check": now + PROBE_DELAY_BASE}
    key = pause_key(account)
    if caching.add(key, pause, PAUSE_SECONDS, when_down=False):
        log.warning("POK: account %s paused: %s requests in a row not processed by POK (last: %s)", account, count,
                    _kind(exc))
    else:
        pause = caching.get(key) or pause  # another worker started it
    caching.remember(key, pause)
    configuration.note_rate_limited(PROBE_DELAY_BASE, account)


def wait(account):
    """
    ``(seconds, pause)``: how long the account's work must still wait (0: go) and its pause (None: not paused).

    With the gate open and the account paused, this task checks POK's health first (:func:`_check_health`); while
    another task checks it, this one waits as long as that check's delay.
    """
    remaining = configuration.account_wait_seconds(account)
    pause = current(account)
    if pause is None or remaining > 0:
        return remaining, pause
    lock = _key("probe", account)
    if not caching.add(lock, 1, PROBE_LOCK_SECONDS, when_down=False):
        return float(probe_delay(pause["probes"])), pause
    try:
        return _check_health(account, pause)
    finally:
        caching.delete(lock)


def _check_health(account, pause):
    """``GET /organization/me``: a transient failure keeps the pause (next check later), anything else ends it."""
    try:
        configuration.get_client(account).get_organization()
    except PokApiError as exc:
        if exc.retryable:
            probes = pause["probes"] + 1
            delay = probe_delay(probes)
            retry_after = getattr(exc, "retry_after", None)
            if retry_after:
                delay = max(delay, min(float(retry_after), settings.POK_RETRY_BACKOFF_MAX))
            pause = {**pause, "probes": probes, "error": exc.message, "next_check": time.time() + delay}
            caching.set_tiers(pause_key(account), pause, PAUSE_SECONDS)
            configuration.note_rate_limited(delay, account)
            log.info("POK: account %s still unavailable (%s); next health check in %ss", account, _kind(exc), delay)
            return float(delay), pause
    except PokConfigurationError:
        pass  # not an outage: issuance holds the credential with what to fix
    resume(account)
    log.info("POK: account %s answers again; resumed after %.0f s paused", account, time.time() - pause["since"])
    return 0.0, None


def resume(account):
    """End the account's pause (POK answers again, or staff say so); its credentials go as their waits end."""
    caching.forget(pause_key(account))
    caching.delete(streak_key(account))


def _when(seconds):
    return date_format(timezone.localtime(datetime.fromtimestamp(seconds, UTC)), "DATETIME_FORMAT")


def credential_reason(account, pause):
    """Why a credential of a paused account waits, for staff (the credential's reason)."""
    return _("Waiting for POK: account '{account}' is paused since {since} because POK did not take {count} requests "
             "in a row (last: {error}). This credential uses no try while it waits and is sent when POK answers "
             "again.").format(account=account, since=_when(pause["since"]), count=pause["failures"],
                              error=pause["error"])


def describe(account, pause):
    """The pause of an account in one sentence, for ``pok_check`` and the admin."""
    return _("POK account '{account}' is paused since {since}: POK did not take {count} requests in a row (last: "
             "{error}). Its credentials wait without using their tries; issuance resumes by itself when POK answers "
             "its health check again (next check {next}, {probes} failed so far).").format(
                 account=account, since=_when(pause["since"]), count=pause["failures"], error=pause["error"],
                 next=_when(pause["next_check"]), probes=pause["probes"])


def paused_accounts():
    """``[(account name, pause)]`` of every configured account that is paused now (the Django cache, not a copy)."""
    return [(name, pause) for name in accounts.account_names()
            if (pause := caching.get(pause_key(name))) is not None]
