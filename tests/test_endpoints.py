"""
The plugin's HTTP endpoints under ``/pok/`` (credential status, image download, staff template preview), the share
links they return, and the host allowlist that keeps the server from fetching anything but POK's images.

Requests go through Django's test client against the sandbox LMS URLs (the plugin's ``url_config`` mounted like the
LMS does) and POK is the simulator over real HTTP, so each test also counts the POK requests a view costs.
"""
import socket
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import pytest
from django.core.cache import cache
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.factories import CourseOverviewFactory, GeneratedCertificateFactory, StaffFactory, UserFactory
from lms_sandbox.models import UserProfile
from openedx_pok import api
from openedx_pok.client import fetch_image, host_allowed
from openedx_pok.exceptions import PokResponseError
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from openedx_pok.pages import sharing
from pok_simulator import Fault
from test_utils import credential_of

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def fresh_cache():
    cache.clear()
    yield
    cache.clear()


def status_url(reference):
    return f"/pok/credentials/{reference}/status"


def image_url(reference):
    return f"/pok/credentials/{reference}/image"


def preview_url(course_id, language="en"):
    return f"/pok/preview/{course_id}/image?language={language}"


@pytest.fixture
def emitted(pok, course, learner, lms):
    """The learner's credential, really issued on the simulator."""
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED, row.status_reason
    row.certificate = certificate
    return row


def set_state(row, **fields):
    PokCertificate.objects.filter(id=row.id).update(**fields)
    row.refresh_from_db()
    return row


# --- status endpoint --------------------------------------------------------------------------------------------------


def test_owner_gets_the_status_of_an_emitted_credential(client, pok, emitted, learner, course):
    client.force_login(learner)
    before = pok.count()

    response = client.get(status_url(emitted.uuid))

    assert response.status_code == 200
    body = response.json()
    assert body["reference"] == str(emitted.uuid)
    assert body["course_id"] == str(course.id)
    assert body["status"] == "emitted" and body["emitted"] is True
    assert body["view_url"] == emitted.view_url
    assert [link["id"] for link in body["share"]] == ["linkedin"]
    assert body["share"][0]["url"].startswith("https://www.linkedin.com/profile/add?")
    assert set(body) == {"reference", "course_id", "status", "emitted", "view_url", "share"}
    assert pok.count() == before  # answered from the database


def test_staff_get_any_status(client, emitted):
    client.force_login(StaffFactory())
    response = client.get(status_url(emitted.uuid))
    assert response.status_code == 200 and response.json()["status"] == "emitted"


def test_another_learner_gets_the_same_404_as_for_a_missing_credential(client, emitted):
    client.force_login(UserFactory())
    other = client.get(status_url(emitted.uuid))
    missing = client.get(status_url(uuid4()))
    assert other.status_code == missing.status_code == 404
    assert other.content == missing.content
    assert client.get(status_url(emitted.verify_uuid)).status_code == 404


def test_anonymous_is_refused(client, emitted):
    response = client.get(status_url(emitted.uuid))
    assert response.status_code in (401, 403)
    assert emitted.view_url not in response.content.decode()


@pytest.mark.parametrize("reference", [
    str(uuid4()), uuid4().hex, "0" * 32, "not-a-reference", "..", "%2e%2e", "' OR 1=1 --", "x" * 300,
])
def test_unknown_references_are_404(client, emitted, learner, reference):
    client.force_login(learner)
    assert client.get(status_url(reference)).status_code == 404
    assert client.get(image_url(reference)).status_code == 404


def test_credential_is_addressed_by_its_uuid_or_the_certificate_verify_uuid(client, emitted, learner):
    client.force_login(learner)
    assert emitted.verify_uuid == emitted.certificate.verify_uuid
    for reference in (str(emitted.uuid), emitted.uuid.hex, str(emitted.uuid).upper(), emitted.verify_uuid,
                      emitted.verify_uuid.upper()):
        response = client.get(status_url(reference))
        assert response.status_code == 200, reference
        assert response.json()["reference"] == str(emitted.uuid)


