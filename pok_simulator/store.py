"""
The simulator's state: organizations with their templates and pages, credentials, faults and recorded requests.

Everything here sits behind one re-entrant lock (``Store.lock``) because handler threads and the test thread touch it
concurrently; methods whose names end in ``_locked`` expect the caller to hold it. Sleeps (latency, hang faults, slow
drips) wait on a condition that stop and reset signal, so a hung request never delays shutdown and never leaks side
effects into the next test: ``generation`` changes on every reset and a request that straddles one is abandoned.

Several organizations can exist side by side, each with its own API key, templates, pages and credits; a credential
belongs to the organization whose key created it. The default organization is rebuilt on every reset and the added
ones are removed.

Faults are queued as :class:`FaultEntry` objects: the entry, not the frozen :class:`~.faults.Fault`, owns the uses
left and the random generator of a probabilistic fault, so one ``Fault`` can be queued twice and each copy replays
its own sequence. The store also remembers every ``Idempotency-Key`` it received, per organization, which is what
``new_keys_only`` faults ask about.
"""
from __future__ import annotations

import hmac
import random
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .constants import (
    DEFAULT_AVAILABLE_CREDITS,
    DEFAULT_ORGANIZATION_NAME,
    DEFAULT_PAGES,
    DEFAULT_POLLS_UNTIL_EMITTED,
    DEFAULT_TEMPLATES,
    DEFAULT_WALLET,
    ENDPOINTS,
    NOT_YET_EMITTED_STATES,
    UNKNOWN_ENDPOINT,
)

if TYPE_CHECKING:
    from .faults import Fault


@dataclass(frozen=True)
class RecordedRequest:
    """
    One request as the simulator received it, so tests can assert on what the client actually sent.

    ``body`` is the parsed JSON object (None when the body is empty, not JSON or not an object); ``path`` excludes the
    query string, which is in ``query``. ``organization`` is the name (at the time of the request) of the organization
    whose API key the request presented, None when it presented no valid key.
    """

    endpoint: str
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    idempotency_key: str | None
    query: dict[str, list[str]] = field(default_factory=dict)
    organization: str | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        """Look a header up case-insensitively, as HTTP header names are."""
        wanted = name.lower()
        for header_name, value in self.headers.items():
            if header_name.lower() == wanted:
                return value
        return default


@dataclass(frozen=True)
class Template:
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


def make_template(template_id: str, name: str, parameters: Iterable[Sequence[str] | Mapping[str, str]] = (),
                  version: Any = None) -> Template:
    """``parameters`` are ``(id, label)`` pairs or ``{"id", "label"}`` dicts (the label defaults to the id)."""
    normalized = []
    for parameter in parameters:
        if isinstance(parameter, Mapping):
            normalized.append((str(parameter["id"]), str(parameter.get("label", parameter["id"]))))
        else:
            param_id, label = parameter
            normalized.append((str(param_id), str(label)))
    return Template(template_id, name, tuple(normalized), version)


def template_from_spec(spec: Sequence[Any] | Mapping[str, Any]) -> Template:
    """
    One template as ``add_template`` takes it: ``(id, name[, parameters[, version]])`` or a dict with ``id``, ``name``
    and optionally ``parameters`` (or POK's ``customParameters``) and ``version``.
    """
    if isinstance(spec, Mapping):
        unknown = set(spec) - {"id", "name", "parameters", "customParameters", "version"}
        if unknown or "id" not in spec or "name" not in spec:
            raise ValueError(f"a template needs 'id' and 'name' (and may have parameters, version); got {sorted(spec)}")
        parameters = spec.get("parameters", spec.get("customParameters", ()))
        return make_template(str(spec["id"]), str(spec["name"]), parameters, spec.get("version"))
    if isinstance(spec, str) or not isinstance(spec, Sequence) or not 2 <= len(spec) <= 4:
        raise ValueError("a template is (id, name[, parameters[, version]]) or a dict")
    return make_template(str(spec[0]), str(spec[1]), *spec[2:])


def page_from_spec(spec: Sequence[Any] | Mapping[str, Any]) -> tuple[str, str]:
    """One page as ``(id, name)`` or ``{"id", "name"}``."""
    if isinstance(spec, Mapping):
        if set(spec) != {"id", "name"}:
            raise ValueError(f"a page is a dict with exactly 'id' and 'name'; got {sorted(spec)}")
        return str(spec["id"]), str(spec["name"])
    if isinstance(spec, str) or not isinstance(spec, Sequence) or len(spec) != 2:
        raise ValueError("a page is (id, name) or {'id': ..., 'name': ...}")
    return str(spec[0]), str(spec[1])


