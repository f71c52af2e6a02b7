"""
What POK answers, as small frozen data classes, and the decoding of answer bodies into them.

POK publishes no schema (``docs/pok-api.rst``), so parsing is liberal in what it accepts: unknown keys are ignored,
missing optional keys become None/0/(), and only the fields without which a result is useless (a credential's id
and state, a template's id) are required. It is strict about what can hurt the code after it: a body must be UTF-8
JSON without NaN/Infinity, nested at most MAX_JSON_DEPTH deep and free of lone surrogates (which no database or
encoder accepts), so whatever a hostile or broken POK sends either becomes a value that can be stored and shown, or
a :class:`BadBody` that the request path turns into a typed ``PokResponseError``.
"""
import json
import math
import re
from dataclasses import dataclass, field

# Deep enough for any real answer (a credential is 3 levels deep), shallow enough to store and re-encode safely.
MAX_JSON_DEPTH = 32
# Counts are shown to staff; a value beyond an exact float is not a count POK meant.
_MAX_COUNT = 2**53

_SURROGATE = re.compile(r"[\ud800-\udfff]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class BadBody(ValueError):
    """A 2xx body lacks what we need; turned into PokResponseError with the request's context by the client."""


def decode_json(body):
    """
    Decode a 2xx answer body, or raise BadBody saying what is wrong with it.

    ``json.loads`` alone is not enough: it accepts NaN and Infinity, turns ``1e999`` into ``inf`` and raises
    RecursionError (not ValueError) for ``[[[[...``.
    """
    if not body or not body.strip():
        raise BadBody("POK answered with an empty body.")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadBody("POK answered with a body that is not valid UTF-8.") from exc
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except RecursionError as exc:
        raise BadBody("POK answered with JSON nested too deeply.") from exc
    except ValueError as exc:  # JSONDecodeError, a non-finite number, an integer too long to convert
        raise BadBody("POK answered with a body that is not valid JSON.") from exc
    _check_tree(value)
    return value


def _refuse_constant(name):
    raise ValueError(f"{name} is not JSON")


def _finite_float(text):
    number = float(text)
    if not math.isfinite(number):
        raise ValueError("number out of range")
    return number


def _check_tree(value):
    """Refuse too deep nesting and strings that cannot be encoded back (walked iteratively: no recursion)."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, (dict, list)) and depth > MAX_JSON_DEPTH:
            raise BadBody("POK answered with JSON nested too deeply.")
        if isinstance(item, dict):
            for key, child in item.items():
                _check_string(key)
                pending.append((child, depth + 1))
        elif isinstance(item, list):
            pending.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            _check_string(item)


def _check_string(text):
    if _SURROGATE.search(text):
        raise BadBody("POK answered with a string that is not valid Unicode.")


# --- Results -----------------------------------------------------------------------------------------------------


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
            raise BadBody("POK returned template parameters that are not a list")
        parameters = []
        for item in value:
            if isinstance(item, str):
                parameter_id = label = item
            elif isinstance(item, dict):
                parameter_id, label = _text(item.get("id")), _text(item.get("label"))
            else:
                raise BadBody("POK returned a template parameter that is not an object")
            parameter_id = parameter_id or label
            if not parameter_id:
                raise BadBody("POK returned a template parameter without id or label")
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
    Nothing is truncated here either (id, state and ``view_url`` are what POK sent; what fits a row is decided by
    the state machine). Dates are the strings POK sent, parsed by the caller if needed, so an unexpected format
    never loses a credential. ``raw`` is the decoded top-level JSON object as received, for storing where it cannot
    overflow; it holds the receiver's name and email, hence no repr.
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
            id=_required_text(data, "id", "credential", identifier=True),
            state=_required_text(data, "state", "credential", identifier=True),
            view_url=_text(data.get("viewUrl")),
            created_at=_text(data.get("createdAt")),
            title=detail("title"),
            emitter=detail("emitter"),
            emission_date=detail("emissionDate"),
            emission_type=detail("emissionType"),
            tags=tuple(_text(tag) for tag in tags if _text(tag)) if isinstance(tags, list) else (),
            raw=data,
        )


# --- Parsing helpers ---------------------------------------------------------------------------------------------


def _object(data, what):
    """Return ``data`` if it is a JSON object, else say which result was malformed."""
    if not isinstance(data, dict):
        raise BadBody(f"POK returned a {what} that is not a JSON object")
    return data


def _text(value):
    """A string from JSON, or None; numbers become strings because ids and versions may come back numeric."""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def _required_text(data, key, what, identifier=False):
    """
    A non-empty string field without which the result cannot be used.

    An ``identifier`` (a credential's id or state) must also be free of control characters: it ends up in URLs,
    log lines and admin pages, where a newline or NUL would be a forgery rather than a value.
    """
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
    """The first non-empty URL among ``keys`` (POK's name first, then aliases another version might use)."""
    body = _object(body, what)
    for key in keys:
        value = _text(body.get(key))
        if value:
            return value
    raise BadBody(f"POK returned a {what} without '{keys[0]}'")