def test_enumerable_integer_ids_do_not_address_credentials(client, emitted, learner):
    assert PokCertificate.objects.filter(id=emitted.id).exists()
    for user in (learner, StaffFactory()):
        client.force_login(user)
        for reference in (emitted.id, str(emitted.id), f"{emitted.id:032d}", 1, 0, -1):
            assert client.get(status_url(reference)).status_code == 404, reference
            assert client.get(image_url(reference)).status_code == 404, reference
    assert api.get_credential_by_reference(emitted.id) is None
    assert api.get_credential_by_reference(None) is None


@pytest.mark.parametrize("status, public", [
    (CredentialStatus.PENDING, "in_progress"),
    (CredentialStatus.REQUESTING, "in_progress"),
    (CredentialStatus.IN_PROGRESS, "in_progress"),
    (CredentialStatus.HELD, "delayed"),
    (CredentialStatus.FAILED, "delayed"),
    (CredentialStatus.REVOKED, "revoked"),
])
def test_status_before_or_after_emission_has_no_page_no_links_and_no_reason(client, pok, emitted, learner, status,
                                                                            public):
    set_state(emitted, status=status, status_reason="Internal reason: POK said HTTP 500 for ada@example.com")
    client.force_login(learner)
    before = pok.count()

    response = client.get(status_url(emitted.uuid))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == public and body["emitted"] is False
    assert body["view_url"] is None and body["share"] == []
    assert "Internal reason" not in response.content.decode() and "ada@example.com" not in response.content.decode()
    assert pok.count() == before


def test_status_of_a_credential_whose_certificate_came_before_the_plugin(client, pok, learner, lms):
    """The status page's own reference works as soon as the render step records the credential."""
    course = CourseOverviewFactory(id=CourseKey.from_string("course-v1:PokX+Old+2024"))
    certificate = GeneratedCertificateFactory(user=learner, course_id=course.id)
    CertificateTemplate.objects.create(course_key=course.id, template_id="tpl-basic")
    assert client.get(f"/certificates/{certificate.verify_uuid}").status_code == 200
    row = credential_of(learner, course)
    client.force_login(learner)
    response = client.get(status_url(row.uuid))
    assert response.status_code == 200 and response.json()["status"] == "in_progress"


def test_held_credential_is_addressed_by_the_certificate_verify_uuid(client, pok, course, lms):
    learner = UserFactory(profile__name="")
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.HELD
    client.force_login(learner)
    response = client.get(status_url(certificate.verify_uuid))
    assert response.status_code == 200 and response.json()["status"] == "delayed"


# --- image download ---------------------------------------------------------------------------------------------------


def test_owner_downloads_the_credential_image(client, pok, emitted, learner):
    client.force_login(learner)

    response = client.get(image_url(emitted.uuid))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    assert response["Content-Disposition"] == 'attachment; filename="Verifiable-Credentials-101.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert pok.count("get_credential_image") == 1 and pok.count("image_file") == 1

    # The image is cached: the next downloads ask POK for nothing.
    for _ in range(20):
        assert client.get(image_url(emitted.verify_uuid)).status_code == 200
    assert pok.count("get_credential_image") == 1 and pok.count("image_file") == 1


def test_staff_download_any_credential_image(client, pok, emitted):
    client.force_login(StaffFactory())
    response = client.get(image_url(emitted.uuid))
    assert response.status_code == 200 and response.content.startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("title, filename", [
    ('../../etc/passwd"\r\nX: y', "etc-passwd-X-y.png"),
    ("", "credential.png"),
    ("/", "credential.png"),
    ("Introducción a la programación — 2026", "Introducci-n-a-la-programaci-n-2026.png"),
    ("a" * 255, "a" * 80 + ".png"),
    ("C:\\Windows\\system32\\cmd.exe", "C-Windows-system32-cmd-exe.png"),
])
def test_download_filename_is_always_safe(client, pok, emitted, learner, title, filename):
    set_state(emitted, title=title)
    client.force_login(learner)
    response = client.get(image_url(emitted.uuid))
    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'
    assert not response.has_header("X")
    disposition = response["Content-Disposition"]
    assert "\r" not in disposition and "\n" not in disposition and ".." not in disposition
    assert disposition.count('"') == 2 and "/" not in disposition and "\\" not in disposition


