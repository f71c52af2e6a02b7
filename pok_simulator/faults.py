"""
Fault injection: what can go wrong between a POK client and POK, on demand and deterministically.

A :class:`Fault` is validated when it is built (a misspelt kind, endpoint or option fails the test at once rather
than silently at request time) and applied by :func:`apply_fault` to one request. The kinds, and when each touches
the simulator's state, are listed in the package docstring; in short, the kinds ending in ``_after_create`` and
``after_create=True`` let the request run first (the credential exists), the others answer instead of it.

Which requests a fault applies to is the store's business (:meth:`~.store.Store.take_fault_locked`): ``endpoint``,
``new_keys_only`` and ``probability`` filter, ``times`` counts only the requests the fault was applied to.
"""
from __future__ import annotations

import copy
import functools
import json
import math
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from .constants import ENDPOINTS
from .wire import Response, error_response

FAULT_KINDS = frozenset({
    "latency",
    "status",
    "status_after_create",
    "rate_limit",
    "hang",
    "hang_after_create",
    "drop",
    "drop_after_create",
    "malformed_json",
    "respond",
    "patch_answer",
    "slow_drip",
    "huge_body",
})

_MALFORMED_JSON_BODY = b'{"id": "truncated-by-simulator", "state": '
#: The huge body is this object padded with spaces, so a client without a size cap would accept it as a credential
#: (its test then fails) instead of rejecting it for a missing id; below this size it is ``{`` spaces ``}``.
_HUGE_BODY_HEAD = b'{"id": "simulated-huge-body", "state": "processing"'
_HUGE_BODY_CHUNK = 64 * 1024
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Headers whose values the simulator computes; a fault setting them would break the HTTP framing or be ambiguous.
_RESERVED_HEADERS = frozenset({"content-length", "transfer-encoding", "content-type"})
#: Options that only some kinds read; setting one on another kind is a mistake in the test, so it is refused.
_OPTIONS_BY_KIND: dict[str, frozenset[str]] = {
    "body": frozenset({"respond"}),
    "content_type": frozenset({"respond"}),
    "headers": frozenset({"respond"}),
    "after_create": frozenset({"respond", "huge_body"}),
    "fields": frozenset({"patch_answer"}),
    "size": frozenset({"huge_body"}),
    "gzip": frozenset({"huge_body"}),
}
#: ``status`` when not given: the answer of respond and huge_body succeeds unless told otherwise; errors are 500.
_DEFAULT_STATUS = {"respond": 200, "huge_body": 200}


