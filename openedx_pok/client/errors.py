"""
Turning what went wrong in a POK call into the typed exceptions of :mod:`openedx_pok.exceptions`.

POK documents neither its error format nor its rate limits (``docs/pok-api.rst``, "Unknowns"), so this module reads
the shapes seen in the wild: NestJS-style ``{"message": [...]}``, ``{"error": ...}``, proxy HTML pages, ``Retry-After``
as seconds or as an HTTP date. The mapping is decided here once, so every caller gets the same answer to the two
questions a retry policy asks: may a retry help (``retryable``), and may a POST have created something although we
got no usable answer (``ambiguous``). Everything that came from outside is scrubbed of the API key and bounded.
"""
import html
import json
import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

from openedx_pok.exceptions import (
    MAX_MESSAGE_LENGTH,
    PokAuthenticationError,
    PokConfigurationError,
    PokNetworkError,
    PokNotFoundError,
    PokRateLimitedError,
    PokResponseError,
    PokServerError,
    PokValidationError,
)

REDACTED = "[redacted]"
RAW_EXCERPT_LENGTH = MAX_MESSAGE_LENGTH

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def parse_retry_after(value, now=None):
    """
    Seconds to wait according to a ``Retry-After`` header (delta-seconds or HTTP-date), or None if absent/invalid.

    A date in the past means "now" (0). Invalid values are ignored so the caller's own backoff applies.
    """
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = now or datetime.now(UTC)
    return max(0.0, (when - now).total_seconds())


def parse_error_message(content, content_type=None, limit=MAX_MESSAGE_LENGTH):
    """
    Turn an error body into a short human-readable message.

    POK's error format is not documented, so common shapes are understood: ``{"message": str | [str]}`` (NestJS),
    ``{"error": str | {...}}``, ``{"errors": [...]}``, ``{"detail": ...}``, plain text and HTML error pages from
    proxies (tags stripped). Returns "" for an empty body. Never raises: a body too deeply nested to decode is
    shown as text.
    """
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    text = (content or "").strip()
    if not text:
        return ""
    try:
        message = _message_from_json(json.loads(text))
    except (ValueError, RecursionError):
        message = text
        if "html" in (content_type or "").lower() or text.startswith("<"):
            message = html.unescape(_TAG.sub(" ", _without_blocks(message)))
    message = " ".join(message.split())
    if len(message) > limit:
        message = message[: limit - 3].rstrip() + "..."
    return message


# Linear-time patterns only: an error body is hostile input of up to ERROR_BODY_BYTES, and "<" * 60000 must not
# make a backtracking pattern quadratic.
_TAG = re.compile(r"<[^<>]*>")
_BLOCK_START = re.compile(r"<(script|style)\b", re.IGNORECASE)


def _without_blocks(text):
    """``text`` without ``<script>``/``<style>`` blocks (their content is not a message); an unclosed one ends it."""
    lower, kept, position = text.lower(), [], 0
    while (start := _BLOCK_START.search(text, position)) is not None:
        kept.append(text[position:start.start()])
        end = lower.find("</" + start.group(1).lower(), start.end())
        if end < 0:
            return " ".join(kept)
        close = lower.find(">", end)
        position = len(text) if close < 0 else close + 1
    kept.append(text[position:])
    return " ".join(kept)


_MESSAGE_KEYS = ("message", "error_description", "error", "errors", "detail", "details", "msg", "title", "reason")
_FIELD_KEYS = ("field", "property", "param", "parameter", "loc")


def _message_from_json(body, depth=0):
    """Find the human message in a decoded JSON error body (see parse_error_message)."""
    if depth > 5 or body is None:
        return ""
    if isinstance(body, str):
        return body
    if isinstance(body, (int, float, bool)):
        return str(body)
    if isinstance(body, list):
        return "; ".join(part for part in (_message_from_json(item, depth + 1) for item in body[:20]) if part)
    for key in _MESSAGE_KEYS:
        message = _message_from_json(body.get(key), depth + 1)
        if message:
            field_name = next((body[k] for k in _FIELD_KEYS if isinstance(body.get(k), str)), None)
            # Name the field only inside an error list: at the top level "path" & co. are usually the URL.
            return f"{field_name}: {message}" if field_name and depth else message
    try:
        return json.dumps(body, ensure_ascii=False, sort_keys=True)[:MAX_MESSAGE_LENGTH * 2]
    except (TypeError, ValueError, RecursionError):  # keys of mixed types cannot be sorted
        return ""


def raw_excerpt(body, scrub):
    """
    The start of an unusable body, for staff: at most RAW_EXCERPT_LENGTH printable characters, without the key.

    Scrubbed before it is cut, so a key straddling the cut cannot leave a prefix of itself behind.
    """
    if not body:
        return ""
    text = body[: RAW_EXCERPT_LENGTH * 8].decode("utf-8", errors="replace")
    text = _CONTROL.sub(" ", scrub(text))
    return text[:RAW_EXCERPT_LENGTH]