@pytest.mark.parametrize("status", [
    CredentialStatus.PENDING, CredentialStatus.REQUESTING, CredentialStatus.IN_PROGRESS, CredentialStatus.HELD,
    CredentialStatus.FAILED, CredentialStatus.REVOKED,
])
def test_no_image_before_emission_or_after_revocation(client, pok, emitted, learner, status):
    set_state(emitted, status=status)
    client.force_login(learner)
    before = pok.count()
    assert client.get(image_url(emitted.uuid)).status_code == 404
    assert pok.count() == before


def test_other_learners_and_anonymous_get_no_image(client, pok, emitted):
    before = pok.count()
    assert client.get(image_url(emitted.uuid)).status_code in (401, 403)
    client.force_login(UserFactory())
    assert client.get(image_url(emitted.uuid)).status_code == 404
    assert client.get(image_url(emitted.verify_uuid)).status_code == 404
    assert pok.count() == before


@pytest.mark.parametrize("fault", [
    Fault("status", endpoint="get_credential_image", status=503, times=None),
    Fault("drop", endpoint="get_credential_image", times=None),
    Fault("status", endpoint="image_file", status=500, times=None),
    Fault("malformed_json", endpoint="get_credential_image", times=None),
], ids=["location-503", "location-dropped", "image-500", "location-malformed"])
def test_pok_down_makes_the_image_unavailable_with_a_friendly_message(client, pok, emitted, learner, fault):
    pok.add_fault(fault)
    client.force_login(learner)

    response = client.get(image_url(emitted.uuid))

    assert response.status_code == 503
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert "not available right now" in text
    for detail in ("simulated", "HTTP", pok.url, "127.0.0.1", pok.api_key):
        assert detail not in text
    # Nothing wrong was cached: once POK is back the image downloads.
    pok.clear_faults()
    assert client.get(image_url(emitted.uuid)).status_code == 200


def test_image_location_outside_the_allowed_hosts_is_never_fetched(client, settings, pok, emitted, learner):
    # The API is reached as "localhost" while POK answers with image locations on 127.0.0.1, which is therefore
    # neither the API host nor a configured image host.
    settings.POK_API_URL = pok.url.replace("127.0.0.1", "localhost")
    settings.POK_IMAGE_HOSTS = []
    client.force_login(learner)

    response = client.get(image_url(emitted.uuid))

    assert response.status_code == 503 and "not available right now" in response.content.decode()
    assert pok.count("get_credential_image") == 1  # the location was asked for ...
    assert pok.count("image_file") == 0  # ... and never downloaded


def test_cached_location_on_a_foreign_host_is_not_fetched(client, pok, emitted, learner):
    cache.set(f"openedx_pok:image:{emitted.pok_credential_id}", "http://169.254.169.254/latest/meta-data/")
    client.force_login(learner)
    assert client.get(image_url(emitted.uuid)).status_code == 503
    assert pok.count("get_credential_image") == 0 and pok.count("image_file") == 0


def test_location_that_is_not_an_image_is_refused(client, pok, emitted, learner):
    cache.set(f"openedx_pok:image:{emitted.pok_credential_id}", emitted.view_url)  # an HTML page on the POK host
    client.force_login(learner)
    response = client.get(image_url(emitted.uuid))
    assert response.status_code == 503
    assert b"<html" not in response.content.lower()


# --- host allowlist ---------------------------------------------------------------------------------------------------

ALLOWED = ["pok.tech", "credentity.xyz"]


@pytest.mark.parametrize("url", [
    "https://pok.tech/images/1.png",
    "https://sub.pok.tech/x",
    "https://a.b.credentity.xyz/i.png",
    "https://POK.TECH/x",
    "https://pok.tech./x",
    "https://pok.tech:8443/x",
    "http://pok.tech/x",
    "https://pok.tech/x?next=https://evil.com",
])
def test_host_allowed_accepts_pok_hosts(url):
    assert host_allowed(url, ALLOWED) is True


