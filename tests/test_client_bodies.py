"""
Hostile or broken POK answers: whatever POK sends, the client returns a value or raises a typed PokApiError.

Over real HTTP through the POK simulator's ``respond`` and ``patch_answer`` faults. What matters for exactly-once
issuance is checked on ``POST /credential``: an unusable 2xx answer means POK processed the request, so the error
says ``answered=True`` and is neither retryable (a retry could duplicate the credential) nor ambiguous, and keeps a
short excerpt of the body for staff.
"""
import pickle

import pytest

from openedx_pok.client import PokApiClient
from openedx_pok.exceptions import (
    PokApiError,
    PokAuthenticationError,
    PokNetworkError,
    PokRateLimitedError,
    PokResponseError,
    PokServerError,
    PokValidationError,
)
from pok_simulator import DEFAULT_API_KEY, Fault
from tests.test_client import EMAIL, credential_payload, preview_payload

DEEP = "[" * 100000
# Bodies a 2xx answer may carry that no endpoint can use; (body, content type, what the message says).
UNUSABLE = [
    pytest.param("<html><body><h1>Welcome to nginx!</h1></body></html>", "text/html", "not valid JSON", id="html"),
    pytest.param('["id", "state"]', None, "not a JSON object", id="json-list"),
    pytest.param("{}", None, "without 'id'", id="empty-object"),
    pytest.param('{"state": "emitted"}', None, "without 'id'", id="no-id"),
    pytest.param('{"id": "c-1"}', None, "without 'state'", id="no-state"),
    pytest.param(DEEP, None, "nested too deeply", id="recursion"),
    pytest.param('{"id": "c-1", "state": "emitted", "x": ' + "[" * 200 + "]" * 200 + "}", None,
                 "nested too deeply", id="deep-but-decodable"),
    pytest.param(b'{"id": "c-\xff\xfe", "state": "emitted"}', None, "UTF-8", id="invalid-utf8"),
    pytest.param('{"id": 1e999, "state": "emitted"}', None, "not valid JSON", id="1e999"),
    pytest.param('{"id": "c-1", "state": NaN}', None, "not valid JSON", id="nan"),
    pytest.param('{"id": "c-1", "state": "emitted", "note": "\\ud800"}', None, "Unicode", id="lone-surrogate"),
    pytest.param('{"id": "c-1\\n", "state": "emitted"}', None, "control characters", id="control-in-id"),
    pytest.param("", None, "empty", id="empty"),
]


@pytest.fixture
def client(pok_simulator):
    with PokApiClient(pok_simulator.url, pok_simulator.api_key) as api_client:
        yield api_client


@pytest.mark.parametrize("body, content_type, reason", UNUSABLE)
def test_unusable_answer_to_issue_credential_is_answered_and_not_retried(client, pok_simulator, body, content_type,
                                                                         reason):
    pok_simulator.add_fault(Fault("respond", endpoint="issue_credential", body=body, content_type=content_type,
                                  after_create=True))
    with pytest.raises(PokResponseError) as info:
        client.issue_credential(credential_payload())
    exc = info.value
    assert reason in exc.message
    assert (exc.status_code, exc.answered, exc.retryable, exc.ambiguous) == (200, True, False, False)
    assert exc.endpoint == "POST /credential"
    assert 0 < len(exc.raw_excerpt) <= 500 or body == ""
    # POK did process the request: that is why a retry must not happen automatically.
    assert len(pok_simulator.credentials_for(EMAIL)) == 1


@pytest.mark.parametrize("body, content_type, reason", UNUSABLE)
def test_unusable_answer_to_a_get_stays_retryable(client, pok_simulator, body, content_type, reason):
    pok_simulator.add_fault(Fault("respond", endpoint="get_credential", body=body, content_type=content_type))
    with pytest.raises(PokResponseError) as info:
        client.get_credential("c-1")
    exc = info.value
    assert reason in exc.message
    assert (exc.status_code, exc.answered, exc.retryable, exc.ambiguous) == (200, True, True, False)


def test_no_endpoint_raises_anything_but_a_typed_error(client, pok_simulator):
    """Every endpoint, every hostile body: a result or a PokApiError, never a RecursionError or a KeyError."""
    calls = {
        "get_organization": client.get_organization,
        "list_templates": client.list_templates,
        "get_template": lambda: client.get_template("tpl-basic"),
        "preview_template": lambda: client.preview_template(preview_payload()),
        "list_pages": client.list_pages,
        "issue_credential": lambda: client.issue_credential(credential_payload()),
        "get_credential": lambda: client.get_credential("c-1"),
        "get_credential_image": lambda: client.get_credential_image("c-1"),
    }
    bodies = [param.values[0] for param in UNUSABLE] + [
        '{"data": [1, null, "x", {"id": {"nested": true}}]}', '{"data": {"id": "t"}}', '{"customParameters": 7}',
        '{"id": "t", "customParameters": [{"label": 5}, 3]}', '{"location": ["not", "a", "string"]}',
        '{"availableCredits": 1e308, "name": 12}', '{"availableCredits": ' + "9" * 5000 + "}", "null", "true",
        '"a string"', "12", '{"id": "c", "state": "s", "tags": {"a": 1}, "credential": [1]}',
    ]
    for endpoint, call in calls.items():
        for body in bodies:
            pok_simulator.add_fault(Fault("respond", endpoint=endpoint, body=body))
            try:
                call()
            except PokApiError as exc:
                assert exc.answered is True, (endpoint, body[:40])
    assert pok_simulator.faults == []