@dataclass(eq=False)
class Organization:
    """One POK organization (account): what its API key sees. Compared by identity, so it can key indexes."""

    api_key: str
    name: str
    wallet: str
    available_credits: int
    templates: dict[str, Template]
    pages: dict[str, str]

    def snapshot(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "wallet": self.wallet,
            "availableCredits": self.available_credits,
            "templates": [template.as_json() for template in self.templates.values()],
            "pages": [{"id": page_id, "name": name} for page_id, name in self.pages.items()],
        }


def default_templates() -> dict[str, Template]:
    return {template_id: Template(template_id, name, parameters) for template_id, name, parameters in DEFAULT_TEMPLATES}


@dataclass
class CredentialMeta:
    """Simulator bookkeeping for one credential that is not part of POK's JSON."""

    email: str
    skip_acceptance: bool
    auto_progress: bool
    polls_until_emitted: int
    idempotency_key: str | None
    template_id: str
    page_id: str | None
    custom_parameters: dict[str, Any]
    organization: Organization | None = None
    polls: int = 0
    approved: bool = False
    forced: bool = False


@dataclass(eq=False)
class FaultEntry:
    """
    One queued fault and the state the simulator keeps for it: uses left (None: until cleared) and, for a fault with
    a ``probability``, the generator that decides each request (seeded once, when the fault is queued).
    """

    fault: Fault
    remaining: int | None
    rng: random.Random | None = None

    @classmethod
    def for_fault(cls, fault: Fault) -> FaultEntry:
        rng = random.Random(fault.seed) if fault.probability is not None else None
        return cls(fault, fault.times, rng)

    def applies(self, endpoint: str, new_key: bool) -> bool:
        """
        Whether the fault is applied to this request. The cheap filters come first and the generator draws only for
        requests that pass them, so a seeded campaign depends on nothing but the requests this fault was offered.
        """
        fault = self.fault
        if fault.endpoint is not None and fault.endpoint != endpoint:
            return False
        if fault.new_keys_only and not new_key:
            return False
        if fault.probability is not None and self.rng is not None:
            return self.rng.random() < fault.probability
        return True


def utc_now_iso() -> str:
    """Timestamps in the shape JavaScript back ends such as POK's produce (millisecond precision, ``Z``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def order_credential_keys(record: dict[str, Any]) -> None:
    """Put ``id``, ``state`` and ``viewUrl`` first, in POK's key order, keeping the rest as it was."""
    ordered = {key: record[key] for key in ("id", "state", "viewUrl") if key in record}
    ordered.update((key, value) for key, value in record.items() if key not in ordered)
    record.clear()
    record.update(ordered)


