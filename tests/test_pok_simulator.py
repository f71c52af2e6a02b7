"""
Tests of the POK simulator over real HTTP.

The rest of the suite trusts the simulator to behave like a strict POK, so its contract (``docs``/pok-api and section
1 of the interfaces) is pinned here end to end: no mocking, every request goes through a socket with ``requests``.
"""
from __future__ import annotations

import copy
import json
import os
import queue
import random
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import uuid
import zlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import requests

from pok_simulator import DEFAULT_API_KEY, ENDPOINTS, FAULT_KINDS, Fault, PokSimulator

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 5
_DELETE = object()

AUTHENTICATED_CALLS = [
    ("GET", "/organization/me"),
    ("GET", "/template?limit=10"),
    ("GET", "/template/tpl-basic"),
    ("POST", "/template/preview"),
    ("GET", "/page?limit=10"),
    ("POST", "/credential"),
    ("GET", "/credential/some-id"),
    ("GET", "/credential/some-id/decrypted-image"),
]


# --------------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------------
def auth_headers(sim: PokSimulator) -> dict[str, str]:
    return {"Authorization": f"ApiKey {sim.api_key}"}


def api_get(sim: PokSimulator, path: str, timeout: float = TIMEOUT, **kwargs: Any) -> requests.Response:
    return requests.get(sim.url + path, headers=auth_headers(sim), timeout=timeout, **kwargs)


def api_post(sim: PokSimulator, path: str, payload: Any, timeout: float = TIMEOUT,
             headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(sim.url + path, json=payload, headers={**auth_headers(sim), **(headers or {})},
                         timeout=timeout)


def credential_payload(**credential_overrides: Any) -> dict[str, Any]:
    """A valid E6 body for the parameterless template, skipping acceptance so a sync POST emits at once."""
    payload = {
        "credential": {
            "emissionType": "pok",
            "dateFormat": "dd/MM/yyyy",
            "emissionDate": "2024-05-31T12:00:00+00:00",
            "title": "Python 101",
            "emitter": "Test Academy",
            "tags": ["course-v1:Org+PY101+2024"],
            "skipAcceptance": True,
        },
        "receiver": {
            "firstName": "Ada",
            "lastName": "Lovelace",
            "email": "ada@example.com",
            "languageTag": "en",
        },
        "customization": {"page": "page-1", "template": {"id": "tpl-basic", "customParameters": {}}},
    }
    payload["credential"].update(credential_overrides)
    return payload


def graded_payload(**parameters: Any) -> dict[str, Any]:
    payload = credential_payload()
    payload["customization"]["template"] = {"id": "tpl-grade", "customParameters": parameters}
    return payload


def preview_payload() -> dict[str, Any]:
    """A valid E4 body: no tags/skipAcceptance, receiver without email."""
    return {
        "credential": {
            "emissionType": "pok",
            "dateFormat": "MM/dd/yyyy",
            "emissionDate": "2024-05-31T12:00:00Z",
            "title": "Python 101",
            "emitter": "Test Academy",
        },
        "receiver": {"firstName": "Sample", "lastName": "Learner", "languageTag": "es-419"},
        "customization": {"template": {"id": "tpl-grade", "customParameters": {"grade": "95%", "platform": "X"}}},
    }


def mutate(payload: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    """Return a copy of ``payload`` with the value at ``path`` replaced (or removed with ``_DELETE``)."""
    result = copy.deepcopy(payload)
    target = result
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        target.pop(path[-1], None)
    else:
        target[path[-1]] = value
    return result


def issue(sim: PokSimulator, payload: dict[str, Any] | None = None, **kwargs: Any) -> requests.Response:
    return api_post(sim, "/credential", payload if payload is not None else credential_payload(), **kwargs)


def assert_png(content: bytes) -> None:
    """Check the signature, the IHDR chunk and that the image data decompresses: a real, decodable PNG."""
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    length, tag = struct.unpack(">I4s", content[8:16])
    assert tag == b"IHDR" and length == 13
    width, height = struct.unpack(">II", content[16:24])
    assert width > 0 and height > 0
    idat_start = content.index(b"IDAT")
    idat_length = struct.unpack(">I", content[idat_start - 4:idat_start])[0]
    assert zlib.decompress(content[idat_start + 4:idat_start + 4 + idat_length])
    assert content.endswith(b"IEND\xaeB`\x82")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --------------------------------------------------------------------------------------------------------------------
# authentication
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path", AUTHENTICATED_CALLS)
@pytest.mark.parametrize("authorization", [None, "ApiKey wrong-key", "Bearer {key}", "ApiKey", "{key}"])
def test_every_api_endpoint_requires_the_api_key(pok_simulator, method, path, authorization):
    headers = {} if authorization is None else {"Authorization": authorization.format(key=pok_simulator.api_key)}
    response = requests.request(method, pok_simulator.url + path, headers=headers, json=credential_payload(),
                                timeout=TIMEOUT)
    assert response.status_code == 401
    assert response.json()["message"]
    assert pok_simulator.api_key not in response.text
    assert pok_simulator.credentials == {}


def test_a_custom_api_key_is_enforced():
    with PokSimulator(api_key="custom-key") as sim:
        assert sim.api_key == "custom-key"
        ok = requests.get(sim.url + "/organization/me", headers={"Authorization": "ApiKey custom-key"}, timeout=5)
        default = requests.get(sim.url + "/organization/me", headers={"Authorization": f"ApiKey {DEFAULT_API_KEY}"},
                               timeout=5)
    assert ok.status_code == 200
    assert default.status_code == 401


# --------------------------------------------------------------------------------------------------------------------
# organization, templates, pages
# --------------------------------------------------------------------------------------------------------------------
def test_get_organization_defaults(pok_simulator):
    response = api_get(pok_simulator, "/organization/me")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "wallet": "0xsim",
        "name": "Simulated Org",
        "availableCredits": 10,
        "emittedCredentials": 0,
        "sentCredentials": 0,
        "draftCredentials": 0,
        "processingCredentials": 0,
    }


def test_organization_counts_follow_the_credentials(pok_simulator):
    issue(pok_simulator)
    issue(pok_simulator, credential_payload(skipAcceptance=False))
    draft_id = issue(pok_simulator).json()["id"]
    pok_simulator.set_state(draft_id, "draft")
    pok_simulator.emission_mode = "async"
    issue(pok_simulator)
    pok_simulator.available_credits = 3
    pok_simulator.organization_name = "Renamed Org"
    organization = api_get(pok_simulator, "/organization/me").json()
    assert organization["name"] == "Renamed Org"
    assert organization["availableCredits"] == 3
    assert organization["emittedCredentials"] == 1
    assert organization["sentCredentials"] == 1
    assert organization["draftCredentials"] == 1
    assert organization["processingCredentials"] == 1


def test_list_templates(pok_simulator):
    response = api_get(pok_simulator, "/template?limit=100")
    assert response.status_code == 200
    assert response.json() == {"data": [
        {"id": "tpl-basic", "name": "Basic certificate", "customParameters": []},
        {"id": "tpl-grade", "name": "Certificate with grade", "customParameters": [
            {"id": "grade", "label": "Grade"}, {"id": "platform", "label": "Platform"}]},
    ]}


def test_get_template_with_parameters_and_version(pok_simulator):
    pok_simulator.add_template("tpl-v", "Versioned", parameters=[("score", "Score")], version=3)
    assert api_get(pok_simulator, "/template/tpl-grade").json() == {
        "id": "tpl-grade",
        "name": "Certificate with grade",
        "customParameters": [{"id": "grade", "label": "Grade"}, {"id": "platform", "label": "Platform"}],
    }
    assert api_get(pok_simulator, "/template/tpl-v").json() == {
        "id": "tpl-v", "name": "Versioned", "version": 3, "customParameters": [{"id": "score", "label": "Score"}],
    }


def test_unknown_and_removed_templates_are_404(pok_simulator):
    assert api_get(pok_simulator, "/template/nope").status_code == 404
    pok_simulator.remove_template("tpl-basic")
    response = api_get(pok_simulator, "/template/tpl-basic")
    assert response.status_code == 404
    assert response.json()["message"]
    assert [t["id"] for t in api_get(pok_simulator, "/template?limit=10").json()["data"]] == ["tpl-grade"]


def test_list_pages_and_add_page(pok_simulator):
    assert api_get(pok_simulator, "/page?limit=10").json() == {"data": [{"id": "page-1", "name": "Default page"}]}
    pok_simulator.add_page("page-2", "Second page")
    assert api_get(pok_simulator, "/page?limit=10").json()["data"][1] == {"id": "page-2", "name": "Second page"}


@pytest.mark.parametrize("path", ["/template", "/page"])
def test_lists_return_at_most_limit_items(pok_simulator, path):
    for number in range(15):
        pok_simulator.add_template(f"tpl-{number}", f"Template {number}")
        pok_simulator.add_page(f"page-extra-{number}", f"Page {number}")
    assert len(api_get(pok_simulator, f"{path}?limit=1").json()["data"]) == 1
    assert len(api_get(pok_simulator, f"{path}?limit=5").json()["data"]) == 5
    assert len(api_get(pok_simulator, f"{path}?limit=1000").json()["data"]) == 16 + (path == "/template")
    # No limit: a small default, so a client that forgets to ask for a large limit sees truncation in tests.
    assert len(api_get(pok_simulator, path).json()["data"]) == 10


@pytest.mark.parametrize("path", ["/template", "/page"])
@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "", "10x", " 5"])
def test_lists_reject_a_limit_that_is_not_a_positive_integer(pok_simulator, path, limit):
    response = api_get(pok_simulator, path, params={"limit": limit})
    assert response.status_code == 400
    assert "limit" in response.json()["message"]


