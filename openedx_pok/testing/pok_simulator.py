"""
A strict, real-HTTP simulator of the POK (pok.tech) API, for tests, demos and benchmarks.

Why it exists: POK publishes no API reference and offers no sandbox a CI job can use, so the client, the tasks and the
end-to-end flows are exercised against this local server instead of against mocks. It implements every endpoint the
known public POK clients use, *strictly*: the real API may well accept more, but rejecting anything those clients
would not send makes payload bugs surface in tests rather than in production. It can also inject the failures a real
network produces (latency, 5xx, 429, hung or dropped connections before or after the credential was created,
malformed bodies), which is what retry and exactly-once logic need to be tested deterministically.

Standard library only and no Django imports, so it also runs standalone::

    python -m openedx_pok.testing.pok_simulator --port 8765 [--host 127.0.0.1] [--api-key K] [--async-polls N]
                                                [--latency-ms N]

In Python::

    with PokSimulator() as sim:
        sim.add_fault(Fault("rate_limit", endpoint="issue_credential", retry_after=2))
        ...  # point the client at sim.url with sim.api_key
"""
from __future__ import annotations

import argparse
import copy
import hmac
import html
import json
import logging
import re
import signal
import socket
import socketserver
import struct
import sys
import threading
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_API_KEY",
    "ENDPOINTS",
    "FAULT_KINDS",
    "Fault",
    "PokSimulator",
    "RecordedRequest",
    "main",
]

#: The key the simulator accepts unless told otherwise; UUID-shaped like real POK keys. Not a secret.
DEFAULT_API_KEY = "5e3c7a1d-0b8f-4c2e-9a6d-7f1e2b3c4d5e"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_CLI_PORT = 8765
#: What a list returns when the caller sends no ``limit``: small on purpose, so a client that forgets to ask for a
#: large limit sees truncated lists in tests instead of in production.
DEFAULT_LIST_LIMIT = 10
#: Request bodies above this are refused; no POK payload comes near it.
MAX_BODY_BYTES = 1024 * 1024

#: Endpoint names: used to target faults and to count requests.
ENDPOINTS = frozenset({
    "get_organization",
    "list_templates",
    "get_template",
    "preview_template",
    "list_pages",
    "issue_credential",
    "get_credential",
    "get_credential_image",
    "view_page",
    "image_file",
})
#: Endpoint name recorded for requests that match no route (or the wrong method); they are counted, never faulted.
UNKNOWN_ENDPOINT = "unknown"

FAULT_KINDS = frozenset({
    "latency",
    "status",
    "rate_limit",
    "hang",
    "hang_after_create",
    "drop",
    "drop_after_create",
    "malformed_json",
})
EMISSION_MODES = ("sync", "async")
EMISSION_TYPES = ("pok", "blockchain")
DATE_FORMATS = ("dd/MM/yyyy", "MM/dd/yyyy")
#: States in which a credential has no public page yet, so ``viewUrl`` is removed when one of them is forced.
NOT_YET_EMITTED_STATES = frozenset({
    "pending",
    "processing",
    "waitingForApproval",
    "draft",
    "requestingSignature",
    "requestingChange",
    "deferred",
})

DEFAULT_ORGANIZATION_NAME = "Simulated Org"
DEFAULT_WALLET = "0xsim"
DEFAULT_AVAILABLE_CREDITS = 10
DEFAULT_POLLS_UNTIL_EMITTED = 2
DEFAULT_TEMPLATES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("tpl-basic", "Basic certificate", ()),
    ("tpl-grade", "Certificate with grade", (("grade", "Grade"), ("platform", "Platform"))),
)
DEFAULT_PAGES: tuple[tuple[str, str], ...] = (("page-1", "Default page"),)

# ISO 8601 date-time with an explicit offset ("Z" or +hh:mm / +hhmm / +hh); datetime.fromisoformat checks the ranges.
_ISO_DATETIME_WITH_OFFSET = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}(:?\d{2})?)"
)
# "BCP-47-like": a 2-8 letter primary subtag, then 1-8 character alphanumeric subtags (en, en-US, es-419, zh-Hant-TW).
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_POSITIVE_INTEGER = re.compile(r"[0-9]+")
_MALFORMED_JSON_BODY = b'{"id": "truncated-by-simulator", "state": '


# --------------------------------------------------------------------------------------------------------------------
# Public value types
# --------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    """
    A failure to inject into the next ``times`` requests for ``endpoint`` (any endpoint when None).

    ``times=None`` keeps the fault until :meth:`PokSimulator.clear_faults` or :meth:`PokSimulator.reset`. Frozen so a
    test can reuse one instance; the simulator tracks how many uses are left on its side.
    """

    kind: str
    endpoint: str | None = None
    times: int | None = 1
    status: int = 500
    retry_after: float | int | str | None = None
    delay: float = 0.0

    def __post_init__(self) -> None:
        """Fail at construction, not silently at request time, when a test misspells a kind or an endpoint."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.endpoint is not None and self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; expected one of {sorted(ENDPOINTS)}")
        if self.times is not None and (isinstance(self.times, bool) or not isinstance(self.times, int)
                                       or self.times < 1):
            raise ValueError("times must be a positive integer or None")
        if not 100 <= int(self.status) <= 599:
            raise ValueError("status must be an HTTP status code (100-599)")
        if self.delay < 0:
            raise ValueError("delay must not be negative")


