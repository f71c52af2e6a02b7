"""
HTTP client of the POK (pok.tech) API.

This module knows HTTP and the POK API only: no models, no Django settings, no business rules. Callers (the tasks)
build it from configuration, call one method per endpoint and get back small frozen data classes or a typed
exception from :mod:`openedx_pok.exceptions` that tells them whether a retry may help and whether a POST may have
created a credential anyway.

POK publishes no API reference (see docs in the repository for the reconstructed contract), so the client is strict
in what it sends and liberal in what it accepts: unknown keys are ignored, missing optional keys become None/0/(),
and only the fields without which a result is useless (a credential's id and state, ...) are required.

Every request goes through :meth:`PokApiClient._request`, the single place that builds URLs, sets headers and
timeouts, maps failures to exceptions and decodes JSON. The API key lives in a private attribute and in a requests
auth hook; it is never put in a repr, a log line or an exception message.
"""
import html
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError, ReadTimeoutError

import openedx_pok
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

log = logging.getLogger(__name__)

# A read timeout must be longer than POK's slowest normal answer (credential creation) and short enough that a hung
# connection does not hold a Celery worker for long. Connect timeout slightly above a TCP retransmit window (3 s).
DEFAULT_TIMEOUT = 10
DEFAULT_CONNECT_TIMEOUT = 3.05
# POK lists have no pagination beyond `limit`; ask for a lot and report when the answer may be cut.
DEFAULT_LIST_LIMIT = 100
# Connections kept open per host: enough for the threads of one worker process sharing a client.
POOL_MAXSIZE = 10
USER_AGENT = f"openedx-pok/{openedx_pok.__version__}"
REDACTED = "[redacted]"

_CONTROL_OR_SPACE = re.compile(r"[\s\x00-\x1f\x7f]")


# --- Results -----------------------------------------------------------------------------------------------------


class _BadBody(ValueError):
    """A 2xx body lacks what we need; turned into PokResponseError with the request's context by _request."""


@dataclass(frozen=True)
class Organization:
    """The POK organization the API key belongs to (E1); used to check the key and show the credit balance."""

    name: str | None = None
    wallet: str | None = None
    available_credits: int = 0
    emitted_credentials: int = 0
    sent_credentials: int = 0
    draft_credentials: int = 0
    processing_credentials: int = 0

    @classmethod
    def from_api(cls, data):
        """Build from POK's JSON; every field is optional because nothing in it is needed to go on."""
        data = _object(data, "organization")
        return cls(
            name=_text(data.get("name")),
            wallet=_text(data.get("wallet")),
            available_credits=_int(data.get("availableCredits")),
            emitted_credentials=_int(data.get("emittedCredentials")),
            sent_credentials=_int(data.get("sentCredentials")),
            draft_credentials=_int(data.get("draftCredentials")),
            processing_credentials=_int(data.get("processingCredentials")),
        )


@dataclass(frozen=True)
class TemplateParameter:
    """A custom parameter a template declares; the credential payload must give it a non-empty value by ``id``."""

    id: str
    label: str

    @classmethod
    def list_from_api(cls, value):
        """
        Build the parameters of a template.

        POK sends ``[{id, label}]``; a bare string or an ``{id: label}`` object is accepted too. A parameter known
        only by its label gets the label as id, which is how the earlier Open edX plugin keyed them.
        """
        if value is None:
            return ()
        if isinstance(value, dict):
            value = [{"id": key, "label": label} for key, label in value.items()]
        if not isinstance(value, list):
            raise _BadBody("POK returned template parameters that are not a list")
        parameters = []
        for item in value:
            if isinstance(item, str):
                parameter_id = label = item
            elif isinstance(item, dict):
                parameter_id, label = _text(item.get("id")), _text(item.get("label"))
            else:
                raise _BadBody("POK returned a template parameter that is not an object")
            parameter_id = parameter_id or label
            if not parameter_id:
                raise _BadBody("POK returned a template parameter without id or label")
            parameters.append(cls(id=parameter_id, label=label or parameter_id))
        return tuple(parameters)


