"""
The learner's and staff's certificate page: what ``RenderPokCredential`` does on ``CertificateRenderStarted``.

Pages are requested through the sandbox LMS (``/certificates/<verify_uuid>`` and
``/certificates/course/<course_id>?preview=<mode>``), which calls the real ``CertificateRenderStarted.run_filter``;
cases the sandbox cannot reach (a revoked row behind a downloadable certificate, broken contexts) call that same
``run_filter`` directly. The render pipeline runs with ``fail_silently: False`` so that any exception other than the
three render exceptions would surface (as HTTP 500 in the sandbox, as the exception itself in direct calls).

Every test also checks the promise of docs/decisions/0004: viewing a page never makes a POK request.
"""
import json
import re
import time
from datetime import UTC, datetime

import pytest
from crum import set_current_request
from django.core.cache import cache
from django.db import connection
from django.test import Client, RequestFactory
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from opaque_keys.edx.keys import CourseKey
from openedx_filters.learning.filters import CertificateRenderStarted

from lms_sandbox.factories import CourseOverviewFactory, GeneratedCertificateFactory, StaffFactory, UserFactory
from lms_sandbox.models import GeneratedCertificate
from openedx_pok.issuance import machine
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from openedx_pok.pages import media
from pok_simulator import Fault
from test_utils import credential_of

pytestmark = pytest.mark.django_db

RENDER = "org.openedx.learning.certificate.render.started.v1"
STEP = "openedx_pok.pipeline.RenderPokCredential"
XSS = "<script>alert(1)</script>"
XSS_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
RENDER_EXCEPTIONS = (
    CertificateRenderStarted.RedirectToPage,
    CertificateRenderStarted.RenderCustomResponse,
    CertificateRenderStarted.RenderAlternativeInvalidCertificate,
)


@pytest.fixture(autouse=True)
def strict_render_pipeline(settings):
    """Only the plugin's step, and nothing swallowed: an unexpected exception must fail the test."""
    settings.OPEN_EDX_FILTERS_CONFIG = {RENDER: {"pipeline": [STEP], "fail_silently": False}}
    cache.clear()


# --- helpers --------------------------------------------------------------------------------------------------------


def page_of(certificate):
    return f"/certificates/{certificate.verify_uuid}"


def preview_of(course, mode="verified"):
    return f"/certificates/course/{course.id}?preview={mode}"


def certificate_with_row(user, course, **fields):
    """
    A downloadable certificate and the learner's credential row in the given state.

    Saving the certificate sends CERTIFICATE_CREATED, whose receiver records a pending row (its on-commit issuance
    never runs in these tests); the row is then put in the state the test needs.
    """
    certificate = GeneratedCertificateFactory(user=user, course_id=course.id)
    fields.setdefault("verify_uuid", certificate.verify_uuid)
    PokCertificate.objects.filter(user=user, course_key=course.id).update(**fields)
    return certificate, credential_of(user, course)


def emitted_fields(credential_id="cred-1", title="Verifiable Credentials 101", emitter="Demo University"):
    return {
        "status": CredentialStatus.EMITTED, "pok_credential_id": credential_id, "pok_state": "emitted",
        "view_url": f"https://pok.tech/view/{credential_id}", "title": title, "emitter": emitter,
        "emission_date": datetime(2025, 3, 14, 9, 30, tzinfo=UTC),
    }


def lms_context(user, course, certificate=None, **overrides):
    """A certificate render context shaped like the LMS's (the keys the plugin may read)."""
    certificate = certificate or GeneratedCertificate.objects.filter(user=user, course_id=course.id).first()
    context = {
        "course_id": str(course.id),
        "accomplishment_user_id": user.id,
        "username": user.username,
        "certificate_id_number": getattr(certificate, "verify_uuid", ""),
        "user_certificate": certificate,
        "certificate_data": {"course_title": course.certificate_title, "signatories": []},
        "platform_name": "Test Academy",
        "accomplishment_copy_name": getattr(getattr(user, "profile", None), "name", "") or user.username,
        "accomplishment_copy_course_name": course.display_name,
        "accomplishment_copy_course_org": course.org,
        "course_mode": "verified",
        "user_language": "en",
        "document_title": "Certificate",
        "share_url": "http://testserver/certificates/x",
    }
    context.update(overrides)
    return context


