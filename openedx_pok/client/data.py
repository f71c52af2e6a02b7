"""
What POK answers, as small frozen data classes, and the strict decoding of answer bodies into them.

POK publishes no schema (``docs/pok-api.rst``), so parsing is liberal: unknown keys are ignored, missing optional
ones become None/0/(), numeric ids strings; only what makes a result usable is required. It is strict about what
could hurt the code after it: UTF-8 JSON without NaN/Infinity, at most MAX_JSON_DEPTH deep, no lone surrogates (no
database or encoder takes them). Anything else is a :class:`BadBody`, which the client makes a ``PokResponseError``.
"""
import json
import math
import re
from dataclasses import dataclass, field

# Deep enough for any real answer (a credential is 3 levels deep), shallow enough to store and re-encode safely.
MAX_JSON_DEPTH = 32
_MAX_COUNT = 2**53  # counts are shown to staff; beyond an exact float it is not a count POK meant
_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadBody(ValueError):
    """A 2xx body lacks what we need; the client turns it into a PokResponseError with the request's context."""


def decode_json(body):
    """A 2xx body decoded, or BadBody: ``json.loads`` takes NaN, makes ``1e999`` inf, recurses on ``[[[[...``."""
    if not body.strip():
        raise BadBody("POK answered with an empty body.")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadBody("POK answered with a body that is not valid UTF-8.") from exc
    try:
        value = json.loads(text, parse_constant=_not_a_number, parse_float=_finite)
    except RecursionError as exc:
        raise BadBody("POK answered with JSON nested too deeply.") from exc
    except ValueError as exc:  # not JSON, a non-finite number, an integer too long to convert
        raise BadBody("POK answered with a body that is not valid JSON.") from exc
    pending = [(value, 1)]  # walked without recursion
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)) and depth > MAX_JSON_DEPTH:
            raise BadBody("POK answered with JSON nested too deeply.")
        if isinstance(item, dict):
            pending += [(key, depth) for key in item] + [(child, depth + 1) for child in item.values()]
        elif isinstance(item, list):
            pending += [(child, depth + 1) for child in item]
        elif isinstance(item, str) and _SURROGATE.search(item):
            raise BadBody("POK answered with a string that is not valid Unicode.")
    return value


def _not_a_number(name):
    raise ValueError(f"{name} is not JSON")


def _finite(text):
    if not math.isfinite(number := float(text)):
        raise ValueError("number out of range")
    return number


@dataclass(frozen=True)
class Organization:
    """The organization of the API key (E1): checks the key and shows the credit balance. Every field optional."""

    name: str | None = None
    wallet: str | None = None
    available_credits: int = 0
    emitted_credentials: int = 0
    sent_credentials: int = 0
    draft_credentials: int = 0
    processing_credentials: int = 0

    @classmethod
    def from_api(cls, data):
        data = _object(data, "organization")
        return cls(
            name=_text(data.get("name")), wallet=_text(data.get("wallet")),
            available_credits=_int(data.get("availableCredits")), sent_credentials=_int(data.get("sentCredentials")),
            emitted_credentials=_int(data.get("emittedCredentials")),
            draft_credentials=_int(data.get("draftCredentials")),
            processing_credentials=_int(data.get("processingCredentials")),
        )


@dataclass(frozen=True)
class TemplateParameter:
    """A custom parameter a template declares; a credential must give it a non-empty value by ``id``."""

    id: str
    label: str

    @classmethod
    def list_from_api(cls, value):
        """``[{id, label}]``, bare strings or ``{id: label}``; a lone label is the id (as the 21.x plugin did)."""
        if isinstance(value, dict):
            value = [{"id": key, "label": label} for key, label in value.items()]
        if not isinstance(value, list | None):
            raise BadBody("POK returned template parameters that are not a list")
        parameters = []
        for item in value or ():
            if not isinstance(item, str | dict):
                raise BadBody("POK returned a template parameter that is not an object")
            parameter_id, label = (item, item) if isinstance(item, str) else (_text(item.get("id")),
                                                                               _text(item.get("label")))
            if not (parameter_id or label):
                raise BadBody("POK returned a template parameter without id or label")
            parameters.append(cls(id=parameter_id or label, label=label or parameter_id))
        return tuple(parameters)


