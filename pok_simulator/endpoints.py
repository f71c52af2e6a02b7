"""
The POK endpoints (E1-E8) and the two public resources (credential page, images), as the simulator answers them.

Every handler runs with the store's lock held and gets the organization whose key authenticated the request (None
for the public resources). An organization sees only its own templates, pages and credentials: another
organization's credential id is answered with 404, as an unknown id is.
"""
from __future__ import annotations

import copy
import html
import logging
import struct
import uuid
import zlib
from collections.abc import Callable
from typing import Any

from .store import CredentialMeta, Organization, Store, utc_now_iso
from .validation import (
    parse_limit,
    require_json_object,
    require_object,
    validate_credential_block,
    validate_customization,
    validate_receiver,
)
from .wire import HttpError, Incoming, Response, json_response

log = logging.getLogger(__name__)

Handler = Callable[[Store, Organization | None, Incoming], Response]


def _build_png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (37, 99, 235)) -> bytes:
    """Build a small, valid, solid-colour PNG so image URLs serve something a browser or PIL can decode."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    scanlines = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB, no interlace
    signature = b"\x89PNG\r\n\x1a\n"
    return signature + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(scanlines)) + chunk(b"IEND", b"")


PNG_IMAGE = _build_png()


def render_view_page(record: dict[str, Any]) -> bytes:
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


def _not_found_page() -> Response:
    body = b"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Not found</title></head>" \
           b"<body><h1>Credential not found</h1></body></html>\n"
    return Response(404, body, "text/html; charset=utf-8")


def _own(store: Store, organization: Organization | None, credential_id: str) -> dict[str, Any]:
    record = store.owned_credential_locked(credential_id, organization) if organization is not None else None
    if record is None:
        raise HttpError(404, "credential not found")
    return record


def get_organization(store: Store, organization: Organization | None, request: Incoming) -> Response:
    assert organization is not None  # authenticated route
    states = [store.credentials[credential_id]["state"]
              for credential_id, meta in store.meta.items() if meta.organization is organization]
    return json_response(200, {
        "wallet": organization.wallet,
        "name": organization.name,
        "availableCredits": organization.available_credits,
        "emittedCredentials": states.count("emitted"),
        "sentCredentials": states.count("waitingForApproval"),
        "draftCredentials": states.count("draft"),
        "processingCredentials": states.count("processing") + states.count("pending"),
    })


def list_templates(store: Store, organization: Organization | None, request: Incoming) -> Response:
    assert organization is not None
    limit = parse_limit(request.query)
    templates = list(organization.templates.values())[:limit]
    return json_response(200, {"data": [template.as_json() for template in templates]})


def get_template(store: Store, organization: Organization | None, request: Incoming) -> Response:
    assert organization is not None
    template = organization.templates.get(request.params["template_id"])
    if template is None:
        raise HttpError(404, "template not found")
    return json_response(200, template.as_json())


def preview_template(store: Store, organization: Organization | None, request: Incoming) -> Response:
    assert organization is not None
    payload = require_json_object(request)
    validate_credential_block(require_object(payload, "credential", "credential"), for_preview=True)
    validate_receiver(require_object(payload, "receiver", "receiver"), for_preview=True)
    validate_customization(require_object(payload, "customization", "customization"), organization.templates,
                           organization.pages)
    store.preview_count += 1
    image_id = f"preview-{store.preview_count}"
    store.preview_images.add(image_id)
    return json_response(200, {"url": f"{store.base_url}/images/{image_id}.png"})


def list_pages(store: Store, organization: Organization | None, request: Incoming) -> Response:
    assert organization is not None
    limit = parse_limit(request.query)
    pages = list(organization.pages.items())[:limit]
    return json_response(200, {"data": [{"id": page_id, "name": name} for page_id, name in pages]})


def issue_credential(store: Store, organization: Organization | None, request: Incoming) -> Response:
    assert organization is not None
    idempotency_key = request.headers.get("idempotency-key")
    if store.honour_idempotency_key and (organization, idempotency_key) in store.idempotency_index:
        earlier_id = store.idempotency_index[(organization, idempotency_key)]
        return json_response(200, copy.deepcopy(store.credentials[earlier_id]))

    payload = require_json_object(request)
    credential = require_object(payload, "credential", "credential")
    receiver = require_object(payload, "receiver", "receiver")
    customization = require_object(payload, "customization", "customization")
    validate_credential_block(credential, for_preview=False)
    validate_receiver(receiver, for_preview=False)
    validate_customization(customization, organization.templates, organization.pages)
    if credential["emissionType"] == "blockchain":
        if organization.available_credits <= 0:
            raise HttpError(400, "insufficient credits for a blockchain emission")
        organization.available_credits -= 1

    credential_id = str(uuid.uuid4())
    skip_acceptance = credential.get("skipAcceptance") is True
    asynchronous = store.emission_mode == "async"
    record: dict[str, Any] = {
        "id": credential_id,
        "state": "processing",
        "createdAt": utc_now_iso(),
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
    store.credentials[credential_id] = record
    store.meta[credential_id] = CredentialMeta(
        email=receiver["email"],
        skip_acceptance=skip_acceptance,
        auto_progress=asynchronous,
        polls_until_emitted=max(1, store.polls_until_emitted),
        idempotency_key=idempotency_key,
        template_id=template_block["id"],
        page_id=customization.get("page"),
        custom_parameters=dict(template_block["customParameters"]),
        organization=organization,
    )
    if idempotency_key and (organization, idempotency_key) not in store.idempotency_index:
        store.idempotency_index[(organization, idempotency_key)] = credential_id
    log.debug("POK simulator created credential %s", credential_id)

    if asynchronous:
        return json_response(202, {"id": credential_id, "state": "processing"})
    store.apply_state_locked(credential_id, "emitted" if skip_acceptance else "waitingForApproval")
    return json_response(201, copy.deepcopy(record))


def get_credential(store: Store, organization: Organization | None, request: Incoming) -> Response:
    credential_id = request.params["credential_id"]
    _own(store, organization, credential_id)
    store.poll_locked(credential_id)
    return json_response(200, copy.deepcopy(store.credentials[credential_id]))


def get_credential_image(store: Store, organization: Organization | None, request: Incoming) -> Response:
    credential_id = request.params["credential_id"]
    _own(store, organization, credential_id)
    return json_response(200, {"location": f"{store.base_url}/images/{credential_id}.png"})


def view_page(store: Store, organization: Organization | None, request: Incoming) -> Response:
    record = store.credentials.get(request.params["credential_id"])
    if record is None or record["state"] != "emitted":
        return _not_found_page()
    return Response(200, render_view_page(record), "text/html; charset=utf-8")


def image_file(store: Store, organization: Organization | None, request: Incoming) -> Response:
    image_id = request.params["image_id"]
    if image_id not in store.credentials and image_id not in store.preview_images:
        raise HttpError(404, "image not found")
    return Response(200, PNG_IMAGE, "image/png")


#: Endpoint name -> handler; the routes in ``handler.py`` use the same names.
HANDLERS: dict[str, Handler] = {
    "get_organization": get_organization,
    "list_templates": list_templates,
    "get_template": get_template,
    "preview_template": preview_template,
    "list_pages": list_pages,
    "issue_credential": issue_credential,
    "get_credential": get_credential,
    "get_credential_image": get_credential_image,
    "view_page": view_page,
    "image_file": image_file,
}
