"""
The sandbox LMS must call the plugin exactly like the Open edX LMS (see /work/shared/openedx-hooks.md).

Every other test of the plugin trusts this host, so these tests pin its LMS behaviour: the creation filter gets a
``CourseKey`` and a ``CourseGrade`` through the real openedx-filters pipeline, the certificate model sends the real
openedx-events signals with the LMS payload and timing, and the web view maps each render exception as the LMS does.
The pipelines are replaced by this module's own steps so the tests do not depend on the plugin's steps.
"""
from contextlib import contextmanager

import pytest
from django.http import HttpResponse
from django.test import override_settings
from django.urls import reverse
from django.utils import translation
from opaque_keys.edx.keys import CourseKey
from openedx_events.learning.data import CertificateData
from openedx_events.learning.signals import CERTIFICATE_CHANGED, CERTIFICATE_CREATED, CERTIFICATE_REVOKED
from openedx_filters import PipelineStep
from openedx_filters.learning.filters import CertificateCreationRequested, CertificateRenderStarted

from lms_sandbox.compat import SandboxBackend
from lms_sandbox.factories import (
    CourseOverviewFactory,
    GeneratedCertificateFactory,
    OrganizationFactory,
    StaffFactory,
    UserFactory,
    UserProfileFactory,
)
from lms_sandbox.generation import CertificateGenerationNotAllowed, generate_certificate, revoke_certificate
from lms_sandbox.grades import CourseGrade
from lms_sandbox.models import CourseOverview, GeneratedCertificate
from openedx_pok import compat
from openedx_pok.compat import CertificateInfo, CourseInfo, Signatory

pytestmark = pytest.mark.django_db

CREATION = "org.openedx.learning.certificate.creation.requested.v1"
RENDER = "org.openedx.learning.certificate.render.started.v1"
COURSE = "course-v1:PokX+Sandbox+2026"


# --- pipeline steps of this test module (dotted paths built from __name__ so any import mode works) ---------------

class Recorder:
    """What the steps saw; steps are instantiated anew at every call, so they record on the class."""

    calls = []
    behaviour = None


class CaptureCreation(PipelineStep):
    """Records the creation filter's kwargs and whether the certificate already exists (it must not)."""

    def run_filter(self, user, course_key, mode, status, grade, generation_mode):
        Recorder.calls.append({
            "user": user, "course_key": course_key, "mode": mode, "status": status, "grade": grade,
            "generation_mode": generation_mode,
            "certificate_exists": GeneratedCertificate.objects.filter(user=user, course_id=course_key).exists(),
        })
        return Recorder.behaviour(locals()) if Recorder.behaviour else {}


class CaptureRender(PipelineStep):
    """Records the render filter's arguments and the active language, then does what the test asks."""

    def run_filter(self, context, custom_template):
        Recorder.calls.append({"context": dict(context), "custom_template": custom_template,
                               "language": translation.get_language()})
        return Recorder.behaviour(context) if Recorder.behaviour else {}


def _path(step):
    return f"{__name__}.{step.__name__}"


@contextmanager
def pipeline(filter_type, step, behaviour=None, fail_silently=True):
    """Run ``filter_type`` with only ``step``, which then applies ``behaviour`` (a function) to its arguments."""
    Recorder.calls = []
    Recorder.behaviour = behaviour
    config = {filter_type: {"pipeline": [_path(step)], "fail_silently": fail_silently}}
    try:
        with override_settings(OPEN_EDX_FILTERS_CONFIG=config):
            yield Recorder.calls
    finally:
        Recorder.behaviour = None


def _raise(exc):
    def behaviour(_arguments):
        raise exc
    return behaviour


@pytest.fixture
def course():
    return CourseOverviewFactory(
        id=CourseKey.from_string(COURSE), display_name="Sandbox Course", certificate_title="Certified Sandboxing",
        signatories=[{"name": "Grace Hopper", "title": "Director", "organization": "PokX"}],
    )


@pytest.fixture
def learner():
    return UserFactory(username="ana", email="ana@example.com", profile__name="Ana Certificate-Name")


@pytest.fixture
def events():
    """Every certificate event sent during the test, as (signal, kwargs)."""
    sent = []

    def receiver(sender, signal, **kwargs):
        sent.append((signal, kwargs))

    signals = (CERTIFICATE_CREATED, CERTIFICATE_CHANGED, CERTIFICATE_REVOKED)
    for signal in signals:
        signal.connect(receiver, dispatch_uid=f"test-lms-sandbox-{signal.event_type}")
    yield sent
    for signal in signals:
        signal.disconnect(dispatch_uid=f"test-lms-sandbox-{signal.event_type}")


