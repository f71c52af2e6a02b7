"""
The POK API client: one method per endpoint (E1-E8 of ``docs/pok-api.rst``), one request path under them all.

It knows HTTP and the POK API only: no models, no Django settings, no business rules. Callers (``configuration.py``
builds it, the state machine calls it) get small frozen data classes (``data.py``) or a typed exception from
:mod:`openedx_pok.exceptions` that tells them whether a retry may help, whether a POST may have created a
credential anyway, and whether POK answered at all.

Every request goes through :meth:`PokApiClient._request`, the single place that builds URLs, sets headers, applies
the total deadline and the size cap (``transport.py``), maps failures to exceptions (``errors.py``) and decodes
bodies. The API key lives in a private attribute and in a requests auth hook; it is never put in a repr, a log line
or an exception message.
"""
import json
import logging
import math
import re
import time
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from openedx_pok.client import errors
from openedx_pok.client.data import (
    BadBody,
    Credential,
    Organization,
    Page,
    PageList,
    Template,
    TemplateList,
    decode_json,
    list_items,
    url_from,
)
from openedx_pok.client.transport import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    DeadlineExceeded,
    exchange,
    new_session,
)
from openedx_pok.client.urls import build_url, quote_segment
from openedx_pok.exceptions import PokConfigurationError

# The package's name, not this module's: "openedx_pok.client" is the logger operators configure and tests watch.
log = logging.getLogger(__package__)

# POK lists have no pagination beyond `limit`; ask for a lot and report when the answer may be cut.
DEFAULT_LIST_LIMIT = 100

_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


class _ApiKeyAuth(AuthBase):
    """
    Adds ``Authorization: ApiKey <key>`` to each request.

    An auth hook instead of a session header: the key stays out of ``session.headers`` (which people print), and
    setting ``session.auth`` stops requests from replacing the header with credentials from a ``~/.netrc``.
    """

    def __init__(self, api_key):
        self._api_key = api_key

    def __call__(self, request):
        request.headers["Authorization"] = f"ApiKey {self._api_key}"
        return request

    def __repr__(self):
        return "<ApiKeyAuth [redacted]>"