@dataclass(frozen=True)
class Template:
    """A POK credential template (E2/E3); lists may omit ``custom_parameters``, E3 gives them."""

    id: str
    name: str | None = None
    version: str | None = None
    custom_parameters: tuple = ()

    @classmethod
    def from_api(cls, data):
        """Build from POK's JSON; only the id is required (a template we cannot refer to is useless)."""
        data = _object(data, "template")
        return cls(
            id=_required_text(data, "id", "template"),
            name=_text(data.get("name")),
            version=_text(data.get("version")),
            custom_parameters=TemplateParameter.list_from_api(data.get("customParameters")),
        )


@dataclass(frozen=True)
class TemplateList:
    """Templates of the organization; ``possibly_truncated`` because POK has no pagination besides ``limit``."""

    templates: tuple
    limit: int
    possibly_truncated: bool


@dataclass(frozen=True)
class Page:
    """A POK public page (E5) under which credentials are shown."""

    id: str
    name: str | None = None

    @classmethod
    def from_api(cls, data):
        """Build from POK's JSON; only the id is required."""
        data = _object(data, "page")
        return cls(id=_required_text(data, "id", "page"), name=_text(data.get("name")))


@dataclass(frozen=True)
class PageList:
    """Pages of the organization; ``possibly_truncated`` because POK has no pagination besides ``limit``."""

    pages: tuple
    limit: int
    possibly_truncated: bool


@dataclass(frozen=True)
class Credential:
    """
    A credential as POK reports it (E6/E7).

    ``state`` is kept verbatim, including states this code does not know: mapping states is the caller's business.
    Dates are the strings POK sent, parsed by the caller if needed, so an unexpected format never loses a
    credential. ``raw`` keeps the whole answer (it holds the receiver's name and email, hence no repr).
    """

    id: str
    state: str
    view_url: str | None = None
    created_at: str | None = None
    title: str | None = None
    emitter: str | None = None
    emission_date: str | None = None
    emission_type: str | None = None
    tags: tuple = ()
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data):
        """Build from POK's JSON; an asynchronous creation may return only ``{id, state}``, which is enough."""
        data = _object(data, "credential")
        details = data.get("credential")
        if not isinstance(details, dict):
            details = {}

        def detail(key):
            # Details are nested under "credential"; accept them at the top level too.
            return _text(details.get(key, data.get(key)))

        tags = details.get("tags", data.get("tags"))
        return cls(
            id=_required_text(data, "id", "credential"),
            state=_required_text(data, "state", "credential"),
            view_url=_text(data.get("viewUrl")),
            created_at=_text(data.get("createdAt")),
            title=detail("title"),
            emitter=detail("emitter"),
            emission_date=detail("emissionDate"),
            emission_type=detail("emissionType"),
            tags=tuple(_text(tag) for tag in tags if _text(tag)) if isinstance(tags, list) else (),
            raw=data,
        )


def _object(data, what):
    """Return ``data`` if it is a JSON object, else say which result was malformed."""
    if not isinstance(data, dict):
        raise _BadBody(f"POK returned a {what} that is not a JSON object")
    return data


def _text(value):
    """A string from JSON, or None; numbers become strings because ids and versions may come back numeric."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _required_text(data, key, what):
    """A non-empty string field without which the result cannot be used."""
    value = _text(data.get(key))
    if not value:
        raise _BadBody(f"POK returned a {what} without '{key}'")
    return value


def _int(value):
    """A count from JSON; anything unusable counts as 0 rather than failing a status page."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        return 0


def _list_items(body, what):
    """The items of a list answer: ``{data: [...]}`` as POK sends it, or a bare list."""
    items = body.get("data") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise _BadBody(f"POK returned a {what} list without 'data'")
    return items


def _url_from(body, keys, what):
    """The first non-empty URL among ``keys`` (POK's name first, then aliases another version might use)."""
    body = _object(body, what)
    for key in keys:
        value = _text(body.get(key))
        if value:
            return value
    raise _BadBody(f"POK returned a {what} without '{keys[0]}'")


# --- Pure helpers (module level so they can be tested without a server) ------------------------------------------


