"""
The one way the client exchanges bytes with a server: a total deadline, a size cap, no redirects.

``requests`` timeouts bound each socket operation, not a call: a server that sends one byte every few seconds keeps a
Celery worker for as long as it likes, and ``response.content`` holds whatever it sends (a 300 MiB answer, or a small
gzip answer that inflates to it). POK is an outside service, so every call here, API or image
(``docs/pok-api.rst``, "What the client enforces"), gets:

- a total wall-clock budget. A watchdog timer shuts the socket down when it runs out, which wakes a read blocked in
  the middle of the status line, the headers, the TLS handshake or the body; the body loop checks the clock too.
  The socket is found through connection classes mounted on the session's adapter (a duplicate of its descriptor
  is kept, so the watchdog never touches a descriptor number the process may have reused);
- a cap on the *decoded* body: the body is streamed through urllib3's decoder in chunks (urllib3 2 bounds the
  output of each decompression step) and reading stops past the cap;
- ``allow_redirects=False``: the caller decides what a 3xx means, and no request is ever repeated to a host it
  did not choose.

It raises ``requests`` exceptions and :class:`DeadlineExceeded`; mapping them to the plugin's errors is the
caller's business (``errors.py``), since an image download and an API call mean different things by them.
"""
import logging
import socket
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

import openedx_pok

log = logging.getLogger(__name__)

USER_AGENT = f"openedx-pok/{openedx_pok.__version__}"
# A read timeout must be longer than POK's slowest normal answer (credential creation) and short enough that a hung
# connection does not hold a Celery worker for long. Connect timeout slightly above a TCP retransmit window (3 s).
DEFAULT_TIMEOUT = 10
DEFAULT_CONNECT_TIMEOUT = 3.05
# POK's JSON answers are a few KiB; a MiB leaves room for big template lists and nothing for abuse.
DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024
# An error answer is read only for its message: a proxy's HTML error page fits, a flood does not.
ERROR_BODY_BYTES = 64 * 1024
CHUNK_BYTES = 64 * 1024
# Connections kept open per host: enough for the threads of one worker process sharing a client.
POOL_MAXSIZE = 10

_calls = threading.local()


class DeadlineExceeded(Exception):
    """
    A call ran out of its total budget. ``request_started`` tells whether the request had begun to go out (then a
    POST may have reached the server); ``budget`` is the budget in seconds.
    """

    def __init__(self, budget, request_started):
        self.budget = budget
        self.request_started = request_started
        super().__init__(f"deadline of {budget:g} s exceeded")


@dataclass(frozen=True)
class Answer:
    """
    An HTTP answer read within the budget. ``complete`` is False when the body went past the cap; ``body`` then
    holds only its start (at most the cap), enough for an error message or an excerpt.
    """

    status: int
    headers: CaseInsensitiveDict
    body: bytes
    complete: bool


class _Watchdog:
    """Shuts down the sockets of one call when its budget runs out; harmless once the call has ended."""

    def __init__(self, budget):
        self.budget = budget
        self.fired = False
        self.request_started = False
        self._ended = False
        self._lock = threading.Lock()
        self._watched = {}  # id(connection) -> our duplicate of its socket
        self._timer = threading.Timer(budget, self._fire)
        self._timer.daemon = True

    def start(self):
        self._timer.start()

    def watch(self, connection, sock):
        """Watch the socket of ``connection`` (once per connection and call)."""
        if sock is None:
            return
        with self._lock:
            if self._ended or id(connection) in self._watched:
                return
            try:
                duplicate = socket.fromfd(sock.fileno(), sock.family, sock.type, sock.proto)
            except (OSError, ValueError, AttributeError) as exc:
                # No descriptor to watch (closed, or a transport without one): the body loop still checks the clock.
                log.debug("POK transport: socket not watchable (%s)", type(exc).__name__)
                return
            self._watched[id(connection)] = duplicate
            if self.fired:
                _shut(duplicate)

    def _fire(self):
        with self._lock:
            if self._ended:
                return
            self.fired = True
            for duplicate in self._watched.values():
                _shut(duplicate)

    def end(self):
        with self._lock:
            self._ended = True
            self._timer.cancel()
            for duplicate in self._watched.values():
                duplicate.close()
            self._watched.clear()