def render(context):
    """The LMS call: returns (context, custom_template) or raises one of the three render exceptions."""
    return CertificateRenderStarted.run_filter(context=context, custom_template=None)


def poll_config(response):
    match = re.search(r'<script id="pok-poll-config" type="application/json">(.*?)</script>',
                      response.content.decode(), re.S)
    assert match, "the status page embeds its polling configuration"
    return json.loads(match.group(1))


def assert_status_page(response, row):
    content = response.content.decode()
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert response["Cache-Control"] == "no-store"
    assert "Your credential is being issued" in content
    config = poll_config(response)
    assert config["statusUrl"] == f"/pok/credentials/{row.uuid}/status"
    assert config["pollSeconds"] >= 1
    # Without JavaScript: the page reloads itself and offers a link to check again.
    assert re.search(r'<noscript><meta http-equiv="refresh" content="\d+"></noscript>', content)
    assert re.search(r'<a href="">Check again</a>', content)
    assert str(row.uuid) in content


def assert_open_edx_certificate(response, learner_name="Ada Lovelace"):
    content = response.content.decode()
    assert response.status_code == 200
    assert 'data-testid="learner-name"' in content and learner_name in content
    assert "pok-poll-config" not in content


# --- emitted ---------------------------------------------------------------------------------------------------------


def test_emitted_credential_redirects_to_its_pok_page(client, pok, course, learner, lms):
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED
    before = pok.count()

    response = client.get(page_of(certificate))

    assert response.status_code == 302
    assert response["Location"] == row.view_url == f"{pok.url}/view/{row.pok_credential_id}"
    assert pok.count() == before


def test_many_views_of_an_emitted_credential_make_no_pok_request(client, pok, course, learner, lms):
    certificate = lms.award(learner, course)
    view_url = credential_of(learner, course).view_url
    before = pok.count()
    for viewer in (None, learner, UserFactory(), StaffFactory()):
        if viewer is None:
            client.logout()
        else:
            client.force_login(viewer)
        for _ in range(5):
            response = client.get(page_of(certificate))
            assert response.status_code == 302 and response["Location"] == view_url
    assert pok.count() == before


def test_redirect_costs_exactly_one_database_query_and_no_pok_request(pok, course, learner, lms):
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    context = lms_context(learner, course, certificate)
    before = pok.count()

    with CaptureQueriesContext(connection) as queries, \
            pytest.raises(CertificateRenderStarted.RedirectToPage) as raised:
        render(context)

    assert raised.value.redirect_to == row.view_url
    assert len(queries) == 1, [query["sql"] for query in queries.captured_queries]
    sql = queries.captured_queries[0]["sql"]
    assert "openedx_pok_credential" in sql and "user_id" in sql and "course_key" in sql
    assert pok.count() == before


def test_embed_page_shows_the_credential_and_share_links_without_pok_requests(client, settings, pok, course,
                                                                              learner, lms):
    settings.POK_CERTIFICATE_PAGE = "embed"
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    before = pok.count()

    for _ in range(5):
        response = client.get(page_of(certificate))
        assert response.status_code == 200
    content = response.content.decode()

    assert response["Cache-Control"] == "no-store"
    assert "Verifiable Credentials 101" in content and "Demo University" in content
    assert f'href="{row.view_url}"' in content
    assert "https://www.linkedin.com/profile/add?" in content
    assert f'href="/pok/credentials/{row.uuid}/image"' in content
    assert pok.count() == before


def test_embed_view_also_costs_one_query(settings, pok, course, learner, lms):
    settings.POK_CERTIFICATE_PAGE = "embed"
    certificate = lms.award(learner, course)
    before = pok.count()
    with CaptureQueriesContext(connection) as queries, \
            pytest.raises(CertificateRenderStarted.RenderCustomResponse) as raised:
        render(lms_context(learner, course, certificate))
    assert raised.value.response.status_code == 200
    assert len(queries) == 1
    assert pok.count() == before


