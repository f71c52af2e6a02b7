"""
Strict validation of what POK clients send: POST bodies, list limits and the three blocks of E4/E6.

The real POK may accept more; refusing anything the known public clients would not send makes payload bugs surface
in tests rather than in production. Every check raises :class:`~.wire.HttpError` with a message that names the field.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .constants import DATE_FORMATS, DEFAULT_LIST_LIMIT, EMISSION_TYPES
from .wire import HttpError, Incoming

if TYPE_CHECKING:
    from .store import Template

# ISO 8601 date-time with an explicit offset ("Z" or +hh:mm / +hhmm / +hh); datetime.fromisoformat checks the ranges.
_ISO_DATETIME_WITH_OFFSET = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|z|[+-]\d{2}(:?\d{2})?)"
)
# "BCP-47-like": a 2-8 letter primary subtag, then 1-8 character alphanumeric subtags (en, en-US, es-419, zh-Hant-TW).
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(-[A-Za-z0-9]{1,8})*")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_POSITIVE_INTEGER = re.compile(r"[0-9]+")


def parse_json_object(body: bytes) -> dict[str, Any] | None:
    """Best-effort parse for recording; validation proper happens in :func:`require_json_object`."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def require_json_object(request: Incoming) -> dict[str, Any]:
    """Enforce what POK clients send on POST: ``Content-Type: application/json`` and a JSON object body."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise HttpError(400, "Content-Type must be application/json")
    try:
        data = json.loads(request.body)
    except ValueError as exc:
        raise HttpError(400, "request body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise HttpError(400, "request body must be a JSON object")
    return data


def parse_limit(query: dict[str, list[str]]) -> int:
    """``limit`` must be one positive integer; absent means a small default (see ``DEFAULT_LIST_LIMIT``)."""
    values = query.get("limit")
    if values is None:
        return DEFAULT_LIST_LIMIT
    if len(values) != 1 or not _POSITIVE_INTEGER.fullmatch(values[0]) or int(values[0]) < 1:
        raise HttpError(400, "limit must be a positive integer")
    return int(values[0])


def is_non_empty_string(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def require_object(container: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = container.get(key)
    if not isinstance(value, dict):
        raise HttpError(400, f"{where} must be an object")
    return value


def _validate_iso_datetime_with_offset(value: Any, where: str) -> None:
    message = f"{where} must be an ISO 8601 date-time with an explicit UTC offset, e.g. 2024-05-31T12:00:00+00:00"
    if not isinstance(value, str) or not _ISO_DATETIME_WITH_OFFSET.fullmatch(value):
        raise HttpError(400, message)
    normalized = value[:-1] + "+00:00" if value[-1] in "Zz" else value
    try:
        parsed = datetime.fromisoformat(normalized)
    except ValueError as exc:
        raise HttpError(400, message) from exc
    if parsed.tzinfo is None:
        raise HttpError(400, message)


def validate_credential_block(credential: dict[str, Any], *, for_preview: bool) -> None:
    """The ``credential`` block of E6 (and of E4, which has no ``tags``/``skipAcceptance``)."""
    if credential.get("emissionType") not in EMISSION_TYPES:
        raise HttpError(400, "credential.emissionType is required and must be one of: pok, blockchain")
    if credential.get("dateFormat") not in DATE_FORMATS:
        raise HttpError(400, "credential.dateFormat is required and must be one of: dd/MM/yyyy, MM/dd/yyyy")
    _validate_iso_datetime_with_offset(credential.get("emissionDate"), "credential.emissionDate")
    for key in ("title", "emitter"):
        if not is_non_empty_string(credential.get(key)):
            raise HttpError(400, f"credential.{key} is required and must be a non-empty string")
    if for_preview:
        return
    if "tags" in credential:
        tags = credential["tags"]
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise HttpError(400, "credential.tags must be a list of strings")
    if "skipAcceptance" in credential and not isinstance(credential["skipAcceptance"], bool):
        raise HttpError(400, "credential.skipAcceptance must be a boolean")


def validate_receiver(receiver: dict[str, Any], *, for_preview: bool) -> None:
    """The ``receiver`` block; a preview has no email."""
    if not is_non_empty_string(receiver.get("firstName")):
        raise HttpError(400, "receiver.firstName is required and must be a non-empty string")
    if not isinstance(receiver.get("lastName"), str):
        raise HttpError(400, "receiver.lastName is required and must be a string (it may be empty)")
    if not for_preview:
        email = receiver.get("email")
        if not isinstance(email, str) or not _EMAIL.fullmatch(email):
            raise HttpError(400, "receiver.email is required and must be an email address")
    if "languageTag" in receiver:
        tag = receiver["languageTag"]
        if not isinstance(tag, str) or not _LANGUAGE_TAG.fullmatch(tag):
            raise HttpError(400, "receiver.languageTag must be a BCP 47 language tag such as en or es-419")


def validate_customization(customization: dict[str, Any], templates: dict[str, Template],
                           pages: dict[str, str]) -> None:
    """Template, page and every declared template parameter (keyed by parameter id, never empty)."""
    if "page" in customization:
        page_id = customization["page"]
        if not isinstance(page_id, str) or page_id not in pages:
            raise HttpError(400, f"unknown page id {page_id!r} in customization.page (omit the key when none)")
    template_block = require_object(customization, "template", "customization.template")
    template_id = template_block.get("id")
    if not is_non_empty_string(template_id):
        raise HttpError(400, "customization.template.id is required")
    template = templates.get(template_id)
    if template is None:
        raise HttpError(400, f"unknown template id {template_id!r}")
    parameters = template_block.get("customParameters")
    if not isinstance(parameters, dict):
        raise HttpError(400, "customization.template.customParameters must be an object ({} when none)")
    for key, value in parameters.items():
        if not isinstance(value, str):
            raise HttpError(400, f"customization.template.customParameters[{key!r}] must be a string")
    for param_id, _label in template.parameters:
        if not is_non_empty_string(parameters.get(param_id)):
            raise HttpError(
                400,
                f"template {template.id!r} parameter {param_id!r} is missing or empty in "
                "customization.template.customParameters",
            )
