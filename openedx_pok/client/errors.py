"""
What went wrong in a POK call, as the typed exceptions of :mod:`openedx_pok.exceptions`, decided here once: may a
retry help (``retryable``), may a POST have created something without a usable answer (``ambiguous``), did POK answer
(``answered``), did POK surely not process it (``unprocessed``: nothing reached POK's application, so it is never
ambiguous). POK documents no error format (``docs/pok-api.rst``, "Unknowns"), so the shapes seen in the wild are
read. What came from outside is scrubbed of the API key *before* it is cut short, so no cut leaves a part of it.
"""
import html
import json
import math
import re
import ssl
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import requests
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError
from urllib3.util.ssl_match_hostname import CertificateError

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
MIN_KEY_FRAGMENT = 8  # a start of the key this long, left at the end of a capped read, is still worth hiding
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Linear-time patterns only: an error body is hostile input, and "<" * 60000 must not make a pattern quadratic.
_TAG, _BLOCK = re.compile(r"<[^<>]*>"), re.compile(r"<(script|style)\b", re.IGNORECASE)
_MESSAGE_KEYS = ("message", "error_description", "error", "errors", "detail", "details", "msg", "title", "reason")
_FIELD_KEYS = ("field", "property", "param", "parameter", "loc")
_NOT_SENDABLE = (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema, requests.exceptions.MissingSchema,
                 requests.exceptions.InvalidHeader)


def scrubber(secret):
    """A function that removes ``secret`` from a text, and a start of it that a cut left at the text's end."""
    fragments = [secret[:length] for length in range(len(secret) - 1, MIN_KEY_FRAGMENT - 1, -1)]

    def scrub(text):
        text = (text or "").replace(secret, REDACTED)
        cut = next((fragment for fragment in fragments if text.endswith(fragment)), "")
        return text[: len(text) - len(cut)] + REDACTED if cut else text

    return scrub


def parse_retry_after(value, now=None):
    """Seconds to wait from a ``Retry-After`` (seconds or HTTP date; past: 0), None when absent or invalid."""
    value = "" if value is None else str(value).strip()
    try:
        seconds = float(value)
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def parse_error_message(content, content_type=None, limit=MAX_MESSAGE_LENGTH, scrub=None):
    """
    A short readable message from an error body ("" for none); never raises. Reads ``{"message": str | [str]}``
    (NestJS), ``{"error": ...}``, ``{"errors": [...]}``, ``{"detail": ...}``, text and proxies' HTML pages.
    """
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    text = (content or "").strip()
    try:
        message = _from_json(json.loads(text)) if text else ""
    except (ValueError, RecursionError):  # not JSON, or nested too deeply to decode: shown as text
        message = text
        if "html" in (content_type or "").lower() or text.startswith("<"):
            message = html.unescape(_TAG.sub(" ", _without_blocks(text)))
    message = " ".join(message.split())
    message = scrub(message) if scrub else message
    return message if len(message) <= limit else message[: limit - 3].rstrip() + "..."


def _without_blocks(text):
    """``text`` without ``<script>``/``<style>`` blocks (their content is no message); an unclosed one ends it."""
    lower, kept, position = text.lower(), [], 0
    while (start := _BLOCK.search(text, position)) is not None:
        kept.append(text[position:start.start()])
        end = lower.find("</" + start.group(1).lower(), start.end())
        if (position := lower.find(">", end) + 1 if end >= 0 else 0) <= 0:
            return " ".join(kept)
    return " ".join([*kept, text[position:]])


def _from_json(body, depth=0):
    if depth > 5 or body is None:
        return ""
    if isinstance(body, str | int | float | bool):
        return str(body)
    if isinstance(body, list):
        return "; ".join(part for part in (_from_json(item, depth + 1) for item in body[:20]) if part)
    for key in _MESSAGE_KEYS:
        if message := _from_json(body.get(key), depth + 1):
            field_name = next((body[k] for k in _FIELD_KEYS if isinstance(body.get(k), str)), None)
            # Name the field only inside an error list: at the top level "path" & co. are usually the URL.
            return f"{field_name}: {message}" if field_name and depth else message
    try:
        return json.dumps(body, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError, RecursionError):  # keys of mixed types cannot be sorted
        return ""


