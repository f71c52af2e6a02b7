"""
Client of the POK (pok.tech) API; the contract it implements is ``docs/pok-api.rst``.

- ``http``: :class:`PokApiClient`, one method per endpoint, and :func:`fetch_image`, over one request path (a total
  deadline, a size cap, no redirects);
- ``data``: the frozen data classes of POK's answers and the strict decoding of answer bodies;
- ``errors``: HTTP statuses and network failures turned into the typed exceptions of :mod:`openedx_pok.exceptions`;
- ``urls``: building API URLs from ids and judging the URLs POK hands back (``host_allowed``, ``is_web_url``).

It knows HTTP and the POK API only (no models, no settings). Other modules import from here, not from the
submodules, so the split can change without touching them.
"""
from openedx_pok.client.data import Credential, Organization, Page, PageList, Template, TemplateList, TemplateParameter
from openedx_pok.client.errors import REDACTED, parse_error_message, parse_retry_after
from openedx_pok.client.http import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_LIST_LIMIT,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_TIMEOUT,
    IMAGE_MAX_BYTES,
    POOL_MAXSIZE,
    USER_AGENT,
    PokApiClient,
    fetch_image,
)
from openedx_pok.client.urls import build_url, host_allowed, is_usable_id, is_web_url, quote_segment

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT", "DEFAULT_LIST_LIMIT", "DEFAULT_MAX_RESPONSE_BYTES", "DEFAULT_TIMEOUT", "IMAGE_MAX_BYTES",
    "POOL_MAXSIZE", "REDACTED", "USER_AGENT", "Credential", "Organization", "Page", "PageList", "PokApiClient",
    "Template", "TemplateList", "TemplateParameter", "build_url", "fetch_image", "host_allowed", "is_usable_id",
    "is_web_url", "parse_error_message", "parse_retry_after", "quote_segment",
]
