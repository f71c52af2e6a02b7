"""
The client honours the environment's proxy settings as ``requests`` does (``HTTP(S)_PROXY``, ``NO_PROXY``), read once
per client and server instead of on every call (issue 12: reading them was a third of a POST's CPU in a worker).

Real HTTP: a small local server plays the proxy and records the absolute URLs it is asked for.
"""
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from openedx_pok.client import PokApiClient, transport
from openedx_pok.exceptions import PokApiError


class RecordingProxy:
    """An HTTP proxy that records each request's target and answers 404 itself (it forwards nothing)."""

    def __init__(self):
        self.targets = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # the name http.server calls
                proxy.targets.append(self.path)
                body = b'{"message": "not here"}'
                self.send_response(404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(monkeypatch):
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
                 "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    recording = RecordingProxy()
    yield recording
    recording.close()


def _get(client, pok_id):
    try:
        client.get_credential(pok_id)
    except PokApiError:
        pass


def test_calls_go_through_the_environments_proxy(pok_simulator, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with PokApiClient(pok_simulator.url, pok_simulator.api_key) as client:
        _get(client, "one")
        _get(client, "two")
    assert proxy.targets == [f"{pok_simulator.url}/credential/one", f"{pok_simulator.url}/credential/two"]
    assert pok_simulator.count() == 0


def test_no_proxy_is_honoured_per_host(pok_simulator, proxy, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", urlsplit(pok_simulator.url).hostname)
    with PokApiClient(pok_simulator.url, pok_simulator.api_key) as client:
        _get(client, "direct")
    assert proxy.targets == []
    assert pok_simulator.count("get_credential") == 1


def test_the_environment_is_read_when_a_client_first_calls_a_server(pok_simulator, proxy, monkeypatch):
    with PokApiClient(pok_simulator.url, pok_simulator.api_key) as client:
        _get(client, "before")
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        _get(client, "same-client")  # this client already knows it goes direct
    with PokApiClient(pok_simulator.url, pok_simulator.api_key) as client:
        _get(client, "new-client")  # a client made after the change uses the proxy
    assert proxy.targets == [f"{pok_simulator.url}/credential/new-client"]
    assert pok_simulator.count("get_credential") == 2


def test_the_remembered_settings_stay_bounded_whatever_hosts_are_called():
    """Image locations may be on any subdomain of an allowed host: the session never remembers more than a few."""
    session = transport.new_session()
    for number in range(transport.ENVIRONMENT_ENTRIES * 3):
        session.merge_environment_settings(f"https://img{number}.pok.tech/x.png", {}, None, None, None)
    assert 0 < len(session._environment) <= transport.ENVIRONMENT_ENTRIES  # noqa: SLF001 - the bound under test