def error_for_status(status, headers, body, *, endpoint, is_post, scrub):
    """
    The exception for a non-2xx answer, with POK's explanation; None for a 2xx. Every such answer is ``answered``
    (POK or a proxy saw the request); only a 500, 502 or 504 to a POST is ambiguous, POK may have created the
    credential first. A 429 or a 503 says POK did not take the request (``unprocessed``): it is retried, never counted
    as a possible duplicate, and its Retry-After is kept.
    """
    if 200 <= status < 300:
        return None
    detail = parse_error_message(body, headers.get("Content-Type"), scrub=scrub)
    context = {"status_code": status, "endpoint": endpoint, "answered": True}
    if status in (401, 403):
        return PokAuthenticationError(_join("POK refused the API key", detail), **context)
    if status == 404:
        return PokNotFoundError(detail or "POK does not know the requested resource.", **context)
    if status == 429:
        return PokRateLimitedError(_join("POK rate limit reached", detail), **context,
                                             retry_after=parse_retry_after(headers.get("Retry-After")))
    if 400 <= status < 500:
        return PokValidationError(detail or "POK rejected the request.", **context)
    if status == 503:  # unavailable (a deploy, an overload): the request was refused, not processed
        return PokServerError(_join("POK is unavailable", detail), unprocessed=True, **context,
                              retry_after=parse_retry_after(headers.get("Retry-After")))
    if status >= 500:
        return PokServerError(_join("POK server error", detail), ambiguous=is_post, **context)
    if 300 <= status < 400:
        # Never followed: it could take the API key to another host, and requests turns a redirected POST into a GET.
        return PokResponseError(f"POK answered with a redirect (HTTP {status}), which is not followed. Check the POK "
                                "API URL.", retryable=False, **context)
    return PokResponseError(f"POK answered with unexpected HTTP {status}.", retryable=False, **context)


def unusable_answer(message, *, status, body, endpoint, is_post, scrub):
    """
    An answer POK sent that cannot be used (bad body, too large, undecodable). POK processed the request: for a
    POST a retry could duplicate what it did, which the answer does not say, so neither retryable nor ambiguous, with
    an excerpt for staff to check at POK. A GET changed nothing.
    """
    excerpt = _CONTROL.sub(" ", scrub(body[: MAX_MESSAGE_LENGTH * 8].decode("utf-8", errors="replace")))
    return PokResponseError(message, status_code=status, endpoint=endpoint, answered=True,
                            retryable=False if is_post else None, raw_excerpt=excerpt[:MAX_MESSAGE_LENGTH])


def network_error(exc, *, endpoint, is_post, host, connect_timeout, read_timeout, scrub):
    """The exception for a requests or urllib3 failure that kept a complete answer from arriving."""
    if isinstance(exc, _NOT_SENDABLE):  # raised before anything is sent: a retry cannot help
        return PokConfigurationError(scrub(f"Cannot build the request to POK: {failure_reason(exc)}"))
    chain = exception_chain(exc)
    # Nothing was sent in these three: never ambiguous. NewConnectionError first: urllib3 makes it a subclass of
    # ConnectTimeoutError, and a refused connection is not a timeout.
    if any(isinstance(cause, NewConnectionError) for cause in chain):  # refused, unknown host, no route
        return PokNetworkError(scrub(f"Could not connect to POK at {host}: {failure_reason(exc)}."), endpoint=endpoint,
                               unprocessed=True)
    if any(isinstance(cause, requests.ConnectTimeout | ConnectTimeoutError) for cause in chain):
        return PokNetworkError(f"Could not connect to POK at {host} within {connect_timeout:g} s.", endpoint=endpoint,
                               unprocessed=True)
    if _tls_handshake_failed(chain):
        return PokNetworkError(scrub(f"The secure connection to POK at {host} failed before anything was sent: "
                                     f"{failure_reason(exc)}."), endpoint=endpoint, unprocessed=True)
    # Connected, so the request may have gone out: a POST may have reached POK.
    if any(isinstance(cause, requests.ReadTimeout | ReadTimeoutError) for cause in chain):
        message = f"POK at {host} did not answer within {read_timeout:g} s."
    else:
        message = f"The connection to POK at {host} failed before a complete answer: {failure_reason(exc)}."
    return PokNetworkError(scrub(message), ambiguous=is_post, endpoint=endpoint)


def _tls_handshake_failed(chain):
    """
    A TLS failure while the connection was being set up (a certificate, a protocol mismatch): the request was never
    sent. Told apart from a TLS failure while reading an answer (ambiguous) by where the ``ssl`` error was raised.
    """
    for cause in chain:
        if isinstance(cause, ssl.SSLCertVerificationError | CertificateError):
            return True
        if isinstance(cause, ssl.SSLError):
            frame = cause.__traceback__
            while frame is not None:
                if frame.tb_frame.f_code.co_name == "do_handshake":
                    return True
                frame = frame.tb_next
    return False


def _join(prefix, detail):
    return f"{prefix}: {detail}" if detail else f"{prefix}."


def exception_chain(exc):
    """``exc`` and what it wraps: requests and urllib3 nest causes in ``args``, ``reason`` and ``__cause__``."""
    chain, pending = [], [exc]
    while pending and len(chain) < 20:
        current = pending.pop(0)
        if all(current is not seen for seen in chain):
            chain.append(current)
            pending += [cause for cause in (*current.args, getattr(current, "reason", None), current.__cause__)
                        if isinstance(cause, BaseException)]
    return chain


def failure_reason(exc):
    """A short cause of a network failure ("Connection refused"), without object reprs or URLs."""
    chain = exception_chain(exc)
    text = next((cause.strerror for cause in chain if isinstance(cause, OSError) and cause.strerror), str(chain[-1]))
    return text if text and len(text) < 120 and " object at 0x" not in text else type(chain[-1]).__name__