def quote_segment(segment):
    """
    Quote one path segment (an id) so it cannot change the path: ``a/b`` becomes ``a%2Fb``.

    ``.`` and ``..`` are refused because requests would unquote ``%2E`` and urllib3 then removes dot segments, so
    no quoting can make them safe; an empty id would address the collection instead of an item.
    """
    text = str(segment)
    if text in ("", ".", ".."):
        raise ValueError(f"Invalid POK id {text!r}")
    return quote(text, safe="")


def build_url(api_url, *segments):
    """
    Join quoted segments onto the base URL.

    ``urljoin`` is not used: it drops the last segment of a base without a trailing slash (a path prefix).
    """
    return api_url.rstrip("/") + "/" + "/".join(quote_segment(segment) for segment in segments)


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
    proxies (tags stripped). Returns "" for an empty body.
    """
    if isinstance(content, bytes):
        content = content.decode("utf-8", errors="replace")
    text = (content or "").strip()
    if not text:
        return ""
    try:
        message = _message_from_json(json.loads(text))
    except ValueError:
        message = text
        if "html" in (content_type or "").lower() or text.startswith("<"):
            message = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", message)
            message = html.unescape(re.sub(r"(?s)<[^>]*>", " ", message))
    message = " ".join(message.split())
    if len(message) > limit:
        message = message[: limit - 3].rstrip() + "..."
    return message


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
        return "; ".join(part for part in (_message_from_json(item, depth + 1) for item in body) if part)
    for key in _MESSAGE_KEYS:
        message = _message_from_json(body.get(key), depth + 1)
        if message:
            field_name = next((body[k] for k in _FIELD_KEYS if isinstance(body.get(k), str)), None)
            # Name the field only inside an error list: at the top level "path" & co. are usually the URL.
            return f"{field_name}: {message}" if field_name and depth else message
    return json.dumps(body, ensure_ascii=False, sort_keys=True)


def _exception_chain(exc):
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
    return any(isinstance(cause, (NewConnectionError, ConnectTimeoutError)) for cause in _exception_chain(exc))


def _failure_reason(exc):
    """A short cause for a network failure ("Connection refused"), without object reprs or URLs."""
    chain = _exception_chain(exc)
    for cause in chain:
        if isinstance(cause, OSError) and cause.strerror:
            return cause.strerror
    innermost = chain[-1]
    text = str(innermost)
    if text and len(text) < 120 and " object at 0x" not in text:
        return text
    return type(innermost).__name__


# --- The client --------------------------------------------------------------------------------------------------


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
    """

    def __init__(self, api_url, api_key, timeout=DEFAULT_TIMEOUT, connect_timeout=DEFAULT_CONNECT_TIMEOUT):
        self.api_url = self._valid_url(api_url)
        self._api_key = self._valid_key(api_key)
        self.timeout = self._valid_timeout(timeout, "timeout")
        self.connect_timeout = self._valid_timeout(connect_timeout, "connect timeout")
        parts = urlsplit(self.api_url)
        self._host = f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_maxsize=POOL_MAXSIZE, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        self._session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self._session.auth = _ApiKeyAuth(self._api_key)

    def __repr__(self):
        """Show where the client points, never the key."""
        return (
            f"{type(self).__name__}(api_url={self.api_url!r}, timeout={self.timeout!r}, "
            f"connect_timeout={self.connect_timeout!r})"
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
    def _valid_timeout(value, what):
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
            templates = tuple(Template.from_api(item) for item in _list_items(body, "template"))
            return TemplateList(templates=templates, limit=limit, possibly_truncated=len(templates) >= limit)

        return self._request("GET", ("template",), params={"limit": limit}, parse=parse)

    def get_template(self, template_id):
        """E3 ``GET /template/{id}``: the template with the custom parameters a credential must fill."""
        return self._request("GET", ("template", template_id), parse=Template.from_api)

    def preview_template(self, payload):
        """E4 ``POST /template/preview``: URL of a preview image of a credential built from ``payload``."""
        return self._request(
            "POST", ("template", "preview"), payload=payload,
            parse=lambda body: _url_from(body, ("url", "location"), "preview"),
        )

    def list_pages(self, limit=DEFAULT_LIST_LIMIT):
        """E5 ``GET /page?limit=N``; ``possibly_truncated`` when POK returned exactly ``limit`` items."""
        limit = _valid_limit(limit)

        def parse(body):
            pages = tuple(Page.from_api(item) for item in _list_items(body, "page"))
            return PageList(pages=pages, limit=limit, possibly_truncated=len(pages) >= limit)

        return self._request("GET", ("page",), params={"limit": limit}, parse=parse)

    def issue_credential(self, payload, idempotency_key=None):
        """
        E6 ``POST /credential``: issue one credential.

        ``idempotency_key`` is sent as ``Idempotency-Key``; POK is not known to honour it, so callers must not rely
        on it for exactly-once. Failures after sending raise with ``ambiguous=True``.
        """
        if idempotency_key is not None and (
            not isinstance(idempotency_key, str) or not idempotency_key or _CONTROL_OR_SPACE.search(idempotency_key)
        ):
            raise ValueError("idempotency_key must be a non-empty string without spaces or control characters")
        return self._request(
            "POST", ("credential",), payload=payload, idempotency_key=idempotency_key, parse=Credential.from_api
        )

    def get_credential(self, credential_id):
        """E7 ``GET /credential/{id}``: current state of a credential (how state changes are learned)."""
        return self._request("GET", ("credential", credential_id), parse=Credential.from_api)

    def get_credential_image(self, credential_id):
        """E8 ``GET /credential/{id}/decrypted-image``: a public URL of the credential image (lifetime unknown)."""
        return self._request(
            "GET", ("credential", credential_id, "decrypted-image"),
            parse=lambda body: _url_from(body, ("location", "url"), "credential image"),
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
                response = self._session.request(
                    method, build_url(self.api_url, *segments), params=params, data=data, headers=headers,
                    timeout=(self.connect_timeout, self.timeout),
                    # A redirected POST becomes a GET in requests: never follow one, report it instead.
                    allow_redirects=not is_post,
                )
            except requests.RequestException as exc:
                status = type(exc).__name__
                raise self._request_failure(exc, endpoint, is_post) from exc
            status = response.status_code
            self._raise_for_status(response, endpoint, is_post)
            try:
                body = json.loads(response.content)
            except ValueError as exc:
                raise PokResponseError(
                    f"POK answered HTTP {response.status_code} with a body that is not valid JSON.",
                    status_code=response.status_code, ambiguous=is_post, endpoint=endpoint,
                ) from exc
            try:
                return parse(body)
            except _BadBody as exc:
                raise PokResponseError(
                    str(exc), status_code=response.status_code, ambiguous=is_post, endpoint=endpoint
                ) from exc
        finally:
            log.debug("POK %s %s -> %s in %d ms", method, path, status, (time.monotonic() - started) * 1000)

    def _raise_for_status(self, response, endpoint, is_post):
        """Map a non-2xx answer to its exception, keeping POK's own explanation (without the key)."""
        code = response.status_code
        if 200 <= code < 300:
            return
        detail = self._scrub(parse_error_message(response.content, response.headers.get("Content-Type")))
        context = {"status_code": code, "endpoint": endpoint}
        if code in (401, 403):
            raise PokAuthenticationError(_join("POK refused the API key", detail), **context)
        if code == 404:
            raise PokNotFoundError(detail or "POK does not know the requested resource.", **context)
        if code == 429:
            raise PokRateLimitedError(
                _join("POK rate limit reached", detail),
                retry_after=parse_retry_after(response.headers.get("Retry-After")), **context,
            )
        if 400 <= code < 500:
            raise PokValidationError(detail or "POK rejected the request.", **context)
        if code >= 500:
            raise PokServerError(_join("POK server error", detail), ambiguous=is_post, **context)
        # 1xx/3xx: POK never sends these on purpose; a redirect usually means a wrong API URL (http vs https).
        hint = " Check the POK API URL (redirects are not followed for POST)." if 300 <= code < 400 else ""
        raise PokResponseError(f"POK answered with unexpected HTTP {code}.{hint}", retryable=False, **context)

    def _request_failure(self, exc, endpoint, is_post):
        """Map a requests exception (no usable HTTP answer) to the exception the caller can act on."""
        if isinstance(exc, (requests.exceptions.InvalidURL, requests.exceptions.InvalidSchema,
                            requests.exceptions.MissingSchema, requests.exceptions.InvalidHeader)):
            # Raised before anything is sent; a retry cannot help.
            return PokConfigurationError(self._scrub(f"Cannot build the request to POK: {_failure_reason(exc)}"))
        if isinstance(exc, requests.exceptions.TooManyRedirects):
            return PokResponseError(
                "POK redirected too many times; check the POK API URL.", retryable=False, endpoint=endpoint
            )
        if isinstance(exc, requests.exceptions.ContentDecodingError):
            return PokResponseError(
                "POK sent a body that could not be decoded.", ambiguous=is_post, endpoint=endpoint
            )
        if _surely_not_sent(exc):
            if isinstance(exc, requests.ConnectTimeout):
                message = f"Could not connect to POK at {self._host} within {self.connect_timeout:g} s."
            else:
                message = f"Could not connect to POK at {self._host}: {_failure_reason(exc)}."
            return PokNetworkError(self._scrub(message), ambiguous=False, endpoint=endpoint)
        if isinstance(exc, requests.ReadTimeout) or any(
            isinstance(cause, ReadTimeoutError) for cause in _exception_chain(exc)
        ):
            message = f"POK at {self._host} did not answer within {self.timeout:g} s."
        else:
            message = f"The connection to POK at {self._host} failed before a complete answer: {_failure_reason(exc)}."
        return PokNetworkError(self._scrub(message), ambiguous=is_post, endpoint=endpoint)

    def _scrub(self, text):
        """Remove the API key from text that came from outside (POK may echo a wrong key back in its error)."""
        return text.replace(self._api_key, REDACTED) if text else text


def _join(prefix, detail):
    """``prefix: detail`` when POK gave a detail, else ``prefix.``."""
    return f"{prefix}: {detail}" if detail else f"{prefix}."


def _valid_limit(limit):
    """POK's ``limit`` must be a positive integer; refuse anything else before calling it."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    return limit



# --- Public images -----------------------------------------------------------------------------------------------

IMAGE_MAX_BYTES = 10 * 1024 * 1024


def host_allowed(url, allowed_hosts):
    """
    Whether ``url`` is an https (or the allowed http) URL on one of ``allowed_hosts`` or their subdomains.

    Guards every server-side image fetch so the plugin never becomes a proxy to arbitrary or internal addresses.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme not in ("https", "http") or not host or parts.username or parts.password:
        return False
    return any(host == allowed or host.endswith("." + allowed) for allowed in (h.lower() for h in allowed_hosts))


def fetch_image(url, allowed_hosts, timeout=DEFAULT_TIMEOUT, max_bytes=IMAGE_MAX_BYTES):
    """
    Download a public credential image (POK's ``decrypted-image`` location). Returns (content_type, bytes).

    No API key is sent (the location is public and may be on another host), redirects are not followed (they could
    leave the allowed hosts), only image content types are accepted and the size is capped.
    """
    if not host_allowed(url, allowed_hosts):
        raise PokResponseError("The image location is not on an allowed POK host.", retryable=False)
    try:
        with requests.get(url, timeout=(DEFAULT_CONNECT_TIMEOUT, timeout), stream=True, allow_redirects=False,
                          headers={"User-Agent": USER_AGENT, "Accept": "image/*"}) as response:
            content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if response.status_code != 200 or not content_type.startswith("image/"):
                raise PokResponseError(f"The image could not be downloaded (HTTP {response.status_code}).",
                                       status_code=response.status_code, retryable=response.status_code >= 500)
            content = b""
            for chunk in response.iter_content(64 * 1024):
                content += chunk
                if len(content) > max_bytes:
                    raise PokResponseError("The image is larger than allowed.", retryable=False)
    except requests.RequestException as exc:
        raise PokNetworkError(f"The image could not be downloaded ({type(exc).__name__}).") from exc
    return content_type, content
