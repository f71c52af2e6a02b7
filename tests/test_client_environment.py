"""
The client honours the environment as ``requests`` does (``HTTP(S)_PROXY``, ``NO_PROXY``, ``REQUESTS_CA_BUNDLE``),
read once per client instead of on every call (issue 12: reading it was a third of a POST's CPU in a worker), and
never sends ``~/.netrc`` credentials (``test_client_urls.py``).

Real HTTP: a small local server plays the proxy and records the absolute URLs it is asked for; a local HTTPS server
presents a certificate made by ``openssl`` for the CA bundle.
"""
import json
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest

from openedx_pok.client import PokApiClient
from openedx_pok.exceptions import PokApiError, PokNetworkError
from pok_simulator import DEFAULT_API_KEY


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


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """An HTTPS server for 127.0.0.1 answering every GET with an organization, and the certificate it presents."""
    directory = tmp_path_factory.mktemp("tls")
    certificate, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(certificate)],
                   check=True, capture_output=True)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"name": "Over TLS"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"https://127.0.0.1:{server.server_address[1]}", certificate
    server.shutdown()
    server.server_close()


def test_the_ca_bundle_of_the_environment_is_trusted(tls_server, monkeypatch):
    url, certificate = tls_server
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with PokApiClient(url, DEFAULT_API_KEY) as client, pytest.raises(PokNetworkError) as info:
        client.get_organization()  # a certificate no CA vouches for: refused
    assert info.value.ambiguous is False
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate))
    with PokApiClient(url, DEFAULT_API_KEY) as client:
        assert client.get_organization().name == "Over TLS"