def error_for_status(status, headers, body, *, endpoint, is_post, scrub):
    """
    The exception for a non-2xx answer, keeping POK's own explanation (without the key); None for a 2xx.

    Every such answer is ``answered``: POK (or a proxy in front of it) saw the request. Only a 5xx to a POST is
    ambiguous, since POK may have created the credential before failing.
    """
    if 200 <= status < 300:
        return None
    detail = scrub(parse_error_message(body, headers.get("Content-Type")))
    context = {"status_code": status, "endpoint": endpoint, "answered": True}
    if status in (401, 403):
        return PokAuthenticationError(_join("POK refused the API key", detail), **context)
    if status == 404:
        return PokNotFoundError(detail or "POK does not know the requested resource.", **context)
    if status == 429:
        return PokRateLimitedError(
            _join("POK rate limit reached", detail),
            retry_after=parse_retry_after(headers.get("Retry-After")), **context,
        )
    if 400 <= status < 500:
        return PokValidationError(detail or "POK rejected the request.", **context)
    if status >= 500:
        return PokServerError(_join("POK server error", detail), ambiguous=is_post, **context)
    if 300 <= status < 400:
        # Redirects are never followed: one could lead the API key to another host, and a redirected POST becomes
        # a GET in requests. A redirect usually means a wrong API URL (http instead of https, a missing path).
        return PokResponseError(
            f"POK answered with a redirect (HTTP {status}), which is not followed. Check the POK API URL.",
            retryable=False, **context,
        )
    return PokResponseError(f"POK answered with unexpected HTTP {status}.", retryable=False, **context)


def unusable_answer(message, *, status, body, endpoint, is_post, scrub):
    """
    The PokResponseError for an answer POK sent but we cannot use (bad body, too large, undecodable).

    POK processed the request. For a POST that means a retry could duplicate what POK did, and the answer does not
    tell what that was: not retryable, not ambiguous either, with an excerpt for staff to check at POK. A GET
    changed nothing and stays retryable.
    """
    return PokResponseError(
        scrub(message), status_code=status, endpoint=endpoint, answered=True, ambiguous=False,
        retryable=False if is_post else None, raw_excerpt=raw_excerpt(body, scrub),
    )


def network_error(exc, *, endpoint, is_post, host, connect_timeout, timeout, scrub):
    """Map a requests exception raised before a complete answer to the exception the caller can act on."""
    if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                        requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader)):
        # Raised before anything is sent; a retry cannot help.
        return PokConfigurationError(scrub(f"Cannot build the request to POK: {failure_reason(exc)}"))
    if _surely_not_sent(exc):
        if isinstance(exc, requests.ConnectTimeout):
            message = f"Could not connect to POK at {host} within {connect_timeout:g} s."
        else:
            message = f"Could not connect to POK at {host}: {failure_reason(exc)}."
        return PokNetworkError(scrub(message), ambiguous=False, endpoint=endpoint)
    if isinstance(exc, requests.ReadTimeout) or any(
        isinstance(cause, ReadTimeoutError) for cause in exception_chain(exc)
    ):
        message = f"POK at {host} did not answer within {timeout:g} s."
    else:
        message = f"The connection to POK at {host} failed before a complete answer: {failure_reason(exc)}."
    return PokNetworkError(scrub(message), ambiguous=is_post, endpoint=endpoint)


def deadline_error(exc, *, endpoint, is_post, host):
    """
    The PokNetworkError for a call that ran out of its total deadline (see ``transport.DeadlineExceeded``).

    Ambiguous for a POST whose request had started to go out: POK may be processing it.
    """
    sent = exc.request_started and not (exc.__cause__ is not None and _surely_not_sent(exc.__cause__))
    return PokNetworkError(
        f"POK at {host} did not complete its answer within the {exc.budget:g} s deadline.",
        ambiguous=is_post and sent, endpoint=endpoint,
    )


def _join(prefix, detail):
    """``prefix: detail`` when POK gave a detail, else ``prefix.``."""
    return f"{prefix}: {detail}" if detail else f"{prefix}."


def exception_chain(exc):
    """
    Every exception wrapped inside ``exc``: requests and urllib3 nest them in ``args``, ``reason`` and
    ``__cause__``. ``__context__`` is not followed, it may hold unrelated exceptions handled earlier.
    """
    seen, pending, chain = set(), [exc], []
    while pending and len(chain) < 20:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        chain.append(current)
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return chain


def _surely_not_sent(exc):
    """True when the connection was never established, so a POST cannot have reached POK."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    return any(isinstance(cause, (NewConnectionError, ConnectTimeoutError)) for cause in exception_chain(exc))


def failure_reason(exc):
    """A short cause for a network failure ("Connection refused"), without object reprs or URLs."""
    chain = exception_chain(exc)
    for cause in chain:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    innermost = chain[-1]
    text = str(innermost)
    if text and len(text) < 120 and " object at 0x" not in text:
        return text
    return type(innermost).__name__
