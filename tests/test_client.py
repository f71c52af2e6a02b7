"""
Tests of the POK API client.

What needs a socket talks to the POK simulator (``pok_simulator`` fixture), which is strict like the real API and
injects faults (timeouts, dropped connections, 5xx, 429, bad JSON); ``test_client_limits.py`` and
``test_client_environment.py`` add small real servers for what it never does. Shapes where a real server adds nothing
(plain text errors, redirects, a credential without state, a base URL with a path prefix, an echoed key) are answered
by ``responses`` at the requests adapter, the documented way to fake requests' transport.
"""
import json
import logging
import pickle
import re
import socket
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
import responses

import openedx_pok
from openedx_pok.client import (
    REDACTED,
    USER_AGENT,
    Credential,
    Organization,
    Page,
    PageList,
    PokApiClient,
    Template,
    TemplateList,
    TemplateParameter,
    build_url,
    parse_error_message,
    parse_retry_after,
    quote_segment,
)
from openedx_pok.exceptions import (
    OpenedxPokError,
    PokApiError,
    PokAuthenticationError,
    PokConfigurationError,
    PokNetworkError,
    PokNotFoundError,
    PokRateLimitedError,
    PokResponseError,
    PokServerError,
    PokValidationError,
)
from pok_simulator import DEFAULT_API_KEY, Fault

EMAIL = "ada.lovelace@example.com"


# --- helpers -----------------------------------------------------------------------------------------------------


def credential_payload(template_id="tpl-basic", parameters=None, page=None, **credential):
    """A payload the strict simulator accepts; keyword arguments override fields of the ``credential`` block."""
    block = {
        "emissionType": "pok",
        "dateFormat": "dd/MM/yyyy",
        "emissionDate": "2025-03-14T09:26:53+00:00",
        "title": "Introduction to Analytical Engines",
        "emitter": "Test Academy",
        "tags": ["course-v1:TestX+AE101+2025", "openedx"],
        "skipAcceptance": True,
    }
    block.update(credential)
    customization = {"template": {"id": template_id, "customParameters": parameters or {}}}
    if page:
        customization["page"] = page
    return {
        "credential": block,
        "receiver": {"firstName": "Ada", "lastName": "Lovelace", "email": EMAIL, "languageTag": "en"},
        "customization": customization,
    }


def preview_payload(template_id="tpl-grade", parameters=None):
    """An E4 payload: the credential block without tags/skipAcceptance, a receiver without email."""
    return {
        "credential": {
            "emissionType": "pok",
            "dateFormat": "dd/MM/yyyy",
            "emissionDate": "2025-03-14T09:26:53+00:00",
            "title": "Preview",
            "emitter": "Test Academy",
        },
        "receiver": {"firstName": "Sample", "lastName": "Learner", "languageTag": "en"},
        "customization": {
            "template": {"id": template_id, "customParameters": parameters or {"grade": "95%", "platform": "Test"}}
        },
    }


def header(recorded, name):
    """Header of a recorded request, whatever case the recorder kept."""
    return {key.lower(): value for key, value in recorded.headers.items()}.get(name.lower())


def closed_port():
    """A local TCP port nothing listens on (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def assert_no_secret(exc, secret=DEFAULT_API_KEY):
    """The API key must not leak through any text an exception carries."""
    texts = [str(exc), repr(exc), exc.message if isinstance(exc, PokApiError) else "", *map(str, exc.args)]
    if exc.__cause__ is not None:
        texts += [str(exc.__cause__), repr(exc.__cause__)]
    for text in texts:
        assert secret not in text


@pytest.fixture
def client(pok_simulator):
    """A client of the simulator with the right key."""
    with PokApiClient(pok_simulator.url, pok_simulator.api_key) as api_client:
        yield api_client


@pytest.fixture
def fast_client(pok_simulator):
    """A client with a 0.2 s read timeout, for hang faults."""
    with PokApiClient(pok_simulator.url, pok_simulator.api_key, timeout=0.2) as api_client:
        yield api_client


FAKE_API = "https://api.pok.example"


@pytest.fixture
def fake():
    """POK answered by ``responses``; ``answer(fake, ...)`` sets what every call gets."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def answer(mock, status=200, body=b"", headers=None):
    """
    Answer every GET and POST under FAKE_API with ``status``, ``body`` (JSON unless bytes or str) and ``headers``;
    ``body`` may instead be a ``responses`` callback ``request -> (status, headers, body)``.
    """
    mock.reset()
    url = re.compile(re.escape(FAKE_API) + "/.*")
    for method in ("GET", "POST"):
        if callable(body):
            mock.add_callback(method, url, callback=body)
        else:
            extra, is_text = dict(headers or {}), isinstance(body, bytes | str)
            content_type = extra.pop("Content-Type", "text/plain" if is_text else "application/json")
            text = body if is_text else json.dumps(body)
            mock.add(method, url, status=status, body=text, headers=extra, content_type=content_type)


@pytest.fixture
def fake_client(fake):
    with PokApiClient(FAKE_API, DEFAULT_API_KEY) as api_client:
        yield api_client


