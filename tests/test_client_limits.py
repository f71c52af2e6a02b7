"""
The limits every POK call runs under: a deadline, a cap on the decoded answer, no redirects.

Over real HTTP where a socket matters: the POK simulator's ``slow_drip``, ``huge_body`` and ``respond`` faults, and a
small local server for what the simulator never does (stalling in the headers, cutting a body short). ``responses``
where it does not (a declared length over the cap). Deadlines are about a second so the suite stays fast.
"""
import socket
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import responses

from openedx_pok.client import DEFAULT_MAX_RESPONSE_BYTES, PokApiClient
from openedx_pok.exceptions import PokConfigurationError, PokNetworkError, PokResponseError, PokServerError
from pok_simulator import DEFAULT_API_KEY, Fault
from tests.test_client import EMAIL, FAKE_API, answer, credential_payload


@pytest.fixture
def client(pok_simulator):
    with PokApiClient(pok_simulator.url, pok_simulator.api_key) as api_client:
        yield api_client


@pytest.fixture
def drip_client(pok_simulator):
    """Every byte arrives well within the 5 s read timeout; only the 1 s deadline can stop a drip."""
    with PokApiClient(pok_simulator.url, pok_simulator.api_key, timeout=5, deadline=1.0) as api_client:
        yield api_client


class DripServer:
    """
    A TCP server that sends ``payload`` one byte every ``delay`` seconds, then holds the connection ``hold`` seconds
    (or closes it at once): what no HTTP server library does, stalling in the status line or cutting a body short.
    """

    def __init__(self, payload=b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}", delay=0.2, hold=0):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, args=(payload, delay, hold), daemon=True)
        self.thread.start()

    def _serve(self, payload, delay, hold):
        try:
            connection, _ = self.listener.accept()
        except OSError:
            return
        with connection:
            connection.recv(65536)
            for index in range(len(payload)):
                if delay and self.stopped.wait(delay):
                    return
                try:
                    connection.sendall(payload[index:index + 1])
                except OSError:  # the client gave up: that is what the test wants
                    return
            self.stopped.wait(hold)

    def close(self):
        self.stopped.set()
        self.listener.close()
        self.thread.join(5)


@pytest.fixture
def drip_server(request):
    server = DripServer(**getattr(request, "param", {}))
    yield server
    server.close()


# --- configuration -------------------------------------------------------------------------------------------------


def test_deadline_and_size_cap_parameters():
    api = PokApiClient("https://api.pok.tech", DEFAULT_API_KEY, timeout=0.6, connect_timeout=0.4)
    assert (api.deadline, api.max_response_bytes) == (1.0, 1024 * 1024)
    assert DEFAULT_MAX_RESPONSE_BYTES == 1024 * 1024
    assert "deadline=1.0" in repr(api)
    assert PokApiClient("https://api.pok.tech", DEFAULT_API_KEY, deadline=2.5).deadline == 2.5
    for bad in ({"deadline": 0}, {"deadline": "1"}, {"deadline": float("inf")}, {"max_response_bytes": 0},
                {"max_response_bytes": 1.5}, {"max_response_bytes": True}):
        with pytest.raises(PokConfigurationError):
            PokApiClient("https://api.pok.tech", DEFAULT_API_KEY, **bad)


# --- total deadline ------------------------------------------------------------------------------------------------


def test_slow_drip_on_a_get_is_cut_at_the_deadline(drip_client, pok_simulator):
    pok_simulator.add_fault(Fault("slow_drip", endpoint="get_organization", delay=0.2))
    started = time.monotonic()
    with pytest.raises(PokNetworkError) as info:
        drip_client.get_organization()
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 2.5
    exc = info.value
    assert (exc.retryable, exc.ambiguous, exc.answered) == (True, False, False)
    assert "1 s deadline" in exc.message
    # The cut connection is not reused: the next call gets a fresh one and succeeds.
    assert drip_client.get_organization().name == "Simulated Org"


