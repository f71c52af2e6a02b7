"""
Exceptions the plugin raises on purpose.

Everything derives from :class:`OpenedxPokError` so callers at the edges (Celery tasks, admin actions, the LMS
pipeline steps) can catch "anything the plugin chose to raise" in one place and let real bugs propagate.

Hierarchy::

    OpenedxPokError                 base of every deliberate error
    +-- PokConfigurationError       the plugin cannot talk to POK as configured (empty API URL or key, ...)
    +-- PokApiError                 a call to the POK API failed; carries what a retry policy needs to decide
    |   +-- PokAuthenticationError  401/403: wrong or revoked key; permanent
    |   +-- PokNotFoundError        404: unknown template, page or credential; permanent
    |   +-- PokValidationError      other 4xx: POK refused the payload; permanent; ``message`` is POK's own
    |   +-- PokRateLimitedError     429: transient; ``retry_after`` seconds when POK said so
    |   +-- PokServerError          5xx: transient; a POST may have been processed (never after a 503)
    |   +-- PokNetworkError         connect/read timeout, refused or dropped connection: transient
    |   +-- PokResponseError        an answer we cannot use (bad 2xx body, too large, redirect); see its docstring
    +-- IssuanceError               a credential cannot be issued until someone acts; ``reason`` says what to do
        +-- LearnerDataError        the learner's data cannot make a valid credential (no usable name, no email,
        |                           a template parameter without a value)
        +-- CourseSetupError        the course is not (or wrongly) mapped: no template, template gone on POK, ...
        +-- CertificateNotReady     the Open edX certificate is not there (yet); retried, since it may still come
    +-- CertificatesNotReleased     not an error: the course releases its certificates later; the credential waits
    +-- RetryLater                  not an error: the state machine asks for the same step again after a countdown

``PokApiError.ambiguous`` is the important bit for "exactly once": it is True only for a POST that may have created
a credential at POK although we got no usable answer, so the caller must record the attempt as possibly successful
rather than blindly POST again. ``PokApiError.answered`` is True when POK sent an HTTP answer (every error except
PokNetworkError and PokConfigurationError): POK processed the request, even if the answer was unusable.
``PokApiError.unprocessed`` is its opposite: POK surely did not process the request (refused or timed-out connection,
a TLS failure before sending, 429, 503), so it never counts as ambiguous, a retry is safe, and several in a row say
that POK is unavailable (an outage pauses the account, see ``openedx_pok.issuance.outage``).

Messages are short, human readable (staff see them in admin) and never contain the API key or request bodies; the
client is responsible for keeping secrets out of what it passes in, these classes only bound the length.
"""

MAX_MESSAGE_LENGTH = 500


def _shorten(text, limit=MAX_MESSAGE_LENGTH):
    """Bound a message so a huge HTML error page from a proxy cannot flood the admin or the logs."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    return text[: limit - 3].rstrip() + "..."


class OpenedxPokError(Exception):
    """Base class of every error the plugin raises deliberately (as opposed to bugs)."""


class PokConfigurationError(OpenedxPokError):
    """The plugin is configured in a way that cannot work (e.g. empty POK API URL or key); fix the settings."""


class PokApiError(OpenedxPokError):
    """
    A call to the POK API did not give a usable answer.

    The class tells *why*; the attributes tell a retry policy what it may do: ``retryable`` (trying again later may
    succeed) and ``ambiguous`` (a POST may have reached POK, so a credential may already exist). ``status_code`` is
    the HTTP status when POK answered at all, ``endpoint`` (e.g. ``"POST /credential"``) says which call failed.
    ``answered`` says POK sent an HTTP answer; ``unprocessed`` that POK surely did not process the request (a retry
    is safe and the failure says POK is unavailable); ``raw_excerpt`` is a short, scrubbed start
    of an unusable body for staff to read (never in ``str()``: it may hold personal data of the receiver).
    """

    retryable = False
    unprocessed = False

    def __init__(self, message, *, status_code=None, retryable=None, ambiguous=False, endpoint=None,
                 answered=False, raw_excerpt="", unprocessed=None):
        self.message = _shorten(message) or self.__class__.__name__
        self.status_code = status_code
        # Instance attribute shadows the class default only when the caller knows better.
        self.retryable = type(self).retryable if retryable is None else bool(retryable)
        self.unprocessed = type(self).unprocessed if unprocessed is None else bool(unprocessed)
        self.ambiguous = bool(ambiguous) and not self.unprocessed
        self.endpoint = endpoint
        self.answered = bool(answered)
        self.raw_excerpt = str(raw_excerpt or "")[:MAX_MESSAGE_LENGTH]
        super().__init__(self.message)

    def __str__(self):
        """Put the facts a reader of a log line or an admin message needs in front of POK's own words."""
        context = []
        if self.endpoint:
            context.append(self.endpoint)
        if self.status_code is not None:
            context.append(f"HTTP {self.status_code}")
        if self.ambiguous:
            context.append("may have reached POK")
        if self.retryable:
            context.append("retryable")
        return f"{self.message} ({', '.join(context)})" if context else self.message

    def __reduce__(self):
        """Keep the attributes when Celery pickles the exception (the default would keep the message only)."""
        return (self.__class__, (self.message,), self.__dict__.copy())