# --- configuration and pure helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "api_url, api_key",
    [
        ("", DEFAULT_API_KEY),
        ("   ", DEFAULT_API_KEY),
        (None, DEFAULT_API_KEY),
        ("http://127.0.0.1:9", ""),
        ("http://127.0.0.1:9", None),
        ("http://127.0.0.1:9", "   "),
        ("api.pok.tech", DEFAULT_API_KEY),
        ("ftp://api.pok.tech", DEFAULT_API_KEY),
        ("https://api.pok.tech/?x=1", DEFAULT_API_KEY),
        ("https://api.pok.tech", "two words"),
    ],
)
def test_configuration_errors(api_url, api_key):
    with pytest.raises(PokConfigurationError) as info:
        PokApiClient(api_url, api_key)
    assert isinstance(info.value, OpenedxPokError)
    assert_no_secret(info.value)


@pytest.mark.parametrize("timeouts", [{"timeout": 0}, {"timeout": -1}, {"connect_timeout": "3"}, {"timeout": None}])
def test_invalid_timeouts(timeouts):
    with pytest.raises(PokConfigurationError):
        PokApiClient("https://api.pok.tech", DEFAULT_API_KEY, **timeouts)


def test_key_is_stripped_of_surrounding_whitespace(pok_simulator):
    """A key pasted with a trailing newline (YAML, env files) still works."""
    with PokApiClient(pok_simulator.url, f"  {pok_simulator.api_key}\n") as api_client:
        assert api_client.get_organization().name == "Simulated Org"


def test_repr_and_str_never_show_the_key():
    api_client = PokApiClient("https://api.pok.tech/", DEFAULT_API_KEY, timeout=5)
    assert "api.pok.tech" in repr(api_client)
    session = api_client._session  # noqa: SLF001 - the key must not show in the client's session either
    for text in (repr(api_client), str(api_client), repr(session.auth), repr(session.headers)):
        assert DEFAULT_API_KEY not in text
    api_client.close()


@pytest.mark.parametrize(
    "base, segments, expected",
    [
        ("https://api.pok.tech", ("organization", "me"), "https://api.pok.tech/organization/me"),
        ("https://api.pok.tech/", ("organization", "me"), "https://api.pok.tech/organization/me"),
        ("https://gw.example/pok/v2", ("credential", "c1"), "https://gw.example/pok/v2/credential/c1"),
        ("https://gw.example/pok/v2/", ("credential", "c1"), "https://gw.example/pok/v2/credential/c1"),
        ("https://api.pok.tech", ("credential", "a/b"), "https://api.pok.tech/credential/a%2Fb"),
        ("https://api.pok.tech", ("credential", "../organization/me"),
         "https://api.pok.tech/credential/..%2Forganization%2Fme"),
        ("https://api.pok.tech", ("template", "a b?c#d"), "https://api.pok.tech/template/a%20b%3Fc%23d"),
        ("https://api.pok.tech", ("credential", 42, "decrypted-image"), "https://api.pok.tech/credential/42/decrypted-image"),
    ],
)
def test_build_url(base, segments, expected):
    assert build_url(base, *segments) == expected


@pytest.mark.parametrize("bad_id", ["", ".", ".."])
def test_ids_that_cannot_be_quoted_safely_are_refused(bad_id, client, pok_simulator):
    with pytest.raises(ValueError):
        quote_segment(bad_id)
    with pytest.raises(ValueError):
        client.get_credential(bad_id)
    assert pok_simulator.count() == 0