@dataclass(frozen=True)
class Fault:
    """
    A failure to inject into the next ``times`` requests for ``endpoint`` (any endpoint when None).

    ``times=None`` keeps the fault until :meth:`PokSimulator.clear_faults` or :meth:`PokSimulator.reset`. Frozen so a
    test can reuse one instance; the simulator tracks how many uses are left on its side. ``headers`` is stored as a
    tuple of pairs and ``fields`` as a read-only copy, so changing what was passed in changes nothing.

    Three options narrow which matching requests the fault is applied to, for every kind, so a fault campaign can
    sprinkle failures over a long run instead of scripting each one:

    ``probability`` (0 < p <= 1, stored as a float)
        Each request the fault is considered for draws ``random()`` from a :class:`random.Random` seeded with
        ``seed`` and owned by the simulator's entry for this fault (one generator per :meth:`PokSimulator.add_fault`
        call); the fault applies when the draw is below ``probability``. A skipped request does not consume
        ``times`` and lets the next matching fault be considered. ``seed=None`` seeds from the OS (not reproducible).
    ``seed`` (an int; only with ``probability``)
        The same seed and the same sequence of requests give the same faulted requests, so a campaign replays.
    ``new_keys_only``
        Only requests whose ``Idempotency-Key`` the simulator had not seen before from the same organization (or
        that carry none) are faulted: the first attempt of an issuance, never a retry with the same key.
    """

    kind: str
    endpoint: str | None = None
    times: int | None = 1
    status: int | None = None
    retry_after: float | int | str | None = None
    delay: float = 0.0
    body: str | bytes | None = None
    content_type: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    after_create: bool = False
    fields: Mapping[str, Any] | None = field(default=None, hash=False)
    size: int | None = None
    gzip: bool = False
    probability: float | None = None
    seed: int | None = None
    new_keys_only: bool = False

    def __post_init__(self) -> None:
        """Fail at construction, not silently at request time, when a test misspells a kind or an endpoint."""
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.endpoint is not None and self.endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {self.endpoint!r}; expected one of {sorted(ENDPOINTS)}")
        if self.times is not None and (isinstance(self.times, bool) or not isinstance(self.times, int)
                                       or self.times < 1):
            raise ValueError("times must be a positive integer or None")
        if self.status is None:
            object.__setattr__(self, "status", _DEFAULT_STATUS.get(self.kind, 500))
        if not 100 <= int(self.status) <= 599:
            raise ValueError("status must be an HTTP status code (100-599)")
        if self.delay < 0:
            raise ValueError("delay must not be negative")
        for option, kinds in _OPTIONS_BY_KIND.items():
            if self.kind not in kinds and _is_set(getattr(self, option)):
                raise ValueError(f"{option} applies to fault kinds {sorted(kinds)} only, not to {self.kind!r}")
        if self.kind == "respond":
            self._check_respond()
        elif self.kind == "patch_answer":
            self._check_fields()
        elif self.kind == "slow_drip" and not self.delay > 0:
            raise ValueError("slow_drip needs a positive delay (seconds between two bytes of the body)")
        elif self.kind == "huge_body":
            if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 2:
                raise ValueError("huge_body needs size, the decoded body length in bytes (an integer of at least 2)")
            if not isinstance(self.gzip, bool):
                raise ValueError("gzip must be True or False")
            _check_answer_status(int(self.status), has_body=True)
        elif self.kind == "status_after_create":
            _check_answer_status(int(self.status), has_body=True)
        if not isinstance(self.after_create, bool):
            raise ValueError("after_create must be True or False")
        self._check_selection()

    def _check_selection(self) -> None:
        """The options every kind takes: which of the matching requests the fault is applied to."""
        probability = self.probability
        if probability is not None:
            if isinstance(probability, bool) or not isinstance(probability, int | float) \
                    or not math.isfinite(probability) or not 0 < probability <= 1:
                raise ValueError("probability must be a number with 0 < probability <= 1, or None")
            object.__setattr__(self, "probability", float(probability))
        if self.seed is not None:
            if isinstance(self.seed, bool) or not isinstance(self.seed, int):
                raise ValueError("seed must be an integer or None")
            if probability is None:
                raise ValueError("seed applies only together with probability")
        if not isinstance(self.new_keys_only, bool):
            raise ValueError("new_keys_only must be True or False")

    def _check_respond(self) -> None:
        if self.body is not None and not isinstance(self.body, str | bytes):
            raise ValueError("body must be a str (sent as UTF-8) or bytes")
        if self.content_type is not None and (not isinstance(self.content_type, str) or not self.content_type
                                              or _has_line_break(self.content_type)):
            raise ValueError("content_type must be a non-empty header value without line breaks")
        pairs = tuple(self.headers.items()) if isinstance(self.headers, Mapping) else tuple(self.headers)
        normalized = []
        for pair in pairs:
            if isinstance(pair, str | bytes) or len(pair) != 2:
                raise ValueError("headers must be (name, value) pairs")
            name, value = pair
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise ValueError(f"invalid header name {name!r}")
            if name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"the simulator sets {name}; use content_type for the media type")
            if not isinstance(value, str) or _has_line_break(value):
                raise ValueError(f"header {name} must have a str value without line breaks")
            normalized.append((name, value))
        object.__setattr__(self, "headers", tuple(normalized))
        _check_answer_status(int(self.status), has_body=bool(self.body))

    def _check_fields(self) -> None:
        if not isinstance(self.fields, Mapping) or not self.fields:
            raise ValueError("patch_answer needs fields, a non-empty mapping of top-level keys to JSON values")
        if not all(isinstance(key, str) for key in self.fields):
            raise ValueError("the keys of fields must be strings")
        try:
            json.dumps(dict(self.fields))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"fields must hold JSON values: {exc}") from exc
        object.__setattr__(self, "fields", MappingProxyType(copy.deepcopy(dict(self.fields))))


def _has_line_break(value: str) -> bool:
    return any(character in value for character in "\r\n\x00")


def _is_set(value: Any) -> bool:
    """Whether an option differs from "not given" (None, False or an empty sequence)."""
    if isinstance(value, tuple | list):
        return bool(value)
    return value is not None and value is not False


def _check_answer_status(status: int, *, has_body: bool) -> None:
    """
    A fault's own answer must be a final response, and 204 and 304 have no body by definition (a client would read
    the bytes as the next response on the connection).
    """
    if status <= 199:
        raise ValueError("a fault cannot answer with an informational (1xx) status")
    if has_body and status in (204, 304):
        raise ValueError(f"an HTTP {status} answer cannot have a body")


