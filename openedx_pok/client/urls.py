"""
URLs of the POK client: building API URLs from ids, and judging the URLs POK hands back.

URLs the client *builds* join quoted segments onto the configured base, so an id can never change the path
(``docs/pok-api.rst``, "Hosts"). URLs POK *returns* (image locations, credential pages) are hostile input: the plugin
fetches them server side or sends a learner's browser to them, so one is accepted only when every parser that will
see it agrees on where it points. ``urllib.parse`` (this code), ``urllib3`` (what ``requests`` connects to) and
browsers disagree on backslashes, whitespace, userinfo and encoded hosts; such URLs are refused, not interpreted.
"""
import ipaddress
import re
from functools import lru_cache
from urllib.parse import quote, urlsplit

from urllib3.util import parse_url

WEB_SCHEMES = ("http", "https")
# The same few URLs are judged over and over (a credential's page on each view, the image hosts on each fetch), so
# judgements are remembered; only for URLs of a usual length, so hostile answers full of huge URLs cannot fill memory.
REMEMBERED_URL_LENGTH = 2048

# What a browser strips, rewrites or treats as a separator while urlsplit keeps it (or the reverse): backslash (a "/"
# to browsers), any whitespace (urlsplit silently drops tab, CR and LF) and control characters.
_AMBIGUOUS_CHARACTERS = re.compile(r"[\\\s\x00-\x1f\x7f]")
# One DNS label as browsers and resolvers accept it; "_" appears in real CDN host names.
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?\Z")
# A numeric last label makes browsers read the whole host as an IPv4 address ("0x7f.1" is 127.0.0.1).
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)\Z")


def is_usable_id(segment):
    """
    Whether an id can be a path segment: ``.`` and ``..`` cannot (requests unquotes ``%2E``, urllib3 then removes
    dot segments), nor "" (it would address the collection). Callers skip such ids before calling POK with them.
    """
    return str(segment) not in ("", ".", "..")


def quote_segment(segment):
    """One path segment (an id) quoted so it cannot change the path (``a/b``: ``a%2Fb``); ValueError for an id
    :func:`is_usable_id` refuses."""
    text = str(segment)
    if not is_usable_id(text):
        raise ValueError(f"Invalid POK id {text!r}")
    return quote(text, safe="")


def build_url(api_url, *segments):
    """Join quoted segments onto the base URL; not ``urljoin``, which drops the last segment of a path prefix."""
    return api_url.rstrip("/") + "/" + "/".join(quote_segment(segment) for segment in segments)


def web_host(url):
    """
    ``(host, is_ip)`` of an absolute http(s) URL every parser reads the same way, else None: the host in lower case
    without a trailing dot; ``is_ip`` (an IPv4 or IPv6 literal) means it only matches an allowed host exactly.
    """
    if not isinstance(url, str) or not url:
        return None
    return _remembered_web_host(url) if len(url) <= REMEMBERED_URL_LENGTH else _web_host(url)


@lru_cache(maxsize=4096)
def _remembered_web_host(url):
    return _web_host(url)


def _web_host(url):
    if _AMBIGUOUS_CHARACTERS.search(url):
        return None
    try:
        parts, theirs = urlsplit(url), parse_url(url)
        port = parts.port  # raises for a port that is not a number in range
    except ValueError:  # urllib3's LocationParseError is a ValueError too
        return None
    scheme = parts.scheme.lower()
    if scheme not in WEB_SCHEMES or (theirs.scheme or "").lower() != scheme:
        return None
    # Userinfo is how "https://pok.tech@evil.com" points elsewhere; no POK URL needs it.
    if "@" in parts.netloc or theirs.auth is not None:
        return None
    host, their_host = parts.hostname or "", (theirs.host or "").lower().removeprefix("[").removesuffix("]")
    if not host or host != their_host or port != theirs.port:
        return None
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host)), True
        except ValueError:  # includes zone ids ("fe80::1%eth0")
            return None
    name = host.removesuffix(".")
    labels = name.split(".")
    if not all(_LABEL.match(label) for label in labels):
        return None
    if _NUMERIC_LABEL.match(labels[-1]):
        try:  # browsers read it as IPv4, shorthand forms included: only the canonical dotted quad is accepted
            return str(ipaddress.IPv4Address(name)), True
        except ValueError:
            return None
    return name, False


def is_web_url(url):
    """Whether ``url`` is an http(s) URL all parsers read alike: the only kind a learner is sent to or fetched."""
    return web_host(url) is not None


def host_allowed(url, allowed_hosts):
    """
    Whether ``url`` is a web URL on one of ``allowed_hosts`` or a subdomain of one (``pok.tech`` allows
    ``x.pok.tech``, never ``evilpok.tech``; an IP only when listed exactly). Guards every image fetched or shown, so
    the plugin never becomes a proxy to arbitrary or internal addresses.
    """
    checked = web_host(url)
    if checked is None:
        return False
    host, is_ip = checked
    for allowed in allowed_hosts or ():
        allowed = str(allowed or "").strip().lower().strip(".").strip("[]")
        if allowed and (host == allowed or (not is_ip and host.endswith("." + allowed))):
            return True
    return False