def _names(sent):
    return [signal.event_type.split(".")[-2] for signal, _kwargs in sent]


# --- wiring ---------------------------------------------------------------------------------------------------------

def test_plugin_receivers_are_connected_like_in_the_lms():
    """``ready()`` ran connect_plugin_receivers("lms.djangoapp"), which read the plugin's signals_config."""
    uids = {key[0] for key, *_rest in CERTIFICATE_CREATED.receivers}
    assert "openedx_pok.receivers.handle_certificate_created" in uids
    uids = {key[0] for key, *_rest in CERTIFICATE_REVOKED.receivers}
    assert "openedx_pok.receivers.handle_certificate_revoked" in uids


def test_plugin_urls_are_mounted_from_its_url_config():
    assert reverse("openedx_pok:credential-status", args=["0" * 8 + "-0000-4000-8000-" + "0" * 12]).startswith("/pok/")


# --- CertificateCreationRequested -----------------------------------------------------------------------------------

def test_generation_runs_the_creation_filter_with_lms_arguments(course, learner):
    grade = CourseGrade(percent=0.85, passed=True, letter_grade="B")
    with pipeline(CREATION, CaptureCreation) as calls:
        certificate = generate_certificate(learner, COURSE, grade)

    assert len(calls) == 1
    call = calls[0]
    assert call["user"] == learner
    assert isinstance(call["course_key"], CourseKey) and call["course_key"] == course.id
    assert call["grade"] is grade  # the CourseGrade object, not a float
    assert call["mode"] == "verified"
    assert call["status"] is None and call["generation_mode"] is None
    assert call["certificate_exists"] is False  # the LMS creates the certificate only after the filter
    certificate.refresh_from_db()
    assert certificate.status == "downloadable"
    assert certificate.grade == "0.85"
    assert certificate.name == "Ana Certificate-Name"
    assert len(certificate.verify_uuid) == 32 and int(certificate.verify_uuid, 16) >= 0


def test_generation_uses_what_steps_return_except_the_grade(course, learner):
    with pipeline(CREATION, CaptureCreation, behaviour=lambda _args: {"mode": "honor", "grade": 0.1}):
        certificate = generate_certificate(learner, course.id, CourseGrade(percent=0.9), generation_mode="self")
    assert certificate.mode == "honor"
    assert certificate.grade == "0.9"


def test_prevent_certificate_creation_becomes_generation_not_allowed(course, learner):
    prevent = CertificateCreationRequested.PreventCertificateCreation("Not for you.")
    with pipeline(CREATION, CaptureCreation, behaviour=_raise(prevent)), \
            pytest.raises(CertificateGenerationNotAllowed, match="Not for you."):
        generate_certificate(learner, course.id, CourseGrade(percent=0.9))
    assert not GeneratedCertificate.objects.exists()


def test_other_step_errors_follow_fail_silently(course, learner):
    with pipeline(CREATION, CaptureCreation, behaviour=_raise(RuntimeError("bug"))):
        assert generate_certificate(learner, course.id, CourseGrade(percent=0.9)).status == "downloadable"
    with pipeline(CREATION, CaptureCreation, behaviour=_raise(RuntimeError("bug")), fail_silently=False), \
            pytest.raises(RuntimeError):
        generate_certificate(learner, course.id, CourseGrade(percent=0.9))


def test_unverified_generation_stores_an_unverified_certificate(course, learner, events):
    with pipeline(CREATION, CaptureCreation) as calls:
        certificate = generate_certificate(
            learner, course.id, CourseGrade(percent=0.9), status="unverified", generation_mode="batch",
        )
    assert calls[0]["status"] == "unverified" and calls[0]["generation_mode"] == "batch"
    assert certificate.status == "unverified"
    assert _names(events) == ["changed"]  # not a passing status: no CERTIFICATE_CREATED


def test_regeneration_updates_the_same_certificate(course, learner, events):
    with pipeline(CREATION, CaptureCreation):
        first = generate_certificate(learner, course.id, CourseGrade(percent=0.7))
        second = generate_certificate(learner, course.id, CourseGrade(percent=0.95))
    assert first.pk == second.pk and first.verify_uuid == second.verify_uuid
    assert second.created_date == first.created_date
    assert GeneratedCertificate.objects.get().grade == "0.95"
    assert _names(events) == ["changed", "created", "changed", "created"]


# --- openedx-events -------------------------------------------------------------------------------------------------

