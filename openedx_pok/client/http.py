"""
The POK API client: one method per endpoint (E1-E8 of ``docs/pok-api.rst``) over one request path, shared with image
downloads. No models, no settings: callers get frozen data classes or a typed exception (``errors.py``).

The path is plain ``requests``: a ``Session`` per client, ``(connect, read)`` timeouts, no redirects, and a streamed
body read in a loop that stops at the size cap and at the call's deadline. Read timeouts bound each wait, not a call,
and ``response.content`` keeps whatever a server sends (a small gzip answer that inflates to 300 MiB): the loop is
what keeps a dripping or huge answer from holding a Celery worker or its memory.
"""
import json
import logging
import math
import re
import time
from urllib.parse import urlsplit

import requests
from urllib3.exceptions import DecodeError, HTTPError, ReadTimeoutError

import openedx_pok
from openedx_pok.client import data, errors
from openedx_pok.client.urls import host_allowed, quote_segment
from openedx_pok.exceptions import PokConfigurationError, PokNetworkError, PokResponseError

log = logging.getLogger(__package__)  # "openedx_pok.client": the logger operators configure and tests watch

USER_AGENT = f"openedx-pok/{openedx_pok.__version__}"
# Longer than POK's slowest normal answer (creating a credential), short enough that a hung connection does not hold
# a worker for long; connecting gets slightly more than a TCP retransmit window (3 s).
DEFAULT_TIMEOUT, DEFAULT_CONNECT_TIMEOUT = 10, 3.05
# POK's answers are a few KiB: a MiB leaves room for big template lists and none for abuse. An error answer is read
# for its message only (a proxy's HTML page fits, a flood does not).
DEFAULT_MAX_RESPONSE_BYTES, IMAGE_MAX_BYTES, ERROR_BODY_BYTES = 1024 * 1024, 10 * 1024 * 1024, 64 * 1024
CHUNK_BYTES = 64 * 1024
POOL_MAXSIZE = requests.adapters.DEFAULT_POOLSIZE  # connections kept per host: enough for one worker's threads
DEFAULT_LIST_LIMIT = 100  # POK lists have no pagination beyond `limit`: ask for a lot, say when it may be cut
_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


class _DeadlinePassed(Exception):
    """The call's deadline passed while its answer was being read."""


def new_session(url):
    """
    A session for the server of ``url``, with the environment's proxy and CA bundle settings (``HTTPS_PROXY``,
    ``NO_PROXY`` for that host, ``REQUESTS_CA_BUNDLE``) read now as requests reads them, and not again: requests
    would walk the whole environment on every request, a third of a POST's CPU in a worker. ``trust_env=False`` also
    keeps ``~/.netrc`` credentials from being sent anywhere.
    """
    session = requests.Session()
    environment = session.merge_environment_settings(url, {}, None, None, None)
    session.trust_env, session.proxies, session.verify = False, environment["proxies"], environment["verify"]
    session.headers["User-Agent"] = USER_AGENT
    return session


def exchange(session, method, url, *, deadline, connect_timeout, read_timeout, max_bytes, **kwargs):
    """
    Send one request (no redirects) and read ``(response, decoded body up to max_bytes, complete)``. Connecting waits
    at most ``connect_timeout`` and every wait for data at most ``read_timeout``, neither more than ``deadline``; the
    body is read only until ``deadline`` (_DeadlinePassed), however it drips. Headers dripped byte by byte are bounded
    per byte only: requests reads them before it returns. ``requests``/``urllib3`` errors pass to the caller.
    """
    end = time.monotonic() + deadline
    read_timeout = min(read_timeout, deadline)
    response = session.request(method, url, stream=True, allow_redirects=False,
                               timeout=(min(connect_timeout, deadline), read_timeout), **kwargs)
    with response:  # closes a connection whose body was left unread; a fully read one is back in the pool
        if not 200 <= response.status_code < 300:
            max_bytes = min(max_bytes, ERROR_BODY_BYTES)
        chunks, size, connection = [], 0, response.raw.connection
        while size <= max_bytes:
            if (left := end - time.monotonic()) <= 0:
                raise _DeadlinePassed()
            if connection is not None and connection.sock is not None:
                connection.sock.settimeout(min(left, read_timeout))  # urllib3 resets it for the next request
            # read1 returns what has arrived, decoded (urllib3 bounds each decompression step, so a gzip bomb comes in
            # bounded pieces); iter_content would wait for a whole chunk, however slowly the server drips it.
            try:
                chunk = response.raw.read1(CHUNK_BYTES, decode_content=True)
            except ReadTimeoutError:
                if time.monotonic() >= end:
                    raise _DeadlinePassed() from None
                raise
            if not chunk:
                return response, b"".join(chunks), True
            chunks.append(chunk)
            size += len(chunk)
        return response, b"".join(chunks)[:max_bytes], False