def _format_retry_after(retry_after: float | str) -> str:
    """Send whole seconds as an integer (the common form); pass strings (an HTTP-date) through untouched."""
    if isinstance(retry_after, str):
        return retry_after
    if float(retry_after).is_integer():
        return str(int(retry_after))
    return str(retry_after)


def _fixed_response(fault: Fault) -> Response:
    body = fault.body.encode("utf-8") if isinstance(fault.body, str) else (fault.body or b"")
    return Response(int(fault.status), body, fault.content_type or "application/json", fault.headers)


def huge_body_chunks(size: int) -> Iterator[bytes]:
    """A JSON object of exactly ``size`` bytes, in 64 KiB pieces, never held whole."""
    head = _HUGE_BODY_HEAD if size >= len(_HUGE_BODY_HEAD) + 1 else b"{"
    yield head
    remaining = size - len(head) - 1
    block = b" " * _HUGE_BODY_CHUNK
    while remaining > 0:
        piece = min(remaining, _HUGE_BODY_CHUNK)
        yield block if piece == _HUGE_BODY_CHUNK else block[:piece]
        remaining -= piece
    yield b"}"


@functools.lru_cache(maxsize=4)
def gzipped_huge_body(size: int) -> bytes:
    """
    The huge body gzip-compressed, fed to the compressor chunk by chunk.

    Spaces compress about 1000:1, so even 300 MiB decoded is about 300 KiB here; cached so repeated faults (or
    ``times=None``) compress once.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: gzip container
    parts = [compressor.compress(chunk) for chunk in huge_body_chunks(size)]
    parts.append(compressor.flush())
    return b"".join(parts)


def _huge_response(fault: Fault, alive: Callable[[], bool]) -> Response:
    size = int(fault.size or 0)
    if fault.gzip:
        return Response(int(fault.status), gzipped_huge_body(size), "application/json",
                        (("Content-Encoding", "gzip"),))
    return Response(int(fault.status), content_type="application/json", stream=lambda: huge_body_chunks(size),
                    stream_length=size, pace=alive)


def _patched_response(response: Response, fields: Mapping[str, Any]) -> Response:
    """Replace top-level keys of a 2xx JSON-object answer; any other answer passes unchanged."""
    if response.stream is not None or not 200 <= response.status <= 299 \
            or not response.content_type.startswith("application/json"):
        return response
    try:
        data = json.loads(response.body)
    except ValueError:
        return response
    if not isinstance(data, dict):
        return response
    data.update(copy.deepcopy(dict(fields)))
    return replace(response, body=json.dumps(data).encode("utf-8"))


def apply_fault(fault: Fault, handle: Callable[[], Response | None],
                sleep: Callable[[float], bool]) -> Response | None:
    """
    Answer one request under ``fault``; None means: close the connection without a response.

    ``handle`` runs the request normally (side effects included; None when a reset overtook it) and ``sleep`` waits
    unless the simulator stops or resets meanwhile (then it returns False and the request is abandoned).
    """
    kind = fault.kind
    if kind == "latency":
        return handle() if sleep(fault.delay) else None
    if kind == "status":
        return error_response(int(fault.status), f"simulated POK error (HTTP {fault.status})")
    if kind == "rate_limit":
        retry_headers = () if fault.retry_after is None else (
            ("Retry-After", _format_retry_after(fault.retry_after)),)
        return error_response(429, "too many requests (simulated)", retry_headers)
    if kind == "drop":
        return None
    if kind == "hang":
        sleep(fault.delay)
        return None
    if kind == "respond" and not fault.after_create:
        return _fixed_response(fault)
    if kind == "huge_body" and not fault.after_create:
        return _huge_response(fault, lambda: sleep(0))

    response = handle()
    if kind == "hang_after_create":
        sleep(fault.delay)
        return response
    if kind == "drop_after_create":
        return None
    if kind == "malformed_json":
        # The request was handled (side effects included), the body cannot be parsed.
        return Response(200, _MALFORMED_JSON_BODY, "application/json")
    if response is None:
        return None
    if kind == "status_after_create":
        # The request was handled (the credential exists and is counted); the client only sees the error.
        return error_response(int(fault.status), f"simulated POK error after handling (HTTP {fault.status})")
    if kind == "respond":
        return _fixed_response(fault)
    if kind == "huge_body":
        return _huge_response(fault, lambda: sleep(0))
    if kind == "patch_answer":
        return _patched_response(response, fault.fields or {})
    # slow_drip: the normal answer, its body one byte per ``delay`` seconds.
    return replace(response, pace=lambda: sleep(fault.delay), drip=True)