def test_slow_drip_on_issue_credential_is_ambiguous(drip_client, pok_simulator):
    pok_simulator.add_fault(Fault("slow_drip", endpoint="issue_credential", delay=0.2))
    started = time.monotonic()
    with pytest.raises(PokNetworkError) as info:
        drip_client.issue_credential(credential_payload())
    assert time.monotonic() - started < 2.5
    assert (info.value.ambiguous, info.value.retryable, info.value.answered) == (True, True, False)
    assert len(pok_simulator.credentials_for(EMAIL)) == 1  # it was sent and handled: the credential exists


def test_default_deadline_is_timeout_plus_connect_timeout(pok_simulator):
    """Bytes every 0.3 s never trip a 0.6 s read timeout; the 1 s default deadline stops the call anyway."""
    pok_simulator.add_fault(Fault("slow_drip", endpoint="get_credential", delay=0.3))
    credential = None
    with PokApiClient(pok_simulator.url, pok_simulator.api_key, timeout=0.6, connect_timeout=0.4) as api:
        credential = api.issue_credential(credential_payload())
        started = time.monotonic()
        with pytest.raises(PokNetworkError):
            api.get_credential(credential.id)
    assert 0.9 < time.monotonic() - started < 2.5


@pytest.mark.parametrize("drip_server", [{"payload": b"HTTP/1.1 200 OK\r\nContent-", "delay": 0, "hold": 5}],
                         indirect=True)
def test_a_server_stalling_in_the_headers_is_cut_within_the_deadline(drip_server):
    """
    The deadline also bounds the wait for the status line and headers: no wait for data is longer than it.

    (A server dripping its headers a byte at a time, each within the wait, is not cut at the deadline: requests reads
    the headers before it returns, and only a thread or a hook in each socket read could stop it then.)
    """
    with PokApiClient(drip_server.url, DEFAULT_API_KEY, timeout=5, deadline=1.0) as api:
        started = time.monotonic()
        with pytest.raises(PokNetworkError) as info:
            api.issue_credential(credential_payload())
    assert time.monotonic() - started < 2.5
    assert (info.value.ambiguous, info.value.answered) == (True, False)


@pytest.mark.parametrize("drip_server", [{"payload": b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                                     b"Content-Length: 100\r\n\r\n{\"id\": \"c-1\"", "delay": 0}],
                         indirect=True)
@pytest.mark.parametrize("is_post", [True, False])
def test_an_answer_cut_mid_body_is_a_network_error(drip_server, is_post):
    """The connection closes 90 bytes short of the declared length: no answer, ambiguous for a POST."""
    with PokApiClient(drip_server.url, DEFAULT_API_KEY, timeout=5) as api, pytest.raises(PokNetworkError) as info:
        api.issue_credential(credential_payload()) if is_post else api.get_credential("c-1")
    exc = info.value
    assert (exc.ambiguous, exc.answered, exc.retryable, exc.status_code) == (is_post, False, True, None)
    assert "failed before a complete answer" in exc.message


def test_a_fast_answer_within_the_deadline_is_untouched(pok_simulator):
    pok_simulator.add_fault(Fault("latency", endpoint="get_organization", delay=0.1))
    with PokApiClient(pok_simulator.url, pok_simulator.api_key, deadline=0.3) as api:
        assert api.get_organization().name == "Simulated Org"
        # Past the first call's deadline, its pooled connection still serves the next call.
        time.sleep(0.4)
        assert api.list_pages().pages
        pools = api._session.get_adapter(pok_simulator.url).poolmanager.pools  # noqa: SLF001 - its pooled connections
        assert [(pools[key].num_connections, pools[key].num_requests) for key in pools.keys()] == [(1, 2)]


# --- size cap ------------------------------------------------------------------------------------------------------


def test_an_answer_over_the_cap_is_cut_off(client, pok_simulator):
    """2 MiB of what would otherwise be a valid credential: refused rather than accepted."""
    pok_simulator.add_fault(Fault("huge_body", endpoint="get_credential", size=2 * 1024 * 1024))
    with pytest.raises(PokResponseError) as info:
        client.get_credential("anything")
    exc = info.value
    assert "larger than 1048576 bytes" in exc.message
    assert (exc.status_code, exc.answered, exc.retryable, exc.ambiguous) == (200, True, True, False)
    assert exc.raw_excerpt.startswith('{"id": "simulated-huge-body"')
    assert client.get_organization().name == "Simulated Org"


