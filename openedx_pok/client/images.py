"""
Downloading a public credential image from the location POK gives (E8 ``decrypted-image``, ``docs/pok-api.rst``).

The location is hostile input: it may point anywhere, be slow, be huge or redirect. So the download goes through the
same request machinery as the API (``transport.py``: a total deadline, a size cap on the decoded body, no
redirects), only to hosts on its own allow-list (``urls.host_allowed``), without the API key (the location is public
and may be on another host) and only for image content types.
"""
import requests

from openedx_pok.client.errors import failure_reason
from openedx_pok.client.transport import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_TIMEOUT,
    DeadlineExceeded,
    exchange,
    new_session,
)
from openedx_pok.client.urls import host_allowed
from openedx_pok.exceptions import PokNetworkError, PokResponseError

IMAGE_MAX_BYTES = 10 * 1024 * 1024


def _no_auth(request):
    """Send no credentials at all: not the API key, not a ``~/.netrc`` entry requests would otherwise add."""
    return request


def fetch_image(url, allowed_hosts, timeout=DEFAULT_TIMEOUT, max_bytes=IMAGE_MAX_BYTES,
                connect_timeout=DEFAULT_CONNECT_TIMEOUT, deadline=None):
    """
    Download a public credential image. Returns ``(content_type, bytes)``.

    ``deadline`` bounds the whole download (default ``timeout + connect_timeout``). Raises PokResponseError
    (``retryable=False``) for a location off the allowed hosts, a redirect, a non-image or too large answer;
    PokResponseError (retryable) for a 5xx; PokNetworkError when no complete answer arrived in time.
    """
    if not host_allowed(url, allowed_hosts):
        raise PokResponseError("The image location is not on an allowed POK host.", retryable=False)
    budget = timeout + connect_timeout if deadline is None else deadline
    with new_session(pool_maxsize=1) as session:
        session.auth = _no_auth
        try:
            answer = exchange(
                session, "GET", url, headers={"Accept": "image/*"}, budget=budget, connect_timeout=connect_timeout,
                read_timeout=timeout, max_bytes=max_bytes,
            )
        except DeadlineExceeded as exc:
            raise PokNetworkError(f"The image could not be downloaded within {budget:g} s.") from exc
        except requests.exceptions.ContentDecodingError as exc:
            raise PokResponseError("The image could not be decoded.", retryable=False, answered=True) from exc
        except requests.RequestException as exc:
            raise PokNetworkError(f"The image could not be downloaded ({failure_reason(exc)}).") from exc
    status = answer.status
    context = {"status_code": status, "answered": True}
    if 300 <= status < 400:
        # Never followed: the next location has not been checked against the allow-list.
        raise PokResponseError(f"The image location redirects (HTTP {status}); redirects are not followed.",
                               retryable=False, **context)
    content_type = answer.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if status != 200 or not content_type.startswith("image/"):
        raise PokResponseError(f"The image could not be downloaded (HTTP {status}).", retryable=status >= 500,
                               **context)
    if not answer.complete:
        raise PokResponseError("The image is larger than allowed.", retryable=False, **context)
    return content_type, answer.body
