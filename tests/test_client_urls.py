"""
URLs POK hands back: the strict host allow-list, ``is_web_url``, and image downloads under the client's limits.

``host_allowed`` and ``is_web_url`` must read a URL exactly as urllib3 (what the plugin connects to) and browsers
(where learners are sent) do; anything they could read differently is refused. Image downloads are tested against
a small local server: a real socket, real redirects, real gzip.
"""
import functools
import gzip
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from urllib3.util import parse_url

from openedx_pok.client import fetch_image, host_allowed, is_web_url, urls
from openedx_pok.exceptions import PokNetworkError, PokResponseError

ALLOWED = ["pok.tech", "credentity.xyz"]
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 200


# --- host allow-list -----------------------------------------------------------------------------------------------


def test_the_backslash_trick_is_refused():
    """urllib3 connects to 127.0.0.1 for this URL (and browsers read it the same way), so it is not on pok.tech."""
    url = "http://127.0.0.1\\.pok.tech/x.png"
    assert parse_url(url).host == "127.0.0.1"
    assert host_allowed(url, ["pok.tech"]) is False
    assert is_web_url(url) is False


@pytest.mark.parametrize("url", [
    "https://evil.com\\.pok.tech/x",           # urllib3: evil.com
    "https://evil.com\\@pok.tech/x",
    "https://evil.com%2f.pok.tech/x",          # percent-encoded separators in the host
    "https://evil.com%5c.pok.tech/x",
    "https://evil.com%23.pok.tech/x",
    "https://evil.com\t.pok.tech/x",            # urlsplit drops tab and newline, browsers too, urllib3 refuses
    "https://evil.com\n.pok.tech/x",
    " https://pok.tech/x",
    "https://pok.tech/x ",
    "https://pok.tech/\u2028x",
    "https://pok.tech\x00.evil.com/x",
    "https://user@pok.tech/x",
    "https://:@pok.tech/x",
    "https://pok.tech:99999/x",
    "https://pok.tech:port/x",
    "https://pok.tech../x",
    "https://.pok.tech/x",
    "https://x..pok.tech/x",
    "https://ｐok.tech/x",                     # full-width letters and dots are rewritten by browsers
    "https://evil.com。pok.tech/x",
    "https://pok.tech.1/x",                    # a numeric last label makes browsers read an IPv4 address
    "https://0x7f.1/x",
    "ws://pok.tech/x",
])
def test_confusable_urls_are_refused(url):
    assert host_allowed(url, ALLOWED) is False
    assert is_web_url(url) is False


@pytest.mark.parametrize("url, allowed", [
    ("https://pok.tech/x", True),
    ("https://x.pok.tech/images/a@2x.png", True),   # "@" in the path is not userinfo
    ("https://a.b.credentity.xyz/i.png?next=https://evil.com", True),
    ("https://POK.Tech./x", True),
    ("http://pok.tech:8080/x", True),
    ("https://cdn_1.pok.tech/x", True),
    ("https://evilpok.tech/x", False),
    ("https://pok.tech.evil.com/x", False),
    ("https://evil.com/pok.tech", False),
])
def test_exact_host_or_subdomain(url, allowed):
    assert host_allowed(url, ALLOWED) is allowed


def test_ip_hosts_match_only_exactly():
    assert host_allowed("http://127.0.0.1:8000/x", ["127.0.0.1"]) is True
    assert host_allowed("http://127.0.0.1/x", ["0.0.1"]) is False
    assert host_allowed("http://[::1]:8000/x", ["::1"]) is True
    assert host_allowed("http://[::1]/x", ["[::1]"]) is True
    assert host_allowed("http://[fe80::1%25eth0]/x", ["fe80::1"]) is False
    assert host_allowed("https://pok.tech/x", [" POK.TECH. ", "", None]) is True


@pytest.mark.parametrize("url, expected", [
    ("https://pok.tech/credential/abc", True),
    ("http://localhost:8000/p?q=1#f", True),
    ("https://pok.tech/a@b", True),
    ("http://127.0.0.1\\.pok.tech/x", False),
    ("https://user:pw@pok.tech/x", False),
    ("https://pok.tech /x", False),
    ("javascript:alert(1)//pok.tech", False),
    ("//pok.tech/x", False),
    ("/relative", False),
    ("https:///x", False),
    ("https://[invalid", False),
    ("", False),
    (None, False),
    (42, False),
])
def test_is_web_url(url, expected):
    assert is_web_url(url) is expected