def test_a_gzip_bomb_is_cut_off_early_with_little_memory(client, pok_simulator):
    """300 KiB on the wire, 300 MiB decoded: counting decoded bytes stops it at the cap, in small chunks."""
    pok_simulator.add_fault(Fault("huge_body", endpoint="issue_credential", size=300 * 1024 * 1024, gzip=True,
                                  after_create=True))
    client.get_organization()  # warm up: the simulator compresses the bomb once, outside the measurement
    tracemalloc.start()
    try:
        started = time.monotonic()
        with pytest.raises(PokResponseError) as info:
            client.issue_credential(credential_payload())
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    assert elapsed < 5
    exc = info.value
    assert (exc.answered, exc.retryable, exc.ambiguous) == (True, False, False)
    assert len(pok_simulator.credentials_for(EMAIL)) == 1


@pytest.mark.parametrize("size, usable", [(DEFAULT_MAX_RESPONSE_BYTES, True), (DEFAULT_MAX_RESPONSE_BYTES + 1, False)])
def test_the_cap_applies_to_a_declared_length(size, usable):
    """A credential padded to exactly the cap is read; one byte more is refused, whatever Content-Length says."""
    head = '{"id": "c-1", "state": "emitted"'
    with responses.RequestsMock(assert_all_requests_are_fired=False) as fake, \
            PokApiClient(FAKE_API, DEFAULT_API_KEY) as api:
        answer(fake, 200, head + " " * (size - len(head) - 1) + "}", {"Content-Type": "application/json"})
        if usable:
            assert api.get_credential("c-1").id == "c-1"
            return
        with pytest.raises(PokResponseError) as info:
            api.get_credential("c-1")
        assert "larger than 1048576 bytes" in info.value.message
        assert info.value.raw_excerpt.startswith(head)


def test_the_cap_is_a_constructor_parameter(pok_simulator):
    with PokApiClient(pok_simulator.url, pok_simulator.api_key, max_response_bytes=64) as api:
        with pytest.raises(PokResponseError) as info:
            api.get_organization()
    assert "larger than 64 bytes" in info.value.message
    with PokApiClient(pok_simulator.url, pok_simulator.api_key, max_response_bytes=4096) as api:
        assert api.get_organization().name == "Simulated Org"


def test_a_huge_error_answer_still_maps_by_status(client, pok_simulator):
    pok_simulator.add_fault(Fault("huge_body", endpoint="list_pages", size=5 * 1024 * 1024, status=503))
    with pytest.raises(PokServerError) as info:
        client.list_pages()
    assert (info.value.status_code, info.value.answered) == (503, True)


# --- redirects -----------------------------------------------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    """Where a followed redirect would land; records the request and any Authorization header it carried."""

    seen = []

    def do_GET(self):
        Recorder.seen.append((self.path, self.headers.get("Authorization")))
        body = b'{"name": "Elsewhere"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        """Keep test output quiet."""


@pytest.fixture
def elsewhere():
    Recorder.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("endpoint, call", [
    ("get_organization", lambda api: api.get_organization()),
    ("get_credential", lambda api: api.get_credential("c-1")),
    ("issue_credential", lambda api: api.issue_credential(credential_payload())),
])
def test_redirects_are_never_followed(client, pok_simulator, elsewhere, status, endpoint, call):
    pok_simulator.add_fault(Fault("respond", endpoint=endpoint, status=status, body="",
                                  headers=(("Location", f"{elsewhere}/organization/me"),)))
    with pytest.raises(PokResponseError) as info:
        call(client)
    exc = info.value
    assert (exc.status_code, exc.retryable, exc.ambiguous, exc.answered) == (status, False, False, True)
    assert f"HTTP {status}" in exc.message
    assert Recorder.seen == []  # neither the request nor the API key went to the other host