# --------------------------------------------------------------------------------------------------------------------
# preview (E4)
# --------------------------------------------------------------------------------------------------------------------
def test_preview_returns_a_fetchable_png_url(pok_simulator):
    pok_simulator.available_credits = 0
    blockchain = mutate(preview_payload(), ("credential", "emissionType"), "blockchain")
    first = api_post(pok_simulator, "/template/preview", preview_payload())
    second = api_post(pok_simulator, "/template/preview", blockchain)
    assert first.status_code == 200 and second.status_code == 200
    assert first.json() == {"url": f"{pok_simulator.url}/images/preview-1.png"}
    assert second.json() == {"url": f"{pok_simulator.url}/images/preview-2.png"}
    image = requests.get(first.json()["url"], timeout=TIMEOUT)
    assert image.status_code == 200
    assert image.headers["Content-Type"] == "image/png"
    assert_png(image.content)
    assert pok_simulator.credentials == {}
    assert pok_simulator.available_credits == 0


@pytest.mark.parametrize("path,value,fragment", [
    (("credential", "emissionType"), "paper", "emissionType"),
    (("credential", "dateFormat"), _DELETE, "dateFormat"),
    (("credential", "emissionDate"), "2024-05-31T12:00:00", "emissionDate"),
    (("credential", "title"), "", "title"),
    (("credential", "emitter"), _DELETE, "emitter"),
    (("receiver", "firstName"), " ", "firstName"),
    (("receiver", "lastName"), _DELETE, "lastName"),
    (("receiver", "languageTag"), "en_US", "languageTag"),
    (("customization", "template", "id"), "nope", "unknown template id"),
    (("customization", "template", "customParameters"), {"grade": "A"}, "'platform'"),
    (("customization", "template", "customParameters"), [], "customParameters"),
    (("receiver",), _DELETE, "receiver"),
])
def test_preview_validates_like_issuance(pok_simulator, path, value, fragment):
    response = api_post(pok_simulator, "/template/preview", mutate(preview_payload(), path, value))
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_preview_needs_no_receiver_email(pok_simulator):
    payload = preview_payload()
    assert "email" not in payload["receiver"]
    assert api_post(pok_simulator, "/template/preview", payload).status_code == 200


# --------------------------------------------------------------------------------------------------------------------
# issuance (E6) and reading (E7)
# --------------------------------------------------------------------------------------------------------------------
def test_sync_issue_with_skip_acceptance_is_emitted(pok_simulator):
    response = issue(pok_simulator)
    assert response.status_code == 201
    body = response.json()
    credential_id = body["id"]
    assert str(uuid.UUID(credential_id)) == credential_id
    assert body == {
        "id": credential_id,
        "state": "emitted",
        "viewUrl": f"{pok_simulator.url}/view/{credential_id}",
        "createdAt": body["createdAt"],
        "credential": {
            "title": "Python 101",
            "emitter": "Test Academy",
            "emissionDate": "2024-05-31T12:00:00+00:00",
            "emissionType": "pok",
            "tags": ["course-v1:Org+PY101+2024"],
        },
        "receiver": {"name": "Ada Lovelace", "email": "ada@example.com"},
    }
    assert body["createdAt"].endswith("Z")
    fetched = api_get(pok_simulator, f"/credential/{credential_id}")
    assert fetched.status_code == 200
    assert fetched.json() == body
    assert pok_simulator.credentials == {credential_id: body}


@pytest.mark.parametrize("skip_acceptance", [False, _DELETE])
def test_without_skip_acceptance_the_credential_waits_for_approval(pok_simulator, skip_acceptance):
    payload = mutate(credential_payload(), ("credential", "skipAcceptance"), skip_acceptance)
    response = issue(pok_simulator, payload)
    assert response.status_code == 201
    body = response.json()
    assert body["state"] == "waitingForApproval"
    assert "viewUrl" not in body
    assert api_get(pok_simulator, f"/credential/{body['id']}").json()["state"] == "waitingForApproval"

    pok_simulator.approve(body["id"])
    approved = api_get(pok_simulator, f"/credential/{body['id']}").json()
    assert approved["state"] == "emitted"
    assert approved["viewUrl"] == f"{pok_simulator.url}/view/{body['id']}"


def test_empty_last_name_and_no_optional_fields_are_accepted(pok_simulator):
    payload = credential_payload()
    payload["receiver"] = {"firstName": "Cher", "lastName": "", "email": "cher@example.com"}
    del payload["credential"]["tags"]
    del payload["customization"]["page"]
    response = issue(pok_simulator, payload)
    assert response.status_code == 201
    assert response.json()["receiver"] == {"name": "Cher", "email": "cher@example.com"}
    assert response.json()["credential"]["tags"] == []


@pytest.mark.parametrize("emission_date", [
    "2024-05-31T12:00:00Z",
    "2024-05-31T12:00:00.123456+02:00",
    "2024-05-31T12:00-03:00",
    "2024-05-31T12:00:00+0530",
])
def test_emission_dates_with_an_offset_are_accepted(pok_simulator, emission_date):
    assert issue(pok_simulator, credential_payload(emissionDate=emission_date)).status_code == 201


@pytest.mark.parametrize("language_tag", ["en", "es-419", "pt-BR", "zh-Hant-TW"])
def test_bcp47_language_tags_are_accepted(pok_simulator, language_tag):
    payload = mutate(credential_payload(), ("receiver", "languageTag"), language_tag)
    assert issue(pok_simulator, payload).status_code == 201


ISSUE_VALIDATION_CASES = [
    (("credential",), _DELETE, "credential"),
    (("credential",), "text", "credential"),
    (("credential", "emissionType"), _DELETE, "emissionType"),
    (("credential", "emissionType"), "paper", "emissionType"),
    (("credential", "emissionType"), "POK", "emissionType"),
    (("credential", "dateFormat"), _DELETE, "dateFormat"),
    (("credential", "dateFormat"), "yyyy-MM-dd", "dateFormat"),
    (("credential", "emissionDate"), _DELETE, "emissionDate"),
    (("credential", "emissionDate"), "2024-05-31", "emissionDate"),
    (("credential", "emissionDate"), "2024-05-31T12:00:00", "emissionDate"),
    (("credential", "emissionDate"), "31/05/2024", "emissionDate"),
    (("credential", "emissionDate"), "2024-13-31T12:00:00Z", "emissionDate"),
    (("credential", "emissionDate"), 1717156800, "emissionDate"),
    (("credential", "title"), _DELETE, "title"),
    (("credential", "title"), "", "title"),
    (("credential", "title"), "   ", "title"),
    (("credential", "emitter"), "", "emitter"),
    (("credential", "emitter"), None, "emitter"),
    (("credential", "tags"), "a,b", "tags"),
    (("credential", "tags"), ["ok", 3], "tags"),
    (("credential", "tags"), None, "tags"),
    (("credential", "skipAcceptance"), "true", "skipAcceptance"),
    (("credential", "skipAcceptance"), 1, "skipAcceptance"),
    (("credential", "skipAcceptance"), None, "skipAcceptance"),
    (("receiver",), _DELETE, "receiver"),
    (("receiver", "firstName"), _DELETE, "firstName"),
    (("receiver", "firstName"), "", "firstName"),
    (("receiver", "lastName"), _DELETE, "lastName"),
    (("receiver", "lastName"), None, "lastName"),
    (("receiver", "email"), _DELETE, "email"),
    (("receiver", "email"), "ada.example.com", "email"),
    (("receiver", "email"), "", "email"),
    (("receiver", "languageTag"), "en_US", "languageTag"),
    (("receiver", "languageTag"), "english language", "languageTag"),
    (("receiver", "languageTag"), "", "languageTag"),
    (("receiver", "languageTag"), None, "languageTag"),
    (("customization",), _DELETE, "customization"),
    (("customization", "template"), _DELETE, "customization.template"),
    (("customization", "template", "id"), _DELETE, "customization.template.id"),
    (("customization", "template", "id"), "tpl-nope", "unknown template id"),
    (("customization", "page"), "page-nope", "unknown page id"),
    (("customization", "page"), None, "unknown page id"),
    (("customization", "template", "customParameters"), _DELETE, "customParameters"),
    (("customization", "template", "customParameters"), [], "customParameters"),
    (("customization", "template", "customParameters"), "grade=A", "customParameters"),
    (("customization", "template", "customParameters"), {"extra": 5}, "customParameters"),
]


@pytest.mark.parametrize("path,value,fragment", ISSUE_VALIDATION_CASES)
def test_issue_rejects_invalid_payloads(pok_simulator, path, value, fragment):
    response = issue(pok_simulator, mutate(credential_payload(), path, value))
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert pok_simulator.credentials == {}
    assert pok_simulator.available_credits == 10


@pytest.mark.parametrize("parameters,missing", [
    ({}, "'grade'"),
    ({"platform": "Open edX"}, "'grade'"),
    ({"grade": "A"}, "'platform'"),
    ({"grade": "", "platform": "Open edX"}, "'grade'"),
    ({"grade": "A", "platform": "   "}, "'platform'"),
    ({"Grade": "A", "Platform": "Open edX"}, "'grade'"),  # keyed by label, not id
])
def test_every_declared_template_parameter_must_be_present_and_non_empty(pok_simulator, parameters, missing):
    response = issue(pok_simulator, graded_payload(**parameters))
    assert response.status_code == 400
    assert missing in response.json()["message"]
    assert pok_simulator.credentials == {}


def test_declared_template_parameters_keyed_by_id_are_accepted(pok_simulator):
    response = issue(pok_simulator, graded_payload(grade="95%", platform="Open edX", unused="ignored"))
    assert response.status_code == 201