# --- image downloads -----------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def gzip_bomb():
    """About 50 KiB on the wire, a 50 MiB "PNG" once decoded."""
    return gzip.compress(PNG + b"\x00" * (50 * 1024 * 1024), compresslevel=9)


class ImageHandler(BaseHTTPRequestHandler):
    """Serves a PNG, a dripping PNG, a gzip bomb and a redirect; records every path asked for."""

    seen = []
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        ImageHandler.seen.append((self.path, self.headers.get("Authorization")))
        if self.path == "/redirect.png":
            self.send_response(302)
            self.send_header("Location", "/image.png")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path == "/bomb.png":
            body = gzip_bomb()
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Encoding", "gzip")
        else:
            body = PNG
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/drip.png":
            for index in range(len(body)):
                time.sleep(0.1)
                try:
                    self.wfile.write(body[index:index + 1])
                    self.wfile.flush()
                except OSError:
                    return
        else:
            self.wfile.write(body)

    def log_message(self, *args):
        """Keep test output quiet."""


@pytest.fixture
def image_host():
    ImageHandler.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), ImageHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_fetch_image(image_host):
    assert fetch_image(f"{image_host}/image.png", ["127.0.0.1"]) == ("image/png", PNG)
    assert ImageHandler.seen == [("/image.png", None)]  # no API key, no netrc credentials


def test_netrc_credentials_are_never_sent(image_host, tmp_path, monkeypatch):
    """requests would add ``~/.netrc`` credentials for the host to an image download; the API key goes nowhere else."""
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    assert fetch_image(f"{image_host}/image.png", ["127.0.0.1"]) == ("image/png", PNG)
    assert ImageHandler.seen == [("/image.png", None)]


def test_image_download_has_a_total_deadline(image_host):
    started = time.monotonic()
    with pytest.raises(PokNetworkError) as info:
        fetch_image(f"{image_host}/drip.png", ["127.0.0.1"], timeout=5, deadline=1.0)
    assert time.monotonic() - started < 2.5
    assert "within 1 s" in info.value.message
    assert info.value.retryable is True


def test_image_gzip_bomb_is_cut_at_the_image_cap(image_host):
    gzip_bomb()  # built by the test server once, before memory is measured
    tracemalloc.start()
    try:
        with pytest.raises(PokResponseError) as info:
            fetch_image(f"{image_host}/bomb.png", ["127.0.0.1"], max_bytes=1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    assert (info.value.retryable, info.value.answered) == (False, True)
    assert "larger than allowed" in info.value.message


def test_image_redirects_are_not_followed_even_to_an_allowed_host(image_host):
    with pytest.raises(PokResponseError) as info:
        fetch_image(f"{image_host}/redirect.png", ["127.0.0.1"])
    assert (info.value.status_code, info.value.retryable) == (302, False)
    assert "redirect" in info.value.message
    assert [path for path, _ in ImageHandler.seen] == ["/redirect.png"]


def test_image_on_a_confusable_url_is_never_requested(image_host):
    port = image_host.rsplit(":", 1)[1]
    for url in (f"http://127.0.0.1:{port}\\.pok.tech/image.png", f"http://127.0.0.1\\.pok.tech:{port}/image.png"):
        with pytest.raises(PokResponseError) as info:
            fetch_image(url, ["pok.tech"])
        assert info.value.retryable is False
    assert ImageHandler.seen == []


@pytest.mark.parametrize("value", [None, "", 42, ["https://pok.tech/x"], {"url": "https://pok.tech"}])
def test_anything_but_a_url_string_is_not_a_web_url(value):
    """Judged URLs are remembered (issue 12); a value that cannot be remembered, or is not text, is refused plainly."""
    assert urls.web_host(value) is None and not urls.is_web_url(value)


def test_a_remembered_judgement_is_the_same_as_a_fresh_one():
    for _attempt in range(2):
        assert urls.web_host("https://POK.tech./c/1") == ("pok.tech", False)
        assert urls.web_host("https://pok.tech@evil.example/") is None


def test_only_urls_of_a_usual_length_are_remembered():
    before = urls._remembered_web_host.cache_info().currsize  # noqa: SLF001 - the memory this bounds
    long_url = "https://pok.tech/c/" + "x" * urls.REMEMBERED_URL_LENGTH
    assert urls.web_host(long_url) == ("pok.tech", False)
    assert urls._remembered_web_host.cache_info().currsize == before  # noqa: SLF001
    urls.web_host("https://pok.tech/c/a-usual-one")
    assert urls._remembered_web_host.cache_info().currsize == before + 1  # noqa: SLF001