def test_embed_page_uses_only_a_cached_image_location(client, settings, pok, course, learner, lms,
                                                      django_capture_on_commit_callbacks):
    settings.POK_CERTIFICATE_PAGE = "embed"
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    before = pok.count()

    # The location cached at emission expired: no image, the page does not ask POK, it schedules a task that does.
    cache.delete(f"openedx_pok:image:{row.pok_credential_id}")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.get(page_of(certificate))
    assert '<img class="credential"' not in response.content.decode()
    assert pok.count() == before
    assert len(callbacks) == 1
    callbacks[0]()
    assert cache.get(f"openedx_pok:image:{row.pok_credential_id}")
    cache.delete(f"openedx_pok:image:{row.pok_credential_id}")
    before = pok.count()

    # An earlier download cached POK's decrypted-image location: the page shows it, still without asking POK.
    client.force_login(learner)
    assert client.get(f"/pok/credentials/{row.uuid}/image").status_code == 200
    after_download = pok.count()
    response = client.get(page_of(certificate))
    content = response.content.decode()
    assert f'<img class="credential" src="{pok.url}/images/{row.pok_credential_id}.png"' in content
    assert 'alt="Credential of Ada Lovelace for Verifiable Credentials 101"' in content
    assert pok.count() == after_download


def test_embed_page_of_a_freshly_emitted_credential_shows_its_image(client, settings, pok, course, learner, lms):
    settings.POK_CERTIFICATE_PAGE = "embed"
    certificate = lms.award(learner, course)
    before = pok.count()
    response = client.get(page_of(certificate))
    match = re.search(r'<img class="credential" src="([^"]+)"', response.content.decode())
    assert match, "the embed page shows the credential image"
    assert match.group(1).startswith("/pok/") or media.image_url_allowed(match.group(1))
    assert pok.count() == before


@pytest.mark.parametrize("mode", ["redirect", "embed"])
def test_a_view_url_that_is_not_a_web_page_is_never_followed(settings, pok, course, learner, mode):
    settings.POK_CERTIFICATE_PAGE = mode
    certificate, _row = certificate_with_row(learner, course, **{**emitted_fields(), "view_url": "javascript:alert(1)"})
    response = Client(raise_request_exception=False).get(page_of(certificate))
    assert response.status_code == 200  # a page for the learner, not an error (DisallowedRedirect is a 400)
    assert "javascript:" not in response.get("Location", "") and "javascript:" not in response.content.decode()


def test_emitted_without_a_view_url_is_still_in_progress(client, pok, course, learner):
    certificate, row = certificate_with_row(learner, course, **{**emitted_fields(), "view_url": ""})
    response = client.get(page_of(certificate))
    assert_status_page(response, row)
    assert pok.count() == 0


# --- in progress ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status, pok_state", [
    (CredentialStatus.PENDING, ""),
    (CredentialStatus.REQUESTING, ""),
    (CredentialStatus.IN_PROGRESS, "processing"),
    (CredentialStatus.IN_PROGRESS, "waitingForApproval"),
])
def test_credential_in_progress_shows_a_status_page(client, pok, course, learner, status, pok_state,
                                                    django_capture_on_commit_callbacks):
    fields = {"status": status, "pok_state": pok_state}
    if status == CredentialStatus.IN_PROGRESS:
        fields["pok_credential_id"] = "cred-in-progress"
    certificate, row = certificate_with_row(learner, course, **fields)

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.get(page_of(certificate))

    assert_status_page(response, row)
    assert "Ada Lovelace" in response.content.decode() and "Verifiable Credentials 101" in response.content.decode()
    # A refresh is only worth asking for a credential POK is working on; pending rows already have their task.
    assert len(callbacks) == (1 if status == CredentialStatus.IN_PROGRESS else 0)
    assert pok.count() == 0