@pytest.mark.parametrize("url", [
    "http://evil.com@pok.tech/x",
    "https://user:password@pok.tech/x",
    "https://pok.tech@evil.com/x",
    "https://pok.tech:443@evil.com/x",
    "https://pok.tech\\@evil.com/x",
    "https://pok.tech.evil.com/x",
    "https://evilpok.tech/x",
    "https://pok.techevil.com/x",
    "https://evil.com/pok.tech",
    "https://evil.com#@pok.tech",
    "https://evil.com?.pok.tech",
    "https://pok.tech%2eevil.com/x",
    "file:///etc/passwd",
    "file://pok.tech/etc/passwd",
    "ftp://pok.tech/x",
    "gopher://pok.tech/x",
    "javascript:alert(1)//pok.tech",
    "data:image/png;base64,AAAA",
    "//pok.tech/x",
    "pok.tech/x",
    "/images/x.png",
    "https:///x",
    "https://[invalid",
    "http://127.0.0.1/x",
    "http://localhost/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::1]/x",
    "",
    None,
])
def test_host_allowed_refuses_everything_else(url):
    assert host_allowed(url, ALLOWED) is False


def test_host_allowed_with_an_empty_or_mixed_case_allowlist():
    assert host_allowed("https://pok.tech/x", []) is False
    assert host_allowed("https://pok.tech/x", ["POK.Tech"]) is True


def test_fetch_image_refuses_a_disallowed_url_without_any_request(pok):
    target = f"{pok.url}/images/anything.png"
    for url, allowed in [
        (target, ["pok.tech"]),
        (target.replace("http://", "http://evil.com@"), ["127.0.0.1"]),
        (target.replace("http://", "ftp://"), ["127.0.0.1"]),
        ("file:///etc/passwd", ["127.0.0.1", "pok.tech"]),
    ]:
        with pytest.raises(PokResponseError) as raised:
            fetch_image(url, allowed)
        assert raised.value.retryable is False
    assert pok.count() == 0


@pytest.fixture
def redirecting_server(pok):
    """An HTTP server on "localhost" that answers every request with a redirect to the simulator's image files."""
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            self.send_response(302)
            self.send_header("Location", f"{pok.url}/images/redirected.png")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_fetch_image_does_not_follow_a_redirect_off_the_allowed_hosts(pok, redirecting_server):
    base, seen = redirecting_server
    with pytest.raises(PokResponseError):
        fetch_image(f"{base}/image.png", ["localhost"], timeout=2)
    assert seen == ["/image.png"]
    assert pok.count() == 0


def test_localhost_resolves_for_the_allowlist_tests():
    assert socket.gethostbyname("localhost") == "127.0.0.1"


# --- staff preview image ----------------------------------------------------------------------------------------------


def test_staff_preview_redirects_to_the_pok_preview_and_is_cached(client, pok, course):
    client.force_login(StaffFactory())

    first = client.get(preview_url(course.id))

    assert first.status_code == 302
    location = first["Location"]
    assert location.startswith(f"{pok.url}/images/preview-")
    assert urlsplit(location).hostname == urlsplit(pok.url).hostname  # the API host is allowed
    assert pok.count("preview_template") == 1
    sent = [request for request in pok.requests if request.endpoint == "preview_template"][0].body
    assert sent["credential"]["title"] == "Verifiable Credentials 101"
    assert sent["customization"]["template"]["id"] == "tpl-basic"
    calls = pok.count()

    second = client.get(preview_url(course.id))
    assert second.status_code == 302 and second["Location"] == location
    assert pok.count() == calls  # cached: no new POK request


def test_preview_uses_the_default_template_when_the_mapping_has_none(client, settings, pok, course):
    settings.POK_DEFAULT_TEMPLATE_ID = "tpl-grade"
    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="")
    client.force_login(StaffFactory())
    assert client.get(preview_url(course.id)).status_code == 302
    sent = [request for request in pok.requests if request.endpoint == "preview_template"][0].body
    assert sent["customization"]["template"]["id"] == "tpl-grade"