@dataclass(frozen=True)
class RecordedRequest:
    """
    One request as the simulator received it, so tests can assert on what the client actually sent.

    ``body`` is the parsed JSON object (None when the body is empty, not JSON or not an object); ``path`` excludes the
    query string, which is in ``query``.
    """

    endpoint: str
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    idempotency_key: str | None
    query: dict[str, list[str]] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        """Look a header up case-insensitively, as HTTP header names are."""
        wanted = name.lower()
        for header_name, value in self.headers.items():
            if header_name.lower() == wanted:
                return value
        return default


# --------------------------------------------------------------------------------------------------------------------
# Internal value types
# --------------------------------------------------------------------------------------------------------------------
class _HttpError(Exception):
    """Raised by the endpoint handlers to answer with a JSON ``{"message": ...}`` error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class _Response:
    """A complete HTTP response, built under the lock and written outside it."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class _Incoming:
    """What an endpoint handler needs from a request; header names are lower-cased."""

    params: dict[str, str]
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class _Template:
    id: str
    name: str
    parameters: tuple[tuple[str, str], ...]
    version: Any = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "name": self.name}
        if self.version is not None:
            data["version"] = self.version
        data["customParameters"] = [{"id": param_id, "label": label} for param_id, label in self.parameters]
        return data


@dataclass
class _CredentialMeta:
    """Simulator bookkeeping for one credential that is not part of POK's JSON."""

    email: str
    skip_acceptance: bool
    auto_progress: bool
    polls_until_emitted: int
    idempotency_key: str | None
    template_id: str
    page_id: str | None
    custom_parameters: dict[str, Any]
    polls: int = 0
    approved: bool = False
    forced: bool = False


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    endpoint: str
    public: bool = False


def _route(method: str, path_pattern: str, endpoint: str, public: bool = False) -> _Route:
    """Compile a route that matches with and without a trailing slash, as POK paths do."""
    return _Route(method, re.compile(r"^" + path_pattern + r"/?$"), endpoint, public)


_ROUTES: tuple[_Route, ...] = (
    _route("GET", r"/organization/me", "get_organization"),
    _route("GET", r"/template", "list_templates"),
    _route("POST", r"/template/preview", "preview_template"),
    _route("GET", r"/template/(?P<template_id>[^/]+)", "get_template"),
    _route("GET", r"/page", "list_pages"),
    _route("POST", r"/credential", "issue_credential"),
    _route("GET", r"/credential/(?P<credential_id>[^/]+)", "get_credential"),
    _route("GET", r"/credential/(?P<credential_id>[^/]+)/decrypted-image", "get_credential_image"),
    _route("GET", r"/view/(?P<credential_id>[^/]+)", "view_page", public=True),
    _route("GET", r"/images/(?P<image_id>[^/]+)\.png", "image_file", public=True),
)


def _match_route(method: str, path: str) -> tuple[_Route | None, dict[str, str], tuple[str, ...]]:
    """Return the route for (method, path), its unquoted path parameters, and the methods the path allows."""
    allowed: set[str] = set()
    for route in _ROUTES:
        match = route.pattern.match(path)
        if match is None:
            continue
        if route.method == method:
            return route, {name: unquote(value) for name, value in match.groupdict().items()}, ()
        allowed.add(route.method)
    return None, {}, tuple(sorted(allowed))