def test_status_page_polls_an_endpoint_that_answers_in_progress(client, pok, course, learner):
    certificate, row = certificate_with_row(learner, course, status=CredentialStatus.PENDING)
    config = poll_config(client.get(page_of(certificate)))
    client.force_login(learner)
    response = client.get(config["statusUrl"])
    assert response.status_code == 200
    assert response.json()["status"] == "in_progress" and response.json()["emitted"] is False


def test_status_page_enqueues_at_most_one_refresh_per_period(client, settings, pok, course, learner, lms,
                                                             django_capture_on_commit_callbacks):
    settings.POK_REFRESH_ON_VIEW_SECONDS = 1
    pok.emission_mode = "async"
    pok.polls_until_emitted = 1
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.IN_PROGRESS and row.pok_credential_id
    before = pok.count()

    enqueued = []
    for _ in range(6):
        with django_capture_on_commit_callbacks() as callbacks:
            assert_status_page(client.get(page_of(certificate)), row)
        enqueued.extend(callbacks)
    assert len(enqueued) == 1
    assert pok.count() == before  # the views themselves never call POK

    time.sleep(1.1)  # the period is over: the next view may ask again
    with django_capture_on_commit_callbacks() as callbacks:
        client.get(page_of(certificate))
    assert len(callbacks) == 1

    # What was enqueued is a refresh (after the LMS transaction commits): it polls POK once and moves the row on.
    callbacks[0]()
    assert pok.count("get_credential") == 1 and pok.count() == before + 1
    assert credential_of(learner, course).status == CredentialStatus.EMITTED
    response = client.get(page_of(certificate))
    assert response.status_code == 302 and response["Location"] == credential_of(learner, course).view_url


def test_unknown_pok_state_shows_the_status_page(client, pok, course, learner, lms):
    pok.emission_mode = "async"
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    pok.set_state(row.pok_credential_id, "someStateFromTheFuture")
    lms.run(machine.refresh, row.id)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.IN_PROGRESS and row.pok_state == "someStateFromTheFuture"
    before = pok.count()

    assert_status_page(client.get(page_of(certificate)), row)
    assert pok.count() == before


# --- held / failed ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [CredentialStatus.HELD, CredentialStatus.FAILED])
def test_held_or_failed_shows_a_friendly_page_without_internal_details(client, pok, course, learner, status):
    reason = "Internal: POK_API_KEY rejected by https://api.pok.tech (HTTP 401) for learner ada@example.com"
    certificate, row = certificate_with_row(learner, course, status=status, status_reason=reason, retryable=True)

    response = client.get(page_of(certificate))
    content = response.content.decode()

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "Your credential is being prepared" in content
    assert str(row.uuid) in content and "Reference:" in content
    assert "Verifiable Credentials 101" in content
    for detail in (reason, "POK_API_KEY", "HTTP 401", "ada@example.com", "api.pok.tech", status):
        assert detail not in content
    assert "pok-poll-config" not in content
    assert pok.count() == 0


def test_held_by_real_issuance_never_shows_its_reason(client, pok, course, learner, lms):
    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="")
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.HELD and "POK_DEFAULT_TEMPLATE_ID" in row.status_reason

    content = client.get(page_of(certificate)).content.decode()
    assert str(row.uuid) in content
    assert row.status_reason not in content and "POK_DEFAULT_TEMPLATE_ID" not in content