@pytest.mark.parametrize("who", ["anonymous", "learner"])
def test_preview_image_is_for_staff_only(client, pok, course, learner, who):
    if who == "learner":
        client.force_login(learner)
    response = client.get(preview_url(course.id))
    assert response.status_code == 403
    assert pok.count() == 0


def test_preview_of_an_invalid_course_id_is_404(client, pok):
    client.force_login(StaffFactory())
    assert client.get(preview_url("not-a-course")).status_code == 404
    assert pok.count() == 0


def _no_template_id(pok, course):
    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="")
    return "POK_DEFAULT_TEMPLATE_ID"


def _template_deleted(pok, course):
    pok.remove_template("tpl-basic")
    return "tpl-basic"


def _unresolvable_parameter(pok, course):
    pok.add_template("tpl-odd", "Odd", parameters=[("grade", "Grade"), ("shoe_size", "Shoe size")])
    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="tpl-odd")
    return "shoe_size"


def _not_mapped(pok, course):
    CertificateTemplate.objects.filter(course_key=course.id).delete()
    return "not mapped"


def _course_missing(pok, course):
    CertificateTemplate.objects.create(course_key=CourseKey.from_string("course-v1:DemoX+Gone+2026"),
                                       template_id="tpl-basic")
    return "does not exist"


@pytest.mark.parametrize("break_it", [
    _no_template_id, _template_deleted, _unresolvable_parameter, _not_mapped, _course_missing,
], ids=lambda f: f.__name__.strip("_"))
def test_broken_mapping_is_a_clear_409(client, pok, course, break_it):
    expected = break_it(pok, course)
    course_id = "course-v1:DemoX+Gone+2026" if break_it is _course_missing else course.id
    client.force_login(StaffFactory())

    response = client.get(preview_url(course_id))

    assert response.status_code == 409
    assert response["Content-Type"].startswith("text/plain")
    assert expected in response.content.decode()
    assert pok.count("preview_template") == 0


@pytest.mark.parametrize("fault", [
    Fault("status", status=503, times=None),
    Fault("status", endpoint="preview_template", status=500, times=None),
    Fault("drop", times=None),
], ids=["all-503", "preview-500", "dropped"])
def test_pok_down_makes_the_preview_a_502(client, pok, course, fault):
    pok.add_fault(fault)
    client.force_login(StaffFactory())

    response = client.get(preview_url(course.id))

    assert response.status_code == 502
    assert response["Content-Type"].startswith("text/plain")
    assert "POK could not render the preview right now" in response.content.decode()
    assert pok.api_key not in response.content.decode()
    pok.clear_faults()
    assert client.get(preview_url(course.id)).status_code == 302  # a failure is not cached


def test_preview_on_a_host_outside_the_allowlist_is_not_followed(client, settings, pok, course):
    settings.POK_API_URL = pok.url.replace("127.0.0.1", "localhost")
    settings.POK_IMAGE_HOSTS = []
    client.force_login(StaffFactory())
    response = client.get(preview_url(course.id))
    assert response.status_code == 502
    assert "outside the allowed POK hosts" in response.content.decode()
    assert not response.has_header("Location")


# --- share links ------------------------------------------------------------------------------------------------------


def linkedin_params(url):
    assert url.startswith(sharing.LINKEDIN_ADD_TO_PROFILE + "?")
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_linkedin_link_describes_the_credential(emitted):
    params = linkedin_params(sharing.linkedin_add_to_profile_url(emitted))
    assert params["startTask"] == "CERTIFICATION_NAME"
    assert params["name"] == "Verifiable Credentials 101"
    assert params["organizationName"] == "Demo University" == emitted.emitter
    assert "organizationId" not in params
    assert params["certUrl"] == emitted.view_url
    assert params["certId"] == emitted.pok_credential_id
    assert (int(params["issueYear"]), int(params["issueMonth"])) == (emitted.emission_date.year,
                                                                     emitted.emission_date.month)