# --------------------------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------------------------
def _json_response(status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _Response(status, json.dumps(data).encode("utf-8"), "application/json", headers)


def _error_response(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> _Response:
    return _json_response(status, {"message": message}, headers)


def _utc_now_iso() -> str:
    """Timestamps in the shape JavaScript back ends such as POK's produce (millisecond precision, ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _format_retry_after(retry_after: float | str) -> str:
    """Send whole seconds as an integer (the common form); pass strings (an HTTP-date) through untouched."""
    if isinstance(retry_after, str):
        return retry_after
    if float(retry_after).is_integer():
        return str(int(retry_after))
    return str(retry_after)


def _build_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (37, 99, 235)) -> bytes:
    """Build a small, valid, solid-colour PNG so image URLs serve something a browser or PIL can decode."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    scanlines = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b"")


PNG_IMAGE = _build_png()


def _parse_json_object(body: bytes) -> dict[str, Any] | None:
    """Best-effort parse for recording; validation proper happens in :func:`_require_json_object`."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _require_json_object(request: _Incoming) -> dict[str, Any]:
    """Enforce what POK clients send on POST: ``Content-Type: application/json`` and a JSON object body."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise _HttpError(400, "Content-Type must be application/json")
    try:
        data = json.loads(request.body)
    except ValueError as exc:
        raise _HttpError(400, "request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise _HttpError(400, "request body must be a JSON object")
    return data


def _parse_limit(query: dict[str, list[str]]) -> int:
    """``limit`` must be one positive integer; absent means a small default (see :data:`DEFAULT_LIST_LIMIT`)."""
    values = query.get("limit")
    if values is None:
        return DEFAULT_LIST_LIMIT
    if len(values) != 1 or not _POSITIVE_INTEGER.fullmatch(values[0]) or int(values[0]) < 1:
        raise _HttpError(400, "limit must be a positive integer")
    return int(values[0])


def _is_non_empty_string(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _require_object(container: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = container.get(key)
    if not isinstance(value, dict):
        raise _HttpError(400, f"{where} must be an object")
    return value


def _validate_iso_datetime_with_offset(value: Any, where: str) -> None:
    message = f"{where} must be an ISO 8601 date-time with an explicit UTC offset, e.g. 2024-05-31T12:00:00+00:00"
    if not isinstance(value, str) or not _ISO_DATETIME_WITH_OFFSET.fullmatch(value):
        raise _HttpError(400, message)
    normalized = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:
        parsed = datetime.fromisoformat(normalized)
    except ValueError as exc:
        raise _HttpError(400, message) from exc
    if parsed.tzinfo is None:
        raise _HttpError(400, message)


def _validate_credential_block(credential: dict[str, Any], *, for_preview: bool) -> None:
    """The ``credential`` block of E6 (and of E4, which has no ``tags``/``skipAcceptance``)."""
    if credential.get("emissionType") not in EMISSION_TYPES:
        raise _HttpError(400, "credential.emissionType is required and must be one of: pok, blockchain")
    if credential.get("dateFormat") not in DATE_FORMATS:
        raise _HttpError(400, "credential.dateFormat is required and must be one of: dd/MM/yyyy, MM/dd/yyyy")
    _validate_iso_datetime_with_offset(credential.get("emissionDate"), "credential.emissionDate")
    for key in ("title", "emitter"):
        if not _is_non_empty_string(credential.get(key)):
            raise _HttpError(400, f"credential.{key} is required and must be a non-empty string")
    if for_preview:
        return
    if "tags" in credential:
        tags = credential["tags"]
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise _HttpError(400, "credential.tags must be a list of strings")
    if "skipAcceptance" in credential and not isinstance(credential["skipAcceptance"], bool):
        raise _HttpError(400, "credential.skipAcceptance must be a boolean")


def _validate_receiver(receiver: dict[str, Any], *, for_preview: bool) -> None:
    """The ``receiver`` block; a preview has no email."""
    if not _is_non_empty_string(receiver.get("firstName")):
        raise _HttpError(400, "receiver.firstName is required and must be a non-empty string")
    if not isinstance(receiver.get("lastName"), str):
        raise _HttpError(400, "receiver.lastName is required and must be a string (it may be empty)")
    if not for_preview:
        email = receiver.get("email")
        if not isinstance(email, str) or not _EMAIL.fullmatch(email):
            raise _HttpError(400, "receiver.email is required and must be an email address")
    if "languageTag" in receiver:
        tag = receiver["languageTag"]
        if not isinstance(tag, str) or not _LANGUAGE_TAG.fullmatch(tag):
            raise _HttpError(400, "receiver.languageTag must be a BCP 47 language tag such as en or es-419")


def _validate_customization(customization: dict[str, Any], templates: dict[str, _Template],
                            pages: dict[str, str]) -> None:
    """Template, page and every declared template parameter (keyed by parameter id, never empty)."""
    if "page" in customization:
        page_id = customization["page"]
        if not isinstance(page_id, str) or page_id not in pages:
            raise _HttpError(400, f"unknown page id {page_id!r} in customization.page (omit the key when none)")
    template_block = _require_object(customization, "template", "customization.template")
    template_id = template_block.get("id")
    if not _is_non_empty_string(template_id):
        raise _HttpError(400, "customization.template.id is required")
    template = templates.get(template_id)
    if template is None:
        raise _HttpError(400, f"unknown template id {template_id!r}")
    parameters = template_block.get("customParameters")
    if not isinstance(parameters, dict):
        raise _HttpError(400, "customization.template.customParameters must be an object ({} when none)")
    for key, value in parameters.items():
        if not isinstance(value, str):
            raise _HttpError(400, f"customization.template.customParameters[{key!r}] must be a string")
    for param_id, _label in template.parameters:
        if not _is_non_empty_string(parameters.get(param_id)):
            raise _HttpError(
                400,
                f"template {template.id!r} parameter {param_id!r} is missing or empty in "
                "customization.template.customParameters",
            )


def _render_view_page(record: dict[str, Any]) -> bytes:
    """A self-contained public credential page (no external assets), every value HTML-escaped."""
    credential = record.get("credential") or {}
    receiver = record.get("receiver") or {}
    title = html.escape(str(credential.get("title", "")))
    emitter = html.escape(str(credential.get("emitter", "")))
    receiver_name = html.escape(str(receiver.get("name", "")))
    emission_date = html.escape(str(credential.get("emissionDate", "")))
    credential_id = html.escape(str(record.get("id", "")))
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 0; background: #f3f4f6; color: #111827; }}
main {{ max-width: 40rem; margin: 3rem auto; padding: 2rem; background: #fff; border-radius: .5rem; }}
.badge {{ display: inline-block; padding: .2rem .6rem; border-radius: 1rem; background: #dcfce7; color: #166534; }}
.muted {{ color: #6b7280; font-size: .9rem; }}
</style>
</head>
<body>
<main>
<p class="badge">Verified credential (POK simulator)</p>
<h1 class="credential-title">{title}</h1>
<p>Awarded to <strong class="receiver-name">{receiver_name}</strong></p>
<p>Issued by <strong class="emitter">{emitter}</strong></p>
<p class="muted">Emission date: {emission_date}</p>
<p class="muted">Credential id: {credential_id}</p>
</main>
</body>
</html>
"""
    return page.encode("utf-8")


def _not_found_page() -> _Response:
    body = b"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head>" \
           b"<body><h1>Credential not found</h1></body></html>\n"
    return _Response(404, body, "text/html; charset=utf-8")


# --------------------------------------------------------------------------------------------------------------------
# The simulator
# --------------------------------------------------------------------------------------------------------------------
class PokSimulator:
    """
    A POK API on ``127.0.0.1`` with scriptable data, emission behaviour and faults.

    All state sits behind one lock because handler threads and the test thread touch it concurrently. Sleeps (latency,
    hang faults) wait on a condition that :meth:`stop` and :meth:`reset` signal, so a hung request never delays
    shutdown and never leaks side effects into the next test: a request that straddles a reset is dropped unhandled.
    """

    def __init__(self, api_key: str = DEFAULT_API_KEY, port: int = 0, host: str = DEFAULT_HOST) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.host = host
        self._initial_api_key = api_key
        self._port: int | None = port or None
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._generation = 0
        self._stopping = False
        self._server: _SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        with self._lock:
            self._restore_defaults_locked()

    # ---- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> PokSimulator:
        """Bind and serve in a daemon thread; returns self so ``sim = PokSimulator().start()`` reads naturally."""
        with self._lock:
            if self._server is not None:
                raise RuntimeError("the POK simulator is already running")
            self._stopping = False
            server = _SimulatorHTTPServer((self.host, self._port or 0), self)
            self._port = server.server_address[1]
            self._server = server
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"pok-simulator-{self._port}",
                daemon=True,
            )
            self._thread.start()
        log.debug("POK simulator listening on port %s", self._port)
        return self

    def stop(self) -> None:
        """Stop promptly: wake sleeping handlers, stop accepting, and cut open (keep-alive or hung) connections."""
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            self._stopping = True
            self._wakeup.notify_all()
        if server is None:
            return
        server.shutdown()
        server.close_open_connections()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        log.debug("POK simulator on port %s stopped", self._port)

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        with self._lock:
            return self._server is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the POK simulator picks its port when started; call start() first")
        return self._port

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, as the plugin's settings hold it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def reset(self) -> None:
        """Forget credentials, recorded requests and faults; restore the default org, templates, pages and modes."""
        with self._lock:
            self._restore_defaults_locked()
            self._generation += 1
            self._wakeup.notify_all()

    def _restore_defaults_locked(self) -> None:
        self.api_key = self._initial_api_key
        self.organization_name = DEFAULT_ORGANIZATION_NAME
        self.wallet = DEFAULT_WALLET
        self._available_credits = DEFAULT_AVAILABLE_CREDITS
        self._emission_mode = "sync"
        self._polls_until_emitted = DEFAULT_POLLS_UNTIL_EMITTED
        self.latency = 0.0
        self.honour_idempotency_key = False
        self._templates: dict[str, _Template] = {}
        for template_id, name, parameters in DEFAULT_TEMPLATES:
            self._templates[template_id] = _Template(template_id, name, parameters)
        self._pages: dict[str, str] = dict(DEFAULT_PAGES)
        self._credentials: dict[str, dict[str, Any]] = {}
        self._meta: dict[str, _CredentialMeta] = {}
        self._idempotency_index: dict[str, str] = {}
        self._requests: list[RecordedRequest] = []
        self._faults: list[list[Any]] = []  # [Fault, remaining uses or None]
        self._preview_count = 0
        self._preview_images: set[str] = set()

    # ---- data -----------------------------------------------------------------------------------------------------
    def add_template(self, template_id: str, name: str, parameters: Iterable[Sequence[str] | dict[str, str]] = (),
                     version: Any = None) -> None:
        """Add or replace a template; ``parameters`` are ``(id, label)`` pairs (or ``{"id", "label"}`` dicts)."""
        normalized = []
        for parameter in parameters:
            if isinstance(parameter, dict):
                normalized.append((str(parameter["id"]), str(parameter.get("label", parameter["id"]))))
            else:
                param_id, label = parameter
                normalized.append((str(param_id), str(label)))
        with self._lock:
            self._templates[template_id] = _Template(template_id, name, tuple(normalized), version)

    def remove_template(self, template_id: str) -> None:
        """Remove a template (no error when absent), e.g. to simulate one deleted at POK after it was mapped."""
        with self._lock:
            self._templates.pop(template_id, None)

    def add_page(self, page_id: str, name: str) -> None:
        with self._lock:
            self._pages[page_id] = name

    def remove_page(self, page_id: str) -> None:
        with self._lock:
            self._pages.pop(page_id, None)

    @property
    def available_credits(self) -> int:
        with self._lock:
            return self._available_credits

    @available_credits.setter
    def available_credits(self, value: int) -> None:
        with self._lock:
            self._available_credits = int(value)

    # ---- emission behaviour ---------------------------------------------------------------------------------------
    @property
    def emission_mode(self) -> str:
        with self._lock:
            return self._emission_mode

    @emission_mode.setter
    def emission_mode(self, value: str) -> None:
        if value not in EMISSION_MODES:
            raise ValueError(f"emission_mode must be one of {EMISSION_MODES}")
        with self._lock:
            self._emission_mode = value

    @property
    def polls_until_emitted(self) -> int:
        """In async mode the N-th GET of a credential (N >= 1; 0 behaves as 1) is the first to see it emitted."""
        with self._lock:
            return self._polls_until_emitted

    @polls_until_emitted.setter
    def polls_until_emitted(self, value: int) -> None:
        if int(value) < 0:
            raise ValueError("polls_until_emitted must not be negative")
        with self._lock:
            self._polls_until_emitted = int(value)

    def approve(self, credential_id: str) -> None:
        """Act as the receiver accepting by email: ``waitingForApproval`` becomes ``emitted``."""
        with self._lock:
            record, meta = self._credential_locked(credential_id)
            meta.approved = True
            state = record["state"]
            if state == "waitingForApproval":
                self._apply_state_locked(credential_id, "emitted")
            elif state == "emitted" or (state == "processing" and meta.auto_progress and not meta.forced):
                return  # already there, or will be emitted (not waiting) once its polls are done
            else:
                raise ValueError(f"cannot approve a credential in state {state!r}")

    def set_state(self, credential_id: str, state: str) -> None:
        """Force any state, known or not; a forced state is sticky (polls no longer move it)."""
        if not isinstance(state, str) or not state:
            raise ValueError("state must be a non-empty string")
        with self._lock:
            _record, meta = self._credential_locked(credential_id)
            meta.forced = True
            self._apply_state_locked(credential_id, state)

    def _credential_locked(self, credential_id: str) -> tuple[dict[str, Any], _CredentialMeta]:
        if credential_id not in self._credentials:
            raise KeyError(credential_id)
        return self._credentials[credential_id], self._meta[credential_id]

    def _apply_state_locked(self, credential_id: str, state: str) -> None:
        """Set the state and keep ``viewUrl`` consistent with it, in POK's key order (id, state, viewUrl, ...)."""
        record = self._credentials[credential_id]
        view_url = record.get("viewUrl")
        if state == "emitted":
            view_url = f"{self.url}/view/{credential_id}"
        elif state in NOT_YET_EMITTED_STATES:
            view_url = None
        ordered: dict[str, Any] = {"id": credential_id, "state": state}
        if view_url is not None:
            ordered["viewUrl"] = view_url
        ordered.update((key, value) for key, value in record.items() if key not in ("id", "state", "viewUrl"))
        record.clear()
        record.update(ordered)

    # ---- faults ---------------------------------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        """Queue a fault; when several match a request the oldest applies, one fault per request."""
        if not isinstance(fault, Fault):
            raise TypeError("add_fault expects a Fault")
        with self._lock:
            self._faults.append([fault, fault.times])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def faults(self) -> list[tuple[Fault, int | None]]:
        """Pending faults with their remaining uses (None: until cleared)."""
        with self._lock:
            return [(fault, remaining) for fault, remaining in self._faults]

    def _take_fault_locked(self, endpoint: str) -> Fault | None:
        for entry in self._faults:
            fault, remaining = entry
            if fault.endpoint is not None and fault.endpoint != endpoint:
                continue
            if remaining is not None:
                entry[1] = remaining - 1
                if entry[1] <= 0:
                    self._faults.remove(entry)
            return fault
        return None

    # ---- inspection -----------------------------------------------------------------------------------------------
    def count(self, endpoint: str | None = None) -> int:
        """Requests received for ``endpoint`` (all when None), faulted ones included."""
        if endpoint is not None and endpoint not in ENDPOINTS and endpoint != UNKNOWN_ENDPOINT:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {sorted(ENDPOINTS)}")
        with self._lock:
            if endpoint is None:
                return len(self._requests)
            return sum(1 for request in self._requests if request.endpoint == endpoint)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def credentials(self) -> dict[str, dict[str, Any]]:
        """Copies of the stored credentials (the POK Credential JSON), in creation order."""
        with self._lock:
            return copy.deepcopy(self._credentials)

    def credentials_for(self, email: str) -> list[dict[str, Any]]:
        """Credentials issued to ``email`` (compared case-insensitively), in creation order."""
        wanted = email.strip().lower()
        with self._lock:
            return [
                copy.deepcopy(self._credentials[credential_id])
                for credential_id, meta in self._meta.items()
                if meta.email.strip().lower() == wanted
            ]

    # ---- request processing (called from handler threads) --------------------------------------------------------
    def _process(self, method: str, target: str, headers: dict[str, str], body: bytes) -> _Response | None:
        """Answer one request; None means: close the connection without a response."""
        split = urlsplit(target)
        route, params, allowed = _match_route(method, split.path)
        endpoint = route.endpoint if route is not None else UNKNOWN_ENDPOINT
        query = parse_qs(split.query, keep_blank_values=True)
        lowered = {name.lower(): value for name, value in headers.items()}
        with self._lock:
            generation = self._generation
            self._requests.append(RecordedRequest(
                endpoint=endpoint,
                method=method,
                path=split.path,
                headers=dict(headers),
                body=_parse_json_object(body),
                idempotency_key=lowered.get("idempotency-key"),
                query=query,
            ))
            fault = self._take_fault_locked(endpoint) if route is not None else None
            latency = float(self.latency)
        incoming = _Incoming(params=params, query=query, headers=lowered, body=body)

        if not self._sleep(latency, generation):
            return None
        if fault is None:
            return self._respond(route, allowed, incoming, generation)
        if fault.kind == "latency":
            if not self._sleep(fault.delay, generation):
                return None
            return self._respond(route, allowed, incoming, generation)
        if fault.kind == "status":
            return _error_response(fault.status, f"simulated POK error (HTTP {fault.status})")
        if fault.kind == "rate_limit":
            retry_headers = () if fault.retry_after is None else (
                ("Retry-After", _format_retry_after(fault.retry_after)),)
            return _error_response(429, "too many requests (simulated)", retry_headers)
        if fault.kind == "drop":
            return None
        if fault.kind == "hang":
            self._sleep(fault.delay, generation)
            return None
        response = self._respond(route, allowed, incoming, generation)
        if fault.kind == "hang_after_create":
            self._sleep(fault.delay, generation)
            return response
        if fault.kind == "drop_after_create":
            return None
        # malformed_json: the request was handled (side effects included), the body cannot be parsed.
        return _Response(200, _MALFORMED_JSON_BODY, "application/json")

    def _sleep(self, seconds: float, generation: int) -> bool:
        """Sleep unless stopped or reset meanwhile; False when the request should be abandoned."""
        with self._wakeup:
            if seconds > 0:
                self._wakeup.wait_for(lambda: self._stopping or self._generation != generation, timeout=seconds)
            return not self._stopping and self._generation == generation

    def _respond(self, route: _Route | None, allowed: tuple[str, ...], request: _Incoming,
                 generation: int) -> _Response | None:
        if route is None:
            if allowed:
                return _error_response(405, "method not allowed", (("Allow", ", ".join(allowed)),))
            return _error_response(404, "not found")
        if not route.public and not self._authorized(request.headers.get("authorization")):
            return _error_response(401, "missing or invalid API key (expected header Authorization: ApiKey <key>)")
        handler = getattr(self, f"_handle_{route.endpoint}")
        with self._lock:
            if self._generation != generation:
                return None  # reset while this request slept: it belongs to an earlier test, leave no trace
            try:
                return handler(request)
            except _HttpError as error:
                return _error_response(error.status, error.message)

    def _authorized(self, authorization: str | None) -> bool:
        if not authorization:
            return False
        scheme, _, key = authorization.partition(" ")
        with self._lock:
            expected = self.api_key
        return scheme == "ApiKey" and hmac.compare_digest(key.strip().encode(), expected.encode())

    # ---- endpoint handlers (called with the lock held) ------------------------------------------------------------
    def _handle_get_organization(self, request: _Incoming) -> _Response:
        states = [record["state"] for record in self._credentials.values()]
        return _json_response(200, {
            "wallet": self.wallet,
            "name": self.organization_name,
            "availableCredits": self._available_credits,
            "emittedCredentials": states.count("emitted"),
            "sentCredentials": states.count("waitingForApproval"),
            "draftCredentials": states.count("draft"),
            "processingCredentials": states.count("processing") + states.count("pending"),
        })

    def _handle_list_templates(self, request: _Incoming) -> _Response:
        limit = _parse_limit(request.query)
        templates = list(self._templates.values())[:limit]
        return _json_response(200, {"data": [template.as_json() for template in templates]})

    def _handle_get_template(self, request: _Incoming) -> _Response:
        template = self._templates.get(request.params["template_id"])
        if template is None:
            raise _HttpError(404, "template not found")
        return _json_response(200, template.as_json())

    def _handle_preview_template(self, request: _Incoming) -> _Response:
        payload = _require_json_object(request)
        _validate_credential_block(_require_object(payload, "credential", "credential"), for_preview=True)
        _validate_receiver(_require_object(payload, "receiver", "receiver"), for_preview=True)
        _validate_customization(_require_object(payload, "customization", "customization"), self._templates,
                                self._pages)
        self._preview_count += 1
        image_id = f"preview-{self._preview_count}"
        self._preview_images.add(image_id)
        return _json_response(200, {"url": f"{self.url}/images/{image_id}.png"})

    def _handle_list_pages(self, request: _Incoming) -> _Response:
        limit = _parse_limit(request.query)
        pages = list(self._pages.items())[:limit]
        return _json_response(200, {"data": [{"id": page_id, "name": name} for page_id, name in pages]})

    def _handle_issue_credential(self, request: _Incoming) -> _Response:
        idempotency_key = request.headers.get("idempotency-key")
        if self.honour_idempotency_key and idempotency_key in self._idempotency_index:
            earlier_id = self._idempotency_index[idempotency_key]
            return _json_response(200, copy.deepcopy(self._credentials[earlier_id]))

        payload = _require_json_object(request)
        credential = _require_object(payload, "credential", "credential")
        receiver = _require_object(payload, "receiver", "receiver")
        customization = _require_object(payload, "customization", "customization")
        _validate_credential_block(credential, for_preview=False)
        _validate_receiver(receiver, for_preview=False)
        _validate_customization(customization, self._templates, self._pages)
        if credential["emissionType"] == "blockchain":
            if self._available_credits <= 0:
                raise _HttpError(400, "insufficient credits for a blockchain emission")
            self._available_credits -= 1

        credential_id = str(uuid.uuid4())
        skip_acceptance = credential.get("skipAcceptance") is True
        asynchronous = self._emission_mode == "async"
        record: dict[str, Any] = {
            "id": credential_id,
            "state": "processing",
            "createdAt": _utc_now_iso(),
            "credential": {
                "title": credential["title"],
                "emitter": credential["emitter"],
                "emissionDate": credential["emissionDate"],
                "emissionType": credential["emissionType"],
                "tags": list(credential.get("tags", [])),
            },
            "receiver": {
                "name": f"{receiver['firstName']} {receiver['lastName']}".strip(),
                "email": receiver["email"],
            },
        }
        template_block = customization["template"]
        self._credentials[credential_id] = record
        self._meta[credential_id] = _CredentialMeta(
            email=receiver["email"],
            skip_acceptance=skip_acceptance,
            auto_progress=asynchronous,
            polls_until_emitted=max(1, self._polls_until_emitted),
            idempotency_key=idempotency_key,
            template_id=template_block["id"],
            page_id=customization.get("page"),
            custom_parameters=dict(template_block["customParameters"]),
        )
        if idempotency_key and idempotency_key not in self._idempotency_index:
            self._idempotency_index[idempotency_key] = credential_id
        log.debug("POK simulator created credential %s", credential_id)

        if asynchronous:
            return _json_response(202, {"id": credential_id, "state": "processing"})
        self._apply_state_locked(credential_id, "emitted" if skip_acceptance else "waitingForApproval")
        return _json_response(201, copy.deepcopy(record))

    def _handle_get_credential(self, request: _Incoming) -> _Response:
        credential_id = request.params["credential_id"]
        if credential_id not in self._credentials:
            raise _HttpError(404, "credential not found")
        self._poll_locked(credential_id)
        return _json_response(200, copy.deepcopy(self._credentials[credential_id]))

    def _poll_locked(self, credential_id: str) -> None:
        """Each GET of an async credential is one poll; the last one moves it out of ``processing``."""
        record, meta = self._credentials[credential_id], self._meta[credential_id]
        if not meta.auto_progress or meta.forced or record["state"] != "processing":
            return
        meta.polls += 1
        if meta.polls >= meta.polls_until_emitted:
            ready = meta.skip_acceptance or meta.approved
            self._apply_state_locked(credential_id, "emitted" if ready else "waitingForApproval")

    def _handle_get_credential_image(self, request: _Incoming) -> _Response:
        credential_id = request.params["credential_id"]
        if credential_id not in self._credentials:
            raise _HttpError(404, "credential not found")
        return _json_response(200, {"location": f"{self.url}/images/{credential_id}.png"})

    def _handle_view_page(self, request: _Incoming) -> _Response:
        record = self._credentials.get(request.params["credential_id"])
        if record is None or record["state"] != "emitted":
            return _not_found_page()
        return _Response(200, _render_view_page(record), "text/html; charset=utf-8")

    def _handle_image_file(self, request: _Incoming) -> _Response:
        image_id = request.params["image_id"]
        if image_id not in self._credentials and image_id not in self._preview_images:
            raise _HttpError(404, "image not found")
        return _Response(200, PNG_IMAGE, "image/png")


# --------------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------------------------
class _SimulatorHTTPServer(ThreadingHTTPServer):
    """Threaded server whose handler threads never block shutdown and whose open connections can be cut."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], simulator: PokSimulator) -> None:
        self.simulator = simulator
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _PokRequestHandler)

    def server_bind(self) -> None:
        """Skip HTTPServer's reverse DNS lookup (``getfqdn``), which can stall startup on some hosts."""
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients giving up mid-response are expected here (timeouts are a feature); keep stderr quiet."""
        error_type = sys.exc_info()[0]
        log.debug("POK simulator: %s while handling a request", error_type.__name__ if error_type else "error")

    def track_connection(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack_connection(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_open_connections(self) -> None:
        """Shut keep-alive and hung connections so nothing is served after stop()."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError as exc:
                log.debug("POK simulator: connection already closed (%s)", type(exc).__name__)


class _PokRequestHandler(BaseHTTPRequestHandler):
    """Thin HTTP adapter: reads the request, asks the simulator, writes the answer or drops the connection."""

    protocol_version = "HTTP/1.1"  # keep-alive, so a pooled client session behaves as against the real API
    server_version = "PokSimulator/1.0"
    sys_version = ""
    timeout = 60  # idle keep-alive connections eventually free their thread
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: _SimulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack_connection(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: the default writes every request line to stderr; nothing here may log keys or bodies."""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        body = self._read_body()
        if body is None:
            return
        response = self.server.simulator._process(self.command, self.path, dict(self.headers.items()), body)
        if response is None:
            self._drop_connection()
        else:
            self._write(response)

    def _read_body(self) -> bytes | None:
        """Read the whole body (faults that drop the connection do so only after it was fully sent)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._write(_error_response(411, "chunked request bodies are not supported; send Content-Length"))
            return None
        length_header = self.headers.get("Content-Length")
        if not length_header:
            return b""
        try:
            length = int(length_header)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._write(_error_response(400, "invalid or too large Content-Length"))
            return None
        return self.rfile.read(length)

    def _write(self, response: _Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(response.body)
        except OSError as exc:
            # The client gave up first (a read timeout against a hang fault, or stop() cut the connection).
            self.close_connection = True
            log.debug("POK simulator: client went away before the response was written (%s)", type(exc).__name__)

    def _drop_connection(self) -> None:
        """Close without a response, the way a crashed proxy or a network cut looks to the client."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            log.debug("POK simulator: connection already closed (%s)", type(exc).__name__)


# --------------------------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------------------------
def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Serve a simulator until Ctrl-C or SIGTERM, for the demo sandbox, manual testing and benchmarks."""
    parser = argparse.ArgumentParser(
        prog="python -m openedx_pok.testing.pok_simulator",
        description="Run a local simulator of the POK (pok.tech) credentials API.",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="interface to bind (default: %(default)s)")
    parser.add_argument("--port", type=_non_negative_int, default=DEFAULT_CLI_PORT,
                        help="port to listen on, 0 for any free port (default: %(default)s)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="API key to accept (default: the built-in key)")
    parser.add_argument("--async-polls", type=_non_negative_int, default=None, metavar="N",
                        help="emit asynchronously: a credential is emitted on its N-th GET (default: synchronous)")
    parser.add_argument("--latency-ms", type=_non_negative_float, default=0.0, metavar="N",
                        help="milliseconds added to every request (default: 0)")
    args = parser.parse_args(argv)

    simulator = PokSimulator(api_key=args.api_key, port=args.port, host=args.host)
    if args.async_polls is not None:
        simulator.emission_mode = "async"
        simulator.polls_until_emitted = args.async_polls
    simulator.latency = args.latency_ms / 1000.0
    try:
        simulator.start()
    except OSError as exc:
        print(f"Cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1

    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop_requested.set())
    print(f"POK simulator listening on {simulator.url}", flush=True)
    print(f"API key: {simulator.api_key}", flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    try:
        while not stop_requested.wait(0.5):
            continue
    except KeyboardInterrupt:
        print("Stopping the POK simulator.", flush=True)
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