class PokAuthenticationError(PokApiError):
    """POK refused the API key (401/403). Retrying cannot help until an operator fixes the key."""


class PokNotFoundError(PokApiError):
    """POK does not know the template, page or credential asked for (404)."""


class PokValidationError(PokApiError):
    """POK refused the request as invalid (4xx other than 401/403/404/429); ``message`` is POK's explanation."""


class PokRateLimitedError(PokApiError):
    """
    POK asked us to slow down (429). Nothing was created, so retrying is safe.

    ``retry_after`` is the delay in seconds POK asked for (``Retry-After`` as seconds or HTTP-date), or None.
    """

    retryable = True
    unprocessed = True

    def __init__(self, message, *, retry_after=None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)

    def __str__(self):
        """Show the requested delay, the one number an operator reading the log wants."""
        text = super().__str__()
        if self.retry_after is not None:
            text += f" [retry after {self.retry_after:g} s]"
        return text


class PokServerError(PokApiError):
    """
    POK failed (5xx). Usually transient; a POST may still have been processed before the failure (500, 502, 504),
    except after a 503: POK did not take the request (``unprocessed``), and ``retry_after`` is its Retry-After or None.
    """

    retryable = True

    def __init__(self, message, *, retry_after=None, **kwargs):
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class PokNetworkError(PokApiError):
    """
    No HTTP answer from POK: connect or read timeout, connection refused, reset or dropped.

    ``ambiguous`` separates "surely not sent" (connect failures) from "sent, answer lost" (read timeout, dropped
    after sending), which matters for a POST.
    """

    retryable = True


class PokResponseError(PokApiError):
    """
    POK answered, but the answer is unusable: a 2xx body that is not JSON, lacks a credential's id or state, is
    larger than allowed, or a redirect (never followed).

    POK processed the request (``answered``), so for a POST the outcome is not ambiguous but unknown to us: the
    client raises it with ``retryable=False`` and ``raw_excerpt`` set, for staff to check at POK before re-issuing.
    A GET may be retried.
    """

    retryable = True


class IssuanceError(OpenedxPokError):
    """
    A credential cannot be issued as things stand; ``reason`` is a translated sentence staff can act on.

    The issuance state machine turns these into a *held* credential with that reason; views and the preview page
    show the reason to staff.
    """

    #: Whether the reconcile run should try again by itself (the cause may go away without anyone acting).
    retryable = False

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


class LearnerDataError(IssuanceError):
    """The learner's data cannot make a valid credential: no usable name, no valid email, an unfilled parameter."""


class CourseSetupError(IssuanceError):
    """The course is not mapped, or its mapping points at something that does not exist (course, template)."""


class CertificateNotReady(IssuanceError):
    """The Open edX certificate does not exist (yet): held, but retried by reconcile, since it may still come."""

    retryable = True


class CertificatesNotReleased(OpenedxPokError):
    """
    Not an error: the course does not show its certificates to learners yet, so no request may reach POK. The
    credential waits (status "scheduled") until ``date``, when the course releases them (None: not known yet).
    """

    def __init__(self, date):
        super().__init__(f"certificates released at {date}")
        self.date = date


class RetryLater(OpenedxPokError):
    """
    Not an error: the issuance state machine asks its caller to run the same step again after ``countdown`` seconds.

    The state machine never enqueues anything itself (so it can run inline, in a worker or in a test alike); the
    Celery layer turns this into a delayed task with the same row and the carried ``wait`` / ``tries`` counters.
    ``waiting`` says the step did nothing at all (the credential or its POK account is in a backoff period), so a
    caller that cannot delay a task (eager mode) may drop it and leave the row to the reconcile run.
    """

    def __init__(self, countdown, *, wait=0, tries=0, waiting=False):
        super().__init__(f"retry in {countdown:.1f}s")
        self.countdown = countdown
        self.wait = wait
        self.tries = tries
        self.waiting = waiting