def test_saving_a_downloadable_certificate_sends_changed_then_created(course, learner, events):
    certificate = GeneratedCertificateFactory(user=learner, course_id=course.id, grade="0.85", mode="verified")

    assert _names(events) == ["changed", "created"]
    for signal, kwargs in events:
        data = kwargs["certificate"]
        assert isinstance(data, CertificateData)
        assert data.user.id == learner.id and data.user.is_active is True
        assert (data.user.pii.username, data.user.pii.email, data.user.pii.name) == (
            "ana", "ana@example.com", "Ana Certificate-Name")
        assert isinstance(data.course.course_key, CourseKey) and data.course.course_key == course.id
        assert (data.mode, data.grade, data.current_status, data.previous_status) == (
            "verified", "0.85", "downloadable", "")
        assert data.name == certificate.name and data.download_url == ""
        assert kwargs["metadata"].event_type == signal.event_type
        assert kwargs["from_event_bus"] is False

    events.clear()
    certificate.save()  # the LMS sends CERTIFICATE_CREATED again on every save of a passing certificate
    assert _names(events) == ["changed", "created"]


def test_non_passing_saves_send_only_changed(course, learner, events):
    GeneratedCertificateFactory(user=learner, course_id=course.id, status="notpassing")
    assert _names(events) == ["changed"]


def test_generating_status_counts_as_passing(course, learner, events):
    GeneratedCertificateFactory(user=learner, course_id=course.id, status="generating")
    assert _names(events) == ["changed", "created"]


def test_invalidate_sends_revoked_after_saving(course, learner, events):
    certificate = GeneratedCertificateFactory(user=learner, course_id=course.id)
    verify_uuid = certificate.verify_uuid
    events.clear()

    certificate.invalidate()

    assert _names(events) == ["changed", "revoked"]
    data = events[-1][1]["certificate"]
    assert data.current_status == "unavailable" and data.grade == ""
    certificate.refresh_from_db()
    assert certificate.status == "unavailable" and certificate.verify_uuid == verify_uuid


def test_mark_notpassing_and_unverified_send_revoked(course, learner, events):
    certificate = GeneratedCertificateFactory(user=learner, course_id=course.id)
    events.clear()
    certificate.mark_notpassing(0.4)
    assert _names(events) == ["changed", "revoked"]
    assert events[-1][1]["certificate"].grade == "0.4"
    assert events[-1][1]["certificate"].current_status == "notpassing"

    events.clear()
    certificate.mark_unverified()
    assert _names(events) == ["changed", "revoked"]
    assert events[-1][1]["certificate"].current_status == "unverified"


def test_revoke_certificate_invalidates(course, learner, events):
    GeneratedCertificateFactory(user=learner, course_id=course.id)
    events.clear()
    assert revoke_certificate(learner, COURSE).status == "unavailable"
    assert _names(events) == ["changed", "revoked"]
    assert revoke_certificate(UserFactory(), COURSE) is None


def test_event_payload_without_profile_has_an_empty_name(course, events):
    GeneratedCertificateFactory(user=UserFactory(profile=None), course_id=course.id, name="")
    assert events[0][1]["certificate"].user.pii.name == ""


# --- CertificateRenderStarted ---------------------------------------------------------------------------------------

@pytest.fixture
def certificate(course, learner):
    return GeneratedCertificateFactory(user=learner, course_id=course.id)


def _page(certificate):
    return f"/certificates/{certificate.verify_uuid}"


def test_public_page_runs_the_render_filter_with_the_lms_context(client, certificate, learner, course):
    OrganizationFactory(short_name="PokX", name="POK Example University")
    with pipeline(RENDER, CaptureRender) as calls:
        response = client.get(_page(certificate), HTTP_ACCEPT_LANGUAGE="es-419")

    assert response.status_code == 200
    assert "Ana Certificate-Name" in response.content.decode()
    assert len(calls) == 1
    context = calls[0]["context"]
    assert calls[0]["custom_template"] is None
    assert context["course_id"] == COURSE
    assert context["accomplishment_user_id"] == learner.id and isinstance(context["accomplishment_user_id"], int)
    assert context["username"] == "ana"
    assert context["certificate_id_number"] == certificate.verify_uuid
    assert isinstance(context["user_certificate"], GeneratedCertificate) and context["user_certificate"].pk
    assert context["certificate_data"] == {
        "course_title": "Certified Sandboxing",
        "signatories": [{"name": "Grace Hopper", "title": "Director", "organization": "PokX"}],
    }
    assert context["platform_name"] == "Test Academy"
    assert context["accomplishment_copy_name"] == "Ana Certificate-Name"
    assert context["accomplishment_copy_course_name"] == "Certified Sandboxing"
    assert context["accomplishment_copy_course_org"] == "PokX"
    assert context["course_mode"] == "verified"
    assert context["share_url"] == f"http://testserver/certificates/{certificate.verify_uuid}"
    for key in ("document_title", "logo_src", "certificate_date_issued"):
        assert context[key]
    assert "user" not in context and "course" not in context
    # The filter runs inside translation.override(certificate language).
    assert context["user_language"] == "es-419" and calls[0]["language"] == "es-419"