class PokApiClient:
    """
    Client of one POK organization (one API key), with one pooled session so a batch of calls reuses connections.

    No automatic retries: whether a failed call may be retried depends on what the caller recorded before it
    (exactly-once issuance). A session is not documented as thread-safe: one client per thread (a Celery prefork
    process is one). ``deadline`` (default ``timeout + connect_timeout``) bounds the reading of a whole answer.
    """

    def __init__(self, api_url, api_key, timeout=DEFAULT_TIMEOUT, connect_timeout=DEFAULT_CONNECT_TIMEOUT,
                 deadline=None, max_response_bytes=DEFAULT_MAX_RESPONSE_BYTES):
        self.api_url, key = str(api_url or "").strip(), str(api_key or "").strip()
        parts = urlsplit(self.api_url)
        if not self.api_url:
            raise PokConfigurationError("The POK API URL is empty.")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PokConfigurationError("The POK API URL must be an absolute http:// or https:// URL.")
        if parts.query or parts.fragment:
            raise PokConfigurationError("The POK API URL must not contain a query string or a fragment.")
        if not key or _CONTROL_OR_SPACE.search(key):
            raise PokConfigurationError("The POK API key is empty or contains spaces or control characters.")
        self.timeout = _seconds(timeout, "timeout")
        self.connect_timeout = _seconds(connect_timeout, "connect timeout")
        self.deadline = self.timeout + self.connect_timeout if deadline is None else _seconds(deadline, "deadline")
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int) or max_response_bytes < 1:
            raise PokConfigurationError("The POK maximum response size must be a positive number of bytes.")
        self.max_response_bytes = max_response_bytes
        self._host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname  # for messages: no userinfo
        # Sent with each request rather than kept in session.headers, which people print: the key is in no repr.
        self._headers = {"Authorization": f"ApiKey {key}", "Accept": "application/json"}
        self._scrub = errors.scrubber(key)
        self._session = new_session(self.api_url)

    def __repr__(self):
        return (f"{type(self).__name__}(api_url={self.api_url!r}, timeout={self.timeout!r}, "
                f"connect_timeout={self.connect_timeout!r}, deadline={self.deadline!r})")

    def close(self):
        """Close pooled connections (a worker that drops the client should not leave sockets behind)."""
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def get_organization(self):
        """E1 ``GET /organization/me``: the organization of the key; also the cheapest way to check the key."""
        return self._request("GET", ("organization", "me"), data.Organization.from_api)

    def list_templates(self, limit=DEFAULT_LIST_LIMIT):
        """E2 ``GET /template?limit=N``; ``possibly_truncated`` when POK returned exactly ``limit`` items."""
        items = self._list("template", limit, data.Template.from_api)
        return data.TemplateList(templates=items, limit=limit, possibly_truncated=len(items) >= limit)

    def get_template(self, template_id):
        """E3 ``GET /template/{id}``: the template with the custom parameters a credential must fill."""
        return self._request("GET", ("template", template_id), data.Template.from_api)

    def preview_template(self, payload):
        """E4 ``POST /template/preview``: URL of a preview image of a credential built from ``payload``."""
        return self._request("POST", ("template", "preview"),
                             lambda body: data.url_from(body, ("url", "location"), "preview"), payload=payload)

    def list_pages(self, limit=DEFAULT_LIST_LIMIT):
        """E5 ``GET /page?limit=N``; ``possibly_truncated`` when POK returned exactly ``limit`` items."""
        items = self._list("page", limit, data.Page.from_api)
        return data.PageList(pages=items, limit=limit, possibly_truncated=len(items) >= limit)

    def issue_credential(self, payload, idempotency_key=None):
        """
        E6 ``POST /credential``. ``idempotency_key`` is sent as ``Idempotency-Key``, which POK is not known to honour.

        A failure after sending raises with ``ambiguous=True``; an unusable answer raises PokResponseError with
        ``answered=True``, ``retryable=False`` and a ``raw_excerpt`` for staff.
        """
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not idempotency_key or _CONTROL_OR_SPACE.search(idempotency_key)
        ):
            raise ValueError("idempotency_key must be a non-empty string without spaces or control characters")
        return self._request("POST", ("credential",), data.Credential.from_api, payload=payload,
                             headers={"Idempotency-Key": idempotency_key} if idempotency_key else {})

    def get_credential(self, pok_id):
        """E7 ``GET /credential/{id}``: current state of a credential (how state changes are learned)."""
        return self._request("GET", ("credential", pok_id), data.Credential.from_api)

    def get_credential_image(self, pok_id):
        """E8 ``GET /credential/{id}/decrypted-image``: a public URL of the credential image (lifetime unknown)."""
        return self._request("GET", ("credential", pok_id, "decrypted-image"),
                             lambda body: data.url_from(body, ("location", "url"), "credential image"))

    def _list(self, resource, limit, parse_item):
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive integer, got {limit!r}")
        return self._request("GET", (resource,), lambda body: tuple(
            parse_item(item) for item in data.list_items(body, resource)), params={"limit": limit})

    def _request(self, method, segments, parse, *, params=None, payload=None, headers=()):
        """``parse(decoded JSON body)`` or a typed error; one DEBUG line per call, with method, path, status only."""
        path = "/" + "/".join(quote_segment(segment) for segment in segments)
        context = {"endpoint": f"{method} {path}", "is_post": method == "POST", "scrub": self._scrub}
        headers = {**self._headers, **dict(headers)}
        if payload is not None:
            # allow_nan=False: NaN is not JSON, and POK would refuse it with a less helpful message.
            payload = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        status, started = "no response", time.monotonic()
        try:
            try:
                response, body, complete = exchange(
                    self._session, method, self.api_url.rstrip("/") + path, params=params, data=payload,
                    headers=headers, deadline=self.deadline, connect_timeout=self.connect_timeout,
                    read_timeout=self.timeout, max_bytes=self.max_response_bytes)
            except _DeadlinePassed:
                status = "deadline exceeded"  # the answer had begun to arrive: a POST did reach POK
                raise PokNetworkError(f"POK at {self._host} did not complete its answer within the {self.deadline:g} s "
                                      "deadline.", ambiguous=context["is_post"], endpoint=context["endpoint"]) from None
            except DecodeError as exc:
                status = type(exc).__name__  # POK answered, with a body its Content-Encoding does not describe
                raise errors.unusable_answer("POK sent a body that could not be decoded.", status=None, body=b"",
                                             **context) from exc
            except (requests.RequestException, HTTPError) as exc:
                status = type(exc).__name__
                raise errors.network_error(
                    exc, host=self._host, connect_timeout=min(self.connect_timeout, self.deadline),
                    read_timeout=min(self.timeout, self.deadline), **context) from exc
            status = response.status_code
            if failure := errors.error_for_status(status, response.headers, body, **context):
                raise failure
            context.update(status=status, body=body)
            if not complete:
                raise errors.unusable_answer(f"POK answered with a body larger than {self.max_response_bytes} bytes.",
                                             **context)
            try:
                return parse(data.decode_json(body))
            except (ValueError, TypeError, OverflowError, RecursionError) as exc:
                # BadBody (a ValueError) says what the parsers found wrong; any other error keeps the promise that a
                # hostile body gives a typed error even in a shape they did not foresee.
                message = str(exc) if isinstance(exc, data.BadBody) else (
                    f"POK answered with a body that cannot be read ({type(exc).__name__}).")
                raise errors.unusable_answer(message, **context) from exc
        finally:
            log.debug("POK %s %s -> %s in %d ms", method, path, status, (time.monotonic() - started) * 1000)