def _shut(sock):
    """Shut a connection down for reading and writing: a blocked read returns at once, the peer sees a FIN."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # already closed by the peer or by urllib3: nothing left to stop
        log.debug("POK transport: socket already closed (%s)", exc.strerror or type(exc).__name__)


class _WatchedConnectionMixin:
    """Hands each socket to the watchdog of the call running in this thread (if any)."""

    def _new_conn(self):
        # Before TLS is set up, so a handshake that drips is covered by the deadline too.
        sock = super()._new_conn()
        watchdog = getattr(_calls, "watchdog", None)
        if watchdog is not None:
            watchdog.watch(self, sock)
        return sock

    def request(self, *args, **kwargs):
        watchdog = getattr(_calls, "watchdog", None)
        if watchdog is not None:
            watchdog.request_started = True
            watchdog.watch(self, self.sock)  # a pooled connection, reused without _new_conn
        return super().request(*args, **kwargs)


class _WatchedHTTPConnection(_WatchedConnectionMixin, HTTPConnection):
    """HTTP connection whose socket the call's watchdog can shut down."""


class _WatchedHTTPSConnection(_WatchedConnectionMixin, HTTPSConnection):
    """HTTPS connection whose socket the call's watchdog can shut down."""


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOL_CLASSES = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class DeadlineAdapter(HTTPAdapter):
    """An adapter whose pools use watched connections; no automatic retries (the caller decides)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_retries", 0)
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOL_CLASSES

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS managers bring their own connection classes
            manager.pool_classes_by_scheme = _POOL_CLASSES
        return manager


ENVIRONMENT_ENTRIES = 64


class _Session(requests.Session):
    """
    A session that reads the environment's proxy and CA bundle settings once per server, not on every request.

    ``requests`` walks the whole process environment twice per request to find them: about a third of the CPU a
    POST costs the client in a worker. Each session keeps the answer per scheme and host (``NO_PROXY`` depends on
    the host), so a proxy variable changed while a process runs applies to the clients made after the change.
    """

    def __init__(self):
        super().__init__()
        self._environment = {}

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc, stream, verify, cert, tuple(sorted((proxies or {}).items())))
        merged = self._environment.get(key)
        if merged is None:
            merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
            if len(self._environment) >= ENVIRONMENT_ENTRIES:
                self._environment.clear()  # image hosts are any subdomain of an allowed host: stay bounded
            self._environment[key] = merged
        return {**merged, "proxies": dict(merged["proxies"])}  # requests may change what it is given


def new_session(pool_maxsize=POOL_MAXSIZE):
    """A session that sends the plugin's User-Agent through deadline adapters."""
    session = _Session()
    adapter = DeadlineAdapter(pool_maxsize=pool_maxsize)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def exchange(session, method, url, *, budget, connect_timeout, read_timeout, max_bytes, params=None, data=None,
             headers=None):
    """
    Send one request and read its answer within ``budget`` seconds, reading at most ``max_bytes`` of a 2xx body.

    Raises DeadlineExceeded when the budget runs out, and ``requests`` exceptions for everything else that keeps an
    answer from arriving. Never follows a redirect.
    """
    deadline = time.monotonic() + budget
    watchdog = _Watchdog(budget)
    previous, _calls.watchdog = getattr(_calls, "watchdog", None), watchdog
    watchdog.start()
    try:
        try:
            response = session.request(
                method, url, params=params, data=data, headers=headers, stream=True, allow_redirects=False,
                timeout=(min(connect_timeout, budget), min(read_timeout, budget)),
            )
        except requests.RequestException as exc:
            if watchdog.fired:
                raise DeadlineExceeded(budget, watchdog.request_started) from exc
            raise
        with response:
            limit = max_bytes if 200 <= response.status_code < 300 else min(max_bytes, ERROR_BODY_BYTES)
            try:
                body, complete = _read_body(response, limit, deadline)
            except requests.RequestException as exc:
                if watchdog.fired:
                    raise DeadlineExceeded(budget, True) from exc
                raise
            if body is None or watchdog.fired:
                # A body delimited by the end of the connection looks complete when the watchdog cut it.
                raise DeadlineExceeded(budget, True)
        return Answer(status=response.status_code, headers=response.headers, body=body, complete=complete)
    finally:
        watchdog.end()
        _calls.watchdog = previous


def _read_body(response, limit, deadline):
    """
    ``(body, complete)``: the decoded body up to ``limit`` bytes, streamed so memory stays at ``limit`` + a chunk.

    ``(None, False)`` when the clock ran out between chunks (a drip the watchdog has not cut yet).
    """
    chunks, size = [], 0
    for chunk in response.iter_content(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            chunks.append(chunk[: len(chunk) - (size - limit)])
            return b"".join(chunks), False
        chunks.append(chunk)
        if time.monotonic() > deadline:
            return None, False
    return b"".join(chunks), True