def test_page_renders_the_context_the_steps_return(client, certificate):
    with pipeline(RENDER, CaptureRender, behaviour=lambda context: {
            "context": {**context, "accomplishment_copy_name": "Changed <b>by</b> a step"}}):
        response = client.get(_page(certificate))
    assert "Changed &lt;b&gt;by&lt;/b&gt; a step" in response.content.decode()  # autoescaped


def test_custom_template_from_a_step_is_rendered(client, certificate):
    class CustomTemplate:
        template = "custom for {{ username }}"

    with pipeline(RENDER, CaptureRender, behaviour=lambda context: {
            "context": context, "custom_template": CustomTemplate()}):
        response = client.get(_page(certificate))
    assert response.content.decode() == "custom for ana"


def test_redirect_to_page_redirects(client, certificate):
    redirect = CertificateRenderStarted.RedirectToPage("On POK.", redirect_to="https://pok.example/credential/1")
    with pipeline(RENDER, CaptureRender, behaviour=_raise(redirect)):
        response = client.get(_page(certificate))
    assert response.status_code == 302 and response["Location"] == "https://pok.example/credential/1"


def test_render_custom_response_is_returned_as_is(client, certificate):
    custom = HttpResponse("in progress", status=202)
    with pipeline(RENDER, CaptureRender, behaviour=_raise(
            CertificateRenderStarted.RenderCustomResponse("Pending.", response=custom))):
        response = client.get(_page(certificate))
    assert response is custom and response.status_code == 202


def test_alternative_invalid_certificate_shows_the_invalid_page(client, certificate):
    with pipeline(RENDER, CaptureRender, behaviour=_raise(
            CertificateRenderStarted.RenderAlternativeInvalidCertificate("Revoked."))):
        response = client.get(_page(certificate))
    assert response.status_code == 404
    assert 'data-testid="invalid-certificate"' in response.content.decode()
    assert "Ana Certificate-Name" not in response.content.decode()


def _templates_with(extra):
    return [{
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "OPTIONS": {"loaders": [("django.template.loaders.locmem.Loader", extra),
                                "django.template.loaders.app_directories.Loader"]},
    }]


@override_settings(TEMPLATES=_templates_with({"steps/revoked.html": "revoked on {{ platform_name }}"}))
def test_alternative_invalid_certificate_uses_the_named_template(client, certificate):
    with pipeline(RENDER, CaptureRender, behaviour=_raise(CertificateRenderStarted.RenderAlternativeInvalidCertificate(
            "Revoked.", template_name="steps/revoked.html"))):
        response = client.get(_page(certificate))
    assert response.status_code == 404 and response.content.decode() == "revoked on Test Academy"


def test_alternative_invalid_certificate_with_a_missing_template_falls_back(client, certificate):
    with pipeline(RENDER, CaptureRender, behaviour=_raise(CertificateRenderStarted.RenderAlternativeInvalidCertificate(
            "Revoked.", template_name="steps/does-not-exist.html"))):
        response = client.get(_page(certificate))
    assert response.status_code == 404 and 'data-testid="invalid-certificate"' in response.content.decode()


def test_other_render_errors_are_a_server_error_unless_fail_silently(client, certificate):
    with pipeline(RENDER, CaptureRender, behaviour=_raise(RuntimeError("bug")), fail_silently=False):
        assert client.get(_page(certificate)).status_code == 500
    with pipeline(RENDER, CaptureRender, behaviour=_raise(RuntimeError("bug"))):
        assert client.get(_page(certificate)).status_code == 200


@pytest.mark.parametrize("status", ["notpassing", "unavailable", "unverified", "generating"])
def test_only_downloadable_certificates_have_a_page(client, certificate, status):
    GeneratedCertificate.objects.filter(pk=certificate.pk).update(status=status)
    with pipeline(RENDER, CaptureRender) as calls:
        assert client.get(_page(certificate)).status_code == 404
        assert client.get(f"/certificates/{'0' * 32}").status_code == 404
    assert calls == []


def test_course_without_html_view_shows_invalid(client, certificate):
    CourseOverview.objects.filter(pk=certificate.course_id).update(cert_html_view_enabled=False)
    with pipeline(RENDER, CaptureRender) as calls:
        response = client.get(_page(certificate))
    assert response.status_code == 404 and calls == []