def test_error_bodies_never_break_the_error_mapping(client, pok_simulator):
    """Error answers are hostile too: nested JSON and tag floods still give the status's exception, quickly."""
    pok_simulator.add_fault(Fault("respond", endpoint="issue_credential", status=500, body=DEEP))
    with pytest.raises(PokServerError) as info:
        client.issue_credential(credential_payload())
    assert (info.value.answered, info.value.ambiguous, info.value.retryable) == (True, True, True)
    pok_simulator.add_fault(Fault("respond", endpoint="get_organization", status=502, body="<" * 60000,
                                  content_type="text/html"))
    with pytest.raises(PokServerError) as info:
        client.get_organization()
    assert len(info.value.message) <= 500
    pok_simulator.add_fault(Fault("respond", endpoint="list_pages", status=400,
                                  body="<script>" * 8000 + "<h1>Bad page</h1>", content_type="text/html"))
    with pytest.raises(PokValidationError):
        client.list_pages()


def test_raw_excerpt_is_short_and_has_no_key(client, pok_simulator):
    body = "<html><title>Oops</title>" + f"<p>key {DEFAULT_API_KEY} echoed</p>" + "x" * 5000 + "</html>"
    pok_simulator.add_fault(Fault("respond", endpoint="issue_credential", body=body, content_type="text/html"))
    with pytest.raises(PokResponseError) as info:
        client.issue_credential(credential_payload())
    exc = info.value
    assert exc.raw_excerpt.startswith("<html><title>Oops</title><p>key [redacted] echoed</p>xxx")
    assert len(exc.raw_excerpt) == 500
    assert DEFAULT_API_KEY not in exc.raw_excerpt
    assert exc.raw_excerpt not in str(exc)  # staff read it on purpose; it is not part of the message
    copy = pickle.loads(pickle.dumps(exc))
    assert (copy.answered, copy.raw_excerpt, copy.retryable) == (True, exc.raw_excerpt, False)


def test_answered_is_set_for_every_http_answer_and_only_for_those(client, pok_simulator):
    expectations = [
        (Fault("status", endpoint="get_organization", status=401), PokAuthenticationError, True),
        (Fault("status", endpoint="get_organization", status=422), PokValidationError, True),
        (Fault("rate_limit", endpoint="get_organization"), PokRateLimitedError, True),
        (Fault("status", endpoint="get_organization", status=503), PokServerError, True),
        (Fault("malformed_json", endpoint="get_organization"), PokResponseError, True),
        (Fault("drop", endpoint="get_organization"), PokNetworkError, False),
    ]
    for fault, expected, answered in expectations:
        pok_simulator.add_fault(fault)
        with pytest.raises(expected) as info:
            client.get_organization()
        assert info.value.answered is answered, fault.kind
    assert PokApiError("m").answered is False
    assert PokApiError("m").raw_excerpt == ""


def test_credential_keeps_what_pok_sent(client, pok_simulator):
    """Nothing is cut or dropped: the state machine decides what fits a row, ``raw`` keeps the whole object."""
    long_id = "c" * 700
    long_state = "someFutureState" * 30
    long_url = "https://pok.tech/credential/" + "v" * 3000
    extra = {"nested": {"list": [1, 2.5, None, True]}, "unicode": "Ñandú ✓"}
    pok_simulator.add_fault(Fault("patch_answer", endpoint="issue_credential",
                                  fields={"id": long_id, "state": long_state, "viewUrl": long_url, "extra": extra}))
    credential = client.issue_credential(credential_payload())
    assert (credential.id, credential.state, credential.view_url) == (long_id, long_state, long_url)
    assert credential.raw["extra"] == extra
    assert credential.raw["receiver"]["email"] == EMAIL
    assert set(credential.raw) >= {"id", "state", "viewUrl", "createdAt", "credential", "receiver", "extra"}
    assert EMAIL not in repr(credential)


def test_numeric_ids_and_huge_counts_are_usable_values(client, pok_simulator):
    pok_simulator.add_fault(Fault("respond", endpoint="get_credential", body='{"id": 12345678901234567890, '
                                                                            '"state": "emitted"}'))
    assert client.get_credential("x").id == "12345678901234567890"
    pok_simulator.add_fault(Fault("respond", endpoint="get_organization",
                                  body='{"name": "Org", "availableCredits": 1e300, "sentCredentials": 7}'))
    organization = client.get_organization()
    assert (organization.available_credits, organization.sent_credentials) == (0, 7)


def test_a_body_that_does_not_match_its_content_encoding_is_answered(client, pok_simulator):
    pok_simulator.add_fault(Fault("respond", endpoint="issue_credential", body='{"id": "c-1", "state": "emitted"}',
                                  headers=(("Content-Encoding", "gzip"),), after_create=True))
    with pytest.raises(PokResponseError) as info:
        client.issue_credential(credential_payload())
    assert (info.value.answered, info.value.retryable, info.value.ambiguous) == (True, False, False)
    assert "could not be decoded" in info.value.message
    assert client.get_organization().name == "Simulated Org"
