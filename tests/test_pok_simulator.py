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
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
import requests

from openedx_pok.testing.pok_simulator import DEFAULT_API_KEY, ENDPOINTS, Fault, PokSimulator

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
        [sys.executable, "-m", "openedx_pok.testing.pok_simulator", "--port", str(port), "--api-key", "cli-key",
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
