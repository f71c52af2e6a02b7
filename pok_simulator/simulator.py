"""
:class:`PokSimulator`, the public face of the simulator: lifecycle, scripted data, emission behaviour, faults and
inspection.

It holds no request logic itself: the state lives in :class:`~.store.Store` and requests are answered by
:func:`~.handler.process`, so this class is the one place a test talks to. Methods that take no ``organization``
act on the default organization (the one with the constructor's key), as they did before several organizations
existed.
"""
from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self

from .constants import DEFAULT_API_KEY, DEFAULT_AVAILABLE_CREDITS, DEFAULT_HOST, DEFAULT_PAGES, EMISSION_MODES
from .faults import Fault
from .handler import SimulatorHTTPServer
from .store import (
    FaultEntry,
    Organization,
    RecordedRequest,
    Store,
    default_templates,
    make_template,
    order_credential_keys,
    page_from_spec,
    template_from_spec,
)

log = logging.getLogger(__name__)


class PokSimulator:
    """
    A POK API on ``127.0.0.1`` with scriptable data, emission behaviour and faults.

    Thread-safe: handler threads and the test thread share one lock. :meth:`stop` and :meth:`reset` wake every
    sleeping request (latency, hangs, slow drips) so nothing delays shutdown or leaks into the next test.
    """

    def __init__(self, api_key: str = DEFAULT_API_KEY, port: int = 0, host: str = DEFAULT_HOST) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.host = host
        self._port: int | None = port or None
        self._store = Store(api_key)
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ------------------------------------------------------------------------------------------------
    def start(self) -> PokSimulator:
        """Bind and serve in a daemon thread; returns self so ``sim = PokSimulator().start()`` reads naturally."""
        store = self._store
        with store.lock:
            if self._server is not None:
                raise RuntimeError("the POK simulator is already running")
            store.stopping = False
            server = SimulatorHTTPServer((self.host, self._port or 0), store)
            self._port = server.server_address[1]
            store.base_url = self.url
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
        store = self._store
        with store.lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
            store.stopping = True
            store.wakeup.notify_all()
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
        with self._store.lock:
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
        """
        Forget credentials, requests, faults, seen idempotency keys and added organizations; restore the default
        organization, its data and the modes.
        """
        store = self._store
        with store.lock:
            store.restore_defaults_locked()
            store.generation += 1
            store.wakeup.notify_all()

    # ---- the default organization and global settings -------------------------------------------------------------
    @property
    def api_key(self) -> str:
        with self._store.lock:
            return self._store.default.api_key

    @api_key.setter
    def api_key(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("api_key must be a non-empty string")
        with self._store.lock:
            self._store.check_unique_locked(api_key=value, ignore=self._store.default)
            self._store.default.api_key = value

    @property
    def organization_name(self) -> str:
        with self._store.lock:
            return self._store.default.name

    @organization_name.setter
    def organization_name(self, value: str) -> None:
        with self._store.lock:
            self._store.check_unique_locked(name=value, ignore=self._store.default)
            self._store.default.name = value

    @property
    def wallet(self) -> str:
        with self._store.lock:
            return self._store.default.wallet

    @wallet.setter
    def wallet(self, value: str) -> None:
        with self._store.lock:
            self._store.default.wallet = value

    @property
    def available_credits(self) -> int:
        with self._store.lock:
            return self._store.default.available_credits

    @available_credits.setter
    def available_credits(self, value: int) -> None:
        with self._store.lock:
            self._store.default.available_credits = int(value)

    @property
    def latency(self) -> Any:
        """Seconds added to every request (any organization), before faults apply."""
        with self._store.lock:
            return self._store.latency

    @latency.setter
    def latency(self, value: float) -> None:
        with self._store.lock:
            self._store.latency = value

    @property
    def honour_idempotency_key(self) -> bool:
        """When True a repeated ``Idempotency-Key`` (per organization) returns the earlier credential with 200."""
        with self._store.lock:
            return self._store.honour_idempotency_key

    @honour_idempotency_key.setter
    def honour_idempotency_key(self, value: bool) -> None:
        with self._store.lock:
            self._store.honour_idempotency_key = value

    # ---- organizations --------------------------------------------------------------------------------------------
    def add_organization(self, api_key: str, name: str | None = None, wallet: str | None = None,
                         available_credits: int = DEFAULT_AVAILABLE_CREDITS,
                         templates: Iterable[Sequence[Any] | Mapping[str, Any]] | None = None,
                         pages: Iterable[Sequence[Any] | Mapping[str, Any]] | None = None) -> str:
        """
        Add a POK organization with its own key, credits, templates and pages; returns its name.

        ``templates`` take the shape :meth:`add_template` does (``(id, name[, parameters[, version]])`` or a dict);
        ``pages`` are ``(id, name)`` pairs or dicts. None gives the built-in defaults (``tpl-basic``, ``tpl-grade``,
        ``page-1``); pass ``[]`` for none. Key and name must be unique; :meth:`reset` removes the organization.
        """
        if not isinstance(api_key, str) or not api_key:
            raise ValueError("api_key must be a non-empty string")
        built_templates = default_templates() if templates is None else {
            template.id: template for template in map(template_from_spec, templates)}
        built_pages = dict(DEFAULT_PAGES) if pages is None else dict(map(page_from_spec, pages))
        with self._store.lock:
            number = len(self._store.organizations) + 1
            organization = Organization(
                api_key=api_key,
                name=name if name is not None else f"Simulated Org {number}",
                wallet=wallet if wallet is not None else f"0xsim{number}",
                available_credits=int(available_credits),
                templates=built_templates,
                pages=built_pages,
            )
            if not isinstance(organization.name, str) or not organization.name:
                raise ValueError("name must be a non-empty string")
            self._store.check_unique_locked(api_key=api_key, name=organization.name)
            self._store.organizations.append(organization)
            return organization.name

    @property
    def organizations(self) -> list[str]:
        """Organization names, the default one first."""
        with self._store.lock:
            return [organization.name for organization in self._store.organizations]

    def organization(self, name: str | None = None) -> dict[str, Any]:
        """A copy of one organization (default: the default one): name, wallet, availableCredits, templates, pages."""
        with self._store.lock:
            return copy.deepcopy(self._store.organization_locked(name).snapshot())

    # ---- data -----------------------------------------------------------------------------------------------------
    def add_template(self, template_id: str, name: str, parameters: Iterable[Sequence[str] | dict[str, str]] = (),
                     version: Any = None, organization: str | None = None) -> None:
        """Add or replace a template; ``parameters`` are ``(id, label)`` pairs (or ``{"id", "label"}`` dicts)."""
        template = make_template(template_id, name, parameters, version)
        with self._store.lock:
            self._store.organization_locked(organization).templates[template_id] = template

    def remove_template(self, template_id: str, organization: str | None = None) -> None:
        """Remove a template (no error when absent), e.g. to simulate one deleted at POK after it was mapped."""
        with self._store.lock:
            self._store.organization_locked(organization).templates.pop(template_id, None)

    def add_page(self, page_id: str, name: str, organization: str | None = None) -> None:
        with self._store.lock:
            self._store.organization_locked(organization).pages[page_id] = name

    def remove_page(self, page_id: str, organization: str | None = None) -> None:
        with self._store.lock:
            self._store.organization_locked(organization).pages.pop(page_id, None)

    # ---- emission behaviour ---------------------------------------------------------------------------------------
    @property
    def emission_mode(self) -> str:
        with self._store.lock:
            return self._store.emission_mode

    @emission_mode.setter
    def emission_mode(self, value: str) -> None:
        if value not in EMISSION_MODES:
            raise ValueError(f"emission_mode must be one of {EMISSION_MODES}")
        with self._store.lock:
            self._store.emission_mode = value

    @property
    def polls_until_emitted(self) -> int:
        """In async mode the N-th GET of a credential (N >= 1; 0 behaves as 1) is the first to see it emitted."""
        with self._store.lock:
            return self._store.polls_until_emitted

    @polls_until_emitted.setter
    def polls_until_emitted(self, value: int) -> None:
        if int(value) < 0:
            raise ValueError("polls_until_emitted must not be negative")
        with self._store.lock:
            self._store.polls_until_emitted = int(value)

    def approve(self, credential_id: str) -> None:
        """Act as the receiver accepting by email: ``waitingForApproval`` becomes ``emitted``."""
        with self._store.lock:
            record, meta = self._store.credential_locked(credential_id)
            meta.approved = True
            state = record["state"]
            if state == "waitingForApproval":
                self._store.apply_state_locked(credential_id, "emitted")
            elif state == "emitted" or (state == "processing" and meta.auto_progress and not meta.forced):
                return  # already there, or will be emitted (not waiting) once its polls are done
            else:
                raise ValueError(f"cannot approve a credential in state {state!r}")

    def set_state(self, credential_id: str, state: str) -> None:
        """Force any state, known or not; a forced state is sticky (polls no longer move it)."""
        if not isinstance(state, str) or not state:
            raise ValueError("state must be a non-empty string")
        with self._store.lock:
            _record, meta = self._store.credential_locked(credential_id)
            meta.forced = True
            self._store.apply_state_locked(credential_id, state)

    def update_credential(self, credential_id: str, **fields: Any) -> None:
        """
        Overwrite top-level keys of a stored credential's JSON (e.g. ``viewUrl="http://evil.example/phish"``), so
        later GETs and the public page return them, as a POK that changed or was compromised would.

        Values are stored as given (None becomes JSON null). The id cannot change. A ``state`` given here is sticky
        like :meth:`set_state`; a later :meth:`set_state` to ``emitted`` or :meth:`approve` recomputes ``viewUrl``.
        """
        if not fields:
            raise ValueError("update_credential needs at least one field")
        if "id" in fields:
            raise ValueError("the id of a credential cannot change")
        try:
            json.dumps(fields)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"credential fields must be JSON values: {exc}") from exc
        if "state" in fields and (not isinstance(fields["state"], str) or not fields["state"]):
            raise ValueError("state must be a non-empty string")
        with self._store.lock:
            record, meta = self._store.credential_locked(credential_id)
            if "state" in fields:
                meta.forced = True
            record.update(copy.deepcopy(fields))
            order_credential_keys(record)

    # ---- faults ---------------------------------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> None:
        """
        Queue a fault; when several match a request the oldest that applies wins, one fault per request.

        A fault with a ``probability`` gets its own ``random.Random(fault.seed)`` here, so queuing the same Fault
        again (or after :meth:`reset`) replays the same decisions for the same requests.
        """
        if not isinstance(fault, Fault):
            raise TypeError("add_fault expects a Fault")
        with self._store.lock:
            self._store.faults.append(FaultEntry.for_fault(fault))

    def clear_faults(self) -> None:
        with self._store.lock:
            self._store.faults.clear()

    @property
    def faults(self) -> list[tuple[Fault, int | None]]:
        """Pending faults with their remaining uses (None: until cleared)."""
        with self._store.lock:
            return [(entry.fault, entry.remaining) for entry in self._store.faults]

    # ---- inspection -----------------------------------------------------------------------------------------------
    def count(self, endpoint: str | None = None, organization: str | None = None) -> int:
        """
        Requests received for ``endpoint`` (all when None), faulted ones included; with ``organization`` (a name)
        only those that presented that organization's key.
        """
        with self._store.lock:
            return self._store.count_locked(endpoint, organization)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._store.lock:
            return list(self._store.requests)

    @property
    def credentials(self) -> dict[str, dict[str, Any]]:
        """Copies of the stored credentials of every organization (the POK Credential JSON), in creation order."""
        with self._store.lock:
            return copy.deepcopy(self._store.credentials)

    def credentials_for(self, email: str, organization: str | None = None) -> list[dict[str, Any]]:
        """
        Credentials issued to ``email`` (compared case-insensitively), in creation order; with ``organization`` (a
        name) only those that organization's key created.
        """
        with self._store.lock:
            ids = self._store.credential_ids_locked(email, organization)
            return [copy.deepcopy(self._store.credentials[credential_id]) for credential_id in ids]