def test_invalid_arguments_are_refused_before_any_request(client, pok_simulator):
    for limit in (0, -1, "10", True, 1.5):
        with pytest.raises(ValueError):
            client.list_templates(limit=limit)
    for key in ("", "has space", "line\nbreak", 12):
        with pytest.raises(ValueError):
            client.issue_credential(credential_payload(), idempotency_key=key)
    assert pok_simulator.count() == 0


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-3", None),
        ("nan", None),
        ("soon", None),
        ("Wed, 21 Oct 2015 07:30:00 GMT", 120.0),   # 2 minutes after `now`
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),     # already past
    ],
)
def test_parse_retry_after(value, expected):
    now = datetime(2015, 10, 21, 7, 28, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == expected


@pytest.mark.parametrize(
    "body, content_type, expected",
    [
        (b"", None, ""),
        (b'{"message": "Template not found"}', "application/json", "Template not found"),
        (b'{"statusCode": 400, "message": ["title should not be empty", "email must be an email"], '
         b'"error": "Bad Request"}', "application/json", "title should not be empty; email must be an email"),
        (b'{"error": "invalid_key"}', "application/json", "invalid_key"),
        (b'{"error": {"code": "E42", "message": "Nested reason"}}', "application/json", "Nested reason"),
        (b'{"errors": [{"field": "receiver.email", "message": "is invalid"}, "second"]}', "application/json",
         "receiver.email: is invalid; second"),
        (b'{"detail": "Throttled"}', "application/json", "Throttled"),
        (b'{"unexpected": 1}', "application/json", '{"unexpected": 1}'),
        (b'"just a string"', "application/json", "just a string"),
        (b"Service   temporarily\n unavailable", "text/plain", "Service temporarily unavailable"),
        (b"<html><head><style>p{}</style></head><body><h1>502 Bad Gateway</h1><p>nginx &amp; co</p></body></html>",
         "text/html", "502 Bad Gateway nginx & co"),
    ],
)
def test_parse_error_message(body, content_type, expected):
    assert parse_error_message(body, content_type) == expected


def test_parse_error_message_is_truncated():
    message = parse_error_message(json.dumps({"message": "x" * 5000}).encode())
    assert len(message) <= 500
    assert message.endswith("...")


# --- exceptions --------------------------------------------------------------------------------------------------


def test_exception_hierarchy_and_defaults():
    for cls in (PokAuthenticationError, PokNotFoundError, PokValidationError, PokRateLimitedError, PokServerError,
                PokNetworkError, PokResponseError):
        assert issubclass(cls, PokApiError)
        assert issubclass(cls, OpenedxPokError)
    assert issubclass(PokConfigurationError, OpenedxPokError)
    assert not issubclass(PokConfigurationError, PokApiError)
    assert [cls("m").retryable for cls in (PokAuthenticationError, PokNotFoundError, PokValidationError)] == [False] * 3
    assert [cls("m").retryable for cls in (PokRateLimitedError, PokServerError, PokNetworkError, PokResponseError)] == [
        True] * 4
    assert PokResponseError("m", retryable=False).retryable is False
    assert PokApiError("m").ambiguous is False


def test_exception_str_and_pickling():
    """Celery pickles task exceptions: the attributes a retry policy reads must survive."""
    exc = PokRateLimitedError("Slow down", status_code=429, retry_after=2.5, endpoint="POST /credential")
    assert str(exc) == "Slow down (POST /credential, HTTP 429, retryable) [retry after 2.5 s]"
    copy = pickle.loads(pickle.dumps(exc))
    assert type(copy) is PokRateLimitedError
    assert (copy.message, copy.status_code, copy.retry_after, copy.retryable, copy.ambiguous, copy.endpoint) == (
        "Slow down", 429, 2.5, True, False, "POST /credential")
    network = pickle.loads(pickle.dumps(PokNetworkError("lost", ambiguous=True, endpoint="POST /credential")))
    assert network.ambiguous is True
    assert "may have reached POK" in str(network)
    assert len(PokValidationError("y" * 2000).message) <= 500


# --- every endpoint, happy path ----------------------------------------------------------------------------------


def test_get_organization(client, pok_simulator):
    organization = client.get_organization()
    assert isinstance(organization, Organization)
    assert organization.name == "Simulated Org"
    assert organization.wallet == "0xsim"
    assert organization.available_credits == 10
    for count in (organization.emitted_credentials, organization.sent_credentials, organization.draft_credentials,
                  organization.processing_credentials):
        assert isinstance(count, int)
    assert pok_simulator.count("get_organization") == 1


def test_standard_headers_are_sent(client, pok_simulator):
    client.get_organization()
    recorded = pok_simulator.requests[-1]
    assert header(recorded, "Authorization") == f"ApiKey {pok_simulator.api_key}"
    assert header(recorded, "Accept") == "application/json"
    assert header(recorded, "User-Agent") == USER_AGENT == f"openedx-pok/{openedx_pok.__version__}"
    assert header(recorded, "Idempotency-Key") is None
    client.issue_credential(credential_payload())
    assert header(pok_simulator.requests[-1], "Content-Type") == "application/json"


def test_list_templates(client, pok_simulator):
    result = client.list_templates()
    assert isinstance(result, TemplateList)
    assert result.limit == 100
    assert result.possibly_truncated is False
    by_id = {template.id: template for template in result.templates}
    assert set(by_id) == {"tpl-basic", "tpl-grade"}
    assert by_id["tpl-basic"].name == "Basic certificate"
    assert all(isinstance(template, Template) for template in result.templates)


@pytest.mark.parametrize("limit, count, truncated", [(1, 1, True), (2, 2, True), (3, 2, False)])
def test_list_templates_reports_possible_truncation(client, limit, count, truncated):
    result = client.list_templates(limit=limit)
    assert (len(result.templates), result.limit, result.possibly_truncated) == (count, limit, truncated)


def test_get_template_with_parameters(client, pok_simulator):
    template = client.get_template("tpl-grade")
    assert template.id == "tpl-grade"
    assert template.name == "Certificate with grade"
    assert template.custom_parameters == (
        TemplateParameter("grade", "Grade"), TemplateParameter("platform", "Platform"))
    assert client.get_template("tpl-basic").custom_parameters == ()
    pok_simulator.add_template("tpl-v", "Versioned", parameters=(("score", "Score"),), version="3")
    versioned = client.get_template("tpl-v")
    assert (versioned.version, versioned.custom_parameters) == ("3", (TemplateParameter("score", "Score"),))


def test_ids_are_quoted_so_they_cannot_traverse(client, pok_simulator):
    with pytest.raises(PokNotFoundError):
        client.get_template("x/../../organization/me")
    assert pok_simulator.count("get_organization") == 0
    pok_simulator.add_template("team/a b", "Slash and space")
    assert client.get_template("team/a b").name == "Slash and space"
    assert pok_simulator.requests[-1].path == "/template/team%2Fa%20b"


def test_preview_template(client, pok_simulator):
    url = client.preview_template(preview_payload())
    assert url.startswith(pok_simulator.url + "/images/")
    image = requests.get(url, timeout=5)
    assert image.status_code == 200
    assert image.content.startswith(b"\x89PNG")


def test_list_pages(client, pok_simulator):
    result = client.list_pages()
    assert isinstance(result, PageList)
    assert result.pages == (Page("page-1", "Default page"),)
    assert (result.limit, result.possibly_truncated) == (100, False)
    pok_simulator.add_page("page-2", "Second page")
    limited = client.list_pages(limit=1)
    assert (len(limited.pages), limited.possibly_truncated) == (1, True)


def test_issue_credential_sync(client, pok_simulator):
    credential = client.issue_credential(credential_payload(page="page-1"))
    assert isinstance(credential, Credential)
    assert credential.state == "emitted"
    assert credential.view_url
    assert credential.created_at
    assert credential.title == "Introduction to Analytical Engines"
    assert credential.emitter == "Test Academy"
    assert credential.emission_type == "pok"
    assert credential.emission_date
    assert credential.tags == ("course-v1:TestX+AE101+2025", "openedx")
    assert credential.raw["id"] == credential.id
    assert EMAIL not in repr(credential)
    assert set(pok_simulator.credentials) == {credential.id}
    assert pok_simulator.count("issue_credential") == 1


def test_issue_credential_with_template_parameters_and_blockchain(client, pok_simulator):
    credential = client.issue_credential(credential_payload(
        "tpl-grade", {"grade": "97%", "platform": "Test Academy"}, emissionType="blockchain"))
    assert credential.emission_type == "blockchain"
    assert client.get_organization().available_credits == 9


def test_issue_credential_async_then_poll(client, pok_simulator):
    pok_simulator.emission_mode = "async"
    pok_simulator.polls_until_emitted = 2
    created = client.issue_credential(credential_payload())
    assert created.state == "processing"
    assert created.view_url is None
    states = [client.get_credential(created.id) for _ in range(2)]
    assert states[-1].state == "emitted"
    assert states[-1].view_url


def test_waiting_for_approval_then_approved(client, pok_simulator):
    created = client.issue_credential(credential_payload(skipAcceptance=False))
    assert created.state == "waitingForApproval"
    pok_simulator.approve(created.id)
    assert client.get_credential(created.id).state == "emitted"


def test_get_credential_and_image(client, pok_simulator):
    created = client.issue_credential(credential_payload())
    fetched = client.get_credential(created.id)
    assert fetched == created
    location = client.get_credential_image(created.id)
    assert location.startswith(pok_simulator.url + "/images/")
    assert requests.get(location, timeout=5).content.startswith(b"\x89PNG")
    assert pok_simulator.count("get_credential_image") == 1


@pytest.mark.parametrize("state", ["newFancyState", "revoked", "signatureRejected"])
def test_state_is_kept_verbatim(client, pok_simulator, state):
    created = client.issue_credential(credential_payload())
    pok_simulator.set_state(created.id, state)
    assert client.get_credential(created.id).state == state


def test_idempotency_key_is_sent(client, pok_simulator):
    client.issue_credential(credential_payload(), idempotency_key="openedx-pok-cert-42-1")
    recorded = pok_simulator.requests[-1]
    assert recorded.idempotency_key == "openedx-pok-cert-42-1"
    assert header(recorded, "Idempotency-Key") == "openedx-pok-cert-42-1"


@pytest.mark.parametrize("suffix", ["", "/"])
def test_base_url_with_and_without_trailing_slash(pok_simulator, suffix):
    with PokApiClient(pok_simulator.url + suffix, pok_simulator.api_key) as api_client:
        assert api_client.get_organization().name == "Simulated Org"
        created = api_client.issue_credential(credential_payload())
        assert api_client.get_credential(created.id).id == created.id
    assert [recorded.endpoint for recorded in pok_simulator.requests] == [
        "get_organization", "issue_credential", "get_credential"]


@pytest.mark.parametrize("base_path", ["/pok/v2", "/pok/v2/"])
def test_base_url_with_a_path_prefix(fake, base_path):
    answer(fake, body=lambda request: (200, {}, json.dumps(
        {"data": []} if "/pok/v2/page" in request.url else {"id": "c/1", "state": "emitted"})))
    with PokApiClient(FAKE_API + base_path, DEFAULT_API_KEY) as api_client:
        api_client.get_credential("c/1")
        api_client.list_pages(limit=5)
    assert [call.request.path_url for call in fake.calls] == ["/pok/v2/credential/c%2F1", "/pok/v2/page?limit=5"]


# --- HTTP errors -------------------------------------------------------------------------------------------------


def test_wrong_key_is_an_authentication_error(pok_simulator):
    wrong_key = "11111111-2222-4333-8444-555555555555"
    with PokApiClient(pok_simulator.url, wrong_key) as api_client, pytest.raises(PokAuthenticationError) as info:
        api_client.get_organization()
    exc = info.value
    assert (exc.status_code, exc.retryable, exc.ambiguous, exc.endpoint) == (401, False, False, "GET /organization/me")
    assert_no_secret(exc, wrong_key)


def test_echoed_key_is_scrubbed_from_messages(fake, fake_client):
    answer(fake, body=lambda request: (401, {}, json.dumps(
        {"message": f"Bad credentials: {request.headers['Authorization']}"})))
    with pytest.raises(PokAuthenticationError) as info:
        fake_client.get_organization()
    assert "[redacted]" in info.value.message
    assert_no_secret(info.value)


@pytest.mark.parametrize("status, expected, retryable, ambiguous_for_post", [
    (401, PokAuthenticationError, False, False),
    (403, PokAuthenticationError, False, False),
    (404, PokNotFoundError, False, False),
    (400, PokValidationError, False, False),
    (409, PokValidationError, False, False),
    (422, PokValidationError, False, False),
    (429, PokRateLimitedError, True, False),
    (500, PokServerError, True, True),
    (502, PokServerError, True, True),
    (503, PokServerError, True, False),  # issue 22: POK refused the request, it did not process it
    (504, PokServerError, True, True),
    (301, PokResponseError, False, False),
    (304, PokResponseError, False, False),
    (101, PokResponseError, False, False),
])
def test_every_status_maps_to_its_exception(fake, fake_client, status, expected, retryable, ambiguous_for_post):
    """The one table a retry policy relies on; every HTTP answer is ``answered``, a POST ambiguous only on a 5xx
    other than 503 (unavailable: not processed)."""
    answer(fake, status, "")
    for call, is_post in ((fake_client.get_organization, False),
                          (lambda: fake_client.issue_credential(credential_payload()), True)):
        with pytest.raises(expected) as info:
            call()
        exc = info.value
        assert (exc.status_code, exc.retryable, exc.answered) == (status, retryable, True)
        assert exc.ambiguous is (ambiguous_for_post and is_post)


def test_a_key_echoed_at_the_end_of_a_long_message_is_scrubbed_before_the_cut(fake, fake_client):
    """Cutting to 500 characters first would leave most of a key that straddles the cut."""
    for status in (400, 401, 404, 500):
        for padding in range(420, 500):
            answer(fake, status, {"message": "x" * padding + " " + DEFAULT_API_KEY + " was refused"})
            with pytest.raises(PokApiError) as info:
                fake_client.get_organization()
            assert len(info.value.message) <= 500
            assert DEFAULT_API_KEY[:8] not in info.value.message, (status, padding)
            assert_no_secret(info.value)


def test_a_start_of_the_key_left_by_the_error_read_cap_is_scrubbed(fake, fake_client):
    """An error body is read up to 64 KiB; a key cut there must not survive as the whole message."""
    body = "<br>" * (64 * 1024 // 4 - 5) + DEFAULT_API_KEY  # the cap falls 20 characters into the key
    answer(fake, 400, body, {"Content-Type": "text/html"})
    with pytest.raises(PokValidationError) as info:
        fake_client.get_organization()
    assert info.value.message == REDACTED
    assert DEFAULT_API_KEY[:8] not in str(info.value)


def _key_fragments_in(text):
    """Every start of the key of 8 characters or more that ``text`` still holds."""
    return [DEFAULT_API_KEY[:n] for n in range(8, len(DEFAULT_API_KEY) + 1) if DEFAULT_API_KEY[:n] in text]


@pytest.mark.parametrize("status", [400, 429, 500, 503])
@pytest.mark.parametrize("shape", ["json", "text", "html"])
def test_a_key_echoed_near_the_end_of_a_long_error_body_never_survives_a_cut(fake, fake_client, status, shape):
    """
    Issue 22 (8): the message is scrubbed before it is cut to its 500 characters, whichever format POK answers in
    and however the key straddles the cut, and no start of the key of 8 characters or more is left at the cut end.
    """
    for padding in range(440, 520, 3):
        text = "x" * padding + " ApiKey " + DEFAULT_API_KEY + " refused"
        body, headers = {"json": ({"message": text}, None), "text": (text, None),
                         "html": (f"<html><body><p>{text}</p></body></html>", {"Content-Type": "text/html"})}[shape]
        answer(fake, status, body, headers)
        for call in (fake_client.get_organization, lambda: fake_client.issue_credential(credential_payload())):
            with pytest.raises(PokApiError) as info:
                call()
            exc = info.value
            assert len(exc.message) <= 500
            for text_out in (exc.message, str(exc), repr(exc), exc.raw_excerpt):
                assert _key_fragments_in(text_out) == [], (status, shape, padding)


def test_a_key_in_an_unusable_answer_is_scrubbed_before_its_excerpt_is_cut(fake, fake_client):
    """The excerpt staff see of an unusable 2xx answer is read up to 4,000 characters, then cut to 500."""
    for padding in (*range(3960, 4000), *range(470, 500)):
        answer(fake, 201, "y" * padding + DEFAULT_API_KEY, {"Content-Type": "text/html"})
        with pytest.raises(PokResponseError) as info:
            fake_client.issue_credential(credential_payload())
        assert _key_fragments_in(info.value.raw_excerpt) == [], padding
        assert len(info.value.raw_excerpt) <= 500


@pytest.mark.parametrize("text, expected", [
    (f"key {DEFAULT_API_KEY} echoed", f"key {REDACTED} echoed"),
    (f"cut at {DEFAULT_API_KEY[:8]}", f"cut at {REDACTED}"),
    (f"cut at {DEFAULT_API_KEY[:7]}", f"cut at {DEFAULT_API_KEY[:7]}"),  # too short to be worth hiding
    (f"{DEFAULT_API_KEY[:12]} not at the end", f"{DEFAULT_API_KEY[:12]} not at the end"),
])
def test_parse_error_message_scrubs_the_whole_text_before_cutting(text, expected):
    from openedx_pok.client.errors import scrubber

    assert parse_error_message(text.encode(), scrub=scrubber(DEFAULT_API_KEY)) == expected
    cut = parse_error_message(("y" * 495 + " " + text).encode(), scrub=scrubber(DEFAULT_API_KEY))
    assert len(cut) <= 500 and DEFAULT_API_KEY[:8] not in cut.removesuffix("...").rsplit(" ", 1)[0]


@pytest.mark.parametrize("call", ["get_credential", "get_credential_image", "get_template"])
def test_unknown_id_is_not_found(client, call):
    with pytest.raises(PokNotFoundError) as info:
        getattr(client, call)("does-not-exist")
    assert (info.value.status_code, info.value.retryable, info.value.ambiguous) == (404, False, False)


def test_validation_error_keeps_pok_message(client, pok_simulator):
    with pytest.raises(PokValidationError) as info:
        client.issue_credential(credential_payload("tpl-grade", {"grade": "97%"}))
    exc = info.value
    assert (exc.status_code, exc.retryable, exc.ambiguous) == (400, False, False)
    assert "platform" in exc.message
    assert exc.message in str(exc)
    assert pok_simulator.credentials == {}


def test_validation_error_for_unknown_template_and_credits(client, pok_simulator):
    with pytest.raises(PokValidationError) as info:
        client.issue_credential(credential_payload("tpl-missing"))
    assert "tpl-missing" in info.value.message
    pok_simulator.available_credits = 0
    with pytest.raises(PokValidationError) as info:
        client.issue_credential(credential_payload(emissionType="blockchain"))
    assert "insufficient credits" in info.value.message.lower()


def test_error_bodies_of_other_shapes(fake, fake_client):
    answer(fake, 400, {"statusCode": 400, "message": ["title must not be empty", "bad tag"]})
    with pytest.raises(PokValidationError) as info:
        fake_client.issue_credential(credential_payload())
    assert info.value.message == "title must not be empty; bad tag"
    answer(fake, 502, "<html><body><h1>502 Bad Gateway</h1></body></html>", {"Content-Type": "text/html"})
    with pytest.raises(PokServerError) as info:
        fake_client.get_organization()
    assert info.value.message == "POK server error: 502 Bad Gateway"
    answer(fake, 409, "", {"Content-Type": "text/plain"})
    with pytest.raises(PokValidationError) as info:
        fake_client.get_organization()
    assert (info.value.status_code, info.value.message) == (409, "POK rejected the request.")


def test_rate_limited_with_retry_after(client, pok_simulator):
    pok_simulator.add_fault(Fault("rate_limit", endpoint="issue_credential", retry_after=7))
    with pytest.raises(PokRateLimitedError) as info:
        client.issue_credential(credential_payload())
    exc = info.value
    assert (exc.status_code, exc.retry_after, exc.retryable, exc.ambiguous) == (429, 7.0, True, False)
    assert pok_simulator.credentials == {}
    assert client.issue_credential(credential_payload()).state == "emitted"


def test_rate_limited_without_retry_after(client, pok_simulator):
    pok_simulator.add_fault(Fault("rate_limit", endpoint="get_organization"))
    with pytest.raises(PokRateLimitedError) as info:
        client.get_organization()
    assert (info.value.retry_after, info.value.retryable) == (None, True)


def test_rate_limited_with_http_date(client, pok_simulator):
    later = format_datetime(datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=90), usegmt=True)
    pok_simulator.add_fault(Fault("rate_limit", endpoint="list_pages", retry_after=later))
    with pytest.raises(PokRateLimitedError) as info:
        client.list_pages()
    assert 80 <= info.value.retry_after <= 90
    assert "too many requests" in info.value.message


@pytest.mark.parametrize("status", [500, 502, 504])
def test_server_errors_are_retryable_and_ambiguous_only_for_post(client, pok_simulator, status):
    pok_simulator.add_fault(Fault("status", endpoint="get_organization", status=status))
    with pytest.raises(PokServerError) as info:
        client.get_organization()
    assert (info.value.status_code, info.value.retryable, info.value.ambiguous) == (status, True, False)
    assert info.value.message == f"POK server error: simulated POK error (HTTP {status})"
    pok_simulator.add_fault(Fault("status", endpoint="issue_credential", status=status))
    with pytest.raises(PokServerError) as info:
        client.issue_credential(credential_payload())
    assert (info.value.status_code, info.value.retryable, info.value.ambiguous) == (status, True, True)
    assert not info.value.unprocessed


@pytest.mark.parametrize("retry_after", [None, 30])
def test_a_503_was_not_processed_and_is_never_ambiguous(client, pok_simulator, retry_after):
    """Issue 22: POK unavailable (a deploy, an overload) refused the request; a POST is retried, never ambiguous."""
    headers = (("Retry-After", str(retry_after)),) if retry_after else ()
    for endpoint, call in (("get_organization", client.get_organization),
                           ("issue_credential", lambda: client.issue_credential(credential_payload()))):
        pok_simulator.add_fault(Fault("respond", endpoint=endpoint, status=503, body='{"message": "deploying"}',
                                      headers=headers))
        with pytest.raises(PokServerError) as info:
            call()
        exc = info.value
        assert (exc.status_code, exc.retryable, exc.ambiguous, exc.unprocessed, exc.answered) == (
            503, True, False, True, True)
        assert exc.retry_after == retry_after and exc.message == "POK is unavailable: deploying"
    assert pok_simulator.credentials == {}


def test_a_429_was_not_processed(client, pok_simulator):
    pok_simulator.add_fault(Fault("rate_limit", endpoint="issue_credential"))
    with pytest.raises(PokRateLimitedError) as info:
        client.issue_credential(credential_payload())
    assert (info.value.unprocessed, info.value.ambiguous) == (True, False)


def test_status_fault_4xx_maps_by_status(client, pok_simulator):
    pok_simulator.add_fault(Fault("status", endpoint="get_credential", status=403))
    with pytest.raises(PokAuthenticationError):
        client.get_credential("whatever")
    pok_simulator.add_fault(Fault("status", endpoint="list_pages", status=422))
    with pytest.raises(PokValidationError) as info:
        client.list_pages()
    assert info.value.status_code == 422


def test_redirect_on_post_is_not_followed(fake, fake_client):
    answer(fake, 307, "", {"Location": "https://elsewhere.invalid/credential"})
    with pytest.raises(PokResponseError) as info:
        fake_client.issue_credential(credential_payload())
    assert (info.value.status_code, info.value.retryable, info.value.ambiguous) == (307, False, False)
    assert "API URL" in info.value.message
    assert len(fake.calls) == 1


# --- network failures --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get_organization", "issue_credential"])
def test_connection_refused_is_never_ambiguous(method):
    with PokApiClient(f"http://127.0.0.1:{closed_port()}", DEFAULT_API_KEY) as api_client:
        with pytest.raises(PokNetworkError) as info:
            if method == "issue_credential":
                api_client.issue_credential(credential_payload())
            else:
                api_client.get_organization()
    exc = info.value
    assert (exc.retryable, exc.ambiguous, exc.status_code) == (True, False, None)
    assert "Could not connect" in exc.message
    # Issue 22 (17a): reported as refused, not as a timeout ("within 3.05 s"); nothing was sent.
    assert "Connection refused" in exc.message and "within" not in exc.message and exc.unprocessed
    assert_no_secret(exc)


def test_a_tls_failure_before_sending_was_not_processed(pok_simulator):
    """https:// to a server that speaks plain HTTP: the handshake fails, the POST never leaves (issue 22)."""
    with PokApiClient(pok_simulator.url.replace("http://", "https://"), DEFAULT_API_KEY) as api_client:
        with pytest.raises(PokNetworkError) as info:
            api_client.issue_credential(credential_payload())
    exc = info.value
    assert (exc.retryable, exc.ambiguous, exc.unprocessed) == (True, False, True)
    assert "secure connection" in exc.message and "before anything was sent" in exc.message
    assert pok_simulator.count() == 0


def test_connect_timeout_is_not_ambiguous():
    """
    A listener whose accept queue is full drops further SYNs, so the connection is never established.

    Linux keeps backlog + 1 connections queued; the filler connections take them all.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(3):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            with PokApiClient(f"http://127.0.0.1:{port}", DEFAULT_API_KEY, connect_timeout=0.2, timeout=0.2) as api:
                with pytest.raises(PokNetworkError) as info:
                    api.issue_credential(credential_payload())
        finally:
            for filler in fillers:
                filler.close()
    if "did not answer" in info.value.message:
        pytest.skip("this kernel accepted the connection; a connect timeout cannot be provoked here")
    assert info.value.message.endswith("within 0.2 s.")
    assert (info.value.ambiguous, info.value.retryable, info.value.unprocessed) == (False, True, True)


def test_hang_before_create_on_post_is_ambiguous_but_nothing_exists(fast_client, pok_simulator):
    pok_simulator.add_fault(Fault("hang", endpoint="issue_credential", delay=1.0))
    started = time.monotonic()
    with pytest.raises(PokNetworkError) as info:
        fast_client.issue_credential(credential_payload())
    assert time.monotonic() - started < 0.9
    assert (info.value.ambiguous, info.value.retryable) == (True, True)
    assert "did not answer within 0.2 s" in info.value.message
    assert pok_simulator.credentials == {}
    assert pok_simulator.count("issue_credential") == 1


def test_hang_on_get_is_not_ambiguous(fast_client, pok_simulator):
    pok_simulator.add_fault(Fault("hang", endpoint="get_organization", delay=1.0))
    with pytest.raises(PokNetworkError) as info:
        fast_client.get_organization()
    assert info.value.ambiguous is False


def test_hang_after_create_is_ambiguous_and_credential_exists(fast_client, pok_simulator):
    pok_simulator.add_fault(Fault("hang_after_create", endpoint="issue_credential", delay=1.0))
    with pytest.raises(PokNetworkError) as info:
        fast_client.issue_credential(credential_payload(), idempotency_key="row-7-attempt-1")
    assert info.value.ambiguous is True
    assert len(pok_simulator.credentials) == 1
    assert len(pok_simulator.credentials_for(EMAIL)) == 1


def test_drop_before_create_is_ambiguous_without_credential(client, pok_simulator):
    pok_simulator.add_fault(Fault("drop", endpoint="issue_credential"))
    with pytest.raises(PokNetworkError) as info:
        client.issue_credential(credential_payload())
    assert (info.value.ambiguous, info.value.retryable) == (True, True)
    assert pok_simulator.credentials == {}
    # No silent automatic retry: exactly one POST reached the server.
    assert pok_simulator.count("issue_credential") == 1


def test_drop_after_create_is_ambiguous_with_credential(client, pok_simulator):
    pok_simulator.add_fault(Fault("drop_after_create", endpoint="issue_credential"))
    with pytest.raises(PokNetworkError) as info:
        client.issue_credential(credential_payload())
    assert info.value.ambiguous is True
    assert len(pok_simulator.credentials) == 1
    assert pok_simulator.count("issue_credential") == 1


def test_drop_on_get_is_not_ambiguous(client, pok_simulator):
    pok_simulator.add_fault(Fault("drop", endpoint="list_templates"))
    with pytest.raises(PokNetworkError) as info:
        client.list_templates()
    assert (info.value.ambiguous, info.value.retryable) == (False, True)
    assert client.list_templates().templates


def test_latency_fault_within_timeout_succeeds(client, pok_simulator):
    pok_simulator.add_fault(Fault("latency", endpoint="get_organization", delay=0.1))
    assert client.get_organization().name == "Simulated Org"


# --- unusable 2xx answers ----------------------------------------------------------------------------------------


def test_malformed_json_on_get(client, pok_simulator):
    pok_simulator.add_fault(Fault("malformed_json", endpoint="get_organization"))
    with pytest.raises(PokResponseError) as info:
        client.get_organization()
    assert (info.value.status_code, info.value.retryable, info.value.ambiguous) == (200, True, False)


def test_malformed_json_on_post_is_answered_and_not_retried(client, pok_simulator):
    pok_simulator.add_fault(Fault("malformed_json", endpoint="issue_credential"))
    with pytest.raises(PokResponseError) as info:
        client.issue_credential(credential_payload())
    assert (info.value.retryable, info.value.ambiguous, info.value.answered) == (False, False, True)
    assert len(pok_simulator.credentials) == 1


@pytest.mark.parametrize(
    "body, missing",
    [
        ({"id": "c1"}, "state"),
        ({"state": "emitted"}, "id"),
        ({"id": "", "state": "emitted"}, "id"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_credential_without_required_fields(fake, fake_client, body, missing):
    answer(fake, 201, body)
    with pytest.raises(PokResponseError) as info:
        fake_client.issue_credential(credential_payload())
    assert missing in info.value.message
    assert (info.value.status_code, info.value.ambiguous, info.value.answered) == (201, False, True)


def test_empty_2xx_body(fake, fake_client):
    answer(fake, 204, "")
    with pytest.raises(PokResponseError):
        fake_client.get_credential("c1")


def test_liberal_parsing_of_unexpected_shapes(fake, fake_client):
    answer(fake, 202, {"id": 123, "state": "pending", "surprise": {"new": True}, "credential": "not a dict"})
    credential = fake_client.issue_credential(credential_payload())
    assert (credential.id, credential.state, credential.title, credential.tags) == ("123", "pending", None, ())
    assert credential.raw["surprise"] == {"new": True}

    answer(fake, 200, [{"id": "t1"}, {"id": "t2", "name": "Two", "customParameters": ["code"]}])
    templates = fake_client.list_templates(limit=2)
    assert templates.possibly_truncated is True
    assert templates.templates[1].custom_parameters == (TemplateParameter("code", "code"),)

    answer(fake, 200, {"data": [{"name": "no id"}]})
    with pytest.raises(PokResponseError):
        fake_client.list_pages()
    answer(fake, 200, {"items": []})
    with pytest.raises(PokResponseError):
        fake_client.list_pages()

    answer(fake, 200, {"name": "Org", "availableCredits": "12", "emittedCredentials": None})
    organization = fake_client.get_organization()
    assert (organization.available_credits, organization.emitted_credentials, organization.wallet) == (12, 0, None)

    answer(fake, 200, {})
    with pytest.raises(PokResponseError) as info:
        fake_client.get_credential_image("c1")
    assert "location" in info.value.message


# --- secrets, logs, connections ----------------------------------------------------------------------------------


def test_api_key_never_appears_in_exceptions(client, fast_client, pok_simulator):
    errors = []

    def capture(call, *args, **kwargs):
        with pytest.raises(PokApiError) as info:
            call(*args, **kwargs)
        errors.append(info.value)

    capture(client.get_credential, "missing")
    capture(client.issue_credential, credential_payload("tpl-missing"))
    for fault in (Fault("status", status=500), Fault("rate_limit", retry_after=1), Fault("drop"),
                  Fault("malformed_json")):
        pok_simulator.add_fault(fault)
        capture(client.issue_credential, credential_payload())
    pok_simulator.add_fault(Fault("hang", delay=1.0))
    capture(fast_client.get_organization)
    with PokApiClient(f"http://127.0.0.1:{closed_port()}", DEFAULT_API_KEY) as refused:
        capture(refused.get_organization)
    assert len(errors) == 8
    for exc in errors:
        assert_no_secret(exc)


def test_debug_log_has_method_path_status_and_no_secrets(client, pok_simulator, caplog):
    caplog.set_level(logging.DEBUG)
    created = client.issue_credential(credential_payload())
    with pytest.raises(PokNotFoundError):
        client.get_credential("missing")
    records = [record for record in caplog.records if record.name == "openedx_pok.client"]
    messages = [record.getMessage() for record in records]
    assert len(messages) == 2
    assert messages[0].startswith("POK POST /credential -> 201 in ")
    assert messages[0].endswith(" ms")
    assert messages[1].startswith("POK GET /credential/missing -> 404 in ")
    assert all(record.levelno == logging.DEBUG for record in records)
    for text in (caplog.text, *messages):
        assert DEFAULT_API_KEY not in text
        assert EMAIL not in text
        assert "Lovelace" not in text
    assert created.id


def test_connections_are_reused_with_the_simulator(client, pok_simulator):
    """The simulator speaks HTTP/1.1 keep-alive like POK: a batch of calls opens a single connection."""
    client.get_organization()
    client.list_templates()
    created = client.issue_credential(credential_payload())
    client.get_credential(created.id)
    pools = client._session.get_adapter(pok_simulator.url).poolmanager.pools  # noqa: SLF001 - its pooled connections
    assert [(pools[key].num_connections, pools[key].num_requests) for key in pools.keys()] == [(1, 4)]


def test_connections_are_reused(client, pok_simulator):
    """Error answers and a POST keep the connection too: the pool holds one connection that served all four."""
    for _ in range(3):
        with pytest.raises(PokNotFoundError):
            client.get_credential("c1")
    client.issue_credential(credential_payload())
    assert pok_simulator.count() == 4
    pools = client._session.get_adapter(pok_simulator.url).poolmanager.pools  # noqa: SLF001 - its pooled connections
    assert [(pools[key].num_connections, pools[key].num_requests) for key in pools.keys()] == [(1, 4)]
    assert pok_simulator.requests[-1].body["receiver"]["email"] == EMAIL