def fetch_image(url, allowed_hosts, timeout=DEFAULT_TIMEOUT, max_bytes=IMAGE_MAX_BYTES,
                connect_timeout=DEFAULT_CONNECT_TIMEOUT, deadline=None):
    """
    ``(content_type, bytes)`` of the public credential image POK points to (E8). The location is hostile input: the
    API's request path (deadline, size cap, no redirects, whose target would not have been checked), only on an
    allowed host, without the API key, only ``image/*``. PokResponseError (retryable for a 5xx) or PokNetworkError.
    """
    if not host_allowed(url, allowed_hosts):
        raise PokResponseError("The image location is not on an allowed POK host.", retryable=False)
    budget = timeout + connect_timeout if deadline is None else deadline
    with new_session(url) as session:
        try:
            response, body, complete = exchange(session, "GET", url, headers={"Accept": "image/*"}, deadline=budget,
                                                connect_timeout=connect_timeout, read_timeout=timeout,
                                                max_bytes=max_bytes)
        except _DeadlinePassed:
            raise PokNetworkError(f"The image could not be downloaded within {budget:g} s.") from None
        except DecodeError as exc:
            raise PokResponseError("The image could not be decoded.", retryable=False, answered=True) from exc
        except (requests.RequestException, HTTPError) as exc:
            raise PokNetworkError(f"The image could not be downloaded ({errors.failure_reason(exc)}).") from exc
    status, content_type = response.status_code, response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    context = {"status_code": status, "answered": True}
    if 300 <= status < 400:
        raise PokResponseError(f"The image location redirects (HTTP {status}); redirects are not followed.",
                               retryable=False, **context)
    if status != 200 or not content_type.startswith("image/"):
        raise PokResponseError(f"The image could not be downloaded (HTTP {status}).", retryable=status >= 500,
                               **context)
    if not complete:
        raise PokResponseError("The image is larger than allowed.", retryable=False, **context)
    return content_type, body


def _seconds(value, what):
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise PokConfigurationError(f"The POK {what} must be a positive number of seconds.")
    return value