def test_failed_by_real_issuance_never_shows_pok_error(client, pok, course, learner, lms):
    pok.add_fault(Fault("status", endpoint="issue_credential", status=400, times=None))
    certificate = lms.award(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.FAILED and "simulated POK error" in row.status_reason

    content = client.get(page_of(certificate)).content.decode()
    assert str(row.uuid) in content
    assert "simulated POK error" not in content and "HTTP 400" not in content


@pytest.mark.parametrize("status", [CredentialStatus.HELD, CredentialStatus.FAILED])
def test_fallback_shows_the_open_edx_certificate_while_held_or_failed(client, settings, pok, course, learner,
                                                                      status):
    settings.POK_FALLBACK_TO_OPEN_EDX_CERTIFICATE = True
    certificate, row = certificate_with_row(learner, course, status=status, status_reason="secret reason")
    response = client.get(page_of(certificate))
    assert_open_edx_certificate(response)
    assert "secret reason" not in response.content.decode()
    # The fallback only concerns held/failed credentials: in progress still gets the status page.
    PokCertificate.objects.filter(id=row.id).update(status=CredentialStatus.PENDING)
    assert_status_page(client.get(page_of(certificate)), row)


# --- revoked ----------------------------------------------------------------------------------------------------------


def test_revoked_credential_renders_the_invalid_certificate_page_through_the_filter(pok, course, learner, lms):
    certificate = lms.award(learner, course)
    lms.revoke(learner, course)
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.REVOKED and row.view_url
    before = pok.count()

    with pytest.raises(CertificateRenderStarted.RenderAlternativeInvalidCertificate) as raised:
        render(lms_context(learner, course, certificate))

    assert not raised.value.template_name  # the LMS's own invalid-certificate template
    assert pok.count() == before


def test_credential_revoked_behind_a_downloadable_certificate_is_not_shown(client, pok, course, learner):
    """E.g. revoked on POK and learned by a refresh while the Open edX certificate stays downloadable."""
    certificate, row = certificate_with_row(learner, course, **{**emitted_fields(), "status": CredentialStatus.REVOKED})
    response = client.get(page_of(certificate))
    content = response.content.decode()
    assert response.status_code == 200  # the LMS's invalid-certificate page answers 200
    assert 'data-testid="invalid-certificate"' in content
    assert row.view_url not in content and "Location" not in response


# --- no record yet / not POK-enabled ----------------------------------------------------------------------------------


def test_certificate_earned_before_the_plugin_schedules_issuance(client, pok, learner,
                                                                 django_capture_on_commit_callbacks):
    earlier = datetime(2024, 11, 15, 12, 0, tzinfo=UTC)
    course = CourseOverviewFactory(id=CourseKey.from_string("course-v1:PokX+Legacy+2024"),
                                   display_name="Legacy Course")
    certificate = GeneratedCertificateFactory(user=learner, course_id=course.id, created_date=earlier)
    assert not PokCertificate.objects.exists()  # not POK-enabled when the certificate was created
    CertificateTemplate.objects.create(course_key=course.id, template_id="tpl-basic")

    with django_capture_on_commit_callbacks() as callbacks:
        response = client.get(page_of(certificate))

    row = credential_of(learner, course)
    assert row.status == CredentialStatus.PENDING
    assert_status_page(response, row)
    assert len(callbacks) == 1 and pok.count() == 0  # issuance scheduled after commit, not run by the view

    callbacks[0]()  # the LMS transaction commits: the (eager) issuance task runs
    row = credential_of(learner, course)
    assert row.status == CredentialStatus.EMITTED, row.status_reason
    assert row.emission_date == earlier
    response = client.get(page_of(certificate))
    assert response.status_code == 302 and response["Location"] == row.view_url
    assert pok.count("issue_credential") == 1


def test_course_not_pok_enabled_leaves_the_context_untouched(client, pok, learner):
    course = CourseOverviewFactory()
    certificate = GeneratedCertificateFactory(user=learner, course_id=course.id)
    context = lms_context(learner, course, certificate)
    snapshot = dict(context)

    returned_context, custom_template = render(context)

    assert returned_context is context and returned_context == snapshot and custom_template is None
    assert_open_edx_certificate(client.get(page_of(certificate)))
    assert not PokCertificate.objects.exists()
    assert pok.count() == 0


def test_disabled_mapping_leaves_a_new_certificate_untouched(client, pok, course, learner):
    CertificateTemplate.objects.filter(course_key=course.id).update(enabled=False)
    certificate = GeneratedCertificateFactory(user=learner, course_id=course.id)
    assert_open_edx_certificate(client.get(page_of(certificate)))
    assert not PokCertificate.objects.exists()
    assert pok.count() == 0


# --- staff preview ----------------------------------------------------------------------------------------------------


def test_staff_preview_shows_the_pok_template_preview(client, pok, course):
    staff = StaffFactory()
    client.force_login(staff)

    response = client.get(preview_of(course))
    content = response.content.decode()

    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    assert "Preview of the POK credential" in content and "tpl-basic" in content
    assert f'<img class="credential" src="/pok/preview/{course.id}/image?language=en"' in content
    assert 'role="alert"' not in content
    assert pok.count() == 0  # the page itself never calls POK; the image endpoint does
    assert not PokCertificate.objects.exists()  # a preview records nothing for the staff member
    assert not GeneratedCertificate.objects.exists()

    image = client.get(f"/pok/preview/{course.id}/image?language=en")
    assert image.status_code == 302 and image["Location"].startswith(f"{pok.url}/images/preview-")


def test_staff_preview_of_a_course_covered_by_its_organization_default(client, pok):
    course = CourseOverviewFactory(id=CourseKey.from_string("course-v1:OrgWide+C1+2026"))
    CertificateTemplate.objects.create(organization="OrgWide", template_id="tpl-grade")
    client.force_login(StaffFactory())
    content = client.get(preview_of(course)).content.decode()
    assert "tpl-grade" in content and f"/pok/preview/{course.id}/image" in content
    assert pok.count() == 0


def test_staff_preview_with_a_broken_mapping_says_what_is_wrong(client, pok, course):
    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="")
    client.force_login(StaffFactory())
    content = client.get(preview_of(course)).content.decode()
    assert 'role="alert"' in content and "POK_DEFAULT_TEMPLATE_ID" in content
    assert '<img class="credential"' not in content
    assert pok.count() == 0