class PokApiClient:
    """
    Client of one POK organization (one API key).

    Keeps one ``requests.Session`` with a connection pool so a batch of calls (a reconcile run) reuses connections.
    There are no automatic retries: whether a failed call may be retried depends on what the caller recorded before
    it (exactly-once issuance), so the decision is left to the caller, informed by the exception attributes.
    ``requests.Session`` is not documented as thread-safe, so use one client per thread (a Celery prefork worker
    process is one thread); ``close()`` or a ``with`` block releases the pooled sockets.

    ``timeout`` bounds each wait for data and ``connect_timeout`` the connection; ``deadline`` bounds a whole call
    (default: their sum), however slowly the server drips its answer. ``max_response_bytes`` caps a decoded answer.
    """

    def __init__(self, api_url, api_key, timeout=DEFAULT_TIMEOUT, connect_timeout=DEFAULT_CONNECT_TIMEOUT,
                 deadline=None, max_response_bytes=DEFAULT_MAX_RESPONSE_BYTES):
        self.api_url = self._valid_url(api_url)
        self._api_key = self._valid_key(api_key)
        self.timeout = self._valid_seconds(timeout, "timeout")
        self.connect_timeout = self._valid_seconds(connect_timeout, "connect timeout")
        self.deadline = self.timeout + self.connect_timeout if deadline is None else self._valid_seconds(
            deadline, "deadline")
        if isinstance(max_response_bytes, bool) or not isinstance(max_response_bytes, int) or max_response_bytes < 1:
            raise PokConfigurationError("The POK maximum response size must be a positive number of bytes.")
        self.max_response_bytes = max_response_bytes
        parts = urlsplit(self.api_url)
        self._host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
        self._session = new_session()
        self._session.headers["Accept"] = "application/json"
        self._session.auth = _ApiKeyAuth(self._api_key)

    def __repr__(self):
        """Show where the client points, never the key."""
        return (
            f"{type(self).__name__}(api_url={self.api_url!r}, timeout={self.timeout!r}, "
            f"connect_timeout={self.connect_timeout!r}, deadline={self.deadline!r})"
        )

    def close(self):
        """Close pooled connections (a worker that drops the client should not leave sockets behind)."""
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # --- configuration checks (fail early, with a message that names the setting, not its value) ---

    @staticmethod
    def _valid_url(api_url):
        url = str(api_url or "").strip()
        if not url:
            raise PokConfigurationError("The POK API URL is empty.")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PokConfigurationError("The POK API URL must be an absolute http:// or https:// URL.")
        if parts.query or parts.fragment:
            raise PokConfigurationError("The POK API URL must not contain a query string or a fragment.")
        return url

    @staticmethod
    def _valid_key(api_key):
        key = str(api_key or "").strip()
        if not key:
            raise PokConfigurationError("The POK API key is empty.")
        if _CONTROL_OR_SPACE.search(key):
            raise PokConfigurationError("The POK API key contains spaces or control characters.")
        return key

    @staticmethod
    def _valid_seconds(value, what):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise PokConfigurationError(f"The POK {what} must be a positive number of seconds.")
        return value

    # --- endpoints ---

    def get_organization(self):
        """E1 ``GET /organization/me``: the organization of the key; also the cheapest way to check the key."""
        return self._request("GET", ("organization", "me"), parse=Organization.from_api)

    def list_templates(self, limit=DEFAULT_LIST_LIMIT):
        """E2 ``GET /template?limit=N``; ``possibly_truncated`` when POK returned exactly ``limit`` items."""
        limit = _valid_limit(limit)

        def parse(body):
            templates = tuple(Template.from_api(item) for item in list_items(body, "template"))
            return TemplateList(templates=templates, limit=limit, possibly_truncated=len(templates) >= limit)

        return self._request("GET", ("template",), params={"limit": limit}, parse=parse)

    def get_template(self, template_id):
        """E3 ``GET /template/{id}``: the template with the custom parameters a credential must fill."""
        return self._request("GET", ("template", template_id), parse=Template.from_api)

    def preview_template(self, payload):
        """E4 ``POST /template/preview``: URL of a preview image of a credential built from ``payload``."""
        return self._request(
            "POST", ("template", "preview"), payload=payload,
            parse=lambda body: url_from(body, ("url", "location"), "preview"),
        )

    def list_pages(self, limit=DEFAULT_LIST_LIMIT):
        """E5 ``GET /page?limit=N``; ``possibly_truncated`` when POK returned exactly ``limit`` items."""
        limit = _valid_limit(limit)

        def parse(body):
            pages = tuple(Page.from_api(item) for item in list_items(body, "page"))
            return PageList(pages=pages, limit=limit, possibly_truncated=len(pages) >= limit)

        return self._request("GET", ("page",), params={"limit": limit}, parse=parse)

    def issue_credential(self, payload, idempotency_key=None):
        """
        E6 ``POST /credential``: issue one credential.

        ``idempotency_key`` is sent as ``Idempotency-Key``; POK is not known to honour it, so callers must not rely
        on it for exactly-once. Failures after sending raise with ``ambiguous=True``; an unusable answer raises
        PokResponseError with ``answered=True``, ``retryable=False`` and a ``raw_excerpt`` for staff.
        """
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not idempotency_key or _CONTROL_OR_SPACE.search(idempotency_key)
        ):
            raise ValueError("idempotency_key must be a non-empty string without spaces or control characters")
        return self._request(
            "POST", ("credential",), payload=payload, idempotency_key=idempotency_key, parse=Credential.from_api
        )

    def get_credential(self, pok_id):
        """E7 ``GET /credential/{id}``: current state of a credential (how state changes are learned)."""
        return self._request("GET", ("credential", pok_id), parse=Credential.from_api)

    def get_credential_image(self, pok_id):
        """E8 ``GET /credential/{id}/decrypted-image``: a public URL of the credential image (lifetime unknown)."""
        return self._request(
            "GET", ("credential", pok_id, "decrypted-image"),
            parse=lambda body: url_from(body, ("location", "url"), "credential image"),
        )

    # --- the one request method ---

    def _request(self, method, segments, *, parse, params=None, payload=None, idempotency_key=None):
        """
        Send one request and return ``parse(decoded JSON body)``, or raise a PokApiError subclass.

        Everything about HTTP is here so the error mapping (status and network failures, ambiguity of a POST) is
        decided once. Logs one DEBUG line per call with ids only: no body, no headers.
        """
        path = "/" + "/".join(quote_segment(segment) for segment in segments)
        endpoint = f"{method} {path}"
        is_post = method == "POST"
        headers = {}
        data = None
        if payload is not None:
            # allow_nan=False: NaN is not JSON and POK would reject it with a less helpful message.
            data = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        status = "no response"
        started = time.monotonic()
        try:
            try:
                answer = exchange(
                    self._session, method, build_url(self.api_url, *segments), params=params, data=data,
                    headers=headers, budget=self.deadline, connect_timeout=self.connect_timeout,
                    read_timeout=self.timeout, max_bytes=self.max_response_bytes,
                )
            except DeadlineExceeded as exc:
                status = "deadline exceeded"
                raise errors.deadline_error(exc, endpoint=endpoint, is_post=is_post, host=self._host) from exc
            except requests.exceptions.ContentDecodingError as exc:
                # POK answered, with a Content-Encoding its body does not follow.
                status = type(exc).__name__
                raise errors.unusable_answer(
                    "POK sent a body that could not be decoded.", status=None, body=b"", endpoint=endpoint,
                    is_post=is_post, scrub=self._scrub,
                ) from exc
            except requests.RequestException as exc:
                status = type(exc).__name__
                raise errors.network_error(
                    exc, endpoint=endpoint, is_post=is_post, host=self._host, connect_timeout=self.connect_timeout,
                    timeout=self.timeout, scrub=self._scrub,
                ) from exc
            status = answer.status
            failure = errors.error_for_status(
                answer.status, answer.headers, answer.body, endpoint=endpoint, is_post=is_post, scrub=self._scrub
            )
            if failure is not None:
                raise failure
            return self._parse(answer, parse, endpoint, is_post)
        finally:
            log.debug("POK %s %s -> %s in %d ms", method, path, status, (time.monotonic() - started) * 1000)

    def _parse(self, answer, parse, endpoint, is_post):
        """``parse(decoded body)`` of a 2xx answer; anything unusable about it becomes a PokResponseError."""
        context = {"status": answer.status, "body": answer.body, "endpoint": endpoint, "is_post": is_post,
                   "scrub": self._scrub}
        if not answer.complete:
            raise errors.unusable_answer(
                f"POK answered with a body larger than {self.max_response_bytes} bytes.", **context
            )
        try:
            return parse(decode_json(answer.body))
        except BadBody as exc:
            raise errors.unusable_answer(str(exc), **context) from exc
        except (ValueError, TypeError, OverflowError, RecursionError) as exc:
            # The parsers raise BadBody for every shape they foresee; this keeps the promise that a hostile body
            # yields a typed error even for a shape they did not.
            raise errors.unusable_answer(
                f"POK answered with a body that cannot be read ({type(exc).__name__}).", **context
            ) from exc

    def _scrub(self, text):
        """Remove the API key from text that came from outside (POK may echo a wrong key back in its error)."""
        return text.replace(self._api_key, errors.REDACTED) if text else text


def _valid_limit(limit):
    """POK's ``limit`` must be a positive integer; refuse anything else before calling it."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    return limit
