"""
Pictures of credentials: the emitted credential's image (location, cache, download) and the staff template preview.

The certificate page never asks POK for anything: it reads the image location a task cached here
(:func:`cached_image_location`). Downloads and previews happen on a staff or owner request, from allow-listed hosts
only, and their results are cached so repeated clicks do not turn into repeated POK calls.
"""
import logging
from urllib.parse import urlsplit

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from openedx_pok import caching, compat
from openedx_pok.client import fetch_image, host_allowed
from openedx_pok.compat import CertificateInfo
from openedx_pok.course_setup import configuration
from openedx_pok.course_setup.payload import IssuanceContext, build_preview_payload
from openedx_pok.exceptions import PokApiError, PokConfigurationError, PokRateLimitedError
from openedx_pok.issuance.states import CredentialStatus
from openedx_pok.models import PokCertificate

log = logging.getLogger(__name__)


def allowed_image_hosts():
    """Hosts images may be fetched from: the configured ones plus the API hosts of the POK accounts."""
    api_host = urlsplit(settings.POK_API_URL).hostname or ""
    return [host for host in [*settings.POK_IMAGE_HOSTS, api_host, *configuration.account_api_hosts()] if host]


def image_url_allowed(url):
    """Whether the browser may be sent to ``url`` for an image (same allowlist as server-side fetches)."""
    return host_allowed(url, allowed_image_hosts())


def _image_cache_key(row):
    return f"openedx_pok:image:{row.pok_credential_id}"


def cached_image_location(row):
    """The image location if a task already cached it, else ""; never asks POK (used by the certificate page)."""
    location = caching.get(_image_cache_key(row)) or ""
    return location if image_url_allowed(location) else ""


def credential_image_location(row):
    """The public image URL of an emitted credential (POK ``decrypted-image``), cached; PokApiError on failure."""
    location = caching.get(_image_cache_key(row))
    if location is None:
        location = configuration.get_client(row.account).get_credential_image(row.pok_credential_id)
        caching.set(_image_cache_key(row), location, settings.POK_IMAGE_CACHE_TIMEOUT)
    return location


def cache_image_location(row_id):
    """
    Cache the emitted credential's image location for the embedded certificate page, which never asks POK itself.

    Failures are logged only: the page then shows the link to POK without the image and asks again later.
    """
    row = PokCertificate.objects.filter(id=row_id, status=CredentialStatus.EMITTED).one()
    if row is None or not row.pok_credential_id:
        return None
    try:
        return credential_image_location(row)
    except (PokApiError, PokConfigurationError) as exc:
        log.warning("POK: image location of credential %s unavailable (%s)", row_id, type(exc).__name__)
        return None


# Image bytes kept in the cache up to this size (larger images are downloaded each time, rate-limited all the same).
MAX_CACHED_IMAGE_BYTES = 2 * 1024 * 1024
# At most one image download per credential in this many seconds when the image is not cached.
IMAGE_DOWNLOAD_INTERVAL = 10


def credential_image(row):
    """
    (content_type, bytes) of the credential image, fetched only from allowed hosts, cached and rate-limited.

    The download endpoint is reachable by the learner and staff: repeated clicks are served from the cache, and a
    burst of concurrent uncached requests makes one POK download (the others get "try again shortly").
    """
    key = f"openedx_pok:image-bytes:{row.pok_credential_id}"
    cached = caching.get(key)
    if cached is not None:
        return cached
    slot = f"openedx_pok:image-download:{row.pok_credential_id}"
    if not caching.add(slot, 1, IMAGE_DOWNLOAD_INTERVAL):
        raise PokRateLimitedError("The credential image is being downloaded; try again shortly.",
                                  retry_after=IMAGE_DOWNLOAD_INTERVAL)
    try:
        image = fetch_image(credential_image_location(row), allowed_image_hosts(), timeout=settings.POK_TIMEOUT,
                            connect_timeout=settings.POK_CONNECT_TIMEOUT)
    except Exception:
        caching.delete(slot)  # a failure is not cached: the next click may try again
        raise
    if len(image[1]) <= MAX_CACHED_IMAGE_BYTES:
        caching.set(key, image, settings.POK_IMAGE_CACHE_TIMEOUT)
    return image


def preview_language(language):
    """
    The language a staff preview is rendered in: one of the LMS's languages (``settings.LANGUAGES``), else the LMS's
    default language (``LANGUAGE_CODE``), else None.

    Bounding it keeps ``?language=`` from turning into one POK call per invented value.
    """
    codes = {code.lower(): code for code, _name in getattr(settings, "LANGUAGES", ())}
    for wanted in (language, settings.LANGUAGE_CODE):
        wanted = str(wanted or "").strip().lower().replace("_", "-")
        if wanted in codes or wanted.split("-")[0] in codes:
            return codes.get(wanted) or codes[wanted.split("-")[0]]
    return None


def preview_image_url(course_key, language=None):
    """
    URL of POK's preview of the course's template with the course's real data and a sample learner, cached.

    Raises IssuanceError for a broken mapping or template (the reason says what to fix) and PokApiError when POK
    fails. Called from a staff-only view, never from the certificate page itself.
    """
    language = preview_language(language)
    setup = configuration.course_setup(course_key)
    key = f"openedx_pok:preview:{configuration.digest(setup.account, course_key, setup.template_id, language)}"
    url = caching.get(key)
    if url is not None:
        return url
    template = configuration.template(setup.template_id, setup.account)
    now = timezone.now()
    context = IssuanceContext(
        course=setup.course, template=template, email="learner@example.com", profile_name=_("Sample Learner"),
        certificate=CertificateInfo(status="downloadable", verify_uuid="0" * 32, mode="verified", grade="1.0",
                                    created=now, modified=now),
        language=language, platform_name=compat.get_platform_name(), emission_type=setup.emission_type,
        date_format=settings.POK_DATE_FORMAT, skip_acceptance=True, grade=1.0,
        parameter_sources=setup.parameter_sources,
    )
    url = configuration.get_client(setup.account).preview_template(build_preview_payload(context))
    caching.set(key, url, settings.POK_IMAGE_CACHE_TIMEOUT)
    return url
