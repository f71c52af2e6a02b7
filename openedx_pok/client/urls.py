"""
URLs of the POK client: building API URLs from ids, and judging URLs that POK hands back.

Two directions, two rules. URLs the client *builds* join quoted segments onto the configured base, so an id can
never change the path (see ``docs/pok-api.rst``, "Hosts"). URLs POK *returns* (image locations, credential pages)
are hostile input: the plugin either fetches them server side or sends a learner's browser to them, so a URL is
only accepted when every parser that will ever see it agrees on where it points. ``urllib.parse`` (this code),
``urllib3`` (what ``requests`` connects to) and a browser's WHATWG parser disagree on backslashes, whitespace,
userinfo and percent-encoded hosts; such URLs are refused instead of being interpreted.
"""
import ipaddress
import re
from functools import lru_cache
from urllib.parse import quote, urlsplit

from urllib3.util import parse_url

WEB_SCHEMES = ("http", "https")

# Anything a browser strips, rewrites or treats as a separator while urlsplit keeps it (or the reverse):
# backslash (a "/" for browsers), every whitespace (urlsplit silently drops tab/CR/LF) and control characters.
_AMBIGUOUS_CHARACTERS = re.compile(r"[\\\s\x00-\x1f\x7f]")
# One DNS label as browsers and resolvers accept it; "_" appears in real CDN host names.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\Z")
# A last label browsers read as a number make the whole host an IPv4 address ("0x7f.1" is 127.0.0.1).
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")


def quote_segment(segment):
    """
    Quote one path segment (an id) so it cannot change the path: ``a/b`` becomes ``a%2Fb``.

    ``.`` and ``..`` are refused because requests would unquote ``%2E`` and urllib3 then removes dot segments, so
    no quoting can make them safe; an empty id would address the collection instead of an item.
    """
    text = str(segment)
    if text in ("", ".", ".."):
        raise ValueError(f"Invalid POK id {text!r}")
    return quote(text, safe="")


def build_url(api_url, *segments):
    """
    Join quoted segments onto the base URL.

    ``urljoin`` is not used: it drops the last segment of a base without a trailing slash (a path prefix).
    """
    return api_url.rstrip("/") + "/" + "/".join(quote_segment(segment) for segment in segments)


def web_host(url):
    """
    ``(host, is_ip)`` of an absolute http(s) URL that all parsers read the same way, else None.

    The host is lower case without the trailing dot of a fully qualified name; ``is_ip`` is True for IPv4 and IPv6
    literals, which only ever match an allowed host exactly.
    """
    if not isinstance(url, str) or not url:
        return None
    return _remembered_web_host(url) if len(url) <= REMEMBERED_URL_LENGTH else _web_host(url)


# The same few URLs are judged over and over (a credential's page address is checked when it is stored and each time
# it is shown; the account hosts on every image fetch), and parsing each twice is the costly part: answers are kept,
# for URLs of a usual length only, so that a hostile answer full of huge URLs cannot fill the memory.
REMEMBERED_URL_LENGTH = 2048


@lru_cache(maxsize=4096)
def _remembered_web_host(url):
    return _web_host(url)


def _web_host(url):
    if _AMBIGUOUS_CHARACTERS.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port that is not a number in range
        theirs = parse_url(url)
    except ValueError:  # urllib3's LocationParseError is a ValueError too
        return None
    scheme = parts.scheme.lower()
    if scheme not in WEB_SCHEMES or (theirs.scheme or "").lower() != scheme:
        return None
    # Userinfo is how "https://pok.tech@evil.com" points elsewhere; no POK URL needs it.
    if "@" in parts.netloc or theirs.auth is not None:
        return None
    host = parts.hostname or ""
    their_host = (theirs.host or "").lower()
    if their_host.startswith("[") and their_host.endswith("]"):
        their_host = their_host[1:-1]
    if not host or host != their_host or port != theirs.port:
        return None
    return _checked_host(host)


def _checked_host(host):
    """``(host, is_ip)`` for a plain DNS name or an IP literal; None for anything a browser would rewrite."""
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host)), True
        except ValueError:  # includes zone ids ("fe80::1%eth0")
            return None
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    if _NUMERIC_LABEL.match(labels[-1]):
        # Browsers parse this as IPv4, including shorthand forms; only the canonical dotted quad is accepted.
        try:
            return str(ipaddress.IPv4Address(name)), True
        except ValueError:
            return None
    return name, False


def is_web_url(url):
    """
    Whether ``url`` is an absolute http(s) URL with a host, read identically by this code, urllib3 and browsers.

    The only kind of link a learner is ever sent to (a credential's ``viewUrl``) and the only kind fetched.
    """
    return web_host(url) is not None


def host_allowed(url, allowed_hosts):
    """
    Whether ``url`` is a web URL (see :func:`is_web_url`) on one of ``allowed_hosts`` or a subdomain of one.

    Guards every server-side image fetch and every image address shown to a browser, so the plugin never becomes a
    proxy to arbitrary or internal addresses. ``pok.tech`` allows ``x.pok.tech`` but never ``evilpok.tech``; an IP
    address is allowed only when listed exactly.
    """
    checked = web_host(url)
    if checked is None:
        return False
    host, is_ip = checked
    for allowed in allowed_hosts or ():
        allowed = str(allowed or "").strip().lower().strip(".").strip("[]")
        if not allowed:
            continue
        if host == allowed or (not is_ip and host.endswith("." + allowed)):
            return True
    return False