def test_staff_preview_of_a_course_without_pok_is_the_open_edx_preview(client, pok):
    course = CourseOverviewFactory()
    client.force_login(StaffFactory())
    response = client.get(preview_of(course, "honor"))
    assert response.status_code == 200
    assert 'Preview of the "honor" certificate' in response.content.decode()
    assert pok.count() == 0


def test_preview_by_a_learner_is_denied_without_pok_request(client, pok, course, learner):
    """The LMS's view fails for a preview without the preview permission, and answers with its error page."""
    client.force_login(learner)
    response = client.get(preview_of(course))
    assert response.status_code == 500
    client.logout()
    assert client.get(preview_of(course)).status_code == 302  # login required
    assert pok.count() == 0
    assert not PokCertificate.objects.exists()


@pytest.mark.parametrize("context_has_user_certificate", [True, False])
def test_staff_preview_is_decided_by_the_request_as_the_lms_decides_it(
        client, settings, pok, course, context_has_user_certificate):
    """Releases before openedx-platform#37486 send no ``user_certificate``: the ``?preview=`` request decides, on
    the course URL and on a certificate's own URL alike, and the staff member gets no credential of their own."""
    settings.SANDBOX_CONTEXT_USER_CERTIFICATE = context_has_user_certificate
    staff = StaffFactory()
    own = GeneratedCertificateFactory(user=staff, course_id=course.id)  # staff earned one too: recorded, pending
    recorded = list(PokCertificate.objects.filter(user=staff).values_list("id", "status", "modified"))
    client.force_login(staff)
    for url in (preview_of(course), f"{page_of(own)}?preview=verified"):
        content = client.get(url).content.decode()
        assert "Preview of the POK credential" in content and "tpl-basic" in content, url
    assert list(PokCertificate.objects.filter(user=staff).values_list("id", "status", "modified")) == recorded
    assert pok.count() == 0


def test_without_user_certificate_in_the_context_a_learners_page_is_still_theirs(client, settings, pok, course,
                                                                                learner, lms):
    settings.SANDBOX_CONTEXT_USER_CERTIFICATE = False
    certificate = lms.award(learner, course)
    response = client.get(page_of(certificate))
    assert response.status_code == 302
    assert response["Location"] == credential_of(learner, course).view_url


