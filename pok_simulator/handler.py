"""
HTTP plumbing of the simulator: routes, the per-request pipeline, the threaded server and the request handler.

The pipeline (:func:`process`) records the request (and its ``Idempotency-Key``, which tells a first attempt from a
retry), takes a matching fault, sleeps the latency, authenticates the key and runs the endpoint handler under the
store's lock. The handler class is a thin adapter around it: it reads the
body, writes the answer (streamed or dripped when a fault asks for it) or cuts the connection.
"""
from __future__ import annotations

import logging
import re
import socket
import socketserver
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .constants import MAX_BODY_BYTES, UNKNOWN_ENDPOINT
from .endpoints import HANDLERS
from .faults import apply_fault
from .store import Organization, RecordedRequest, Store
from .validation import parse_json_object
from .wire import HttpError, Incoming, Response, error_response

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    endpoint: str
    public: bool = False


def _route(method: str, path_pattern: str, endpoint: str, public: bool = False) -> Route:
    """Compile a route that matches with and without a trailing slash, as POK paths do."""
    return Route(method, re.compile(r"^" + path_pattern + r"/?$"), endpoint, public)


ROUTES: tuple[Route, ...] = (
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


def match_route(method: str, path: str) -> tuple[Route | None, dict[str, str], tuple[str, ...]]:
    """Return the route for (method, path), its unquoted path parameters, and the methods the path allows."""
    allowed: set[str] = set()
    for route in ROUTES:
        match = route.pattern.match(path)
        if match is None:
            continue
        if route.method == method:
            return route, {name: unquote(value) for name, value in match.groupdict().items()}, ()
        allowed.add(route.method)
    return None, {}, tuple(sorted(allowed))


# --------------------------------------------------------------------------------------------------------------------
# The request pipeline
# --------------------------------------------------------------------------------------------------------------------
def process(store: Store, method: str, target: str, headers: dict[str, str], body: bytes) -> Response | None:
    """Answer one request; None means: close the connection without a response."""
    split = urlsplit(target)
    route, params, allowed = match_route(method, split.path)
    endpoint = route.endpoint if route is not None else UNKNOWN_ENDPOINT
    query = parse_qs(split.query, keep_blank_values=True)
    lowered = {name.lower(): value for name, value in headers.items()}
    with store.lock:
        generation = store.generation
        organization = store.authenticate_locked(lowered.get("authorization"))
        idempotency_key = lowered.get("idempotency-key")
        store.requests.append(RecordedRequest(
            endpoint=endpoint,
            method=method,
            path=split.path,
            headers=dict(headers),
            body=parse_json_object(body),
            idempotency_key=idempotency_key,
            query=query,
            organization=organization.name if organization is not None else None,
        ))
        new_key = store.note_idempotency_key_locked(organization, idempotency_key)
        fault = store.take_fault_locked(endpoint, new_key) if route is not None else None
        latency = float(store.latency)
    incoming = Incoming(params=params, query=query, headers=lowered, body=body)

    if not store.sleep(latency, generation):
        return None

    def handle() -> Response | None:
        return _respond(store, route, allowed, organization, incoming, generation)

    if fault is None:
        return handle()
    return apply_fault(fault, handle, lambda seconds: store.sleep(seconds, generation))


def _respond(store: Store, route: Route | None, allowed: tuple[str, ...], organization: Organization | None,
             request: Incoming, generation: int) -> Response | None:
    if route is None:
        if allowed:
            return error_response(405, "method not allowed", (("Allow", ", ".join(allowed)),))
        return error_response(404, "not found")
    if not route.public and organization is None:
        return error_response(401, "missing or invalid API key (expected header Authorization: ApiKey <key>)")
    handler = HANDLERS[route.endpoint]
    with store.lock:
        if store.generation != generation:
            return None  # reset while this request slept: it belongs to an earlier test, leave no trace
        try:
            return handler(store, organization, request)
        except HttpError as error:
            return error_response(error.status, error.message)


# --------------------------------------------------------------------------------------------------------------------
# Server and handler
# --------------------------------------------------------------------------------------------------------------------
class SimulatorHTTPServer(ThreadingHTTPServer):
    """Threaded server whose handler threads never block shutdown and whose open connections can be cut."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], store: Store) -> None:
        self.store = store
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, PokRequestHandler)

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


class PokRequestHandler(BaseHTTPRequestHandler):
    """Thin HTTP adapter: reads the request, asks the pipeline, writes the answer or drops the connection."""

    protocol_version = "HTTP/1.1"  # keep-alive, so a pooled client session behaves as against the real API
    server_version = "PokSimulator/1.0"
    sys_version = ""
    timeout = 60  # idle keep-alive connections eventually free their thread
    # Headers and body go out in separate writes; without this, Nagle + delayed ACK add ~40 ms to every answer.
    disable_nagle_algorithm = True
    server: SimulatorHTTPServer

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
        response = process(self.server.store, self.command, self.path, dict(self.headers.items()), body)
        if response is None:
            self._drop_connection()
        else:
            self._write(response)

    def _read_body(self) -> bytes | None:
        """Read the whole body (faults that drop the connection do so only after it was fully sent)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            self._write(error_response(411, "chunked request bodies are not supported; send Content-Length"))
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
            self._write(error_response(400, "invalid or too large Content-Length"))
            return None
        return self.rfile.read(length)

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(response.content_length))
            for name, value in response.headers:
                self.send_header(name, value)
            self.end_headers()
            for chunk in response.chunks():
                pieces = (chunk[index:index + 1] for index in range(len(chunk))) if response.drip else (chunk,)
                for piece in pieces:
                    if response.pace is not None and not response.pace():
                        self._drop_connection()  # stopped or reset mid-body: abandon the answer
                        return
                    self.wfile.write(piece)
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