def test_course_page_needs_a_login(client, course):
    response = client.get(f"/certificates/course/{COURSE}?preview=verified")
    assert response.status_code == 302 and "login" in response["Location"]


def test_preview_is_for_staff_only(client, course, learner):
    client.force_login(learner)
    with pipeline(RENDER, CaptureRender) as calls:
        response = client.get(f"/certificates/course/{COURSE}?preview=verified")
    assert response.status_code == 404 and calls == []


def test_staff_preview_passes_an_unsaved_certificate(client, course):
    staff = StaffFactory()
    client.force_login(staff)
    with pipeline(RENDER, CaptureRender) as calls:
        response = client.get(f"/certificates/course/{COURSE}?preview=honor")
    assert response.status_code == 200
    context = calls[0]["context"]
    assert context["user_certificate"].pk is None and context["course_mode"] == "honor"
    assert context["accomplishment_user_id"] == staff.id and context["username"] == staff.username
    assert len(context["certificate_id_number"]) == 32
    assert not GeneratedCertificate.objects.exists()


def test_course_page_without_preview_shows_the_learners_own_certificate(client, certificate, learner):
    client.force_login(learner)
    with pipeline(RENDER, CaptureRender) as calls:
        response = client.get(f"/certificates/course/{COURSE}")
    assert response.status_code == 200 and calls[0]["context"]["user_certificate"] == certificate
    client.force_login(UserFactory())
    assert client.get(f"/certificates/course/{COURSE}").status_code == 404
    assert client.get("/certificates/course/not-a-course-key").status_code == 404


# --- compat backend -------------------------------------------------------------------------------------------------

def test_backend_returns_course_info(course):
    OrganizationFactory(short_name="PokX", name="POK Example University")
    info = SandboxBackend().get_course(course.id)
    assert isinstance(info, CourseInfo)
    assert (info.course_key, info.display_name, info.org, info.org_name) == (
        course.id, "Sandbox Course", "PokX", "POK Example University")
    assert info.certificate_title == "Certified Sandboxing" and info.language == "en"
    assert info.start == course.start and info.end == course.end
    assert info.signatories == (Signatory(name="Grace Hopper", title="Director", organization="PokX"),)


def test_backend_course_fallbacks():
    key = CourseKey.from_string("course-v1:Other+C1+2026")
    CourseOverviewFactory(id=key, display_org_with_default="Other Org", signatories=[{"title": "no name"}])
    info = SandboxBackend().get_course(key)
    assert info.org_name == "Other Org" and info.signatories == ()
    assert SandboxBackend().get_course(CourseKey.from_string("course-v1:No+Such+Course")) is None


def test_backend_certificate_and_learner(certificate, learner, course):
    backend = SandboxBackend()
    info = backend.get_certificate(learner, course.id)
    assert isinstance(info, CertificateInfo) and info.is_downloadable
    assert (info.verify_uuid, info.mode, info.grade) == (certificate.verify_uuid, "verified", "0.85")
    assert info.created == certificate.created_date and info.modified == certificate.modified_date
    assert backend.get_certificate(UserFactory(), course.id) is None

    assert backend.get_profile_name(learner) == "Ana Certificate-Name"
    assert backend.get_language_preference(learner) is None
    UserProfileFactory(user=learner, language="pt-br")  # updates the existing profile
    learner.refresh_from_db()
    assert backend.get_language_preference(learner) == "pt-br"
    no_profile = UserFactory(profile=None)
    assert backend.get_profile_name(no_profile) is None and backend.get_language_preference(no_profile) is None
    assert backend.get_platform_name() == "Test Academy"
    assert backend.get_organization_name("Nope") is None


def test_the_plugin_door_uses_the_sandbox_backend(course, learner):
    assert isinstance(compat.backend(), SandboxBackend)
    assert compat.get_course(course.id).certificate_title == "Certified Sandboxing"
    assert compat.get_profile_name(learner) == "Ana Certificate-Name"


# --- admin ----------------------------------------------------------------------------------------------------------

def test_admin_lists_the_sandbox_tables_and_invalidates(client, certificate, events):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for model in ("courseoverview", "userprofile", "organization", "generatedcertificate"):
        assert client.get(reverse(f"admin:lms_sandbox_{model}_changelist")).status_code == 200
    events.clear()
    response = client.post(reverse("admin:lms_sandbox_generatedcertificate_changelist"), {
        "action": "invalidate", "_selected_action": [certificate.pk]})
    assert response.status_code == 302
    certificate.refresh_from_db()
    assert certificate.status == "unavailable" and _names(events) == ["changed", "revoked"]