@dataclass(frozen=True)
class Template:
    """A credential template (E2/E3); lists may leave ``custom_parameters`` out, E3 gives them. Needs an id."""

    id: str
    name: str | None = None
    version: str | None = None
    custom_parameters: tuple = ()

    @classmethod
    def from_api(cls, data):
        data = _object(data, "template")
        return cls(id=_required(data, "id", "template"), name=_text(data.get("name")),
                   version=_text(data.get("version")),
                   custom_parameters=TemplateParameter.list_from_api(data.get("customParameters")))


@dataclass(frozen=True)
class TemplateList:
    """Templates of the organization; ``possibly_truncated`` because POK has no pagination besides ``limit``."""

    templates: tuple
    limit: int
    possibly_truncated: bool


@dataclass(frozen=True)
class Page:
    """A POK public page (E5) under which credentials are shown. Needs an id."""

    id: str
    name: str | None = None

    @classmethod
    def from_api(cls, data):
        data = _object(data, "page")
        return cls(id=_required(data, "id", "page"), name=_text(data.get("name")))


@dataclass(frozen=True)
class PageList:
    """Pages of the organization; ``possibly_truncated`` because POK has no pagination besides ``limit``."""

    pages: tuple
    limit: int
    possibly_truncated: bool


@dataclass(frozen=True)
class Credential:
    """
    A credential as POK reports it (E6/E7; an asynchronous creation may give only ``{id, state}``). Nothing is mapped
    or cut (states, lengths, dates are the caller's business), so nothing POK sends loses a credential. ``raw`` is
    the object as received, for storing; it holds the receiver's name and email, hence no repr.
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
        data = _object(data, "credential")
        details = data.get("credential") if isinstance(data.get("credential"), dict) else {}
        # Details are nested under "credential"; they are accepted at the top level too.
        detail = {key: details.get(key, data.get(key)) for key in ("title", "emitter", "emissionDate",
                                                                   "emissionType", "tags")}
        tags = detail["tags"] if isinstance(detail["tags"], list) else ()
        return cls(
            id=_required(data, "id", "credential", identifier=True),
            state=_required(data, "state", "credential", identifier=True),
            view_url=_text(data.get("viewUrl")), created_at=_text(data.get("createdAt")),
            title=_text(detail["title"]), emitter=_text(detail["emitter"]),
            emission_date=_text(detail["emissionDate"]), emission_type=_text(detail["emissionType"]),
            tags=tuple(_text(tag) for tag in tags if _text(tag)), raw=data,
        )


def _object(data, what):
    if not isinstance(data, dict):
        raise BadBody(f"POK returned a {what} that is not a JSON object")
    return data


def _text(value):
    """A string from JSON, or None; numbers become strings because ids and versions may come back numeric."""
    if isinstance(value, str):
        return value
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _required(data, key, what, identifier=False):
    """A non-empty string; an ``identifier`` (id, state) goes into URLs and logs, so no control characters."""
    value = _text(data.get(key))
    if not value:
        raise BadBody(f"POK returned a {what} without '{key}'")
    if identifier and _CONTROL.search(value):
        raise BadBody(f"POK returned a {what} whose '{key}' contains control characters")
    return value


def _int(value):
    """A count from JSON; anything unusable counts as 0 rather than failing a status page."""
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return number if abs(number) <= _MAX_COUNT else 0


def list_items(body, what):
    """The items of a list answer: ``{data: [...]}`` as POK sends it, or a bare list."""
    items = body.get("data") if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise BadBody(f"POK returned a {what} list without 'data'")
    return items


def url_from(body, keys, what):
    """The first non-empty URL among ``keys`` (POK's name first, then names another version might use)."""
    body = _object(body, what)
    if value := next((_text(body.get(key)) for key in keys if _text(body.get(key))), None):
        return value
    raise BadBody(f"POK returned a {what} without '{keys[0]}'")