def test_linkedin_issue_date_is_the_real_emission_date(client, pok, learner, lms):
    course = CourseOverviewFactory(id=CourseKey.from_string("course-v1:PokX+Past+2024"), display_name="Past")
    earned = datetime(2024, 11, 15, 12, 0, tzinfo=UTC)
    certificate = GeneratedCertificateFactory(user=learner, course_id=course.id, created_date=earned)
    CertificateTemplate.objects.create(course_key=course.id, template_id="tpl-basic")
    lms.run(api.request_issuance, learner.id, course.id)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED
    assert pok.credentials[row.pok_credential_id]["credential"]["emissionDate"].startswith("2024-11-15")

    client.force_login(learner)
    link = client.get(status_url(certificate.verify_uuid)).json()["share"][0]
    params = linkedin_params(link["url"])
    assert (params["issueYear"], params["issueMonth"]) == ("2024", "11")


def test_linkedin_organization_id_when_configured(settings, emitted):
    settings.POK_LINKEDIN_ORGANIZATION_ID = "1337"
    params = linkedin_params(sharing.linkedin_add_to_profile_url(emitted))
    assert params["organizationId"] == "1337" and "organizationName" not in params
    settings.SANDBOX_SITE_CONFIGURATION = {"POK_LINKEDIN_ORGANIZATION_ID": "4242"}
    params = linkedin_params(sharing.linkedin_add_to_profile_url(emitted))
    assert params["organizationId"] == "4242"


@pytest.mark.parametrize("site, setting, expected", [
    (None, ["linkedin"], ["linkedin"]),
    (None, ["x", "facebook", "linkedin"], ["x", "facebook", "linkedin"]),
    ({"POK_SHARE_LINKS": ["x", "facebook"]}, ["linkedin"], ["x", "facebook"]),
    ({"POK_SHARE_LINKS": []}, ["linkedin"], []),
    ({"POK_SHARE_LINKS": ["myspace", "x"]}, ["linkedin"], ["x"]),
    ({"OTHER": 1}, ["facebook"], ["facebook"]),
])
def test_share_links_follow_the_site_configuration(client, settings, emitted, learner, site, setting, expected):
    settings.POK_SHARE_LINKS = setting
    if site is not None:
        settings.SANDBOX_SITE_CONFIGURATION = site
    client.force_login(learner)
    share = client.get(status_url(emitted.uuid)).json()["share"]
    assert [link["id"] for link in share] == expected
    for link in share:
        assert link["label"] and link["url"].startswith("https://")
        assert emitted.view_url in parse_qs(urlsplit(link["url"]).query).get(
            {"linkedin": "certUrl", "x": "url", "facebook": "u"}[link["id"]])


def test_share_links_on_the_embedded_page_follow_the_site_configuration(client, settings, emitted):
    settings.POK_CERTIFICATE_PAGE = "embed"
    settings.SANDBOX_SITE_CONFIGURATION = {"POK_SHARE_LINKS": ["x", "facebook"]}
    content = client.get(f"/certificates/{emitted.certificate.verify_uuid}").content.decode()
    assert "https://x.com/intent/post?" in content and "https://www.facebook.com/sharer/sharer.php?" in content
    assert "linkedin.com" not in content


def test_no_share_links_before_emission(client, pok, course, learner, lms, settings):
    settings.POK_SHARE_LINKS = ["linkedin", "x", "facebook"]
    pok.emission_mode = "async"
    lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.IN_PROGRESS and not row.view_url
    assert sharing.share_links(row) == []
    client.force_login(learner)
    body = client.get(status_url(row.uuid)).json()
    assert body["share"] == [] and body["view_url"] is None


def test_links_come_from_the_record_not_the_current_profile(emitted, learner):
    before = sharing.share_links(emitted)
    UserProfile.objects.filter(user=learner).update(name="Someone Else")
    emitted.refresh_from_db()
    assert sharing.share_links(emitted) == before
