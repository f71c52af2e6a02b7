"""
A strict, real-HTTP simulator of the POK (pok.tech) API, for tests, demos and benchmarks.

Why it exists: POK publishes no API reference and offers no sandbox a CI job can use, so the client, the tasks and the
end-to-end flows are exercised against this local server instead of against mocks. It implements every endpoint the
known public POK clients use, *strictly*: the real API may well accept more, but rejecting anything those clients
would not send makes payload bugs surface in tests rather than in production. It can also inject the failures a real
network or a misbehaving POK produces, which is what retry, exactly-once and defensive parsing need to be tested
deterministically.

Test tooling, not part of the plugin: it lives at the repository root, outside ``openedx_pok``, so the wheel an LMS
installs does not carry it (tests/test_packaging.py checks). Standard library only and no Django imports, so it also
runs standalone from a checkout::

    python -m pok_simulator --port 8765 [--host 127.0.0.1] [--api-key K] [--async-polls N]
                            [--latency-ms N]

In Python::

    with PokSimulator() as sim:
        sim.add_fault(Fault("rate_limit", endpoint="issue_credential", retry_after=2))
        ...  # point the client at sim.url with sim.api_key

Fault kinds (``Fault(kind, endpoint=None, times=1, ..., probability=None, seed=None, new_keys_only=False)``;
``endpoint`` None means any endpoint, ``times=None`` until cleared; unknown kinds, endpoints and options a kind does
not read are refused when the Fault is built):

``latency`` (``delay``)
    Wait ``delay`` seconds, then handle the request normally.
``status`` (``status``, default 500)
    Answer ``{"message": ...}`` with that status; the request is not handled (no credential is created).
``status_after_create`` (``status``, default 500)
    Handled first (the credential is created, counted and, with ``honour_idempotency_key``, found again by a retry
    with the same key), then answered ``{"message": ...}`` with that status instead of the normal answer: the
    "POK did it but said it failed" case. 1xx, 204 and 304 are refused (the answer has a body).
``rate_limit`` (``retry_after``: seconds or an HTTP-date, optional)
    Answer 429, with ``Retry-After`` when given; not handled.
``hang`` (``delay``)
    Not handled; hold the connection ``delay`` seconds, then close it without an answer.
``hang_after_create`` (``delay``)
    Handled (the credential exists), then the normal answer is held back ``delay`` seconds.
``drop`` / ``drop_after_create``
    Close the connection without an answer, before / after handling the request.
``malformed_json``
    Handled, then answered 200 with a truncated JSON body.
``respond`` (``status`` default 200, ``body`` str or bytes, ``content_type`` default application/json,
``headers`` extra ``(name, value)`` pairs, ``after_create``)
    Answer exactly that: for unusable 2xx bodies (HTML, a JSON list, ``{}`` without an id, deeply nested JSON) and
    redirects (302 with ``headers=(("Location", ...),)``). Not handled, unless ``after_create=True``: then the
    request is handled first (the credential is created and counted) and this answer replaces the normal one.
    Content-Length, Transfer-Encoding and Content-Type cannot be set through ``headers``; 1xx statuses and bodies
    on 204/304 are refused.
``patch_answer`` (``fields``: top-level key -> JSON value)
    Handled, then those top-level keys of the JSON answer are replaced or added (e.g. ``viewUrl``, ``id``,
    ``state``). Only the answer changes, never the stored record; non-2xx and non-object answers pass unchanged.
``slow_drip`` (``delay`` > 0)
    Handled; the status line and headers (with the correct Content-Length) go out at once, then the body one byte
    every ``delay`` seconds. The connection is cut mid-body when the simulator stops or resets.
``huge_body`` (``size`` decoded bytes >= 2, ``gzip``, ``status`` default 200, ``after_create``)
    A JSON object of exactly ``size`` bytes (``{"id": "simulated-huge-body", "state": "processing"`` padded with
    spaces; ``{`` spaces ``}`` when smaller), streamed without being held in memory. With ``gzip=True`` it is sent
    compressed with ``Content-Encoding: gzip`` (compressed chunk by chunk once per size and cached: 300 MiB decoded
    is about 300 KiB on the wire). Not handled unless ``after_create=True``.

Options every kind takes, for fault campaigns that sprinkle failures over a long run (several faults may be queued;
the oldest that applies to a request wins, as always)::

    sim.honour_idempotency_key = True
    sim.add_fault(Fault("status", endpoint="issue_credential", status=500, probability=0.05, seed=1,
                        new_keys_only=True, times=None))
    sim.add_fault(Fault("status_after_create", endpoint="issue_credential", probability=0.05, seed=2,
                        new_keys_only=True, times=None))

``probability`` (0 < p <= 1) and ``seed`` (an int, only with ``probability``)
    ``add_fault`` gives the queued fault its own ``random.Random(seed)``; each request the fault is considered for
    (its endpoint and key filter match and no older fault applied) draws ``random()`` once, and the fault applies when
    the draw is below ``probability``. Same seed and same requests, same faulted requests. A skipped request costs no
    use of ``times`` and the next queued fault is considered for it. ``seed=None`` is not reproducible.
``new_keys_only``
    Apply only to requests whose ``Idempotency-Key`` header the simulator has not received before from the same
    organization (requests without the header count as new): first attempts, never a retry with the same key. Every
    received key counts as seen, faulted or not, whatever the endpoint; ``reset()`` forgets them.

Several organizations: ``sim.add_organization(api_key, name=..., wallet=..., available_credits=..., templates=[...],
pages=[...])`` adds a POK account with its own key and data. A request sees only the templates, pages and
credentials of the organization whose key it presents (another organization's credential is 404);
``RecordedRequest.organization`` names it, and ``count(endpoint, organization=name)`` and
``credentials_for(email, organization=name)`` tell which key did what. Everything else (``api_key``,
``add_template``, ``available_credits``, ...) acts on the default organization; ``reset()`` removes the added ones.
``update_credential(credential_id, **fields)`` rewrites a stored credential's JSON, e.g. a phishing ``viewUrl``.
"""
from .cli import main
from .constants import DEFAULT_API_KEY, ENDPOINTS
from .faults import FAULT_KINDS, Fault
from .simulator import PokSimulator
from .store import RecordedRequest

__all__ = [
    "DEFAULT_API_KEY",
    "ENDPOINTS",
    "FAULT_KINDS",
    "Fault",
    "PokSimulator",
    "RecordedRequest",
    "main",
]