class Store:
    """All mutable state of one simulator, and the small rules that read or change it."""

    def __init__(self, api_key: str) -> None:
        self.lock = threading.RLock()
        self.wakeup = threading.Condition(self.lock)
        self.generation = 0
        self.stopping = False
        #: Set once the server knows its port; the start of every URL the simulator hands out.
        self.base_url = ""
        self._initial_api_key = api_key
        with self.lock:
            self.restore_defaults_locked()

    def restore_defaults_locked(self) -> None:
        self.default = Organization(
            api_key=self._initial_api_key,
            name=DEFAULT_ORGANIZATION_NAME,
            wallet=DEFAULT_WALLET,
            available_credits=DEFAULT_AVAILABLE_CREDITS,
            templates=default_templates(),
            pages=dict(DEFAULT_PAGES),
        )
        self.organizations: list[Organization] = [self.default]
        self.emission_mode = "sync"
        self.polls_until_emitted = DEFAULT_POLLS_UNTIL_EMITTED
        self.latency: Any = 0.0
        self.honour_idempotency_key = False
        self.credentials: dict[str, dict[str, Any]] = {}
        self.meta: dict[str, CredentialMeta] = {}
        self.idempotency_index: dict[tuple[Organization, str], str] = {}
        self.requests: list[RecordedRequest] = []
        self.faults: list[FaultEntry] = []
        #: (organization or None for no valid key, Idempotency-Key) of every request received with that header.
        self.seen_idempotency_keys: set[tuple[Organization | None, str]] = set()
        self.preview_count = 0
        self.preview_images: set[str] = set()

    # ---- waiting ----------------------------------------------------------------------------------------------------
    def sleep(self, seconds: float, generation: int) -> bool:
        """Sleep unless stopped or reset meanwhile; False when the request should be abandoned."""
        with self.wakeup:
            if seconds > 0:
                self.wakeup.wait_for(lambda: self.stopping or self.generation != generation, timeout=seconds)
            return not self.stopping and self.generation == generation

    # ---- organizations ----------------------------------------------------------------------------------------------
    def organization_locked(self, name: str | None) -> Organization:
        """The organization called ``name`` (the default one for None); a misspelt name fails loudly."""
        if name is None:
            return self.default
        for organization in self.organizations:
            if organization.name == name:
                return organization
        raise ValueError(f"unknown organization {name!r}; expected one of {[o.name for o in self.organizations]}")

    def check_unique_locked(self, *, api_key: str | None = None, name: str | None = None,
                            ignore: Organization | None = None) -> None:
        """Keys and names identify organizations (in requests and in the inspection helpers), so both are unique."""
        for organization in self.organizations:
            if organization is ignore:
                continue
            if api_key is not None and organization.api_key == api_key:
                raise ValueError("another organization already uses this API key")
            if name is not None and organization.name == name:
                raise ValueError(f"another organization is already called {name!r}")

    def authenticate_locked(self, authorization: str | None) -> Organization | None:
        """The organization whose key ``Authorization: ApiKey <key>`` presents; every key is compared in full."""
        if not authorization:
            return None
        scheme, _, key = authorization.partition(" ")
        if scheme != "ApiKey":
            return None
        presented = key.strip().encode()
        found = None
        for organization in self.organizations:
            if hmac.compare_digest(presented, organization.api_key.encode()):
                found = organization
        return found

    # ---- credentials ------------------------------------------------------------------------------------------------
    def credential_locked(self, credential_id: str) -> tuple[dict[str, Any], CredentialMeta]:
        if credential_id not in self.credentials:
            raise KeyError(credential_id)
        return self.credentials[credential_id], self.meta[credential_id]

    def owned_credential_locked(self, credential_id: str, organization: Organization) -> dict[str, Any] | None:
        """The credential if ``organization`` created it: another organization's credential does not exist for it."""
        meta = self.meta.get(credential_id)
        if meta is None or meta.organization is not organization:
            return None
        return self.credentials[credential_id]

    def apply_state_locked(self, credential_id: str, state: str) -> None:
        """Set the state and keep ``viewUrl`` consistent with it, in POK's key order (id, state, viewUrl, ...)."""
        record = self.credentials[credential_id]
        record["state"] = state
        if state == "emitted":
            record["viewUrl"] = f"{self.base_url}/view/{credential_id}"
        elif state in NOT_YET_EMITTED_STATES:
            record.pop("viewUrl", None)
        order_credential_keys(record)

    def poll_locked(self, credential_id: str) -> None:
        """Each GET of an async credential is one poll; the last one moves it out of ``processing``."""
        record, meta = self.credentials[credential_id], self.meta[credential_id]
        if not meta.auto_progress or meta.forced or record["state"] != "processing":
            return
        meta.polls += 1
        if meta.polls >= meta.polls_until_emitted:
            ready = meta.skip_acceptance or meta.approved
            self.apply_state_locked(credential_id, "emitted" if ready else "waitingForApproval")

    def credential_ids_locked(self, email: str | None = None, organization: str | None = None) -> list[str]:
        """Ids in creation order, filtered by receiver email (case-insensitive) and by organization name."""
        owner = self.organization_locked(organization) if organization is not None else None
        wanted = email.strip().lower() if email is not None else None
        return [
            credential_id
            for credential_id, meta in self.meta.items()
            if (wanted is None or meta.email.strip().lower() == wanted)
            and (owner is None or meta.organization is owner)
        ]

    # ---- faults and requests ----------------------------------------------------------------------------------------
    def note_idempotency_key_locked(self, organization: Organization | None, idempotency_key: str | None) -> bool:
        """
        Remember the request's ``Idempotency-Key``; True when it is new for that organization, i.e. the request is a
        first attempt. A request without the header (or with an empty one) is always new.
        """
        if not idempotency_key:
            return True
        seen = (organization, idempotency_key)
        if seen in self.seen_idempotency_keys:
            return False
        self.seen_idempotency_keys.add(seen)
        return True

    def take_fault_locked(self, endpoint: str, new_key: bool = True) -> Fault | None:
        """
        The oldest queued fault that applies to this request, one use of it consumed; None when none applies.

        A fault that does not apply (another endpoint, a retried key, or its probability said no) costs no use and
        the next one is considered.
        """
        for entry in self.faults:
            if not entry.applies(endpoint, new_key):
                continue
            if entry.remaining is not None:
                entry.remaining -= 1
                if entry.remaining <= 0:
                    self.faults.remove(entry)
            return entry.fault
        return None

    def count_locked(self, endpoint: str | None, organization: str | None) -> int:
        if endpoint is not None and endpoint not in ENDPOINTS and endpoint != UNKNOWN_ENDPOINT:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {sorted(ENDPOINTS)}")
        if organization is not None:
            self.organization_locked(organization)  # a misspelt name must not silently count zero
        return sum(
            1 for request in self.requests
            if (endpoint is None or request.endpoint == endpoint)
            and (organization is None or request.organization == organization)
        )