def test_preview_while_pok_is_down(client, pok, course):
    pok.add_fault(Fault("status", status=503, times=None))
    client.force_login(StaffFactory())
    response = client.get(preview_of(course))
    assert response.status_code == 200
    assert f"/pok/preview/{course.id}/image" in response.content.decode()
    assert pok.count() == 0
    image = client.get(f"/pok/preview/{course.id}/image?language=en")
    assert image.status_code == 502
    assert "POK could not render the preview right now" in image.content.decode()


class BrokenBackend:
    """A platform door whose every call fails, as a broken LMS module would."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise RuntimeError(f"platform call {name} failed")
        return fail


def test_preview_survives_a_failing_platform(client, settings, pok, course):
    settings.POK_COMPAT_BACKEND = f"{__name__}.BrokenBackend"
    client.force_login(StaffFactory())
    response = client.get(preview_of(course))
    assert response.status_code == 200  # the Open edX preview, untouched
    assert 'Preview of the "verified" certificate' in response.content.decode()
    assert pok.count() == 0


# --- bad input --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("change", [
    {"course_id": None}, {"course_id": ""}, {"course_id": "not a course key"}, {"course_id": "course-v1:bad"},
    {"course_id": 42}, {"accomplishment_user_id": None}, {"accomplishment_user_id": "abc"},
    {"accomplishment_user_id": 0}, {"accomplishment_user_id": -3}, {"accomplishment_user_id": True},
    {"accomplishment_user_id": 1.5}, {"accomplishment_user_id": [1]},
    "drop:course_id", "drop:accomplishment_user_id",
], ids=str)
def test_unusable_contexts_are_left_untouched(pok, course, learner, change):
    certificate, _row = certificate_with_row(learner, course, **emitted_fields())
    context = lms_context(learner, course, certificate)
    if isinstance(change, str):
        del context[change.split(":", 1)[1]]
    else:
        context.update(change)
    snapshot = dict(context)

    returned_context, custom_template = render(context)

    assert returned_context == snapshot and custom_template is None
    assert PokCertificate.objects.count() == 1
    assert pok.count() == 0


@pytest.mark.parametrize("context", [None, [], "context", 42, ("course_id", "x")], ids=repr)
def test_non_dict_contexts_are_left_untouched(pok, course, context):
    returned_context, custom_template = render(context)
    assert returned_context == context and custom_template is None
    assert pok.count() == 0


def test_user_without_a_row_in_a_course_without_pok_is_untouched(pok, learner):
    course = CourseOverviewFactory()
    context = lms_context(learner, course, accomplishment_user_id=learner.id + 1000)
    returned_context, _template = render(context)
    assert returned_context is context
    assert not PokCertificate.objects.exists()
    assert pok.count() == 0


def test_string_user_id_from_a_context_is_understood(pok, course, learner):
    certificate, row = certificate_with_row(learner, course, **emitted_fields())
    with pytest.raises(CertificateRenderStarted.RedirectToPage) as raised:
        render(lms_context(learner, course, certificate, accomplishment_user_id=str(learner.id)))
    assert raised.value.redirect_to == row.view_url


@pytest.mark.parametrize("status", [CredentialStatus.PENDING, CredentialStatus.HELD, CredentialStatus.EMITTED])
def test_language_without_a_translation_falls_back(settings, pok, course, learner, status):
    settings.POK_CERTIFICATE_PAGE = "embed"
    fields = emitted_fields() if status == CredentialStatus.EMITTED else {"status": status}
    certificate, row = certificate_with_row(learner, course, **fields)
    with translation.override("xx"), \
            pytest.raises(CertificateRenderStarted.RenderCustomResponse) as raised:
        render(lms_context(learner, course, certificate, user_language="xx"))
    response = raised.value.response
    content = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="xx"' in content
    assert (row.view_url if status == CredentialStatus.EMITTED else str(row.uuid)) in content
    assert any(text in content for text in ("Your credential is being", "View and verify on POK"))
    assert pok.count() == 0


def test_language_without_a_translation_in_the_sandbox_and_the_preview(client, pok, course, learner):
    certificate, row = certificate_with_row(learner, course, status=CredentialStatus.PENDING)
    assert_status_page(client.get(page_of(certificate), HTTP_ACCEPT_LANGUAGE="xx"), row)

    staff = StaffFactory()
    course_key = course.id
    preview_request = RequestFactory().get(preview_of(course))  # the LMS's current request decides the preview
    with translation.override("xx"), \
            pytest.raises(CertificateRenderStarted.RenderCustomResponse) as raised:
        set_current_request(preview_request)
        try:
            render(lms_context(staff, course, GeneratedCertificate(course_id=course_key, mode="verified"),
                               user_language="xx"))
        finally:
            set_current_request(None)
    content = raised.value.response.content.decode()
    assert f"/pok/preview/{course_key}/image?language=xx" in content
    client.force_login(staff)
    image = client.get(f"/pok/preview/{course_key}/image?language=xx")
    assert image.status_code == 302 and image["Location"].startswith(f"{pok.url}/images/")


# --- HTML in course titles and learner names --------------------------------------------------------------------------


@pytest.fixture
def hostile_course(db):
    course = CourseOverviewFactory(id=CourseKey.from_string("course-v1:PokX+Xss+2026"),
                                   display_name=XSS, certificate_title=XSS)
    CertificateTemplate.objects.create(course_key=course.id, template_id="tpl-basic")
    return course


@pytest.fixture
def hostile_learner(db):
    return UserFactory(profile__name=XSS)


def assert_escaped(response):
    content = response.content.decode()
    assert XSS not in content and "<script>alert" not in content
    assert XSS_ESCAPED in content


@pytest.mark.parametrize("state", ["pending", "held", "embed"])
def test_html_in_titles_and_names_is_escaped_on_every_page(client, settings, pok, hostile_course, hostile_learner,
                                                           state):
    settings.POK_CERTIFICATE_PAGE = "embed"
    fields = {
        "pending": {"status": CredentialStatus.PENDING},
        "held": {"status": CredentialStatus.HELD, "status_reason": XSS},
        "embed": emitted_fields(title=XSS, emitter=XSS),
    }[state]
    certificate, row = certificate_with_row(hostile_learner, hostile_course, **fields)
    if state == "embed":
        cache.set(f"openedx_pok:image:{row.pok_credential_id}", "https://pok.tech/images/cred-1.png")

    response = client.get(page_of(certificate))

    assert response.status_code == 200
    assert_escaped(response)
    assert pok.count() == 0


def test_html_in_the_course_title_is_escaped_on_the_preview(client, pok, hostile_course):
    staff = StaffFactory(profile__name=XSS)
    client.force_login(staff)
    response = client.get(preview_of(hostile_course))
    assert response.status_code == 200 and "Preview of the POK credential" in response.content.decode()
    assert_escaped(response)


# --- the step raises nothing else -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["redirect", "embed"])
@pytest.mark.parametrize("status", [choice for choice, _label in CredentialStatus.choices])
def test_every_state_ends_in_a_render_exception_or_the_untouched_context(settings, pok, course, learner, mode,
                                                                         status):
    settings.POK_CERTIFICATE_PAGE = mode
    certificate, _row = certificate_with_row(learner, course, **{**emitted_fields(), "status": status})
    context = lms_context(learner, course, certificate)
    try:
        returned_context, _template = render(context)
    except RENDER_EXCEPTIONS as exc:
        response = getattr(exc, "response", None)
        assert response is None or response.status_code == 200
    else:
        assert returned_context is context
    assert pok.count() == 0


def test_a_verify_uuid_the_lms_replaced_is_followed_on_the_next_view(client, pok, course, learner, lms):
    """Two generation tasks of one learner racing in the LMS: the second one's verify_uuid wins over the first's."""
    certificate = lms.award(learner, course)
    GeneratedCertificate.objects.filter(pk=certificate.pk).update(verify_uuid="a" * 32)
    assert client.get(f"/certificates/{'a' * 32}").status_code == 302
    assert credential_of(learner, course).verify_uuid == "a" * 32
    assert pok.count("issue_credential") == 1