@pytest.mark.parametrize("data,content_type,fragment", [
    (b"not json", "application/json", "not valid JSON"),
    (b"", "application/json", "not valid JSON"),
    (b"[1, 2]", "application/json", "JSON object"),
    (b'{"credential": {}}', "text/plain", "Content-Type"),
    (b'{"credential": {}}', None, "Content-Type"),
])
@pytest.mark.parametrize("path", ["/credential", "/template/preview"])
def test_post_bodies_must_be_json_objects_sent_as_json(pok_simulator, data, content_type, fragment, path):
    headers = auth_headers(pok_simulator)
    if content_type:
        headers["Content-Type"] = content_type
    response = requests.post(pok_simulator.url + path, data=data, headers=headers, timeout=TIMEOUT)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_json_content_type_with_charset_is_accepted(pok_simulator):
    response = requests.post(
        pok_simulator.url + "/credential",
        data=json.dumps(credential_payload()).encode(),
        headers={**auth_headers(pok_simulator), "Content-Type": "application/json; charset=utf-8"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 201


def test_unknown_credential_is_404(pok_simulator):
    for path in ("/credential/does-not-exist", "/credential/does-not-exist/decrypted-image"):
        response = api_get(pok_simulator, path)
        assert response.status_code == 404
        assert response.json()["message"]


# --------------------------------------------------------------------------------------------------------------------
# asynchronous emission, approval and forced states
# --------------------------------------------------------------------------------------------------------------------
def test_async_emission_needs_polls(pok_simulator):
    pok_simulator.emission_mode = "async"
    pok_simulator.polls_until_emitted = 2
    response = issue(pok_simulator)
    assert response.status_code == 202
    credential_id = response.json()["id"]
    assert response.json() == {"id": credential_id, "state": "processing"}

    first = api_get(pok_simulator, f"/credential/{credential_id}").json()
    assert first["state"] == "processing"
    assert "viewUrl" not in first
    assert first["receiver"]["email"] == "ada@example.com"
    second = api_get(pok_simulator, f"/credential/{credential_id}").json()
    assert second["state"] == "emitted"
    assert second["viewUrl"] == f"{pok_simulator.url}/view/{credential_id}"
    assert api_get(pok_simulator, f"/credential/{credential_id}").json() == second


@pytest.mark.parametrize("polls", [0, 1])
def test_async_emission_with_zero_or_one_poll_emits_on_the_first_get(pok_simulator, polls):
    pok_simulator.emission_mode = "async"
    pok_simulator.polls_until_emitted = polls
    credential_id = issue(pok_simulator).json()["id"]
    assert api_get(pok_simulator, f"/credential/{credential_id}").json()["state"] == "emitted"


def test_async_without_skip_acceptance_waits_for_approval_after_the_polls(pok_simulator):
    pok_simulator.emission_mode = "async"
    pok_simulator.polls_until_emitted = 1
    credential_id = issue(pok_simulator, credential_payload(skipAcceptance=False)).json()["id"]
    assert api_get(pok_simulator, f"/credential/{credential_id}").json()["state"] == "waitingForApproval"
    pok_simulator.approve(credential_id)
    assert api_get(pok_simulator, f"/credential/{credential_id}").json()["state"] == "emitted"


def test_approving_while_processing_emits_once_the_polls_are_done(pok_simulator):
    pok_simulator.emission_mode = "async"
    pok_simulator.polls_until_emitted = 2
    credential_id = issue(pok_simulator, credential_payload(skipAcceptance=False)).json()["id"]
    pok_simulator.approve(credential_id)
    assert api_get(pok_simulator, f"/credential/{credential_id}").json()["state"] == "processing"
    assert api_get(pok_simulator, f"/credential/{credential_id}").json()["state"] == "emitted"


def test_approve_rejects_unknown_ids_and_final_states(pok_simulator):
    with pytest.raises(KeyError):
        pok_simulator.approve("nope")
    credential_id = issue(pok_simulator).json()["id"]
    pok_simulator.approve(credential_id)  # already emitted: harmless
    pok_simulator.set_state(credential_id, "revoked")
    with pytest.raises(ValueError):
        pok_simulator.approve(credential_id)


@pytest.mark.parametrize("state", ["revoked", "signatureRejected", "aborted", "newFancyState"])
def test_set_state_forces_any_state(pok_simulator, state):
    credential_id = issue(pok_simulator).json()["id"]
    pok_simulator.set_state(credential_id, state)
    body = api_get(pok_simulator, f"/credential/{credential_id}").json()
    assert body["state"] == state
    assert pok_simulator.credentials[credential_id]["state"] == state
    # Only emitted credentials have a public page.
    assert requests.get(f"{pok_simulator.url}/view/{credential_id}", timeout=TIMEOUT).status_code == 404


def test_set_state_keeps_view_url_consistent_and_is_sticky(pok_simulator):
    pok_simulator.emission_mode = "async"
    pok_simulator.polls_until_emitted = 1
    credential_id = issue(pok_simulator).json()["id"]
    pok_simulator.set_state(credential_id, "processing")
    assert api_get(pok_simulator, f"/credential/{credential_id}").json()["state"] == "processing"  # no progress
    pok_simulator.set_state(credential_id, "emitted")
    body = api_get(pok_simulator, f"/credential/{credential_id}").json()
    assert body["viewUrl"] == f"{pok_simulator.url}/view/{credential_id}"
    pok_simulator.set_state(credential_id, "waitingForApproval")
    assert "viewUrl" not in api_get(pok_simulator, f"/credential/{credential_id}").json()
    with pytest.raises(KeyError):
        pok_simulator.set_state("nope", "emitted")


def test_emission_mode_is_validated(pok_simulator):
    with pytest.raises(ValueError):
        pok_simulator.emission_mode = "eventually"


# --------------------------------------------------------------------------------------------------------------------
# blockchain credits
# --------------------------------------------------------------------------------------------------------------------
def test_blockchain_emission_consumes_credits_and_pok_is_free(pok_simulator):
    pok_simulator.available_credits = 2
    assert issue(pok_simulator, credential_payload(emissionType="pok")).status_code == 201
    assert pok_simulator.available_credits == 2
    assert issue(pok_simulator, credential_payload(emissionType="blockchain")).status_code == 201
    assert pok_simulator.available_credits == 1
    assert api_get(pok_simulator, "/organization/me").json()["availableCredits"] == 1
    assert issue(pok_simulator, credential_payload(emissionType="blockchain")).status_code == 201

    refused = issue(pok_simulator, credential_payload(emissionType="blockchain"))
    assert refused.status_code == 400
    assert "insufficient credits" in refused.json()["message"]
    assert pok_simulator.available_credits == 0
    assert len(pok_simulator.credentials) == 3
    assert issue(pok_simulator, credential_payload(emissionType="pok")).status_code == 201


# --------------------------------------------------------------------------------------------------------------------
# credential image (E8), public image and view page
# --------------------------------------------------------------------------------------------------------------------
def test_decrypted_image_location_serves_a_png(pok_simulator):
    credential_id = issue(pok_simulator).json()["id"]
    response = api_get(pok_simulator, f"/credential/{credential_id}/decrypted-image")
    assert response.status_code == 200
    location = response.json()["location"]
    assert location == f"{pok_simulator.url}/images/{credential_id}.png"
    image = requests.get(location, timeout=TIMEOUT)  # public: no Authorization header
    assert image.status_code == 200
    assert image.headers["Content-Type"] == "image/png"
    assert_png(image.content)


def test_unknown_images_are_404(pok_simulator):
    assert requests.get(f"{pok_simulator.url}/images/nope.png", timeout=TIMEOUT).status_code == 404
    assert requests.get(f"{pok_simulator.url}/images/preview-1.png", timeout=TIMEOUT).status_code == 404


def test_view_page_is_public_self_contained_and_escaped(pok_simulator):
    payload = credential_payload(title="<script>alert('x')</script> Python", emitter="Smith & Sons")
    payload["receiver"]["firstName"] = "<b>Ada</b>"
    credential_id = issue(pok_simulator, payload).json()["id"]
    response = requests.get(f"{pok_simulator.url}/view/{credential_id}", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    page = response.text
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; Python" in page
    assert "<script>" not in page
    assert "Smith &amp; Sons" in page
    assert "&lt;b&gt;Ada&lt;/b&gt; Lovelace" in page
    assert "ada@example.com" not in page
    for external in ("src=", "href=", "http://", "https://", "@import"):
        assert external not in page


def test_view_page_is_404_when_unknown_or_not_emitted(pok_simulator):
    waiting_id = issue(pok_simulator, credential_payload(skipAcceptance=False)).json()["id"]
    for credential_id in ("nope", waiting_id):
        response = requests.get(f"{pok_simulator.url}/view/{credential_id}", timeout=TIMEOUT)
        assert response.status_code == 404
        assert response.headers["Content-Type"].startswith("text/html")


# --------------------------------------------------------------------------------------------------------------------
# paths
# --------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path,expected_endpoint", [
    ("GET", "/organization/me/", "get_organization"),
    ("GET", "/template/?limit=5", "list_templates"),
    ("GET", "/template/tpl-basic/", "get_template"),
    ("POST", "/template/preview/", "preview_template"),
    ("GET", "/page/?limit=5", "list_pages"),
    ("POST", "/credential/", "issue_credential"),
    ("GET", "/credential/{id}/", "get_credential"),
    ("GET", "/credential/{id}/decrypted-image/", "get_credential_image"),
    ("GET", "/view/{id}/", "view_page"),
    ("GET", "/images/{id}.png/", "image_file"),
])
def test_paths_work_with_a_trailing_slash(pok_simulator, method, path, expected_endpoint):
    credential_id = issue(pok_simulator).json()["id"]
    body = preview_payload() if "preview" in path else credential_payload()
    response = requests.request(method, pok_simulator.url + path.format(id=credential_id), json=body,
                                headers=auth_headers(pok_simulator), timeout=TIMEOUT)
    assert response.status_code in (200, 201)
    assert pok_simulator.requests[-1].endpoint == expected_endpoint


def test_unknown_paths_are_404_and_wrong_methods_405(pok_simulator):
    missing = api_get(pok_simulator, "/v1/organization/me")
    assert missing.status_code == 404
    wrong_method = requests.delete(pok_simulator.url + "/credential/abc", headers=auth_headers(pok_simulator),
                                   timeout=TIMEOUT)
    assert wrong_method.status_code == 405
    assert wrong_method.headers["Allow"] == "GET"
    assert pok_simulator.count("unknown") == 2


# --------------------------------------------------------------------------------------------------------------------
# faults
# --------------------------------------------------------------------------------------------------------------------
def test_latency_fault_and_global_latency_delay_the_response(pok_simulator):
    pok_simulator.add_fault(Fault("latency", endpoint="get_organization", delay=0.3))
    started = time.monotonic()
    assert api_get(pok_simulator, "/organization/me").status_code == 200
    assert time.monotonic() - started >= 0.3

    pok_simulator.latency = 0.15
    started = time.monotonic()
    assert api_get(pok_simulator, "/page?limit=1").status_code == 200
    assert time.monotonic() - started >= 0.15


def test_status_fault_creates_nothing_and_applies_times_requests(pok_simulator):
    pok_simulator.add_fault(Fault("status", endpoint="issue_credential", times=2, status=503))
    for _ in range(2):
        response = issue(pok_simulator)
        assert response.status_code == 503
        assert response.json()["message"]
    assert pok_simulator.credentials == {}
    assert issue(pok_simulator).status_code == 201
    assert pok_simulator.count("issue_credential") == 3


@pytest.mark.parametrize("retry_after,header", [(2, "2"), (2.0, "2"), (1.5, "1.5"),
                                                ("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT"),
                                                (None, None)])
def test_rate_limit_fault(pok_simulator, retry_after, header):
    pok_simulator.add_fault(Fault("rate_limit", endpoint="issue_credential", retry_after=retry_after))
    response = issue(pok_simulator)
    assert response.status_code == 429
    assert response.headers.get("Retry-After") == header
    assert response.json()["message"]
    assert pok_simulator.credentials == {}


def test_hang_fault_times_out_the_client_and_creates_nothing(pok_simulator):
    pok_simulator.add_fault(Fault("hang", endpoint="issue_credential", delay=0.5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        issue(pok_simulator, timeout=0.2)
    assert pok_simulator.credentials == {}
    assert pok_simulator.count("issue_credential") == 1


def test_hang_fault_without_client_timeout_ends_in_a_dropped_connection(pok_simulator):
    pok_simulator.add_fault(Fault("hang", endpoint="get_organization", delay=0.1))
    with pytest.raises(requests.exceptions.ConnectionError):
        api_get(pok_simulator, "/organization/me")


def test_hang_after_create_times_out_after_the_credential_exists(pok_simulator):
    pok_simulator.add_fault(Fault("hang_after_create", endpoint="issue_credential", delay=0.5))
    with pytest.raises(requests.exceptions.ReadTimeout):
        issue(pok_simulator, timeout=0.2)
    assert len(pok_simulator.credentials) == 1


def test_hang_after_create_eventually_answers_normally(pok_simulator):
    pok_simulator.add_fault(Fault("hang_after_create", endpoint="issue_credential", delay=0.1))
    response = issue(pok_simulator)
    assert response.status_code == 201
    assert response.json()["id"] in pok_simulator.credentials


def test_drop_fault_closes_without_response_and_creates_nothing(pok_simulator):
    pok_simulator.add_fault(Fault("drop", endpoint="issue_credential"))
    with pytest.raises(requests.exceptions.ConnectionError):
        issue(pok_simulator)
    assert pok_simulator.credentials == {}
    assert issue(pok_simulator).status_code == 201  # times=1: the next request is normal


def test_drop_after_create_closes_without_response_after_creating(pok_simulator):
    pok_simulator.add_fault(Fault("drop_after_create", endpoint="issue_credential"))
    with pytest.raises(requests.exceptions.ConnectionError):
        issue(pok_simulator)
    assert len(pok_simulator.credentials) == 1
    assert len(pok_simulator.credentials_for("ada@example.com")) == 1


def test_malformed_json_fault_handles_the_request_but_breaks_the_body(pok_simulator):
    pok_simulator.add_fault(Fault("malformed_json", endpoint="issue_credential"))
    response = issue(pok_simulator)
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    assert len(pok_simulator.credentials) == 1


def test_faults_target_their_endpoint_only(pok_simulator):
    pok_simulator.add_fault(Fault("status", endpoint="get_template", status=500))
    assert api_get(pok_simulator, "/organization/me").status_code == 200
    assert api_get(pok_simulator, "/template/tpl-basic").status_code == 500
    assert api_get(pok_simulator, "/template/tpl-basic").status_code == 200


def test_fault_without_endpoint_hits_the_next_request_of_any_kind(pok_simulator):
    pok_simulator.add_fault(Fault("status", status=502))
    assert requests.get(f"{pok_simulator.url}/view/nope", timeout=TIMEOUT).status_code == 502
    assert api_get(pok_simulator, "/organization/me").status_code == 200


def test_faults_apply_oldest_first_and_until_cleared(pok_simulator):
    pok_simulator.add_fault(Fault("status", endpoint="get_organization", status=500))
    pok_simulator.add_fault(Fault("rate_limit", endpoint="get_organization", times=None))
    assert api_get(pok_simulator, "/organization/me").status_code == 500
    for _ in range(3):
        assert api_get(pok_simulator, "/organization/me").status_code == 429
    assert len(pok_simulator.faults) == 1
    pok_simulator.clear_faults()
    assert api_get(pok_simulator, "/organization/me").status_code == 200


@pytest.mark.parametrize("kwargs", [
    {"kind": "explode"},
    {"kind": "status", "endpoint": "issue_credentials"},
    {"kind": "status", "times": 0},
    {"kind": "status", "status": 99},
    {"kind": "hang", "delay": -1},
])
def test_invalid_faults_are_rejected(kwargs):
    with pytest.raises(ValueError):
        Fault(**kwargs)


# --------------------------------------------------------------------------------------------------------------------
# idempotency
# --------------------------------------------------------------------------------------------------------------------
def test_idempotency_key_is_ignored_by_default(pok_simulator):
    headers = {"Idempotency-Key": "row-1-attempt"}
    first = issue(pok_simulator, headers=headers).json()["id"]
    second = issue(pok_simulator, headers=headers).json()["id"]
    assert first != second
    assert len(pok_simulator.credentials) == 2


def test_honoured_idempotency_key_returns_the_earlier_credential(pok_simulator):
    pok_simulator.honour_idempotency_key = True
    pok_simulator.add_fault(Fault("drop_after_create", endpoint="issue_credential"))
    headers = {"Idempotency-Key": "row-1"}
    blockchain = credential_payload(emissionType="blockchain")
    with pytest.raises(requests.exceptions.ConnectionError):
        issue(pok_simulator, blockchain, headers=headers)
    retried = issue(pok_simulator, blockchain, headers=headers)
    assert retried.status_code == 200
    assert retried.json()["id"] in pok_simulator.credentials
    assert len(pok_simulator.credentials) == 1
    assert pok_simulator.available_credits == 9
    assert issue(pok_simulator, blockchain, headers={"Idempotency-Key": "row-2"}).status_code == 201
    assert len(pok_simulator.credentials) == 2


# --------------------------------------------------------------------------------------------------------------------
# counters and inspection
# --------------------------------------------------------------------------------------------------------------------
def test_counts_per_endpoint_include_faulted_and_rejected_requests(pok_simulator):
    credential_id = issue(pok_simulator).json()["id"]
    pok_simulator.add_fault(Fault("status", endpoint="get_credential"))
    api_get(pok_simulator, f"/credential/{credential_id}")
    api_get(pok_simulator, f"/credential/{credential_id}")
    requests.get(pok_simulator.url + "/organization/me", timeout=TIMEOUT)  # 401 still counts
    requests.get(f"{pok_simulator.url}/view/{credential_id}", timeout=TIMEOUT)
    assert pok_simulator.count("issue_credential") == 1
    assert pok_simulator.count("get_credential") == 2
    assert pok_simulator.count("get_organization") == 1
    assert pok_simulator.count("view_page") == 1
    assert pok_simulator.count("list_pages") == 0
    assert pok_simulator.count() == 5
    assert sum(pok_simulator.count(endpoint) for endpoint in ENDPOINTS) == 5
    with pytest.raises(ValueError):
        pok_simulator.count("issue_credentials")


def test_requests_are_recorded_with_headers_body_and_idempotency_key(pok_simulator):
    payload = credential_payload()
    issue(pok_simulator, payload, headers={"Idempotency-Key": "key-123"})
    api_get(pok_simulator, "/template?limit=7")
    posted, listed = pok_simulator.requests
    assert posted.endpoint == "issue_credential"
    assert posted.method == "POST"
    assert posted.path == "/credential"
    assert posted.body == payload
    assert posted.idempotency_key == "key-123"
    assert posted.header("authorization") == f"ApiKey {pok_simulator.api_key}"
    assert posted.header("content-type") == "application/json"
    assert listed.endpoint == "list_templates"
    assert listed.path == "/template"
    assert listed.query == {"limit": ["7"]}
    assert listed.body is None
    assert listed.idempotency_key is None


def test_credentials_for_an_email(pok_simulator):
    issue(pok_simulator)
    issue(pok_simulator)
    other = credential_payload()
    other["receiver"]["email"] = "grace@example.com"
    issue(pok_simulator, other)
    assert len(pok_simulator.credentials_for("ada@example.com")) == 2
    assert len(pok_simulator.credentials_for("ADA@example.com")) == 2
    assert [c["receiver"]["email"] for c in pok_simulator.credentials_for("grace@example.com")] == [
        "grace@example.com"]
    assert pok_simulator.credentials_for("nobody@example.com") == []


def test_inspection_returns_copies(pok_simulator):
    credential_id = issue(pok_simulator).json()["id"]
    pok_simulator.credentials[credential_id]["state"] = "tampered"
    pok_simulator.credentials_for("ada@example.com")[0]["state"] = "tampered"
    assert pok_simulator.credentials[credential_id]["state"] == "emitted"


def test_reset_restores_the_defaults(pok_simulator):
    issue(pok_simulator)
    pok_simulator.add_template("tpl-x", "X")
    pok_simulator.remove_template("tpl-basic")
    pok_simulator.add_page("page-x", "X")
    pok_simulator.available_credits = 0
    pok_simulator.emission_mode = "async"
    pok_simulator.polls_until_emitted = 9
    pok_simulator.latency = 1.0
    pok_simulator.honour_idempotency_key = True
    pok_simulator.api_key = "other"
    pok_simulator.add_fault(Fault("drop", times=None))

    pok_simulator.reset()

    assert pok_simulator.credentials == {}
    assert pok_simulator.requests == []
    assert pok_simulator.faults == []
    assert pok_simulator.available_credits == 10
    assert pok_simulator.emission_mode == "sync"
    assert pok_simulator.latency == 0.0
    assert pok_simulator.honour_idempotency_key is False
    assert pok_simulator.api_key == DEFAULT_API_KEY
    assert [t["id"] for t in api_get(pok_simulator, "/template?limit=10").json()["data"]] == ["tpl-basic",
                                                                                           "tpl-grade"]
    assert api_get(pok_simulator, "/page?limit=10").json()["data"] == [{"id": "page-1", "name": "Default page"}]


# --------------------------------------------------------------------------------------------------------------------
# lifecycle, logging and the command line
# --------------------------------------------------------------------------------------------------------------------
def test_stop_is_prompt_even_with_a_hung_request():
    sim = PokSimulator().start()
    sim.add_fault(Fault("hang", delay=30))
    outcome: list[BaseException] = []

    def hung_call() -> None:
        try:
            requests.get(sim.url + "/organization/me", headers=auth_headers(sim), timeout=10)
        except requests.RequestException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=hung_call)
    caller.start()
    deadline = time.monotonic() + 2
    while sim.count() == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    sim.stop()
    caller.join(timeout=2)
    assert time.monotonic() - started < 1
    assert not caller.is_alive()
    assert isinstance(outcome[0], requests.exceptions.ConnectionError)


def test_start_stop_and_context_manager():
    sim = PokSimulator(port=0)
    with pytest.raises(RuntimeError):
        sim.url  # noqa: B018 - the port is only known once started
    with sim:
        assert sim.running
        assert sim.url == f"http://127.0.0.1:{sim.port}"
        with pytest.raises(RuntimeError):
            sim.start()
        session = requests.Session()
        assert session.get(sim.url + "/organization/me", headers=auth_headers(sim), timeout=5).status_code == 200
    assert not sim.running
    with pytest.raises(requests.exceptions.ConnectionError):
        session.get(sim.url + "/organization/me", headers=auth_headers(sim), timeout=1)
    sim.stop()  # idempotent


def test_the_server_writes_nothing_to_stderr(pok_simulator, capfd):
    issue(pok_simulator)
    requests.get(pok_simulator.url + "/organization/me", timeout=TIMEOUT)
    pok_simulator.add_fault(Fault("drop"))
    with pytest.raises(requests.exceptions.ConnectionError):
        api_get(pok_simulator, "/organization/me")
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""


def _line_reader(stream: Any) -> queue.Queue[str]:
    """Read a subprocess's output lines in a thread, so the test can wait for one with a timeout."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in stream], daemon=True).start()
    return lines


def test_command_line_serves_until_terminated():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "pok_simulator", "--port", str(port), "--api-key", "cli-key",
         "--async-polls", "1", "--latency-ms", "1"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        lines = _line_reader(process.stdout)
        assert lines.get(timeout=10).strip() == f"POK simulator listening on http://127.0.0.1:{port}"
        assert lines.get(timeout=5).strip() == "API key: cli-key"
        url = f"http://127.0.0.1:{port}"
        headers = {"Authorization": "ApiKey cli-key"}
        organization = requests.get(url + "/organization/me", headers=headers, timeout=5)
        assert organization.status_code == 200
        assert organization.json()["name"] == "Simulated Org"
        issued = requests.post(url + "/credential", json=credential_payload(), headers=headers, timeout=5)
        assert issued.status_code == 202  # --async-polls
        polled = requests.get(f"{url}/credential/{issued.json()['id']}", headers=headers, timeout=5)
        assert polled.json()["state"] == "emitted"
    finally:
        process.terminate()
        process.wait(timeout=5)
        stderr = process.stderr.read()
    assert process.returncode == 0
    assert stderr == ""


def test_concurrent_issuance_is_consistent(pok_simulator):
    """Handler threads share one lock: 20 parallel blockchain POSTs against 10 credits make exactly 10 credentials."""
    statuses: list[int] = []
    payload = credential_payload(emissionType="blockchain")

    def post_one() -> None:
        statuses.append(issue(pok_simulator, payload).status_code)

    workers = [threading.Thread(target=post_one) for _ in range(20)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=TIMEOUT)
    assert sorted(statuses) == [201] * 10 + [400] * 10
    assert len(pok_simulator.credentials) == 10
    assert pok_simulator.available_credits == 0
    assert pok_simulator.count("issue_credential") == 20


# --------------------------------------------------------------------------------------------------------------------
# fault kinds for unusable answers: respond, patch_answer, slow_drip, huge_body
# --------------------------------------------------------------------------------------------------------------------
def test_every_fault_kind_is_documented_in_the_package_docstring():
    import pok_simulator as package

    for kind in FAULT_KINDS:
        assert f"``{kind}``" in package.__doc__, kind


@pytest.mark.parametrize("body,content_type", [
    ("<!DOCTYPE html><html><body>Maintenance</body></html>", "text/html"),
    ("[]", "application/json"),
    ("{}", "application/json"),
    (json.dumps(json.loads("[" * 200 + "]" * 200)), "application/json"),
    (b"\xff\xfe not utf-8 \x00", "application/octet-stream"),
])
def test_respond_fault_answers_exactly_that_and_creates_nothing(pok_simulator, body, content_type):
    pok_simulator.add_fault(Fault("respond", endpoint="issue_credential", status=200, body=body,
                                  content_type=content_type))
    response = issue(pok_simulator)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.content == (body.encode() if isinstance(body, str) else body)
    assert pok_simulator.credentials == {}
    assert pok_simulator.count("issue_credential") == 1
    assert issue(pok_simulator).status_code == 201  # times=1


def test_respond_fault_redirect_keeps_the_connection_usable(pok_simulator):
    pok_simulator.add_fault(Fault("respond", endpoint="get_credential", status=302,
                                  headers=(("Location", "http://x.invalid/login"),)))
    credential_id = issue(pok_simulator).json()["id"]
    with requests.Session() as session:
        redirected = session.get(f"{pok_simulator.url}/credential/{credential_id}", headers=auth_headers(pok_simulator),
                                 allow_redirects=False, timeout=TIMEOUT)
        assert redirected.status_code == 302
        assert redirected.headers["Location"] == "http://x.invalid/login"
        assert redirected.headers["Content-Length"] == "0"
        assert redirected.content == b""
        # Correct framing: the same keep-alive connection serves the next answer.
        again = session.get(f"{pok_simulator.url}/credential/{credential_id}", headers=auth_headers(pok_simulator),
                            timeout=TIMEOUT)
    assert again.json()["id"] == credential_id


def test_respond_fault_defaults_to_an_empty_200_json_answer(pok_simulator):
    pok_simulator.add_fault(Fault("respond", endpoint="get_organization"))
    response = api_get(pok_simulator, "/organization/me")
    assert (response.status_code, response.headers["Content-Type"], response.content) == (200, "application/json",
                                                                                           b"")


def test_respond_after_create_handles_the_request_then_replaces_the_answer(pok_simulator):
    pok_simulator.add_fault(Fault("respond", endpoint="issue_credential", status=202, body="{}", after_create=True))
    response = issue(pok_simulator, credential_payload(emissionType="blockchain"))
    assert response.status_code == 202
    assert response.json() == {}
    assert len(pok_simulator.credentials_for("ada@example.com")) == 1
    assert pok_simulator.available_credits == 9
    assert pok_simulator.count("issue_credential") == 1


def test_respond_without_after_create_skips_authentication_like_status_faults(pok_simulator):
    pok_simulator.add_fault(Fault("respond", endpoint="get_organization", body='{"name": "x"}'))
    assert requests.get(pok_simulator.url + "/organization/me", timeout=TIMEOUT).json() == {"name": "x"}


def test_patch_answer_changes_the_answer_only(pok_simulator):
    fields = {"viewUrl": "http://evil.example/phish", "id": "other-id", "state": "revoked", "extra": {"a": [1]}}
    pok_simulator.add_fault(Fault("patch_answer", endpoint="issue_credential", fields=fields))
    answer = issue(pok_simulator).json()
    assert {key: answer[key] for key in fields} == fields
    assert answer["receiver"]["email"] == "ada@example.com"  # untouched keys stay
    (credential_id, stored), = pok_simulator.credentials.items()
    assert credential_id != "other-id"
    assert stored["state"] == "emitted"
    assert stored["viewUrl"] == f"{pok_simulator.url}/view/{credential_id}"
    assert "extra" not in stored
    assert api_get(pok_simulator, f"/credential/{credential_id}").json() == stored


def test_patch_answer_on_get_and_errors_pass_unchanged(pok_simulator):
    credential_id = issue(pok_simulator).json()["id"]
    pok_simulator.add_fault(Fault("patch_answer", endpoint="get_credential", fields={"state": "emitted"}, times=2))
    unknown = api_get(pok_simulator, "/credential/nope")
    assert unknown.status_code == 404
    assert unknown.json() == {"message": "credential not found"}
    pok_simulator.set_state(credential_id, "processing")
    assert api_get(pok_simulator, f"/credential/{credential_id}").json()["state"] == "emitted"
    assert api_get(pok_simulator, f"/credential/{credential_id}").json()["state"] == "processing"


def test_slow_drip_sends_headers_at_once_then_one_byte_per_delay(pok_simulator):
    pok_simulator.remove_page("page-1")  # answer {"data": []}: 12 bytes
    pok_simulator.add_fault(Fault("slow_drip", endpoint="list_pages", delay=0.05))
    started = time.monotonic()
    # A per-read timeout of 0.5 s never fires: every byte comes within it, which is what a total deadline must catch.
    response = requests.get(pok_simulator.url + "/page?limit=5", headers=auth_headers(pok_simulator), stream=True,
                            timeout=0.5)
    headers_after = time.monotonic() - started
    assert response.status_code == 200
    assert response.headers["Content-Length"] == "12"
    arrivals = []
    body = b""
    for byte in response.iter_content(chunk_size=1):
        body += byte
        arrivals.append(time.monotonic())
    assert headers_after < 0.3
    assert body == b'{"data": []}'
    assert len(arrivals) == 12
    assert arrivals[-1] - started >= 12 * 0.05 * 0.9
    assert arrivals[-1] - arrivals[0] >= 11 * 0.05 * 0.9


def test_slow_drip_is_abandoned_on_reset(pok_simulator):
    pok_simulator.add_fault(Fault("slow_drip", endpoint="get_organization", delay=0.2))
    response = api_get(pok_simulator, "/organization/me", stream=True)
    assert response.status_code == 200
    started = time.monotonic()
    pok_simulator.reset()
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        response.content  # noqa: B018 - reading the body is the point
    assert time.monotonic() - started < 1.5


def test_slow_drip_handles_the_request_and_is_abandoned_on_stop():
    sim = PokSimulator().start()
    try:
        sim.add_fault(Fault("slow_drip", endpoint="issue_credential", delay=0.5))
        response = requests.post(sim.url + "/credential", json=credential_payload(), headers=auth_headers(sim),
                                 stream=True, timeout=5)
        assert response.status_code == 201
        assert len(sim.credentials) == 1
        started = time.monotonic()
    finally:
        sim.stop()
    with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.exceptions.ConnectionError)):
        response.content  # noqa: B018
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize("size", [2, 30, 45, 46, 100_000, 5 * 1024 * 1024 + 3])
def test_huge_body_has_exactly_size_bytes_of_json(pok_simulator, size):
    pok_simulator.add_fault(Fault("huge_body", endpoint="get_credential", size=size))
    response = api_get(pok_simulator, "/credential/any")
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(size)
    assert "Content-Encoding" not in response.headers
    assert len(response.content) == size
    data = response.json()
    assert isinstance(data, dict)
    if size >= 100:
        assert data == {"id": "simulated-huge-body", "state": "processing"}


def test_huge_gzip_body_is_compressed_and_decodes_to_size(pok_simulator):
    size = 200_000
    pok_simulator.add_fault(Fault("huge_body", endpoint="get_organization", size=size, gzip=True))
    response = api_get(pok_simulator, "/organization/me")
    assert response.headers["Content-Encoding"] == "gzip"
    assert int(response.headers["Content-Length"]) < size / 50
    assert len(response.content) == size  # requests decoded it
    assert response.json()["id"] == "simulated-huge-body"


def test_huge_gzip_body_of_300_mib_is_streamed_without_holding_it(pok_simulator):
    """The compressed answer is small and neither side ever holds the 300 MiB: decode it piece by piece here."""
    size = 300 * 1024 * 1024
    pok_simulator.add_fault(Fault("huge_body", endpoint="issue_credential", size=size, gzip=True, after_create=True))
    tracemalloc.start()
    try:
        response = requests.post(pok_simulator.url + "/credential", json=credential_payload(), stream=True,
                                 headers=auth_headers(pok_simulator), timeout=60)
        compressed = response.raw.read(decode_content=False)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    assert response.status_code == 200
    assert response.headers["Content-Encoding"] == "gzip"
    assert int(response.headers["Content-Length"]) == len(compressed) < 1024 * 1024
    decoder = zlib.decompressobj(31)
    decoded, head, pending = 0, b"", compressed
    while pending or not decoder.eof:
        piece = decoder.decompress(pending, 4 * 1024 * 1024)
        pending = decoder.unconsumed_tail
        head = head or piece[:64]
        decoded += len(piece)
        if not piece and not pending:
            break
    assert decoded == size
    assert head.startswith(b'{"id": "simulated-huge-body"')
    assert len(pok_simulator.credentials) == 1  # after_create: the request was handled first


def test_huge_body_without_after_create_creates_nothing(pok_simulator):
    pok_simulator.add_fault(Fault("huge_body", endpoint="issue_credential", size=1000))
    assert len(issue(pok_simulator).content) == 1000
    assert pok_simulator.credentials == {}


def test_new_fault_options_are_normalized_and_frozen():
    headers = [("Location", "http://x/")]
    fields = {"state": "emitted", "nested": {"a": 1}}
    respond = Fault("respond", headers=headers)
    patch = Fault("patch_answer", fields=fields)
    headers.append(("X-Late", "1"))
    fields["nested"]["a"] = 2
    fields["late"] = True
    assert respond.headers == (("Location", "http://x/"),)
    assert dict(patch.fields) == {"state": "emitted", "nested": {"a": 1}}
    with pytest.raises(TypeError):
        patch.fields["state"] = "x"
    assert Fault("respond").status == 200
    assert Fault("huge_body", size=10).status == 200
    assert Fault("status").status == 500
    assert Fault("status") == Fault("status", status=500)
    assert len({respond, patch, Fault("slow_drip", delay=0.1)}) == 3  # still hashable


@pytest.mark.parametrize("kwargs", [
    {"kind": "respond", "status": 101},
    {"kind": "respond", "status": 204, "body": "x"},
    {"kind": "respond", "status": 304, "body": b"x"},
    {"kind": "respond", "body": 12},
    {"kind": "respond", "content_type": ""},
    {"kind": "respond", "content_type": "text/html\r\nX-Injected: 1"},
    {"kind": "respond", "headers": (("Content-Length", "5"),)},
    {"kind": "respond", "headers": (("Content-Type", "text/html"),)},
    {"kind": "respond", "headers": (("Transfer-Encoding", "chunked"),)},
    {"kind": "respond", "headers": (("Bad Name", "x"),)},
    {"kind": "respond", "headers": (("X-Ok", "a\r\nInjected: 1"),)},
    {"kind": "respond", "headers": ("Location",)},
    {"kind": "respond", "after_create": "yes"},
    {"kind": "status", "body": "x"},
    {"kind": "status", "headers": (("Location", "x"),)},
    {"kind": "patch_answer"},
    {"kind": "patch_answer", "fields": {}},
    {"kind": "patch_answer", "fields": {"when": object()}},
    {"kind": "patch_answer", "fields": {1: "x"}},
    {"kind": "patch_answer", "fields": {"a": 1}, "after_create": True},
    {"kind": "respond", "fields": {"a": 1}},
    {"kind": "slow_drip"},
    {"kind": "slow_drip", "delay": 0},
    {"kind": "huge_body"},
    {"kind": "huge_body", "size": 1},
    {"kind": "huge_body", "size": True},
    {"kind": "huge_body", "size": 10, "status": 204},
    {"kind": "huge_body", "size": 10, "gzip": "yes"},
    {"kind": "respond", "gzip": True},
    {"kind": "drop", "size": 10},
    {"kind": "latency", "after_create": True},
])
def test_invalid_new_faults_are_rejected(kwargs):
    with pytest.raises(ValueError):
        Fault(**kwargs)


# --------------------------------------------------------------------------------------------------------------------
# update_credential
# --------------------------------------------------------------------------------------------------------------------
def test_update_credential_changes_what_later_gets_return(pok_simulator):
    credential_id = issue(pok_simulator).json()["id"]
    pok_simulator.update_credential(credential_id, viewUrl="http://evil.example/phish", createdAt=None)
    body = api_get(pok_simulator, f"/credential/{credential_id}").json()
    assert body["viewUrl"] == "http://evil.example/phish"
    assert body["createdAt"] is None
    assert list(body)[:3] == ["id", "state", "viewUrl"]
    assert pok_simulator.credentials[credential_id] == body
    pok_simulator.update_credential(credential_id, credential={"title": "Forged"})
    assert requests.get(f"{pok_simulator.url}/view/{credential_id}", timeout=TIMEOUT).text.count("Forged") == 2
    pok_simulator.set_state(credential_id, "emitted")  # a state change recomputes the page address
    assert api_get(pok_simulator, f"/credential/{credential_id}").json()["viewUrl"].startswith(pok_simulator.url)


def test_update_credential_state_is_sticky(pok_simulator):
    pok_simulator.emission_mode = "async"
    pok_simulator.polls_until_emitted = 1
    credential_id = issue(pok_simulator).json()["id"]
    pok_simulator.update_credential(credential_id, state="processing", viewUrl="http://early.example/")
    assert api_get(pok_simulator, f"/credential/{credential_id}").json() == {
        **pok_simulator.credentials[credential_id], "state": "processing", "viewUrl": "http://early.example/"}


def test_update_credential_refuses_bad_input(pok_simulator):
    credential_id = issue(pok_simulator).json()["id"]
    with pytest.raises(KeyError):
        pok_simulator.update_credential("nope", viewUrl="x")
    for kwargs in ({}, {"id": "other"}, {"viewUrl": object()}, {"state": ""}):
        with pytest.raises(ValueError):
            pok_simulator.update_credential(credential_id, **kwargs)
    assert api_get(pok_simulator, f"/credential/{credential_id}").json()["id"] == credential_id


# --------------------------------------------------------------------------------------------------------------------
# several organizations
# --------------------------------------------------------------------------------------------------------------------
ORG_B_KEY = "b2c3d4e5-0000-4000-8000-00000000000b"


def key_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"ApiKey {key}"}


def add_org_b(sim: PokSimulator, **kwargs: Any) -> str:
    options = {"name": "Org B", "wallet": "0xb", "available_credits": 1,
               "templates": [("tpl-b", "B certificate", [("score", "Score")]), {"id": "tpl-b2", "name": "B2"}],
               "pages": [("page-b", "B page")]}
    return sim.add_organization(ORG_B_KEY, **{**options, **kwargs})


def org_b_payload() -> dict[str, Any]:
    payload = credential_payload()
    payload["customization"] = {"page": "page-b", "template": {"id": "tpl-b", "customParameters": {"score": "9"}}}
    return payload


def test_each_key_sees_its_own_organization_templates_and_pages(pok_simulator):
    assert add_org_b(pok_simulator) == "Org B"
    b = key_headers(ORG_B_KEY)
    url = pok_simulator.url
    organization = requests.get(url + "/organization/me", headers=b, timeout=TIMEOUT).json()
    assert (organization["name"], organization["wallet"], organization["availableCredits"]) == ("Org B", "0xb", 1)
    templates = requests.get(url + "/template?limit=10", headers=b, timeout=TIMEOUT).json()["data"]
    assert templates == [{"id": "tpl-b", "name": "B certificate", "customParameters": [{"id": "score",
                                                                                         "label": "Score"}]},
                         {"id": "tpl-b2", "name": "B2", "customParameters": []}]
    assert requests.get(url + "/template/tpl-basic", headers=b, timeout=TIMEOUT).status_code == 404
    assert requests.get(url + "/page?limit=10", headers=b, timeout=TIMEOUT).json() == {
        "data": [{"id": "page-b", "name": "B page"}]}
    # The default organization is unchanged.
    assert api_get(pok_simulator, "/organization/me").json()["name"] == "Simulated Org"
    assert api_get(pok_simulator, "/template/tpl-b").status_code == 404
    assert [t["id"] for t in api_get(pok_simulator, "/template?limit=10").json()["data"]] == ["tpl-basic",
                                                                                           "tpl-grade"]
    assert pok_simulator.organizations == ["Simulated Org", "Org B"]
    assert pok_simulator.organization("Org B")["pages"] == [{"id": "page-b", "name": "B page"}]


def test_issuance_uses_the_organization_of_the_key(pok_simulator):
    add_org_b(pok_simulator)
    b = key_headers(ORG_B_KEY)
    url = pok_simulator.url
    wrong_template = requests.post(url + "/credential", json=credential_payload(), headers=b, timeout=TIMEOUT)
    assert wrong_template.status_code == 400  # tpl-basic / page-1 belong to the default organization
    assert issue(pok_simulator, org_b_payload()).status_code == 400  # and tpl-b to Org B
    blockchain = org_b_payload()
    blockchain["credential"]["emissionType"] = "blockchain"
    created = requests.post(url + "/credential", json=blockchain, headers=b, timeout=TIMEOUT)
    assert created.status_code == 201
    refused = requests.post(url + "/credential", json=blockchain, headers=b, timeout=TIMEOUT)
    assert "insufficient credits" in refused.json()["message"]
    assert pok_simulator.organization("Org B")["availableCredits"] == 0
    assert pok_simulator.available_credits == 10  # the default organization's credits are its own
    assert requests.get(url + "/organization/me", headers=b, timeout=TIMEOUT).json()["emittedCredentials"] == 1
    assert api_get(pok_simulator, "/organization/me").json()["emittedCredentials"] == 0


def test_another_organizations_credential_is_404(pok_simulator):
    add_org_b(pok_simulator)
    b = key_headers(ORG_B_KEY)
    url = pok_simulator.url
    default_id = issue(pok_simulator).json()["id"]
    b_id = requests.post(url + "/credential", json=org_b_payload(), headers=b, timeout=TIMEOUT).json()["id"]
    for path in (f"/credential/{default_id}", f"/credential/{default_id}/decrypted-image"):
        assert requests.get(url + path, headers=b, timeout=TIMEOUT).status_code == 404
        assert api_get(pok_simulator, path).status_code == 200
    for path in (f"/credential/{b_id}", f"/credential/{b_id}/decrypted-image"):
        assert api_get(pok_simulator, path).status_code == 404
        assert requests.get(url + path, headers=b, timeout=TIMEOUT).status_code == 200
    assert requests.get(f"{url}/view/{b_id}", timeout=TIMEOUT).status_code == 200  # public pages are public


def test_requests_and_credentials_say_which_key_was_used(pok_simulator):
    add_org_b(pok_simulator)
    b = key_headers(ORG_B_KEY)
    issue(pok_simulator)
    requests.post(pok_simulator.url + "/credential", json=org_b_payload(), headers=b, timeout=TIMEOUT)
    requests.post(pok_simulator.url + "/credential", json=org_b_payload(), headers=b, timeout=TIMEOUT)
    requests.get(pok_simulator.url + "/organization/me", timeout=TIMEOUT)  # no key
    assert [r.organization for r in pok_simulator.requests] == ["Simulated Org", "Org B", "Org B", None]
    assert pok_simulator.count("issue_credential", organization="Org B") == 2
    assert pok_simulator.count("issue_credential", organization="Simulated Org") == 1
    assert pok_simulator.count(organization="Org B") == 2
    assert pok_simulator.count() == 4
    assert len(pok_simulator.credentials_for("ada@example.com")) == 3
    assert len(pok_simulator.credentials_for("ada@example.com", organization="Org B")) == 2
    assert len(pok_simulator.credentials_for("ADA@example.com", organization="Simulated Org")) == 1
    with pytest.raises(ValueError):
        pok_simulator.count("issue_credential", organization="Org C")
    with pytest.raises(ValueError):
        pok_simulator.credentials_for("ada@example.com", organization="Org C")


def test_idempotency_keys_are_per_organization(pok_simulator):
    add_org_b(pok_simulator)
    pok_simulator.honour_idempotency_key = True
    headers = {"Idempotency-Key": "row-1"}
    first = issue(pok_simulator, headers=headers).json()["id"]
    b_answer = requests.post(pok_simulator.url + "/credential", json=org_b_payload(),
                             headers={**key_headers(ORG_B_KEY), **headers}, timeout=TIMEOUT)
    assert b_answer.status_code == 201
    assert b_answer.json()["id"] != first
    assert issue(pok_simulator, headers=headers).json()["id"] == first


def test_organizations_need_unique_keys_and_names_and_reset_removes_them(pok_simulator):
    add_org_b(pok_simulator)
    with pytest.raises(ValueError):
        pok_simulator.add_organization(ORG_B_KEY, name="Org C")
    with pytest.raises(ValueError):
        pok_simulator.add_organization(DEFAULT_API_KEY, name="Org C")
    with pytest.raises(ValueError):
        pok_simulator.add_organization("key-c", name="Org B")
    with pytest.raises(ValueError):
        pok_simulator.api_key = ORG_B_KEY
    with pytest.raises(ValueError):
        pok_simulator.add_organization("key-c", templates=[("only-an-id",)])
    assert pok_simulator.add_organization("key-c") == "Simulated Org 3"
    assert [t["id"] for t in pok_simulator.organization("Simulated Org 3")["templates"]] == ["tpl-basic", "tpl-grade"]
    pok_simulator.add_template("tpl-b3", "Added later", organization="Org B")
    pok_simulator.remove_page("page-b", organization="Org B")
    assert [t["id"] for t in pok_simulator.organization("Org B")["templates"]] == ["tpl-b", "tpl-b2", "tpl-b3"]
    assert pok_simulator.organization("Org B")["pages"] == []
    assert "tpl-b3" not in [t["id"] for t in pok_simulator.organization()["templates"]]

    pok_simulator.reset()

    assert pok_simulator.organizations == ["Simulated Org"]
    response = requests.get(pok_simulator.url + "/organization/me", headers=key_headers(ORG_B_KEY), timeout=TIMEOUT)
    assert response.status_code == 401
    assert api_get(pok_simulator, "/organization/me").status_code == 200


def test_command_line_help():
    result = subprocess.run([sys.executable, "-m", "pok_simulator", "--help"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0
    assert "--async-polls" in result.stdout
    assert result.stderr == ""


# --------------------------------------------------------------------------------------------------------------------
# fault campaigns: status_after_create, probability and seed, new_keys_only
# --------------------------------------------------------------------------------------------------------------------
def predicted_hits(seed: int, probability: float, draws: int) -> list[bool]:
    """The documented rule: one ``random.Random(seed).random()`` per request considered; a hit when below p."""
    rng = random.Random(seed)
    return [rng.random() < probability for _ in range(draws)]


def faulted_organization_gets(sim: PokSimulator, count: int) -> list[bool]:
    """Which of ``count`` GET /organization/me (one keep-alive session) were answered by a 503 status fault."""
    with requests.Session() as session:
        session.headers.update(auth_headers(sim))
        statuses = [session.get(sim.url + "/organization/me", timeout=TIMEOUT).status_code for _ in range(count)]
    assert set(statuses) <= {200, 503}
    return [status == 503 for status in statuses]


@pytest.mark.parametrize("status", [None, 503])
def test_status_after_create_creates_the_credential_then_answers_an_error(pok_simulator, status):
    pok_simulator.add_fault(Fault("status_after_create", endpoint="issue_credential", status=status))
    response = issue(pok_simulator, credential_payload(emissionType="blockchain"))
    assert response.status_code == (status or 500)
    assert set(response.json()) == {"message"}
    created = pok_simulator.credentials_for("ada@example.com")
    assert len(created) == 1 and created[0]["state"] == "emitted"
    assert pok_simulator.available_credits == 9  # the side effects of a real emission happened
    assert pok_simulator.count("issue_credential") == 1
    assert issue(pok_simulator).status_code == 201  # times=1: the next request is normal
    assert len(pok_simulator.credentials) == 2


def test_a_retry_after_status_after_create_finds_the_credential(pok_simulator):
    pok_simulator.honour_idempotency_key = True
    pok_simulator.add_fault(Fault("status_after_create", endpoint="issue_credential", status=502))
    headers = {"Idempotency-Key": "row-7"}
    assert issue(pok_simulator, headers=headers).status_code == 502
    retried = issue(pok_simulator, headers=headers)
    assert retried.status_code == 200
    assert list(pok_simulator.credentials) == [retried.json()["id"]]


def test_probability_with_a_seed_is_reproducible_and_roughly_right(pok_simulator):
    fault = Fault("status", endpoint="get_organization", status=503, probability=0.25, seed=42, times=None)
    pok_simulator.add_fault(fault)
    first = faulted_organization_gets(pok_simulator, 400)
    assert 60 <= sum(first) <= 140  # binomial(400, 0.25): mean 100, standard deviation 8.7
    assert first == predicted_hits(42, 0.25, 400)
    assert pok_simulator.faults == [(fault, None)]  # times=None: the fault stays for the whole test

    pok_simulator.reset()
    pok_simulator.add_fault(fault)  # a new entry, a new generator from the same seed
    assert faulted_organization_gets(pok_simulator, 400) == first

    pok_simulator.reset()
    pok_simulator.add_fault(replace(fault, seed=43))
    other = faulted_organization_gets(pok_simulator, 400)
    assert other != first
    assert 60 <= sum(other) <= 140


def test_probability_one_always_applies(pok_simulator):
    pok_simulator.add_fault(Fault("status", endpoint="get_organization", status=503, probability=1, times=2))
    assert faulted_organization_gets(pok_simulator, 3) == [True, True, False]
    pok_simulator.add_fault(Fault("status", endpoint="get_organization", status=503, probability=1, times=None))
    assert faulted_organization_gets(pok_simulator, 5) == [True] * 5


def test_a_request_the_probability_skips_does_not_consume_times(pok_simulator):
    seed, probability = 5, 0.3
    predicted = predicted_hits(seed, probability, 200)
    third_hit = [index for index, hit in enumerate(predicted) if hit][2]
    assert third_hit > 2  # the test data must skip some requests before the third hit
    fault = Fault("status", endpoint="issue_credential", probability=probability, seed=seed, times=3)
    pok_simulator.add_fault(fault)
    hits = 0
    for index in range(third_hit + 1):
        assert api_get(pok_simulator, "/page?limit=1").status_code == 200  # another endpoint: no draw, no use
        faulted = issue(pok_simulator).status_code == 500
        assert faulted == predicted[index], index
        hits += faulted
        assert pok_simulator.faults == ([(fault, 3 - hits)] if hits < 3 else [])
    assert len(pok_simulator.credentials) == third_hit + 1 - 3
    assert [issue(pok_simulator).status_code for _ in range(5)] == [201] * 5


def test_new_keys_only_faults_first_attempts_only(pok_simulator):
    add_org_b(pok_simulator)
    fault = Fault("status", endpoint="issue_credential", status=503, new_keys_only=True, times=None)
    pok_simulator.add_fault(fault)
    row_1, row_2 = {"Idempotency-Key": "row-1"}, {"Idempotency-Key": "row-2"}
    assert [issue(pok_simulator, headers=row_1).status_code for _ in range(3)] == [503, 201, 201]
    assert [issue(pok_simulator, headers=row_2).status_code for _ in range(2)] == [503, 201]
    assert [issue(pok_simulator).status_code for _ in range(2)] == [503, 503]  # no header: always a first attempt
    org_b_row_1 = {**key_headers(ORG_B_KEY), **row_1}  # keys are per organization
    assert [issue(pok_simulator, org_b_payload(), headers=org_b_row_1).status_code for _ in range(2)] == [503, 201]
    assert len(pok_simulator.credentials) == 4  # row-1 twice (keys not honoured), row-2, org B's row-1

    pok_simulator.reset()  # forgets the keys it saw
    pok_simulator.add_fault(fault)
    assert [issue(pok_simulator, headers=row_1).status_code for _ in range(2)] == [503, 201]


def test_a_retry_does_not_consume_a_new_keys_only_fault(pok_simulator):
    row_1 = {"Idempotency-Key": "row-1"}
    assert issue(pok_simulator, headers=row_1).status_code == 201  # row-1 is seen before the fault exists
    fault = Fault("drop", endpoint="issue_credential", new_keys_only=True)
    pok_simulator.add_fault(fault)
    assert issue(pok_simulator, headers=row_1).status_code == 201
    assert pok_simulator.faults == [(fault, 1)]
    with pytest.raises(requests.exceptions.ConnectionError):
        issue(pok_simulator, headers={"Idempotency-Key": "row-2"})
    assert pok_simulator.faults == []


def test_two_probabilistic_faults_run_a_reproducible_campaign(pok_simulator):
    """
    Failures before and after creation sprinkled over first attempts; a client that retries with the same key ends
    with exactly one credential per row, and the older fault's skips are offered to the newer one.
    """
    pok_simulator.honour_idempotency_key = True
    before = Fault("status", endpoint="issue_credential", status=500, probability=0.15, seed=1, new_keys_only=True,
                   times=None)
    after = Fault("status_after_create", endpoint="issue_credential", status=503, probability=0.15, seed=2,
                  new_keys_only=True, times=None)
    pok_simulator.add_fault(before)
    pok_simulator.add_fault(after)
    rows = 300
    first_attempts = []
    with requests.Session() as session:
        session.headers.update(auth_headers(pok_simulator))
        for row in range(rows):
            headers = {"Idempotency-Key": f"row-{row}"}
            status = session.post(pok_simulator.url + "/credential", json=credential_payload(), headers=headers,
                                  timeout=TIMEOUT).status_code
            first_attempts.append(status)
            if status >= 500:
                retry = session.post(pok_simulator.url + "/credential", json=credential_payload(), headers=headers,
                                     timeout=TIMEOUT)
                assert retry.status_code == (200 if status == 503 else 201), row  # 503: it already existed

    rng_before, rng_after = random.Random(1), random.Random(2)
    expected = []
    for _ in range(rows):
        if rng_before.random() < 0.15:
            expected.append(500)
        elif rng_after.random() < 0.15:  # considered only when the older fault skipped
            expected.append(503)
        else:
            expected.append(201)
    assert first_attempts == expected
    assert 15 <= first_attempts.count(500) <= 75  # mean 45
    assert 10 <= first_attempts.count(503) <= 70  # mean 300 * 0.85 * 0.15 = 38
    assert len(pok_simulator.credentials) == rows
    assert pok_simulator.count("issue_credential") == rows + first_attempts.count(500) + first_attempts.count(503)
    assert pok_simulator.faults == [(before, None), (after, None)]


_REQUIRED_OPTIONS: dict[str, dict[str, Any]] = {
    "slow_drip": {"delay": 0.1},
    "huge_body": {"size": 10},
    "patch_answer": {"fields": {"state": "emitted"}},
}


def test_campaign_options_are_accepted_on_every_kind():
    for kind in FAULT_KINDS:
        fault = Fault(kind, probability=0.5, seed=3, new_keys_only=True, **_REQUIRED_OPTIONS.get(kind, {}))
        assert (fault.probability, fault.seed, fault.new_keys_only) == (0.5, 3, True)
    one = Fault("status", probability=1)
    assert one.probability == 1.0 and isinstance(one.probability, float)
    assert Fault("status", probability=0.5) == Fault("status", probability=0.5)
    assert Fault("status_after_create").status == 500
    assert len({Fault("status", probability=0.5, seed=1), Fault("status", probability=0.5, seed=2)}) == 2


@pytest.mark.parametrize("kwargs", [
    {"kind": "status", "probability": 0},
    {"kind": "status", "probability": 0.0},
    {"kind": "status", "probability": -0.1},
    {"kind": "status", "probability": 1.5},
    {"kind": "status", "probability": float("nan")},
    {"kind": "status", "probability": float("inf")},
    {"kind": "status", "probability": True},
    {"kind": "status", "probability": "0.5"},
    {"kind": "status", "probability": 0.5, "seed": "1"},
    {"kind": "status", "probability": 0.5, "seed": 1.0},
    {"kind": "status", "probability": 0.5, "seed": True},
    {"kind": "status", "seed": 1},
    {"kind": "status", "new_keys_only": "yes"},
    {"kind": "status", "new_keys_only": 1},
    {"kind": "status_after_create", "status": 101},
    {"kind": "status_after_create", "status": 204},
    {"kind": "status_after_create", "status": 304},
    {"kind": "status_after_create", "body": "x"},
    {"kind": "status_after_create", "after_create": True},
])
def test_invalid_campaign_options_are_rejected(kwargs):
    with pytest.raises(ValueError):
        Fault(**kwargs)
