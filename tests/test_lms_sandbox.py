"""
The sandbox LMS must call the plugin exactly like the Open edX LMS (see /work/shared/openedx-hooks.md).

Every other test of the plugin trusts this host, so these tests pin its LMS behaviour: the creation filter gets a
``CourseKey`` and a ``CourseGrade`` through the real openedx-filters pipeline, the certificate model sends the real
openedx-events signals with the LMS payload and timing, and the web view maps each render exception as the LMS does.
The pipelines are replaced by this module's own steps so the tests do not depend on the plugin's steps.
"""
from contextlib import contextmanager
from datetime import timedelta
from unittest import mock

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone, translation
from opaque_keys.edx.keys import CourseKey
from openedx_events.learning.data import CertificateData
from openedx_events.learning.signals import CERTIFICATE_CHANGED, CERTIFICATE_CREATED, CERTIFICATE_REVOKED
from openedx_filters import PipelineStep
from openedx_filters.learning.filters import CertificateCreationRequested, CertificateRenderStarted
from waffle.models import Flag

from lms_sandbox import retirement, tasks
from lms_sandbox.compat import SandboxBackend
from lms_sandbox.factories import (
    CourseOverviewFactory,
    GeneratedCertificateFactory,
    OrganizationFactory,
    StaffFactory,
    UserFactory,
)
from lms_sandbox.generation import CertificateGenerationNotAllowed, generate_certificate, revoke_certificate
from lms_sandbox.grades import CourseGrade
from lms_sandbox.models import (
    CourseOverview,
    GeneratedCertificate,
    UserPreference,
    UserProfile,
    WaffleFlagCourseOverrideModel,
    WaffleFlagOrgOverrideModel,
)
from openedx_pok import compat, lms_tables
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
    """
    lms/djangoapps/certificates/generation.py (openedx-platform Verawood): the task saves the unverified
    certificate, then ``mark_unverified`` revokes it, so CHANGED, CHANGED, REVOKED and never CREATED.
    """
    with pipeline(CREATION, CaptureCreation) as calls:
        certificate = generate_certificate(
            learner, course.id, CourseGrade(percent=0.9), status="unverified", generation_mode="batch",
        )
    assert calls[0]["status"] == "unverified" and calls[0]["generation_mode"] == "batch"
    assert certificate.status == "unverified"
    assert _names(events) == ["changed", "changed", "revoked"]  # not a passing status: no CERTIFICATE_CREATED


def test_regeneration_updates_the_same_certificate(course, learner, events):
    with pipeline(CREATION, CaptureCreation):
        first = generate_certificate(learner, course.id, CourseGrade(percent=0.7))
        second = generate_certificate(learner, course.id, CourseGrade(percent=0.95))
    assert first.pk == second.pk and first.verify_uuid == second.verify_uuid
    assert second.created_date == first.created_date
    assert GeneratedCertificate.objects.get().grade == "0.95"
    assert _names(events) == ["changed", "created", "changed", "created"]


def test_generation_queues_the_lms_task_with_string_arguments(course, learner):
    """
    lms/djangoapps/certificates/generation_handler.py (openedx-platform Verawood): after the filter, the certificate
    is left to ``generate_certificate.apply_async(countdown=CERTIFICATE_DELAY_SECONDS, kwargs=...)``, strings only;
    until a worker runs it (two seconds later) there is no certificate, and the call says so with None.
    """
    with pipeline(CREATION, CaptureCreation, behaviour=lambda _args: {"mode": "honor"}), \
            mock.patch.object(tasks.generate_certificate, "apply_async") as apply_async:
        assert generate_certificate(learner, course.id, CourseGrade(percent=0.85), generation_mode="self") is None
    assert tasks.CERTIFICATE_DELAY_SECONDS == 2
    apply_async.assert_called_once_with(countdown=2, kwargs={
        "student": str(learner.id), "course_key": COURSE, "enrollment_mode": "honor", "course_grade": "0.85",
        "generation_mode": "self"})
    assert not GeneratedCertificate.objects.exists()

    # The worker's run of that message (lms/djangoapps/certificates/tasks.py): defaults status "downloadable".
    tasks.generate_certificate.apply(kwargs=apply_async.call_args.kwargs["kwargs"])
    certificate = GeneratedCertificate.objects.get()
    assert (certificate.status, certificate.mode, certificate.grade) == ("downloadable", "honor", "0.85")
    assert certificate.name == "Ana Certificate-Name" and len(certificate.verify_uuid) == 32


def test_the_generation_task_keeps_an_existing_verify_uuid(course, learner):
    """lms/djangoapps/certificates/generation.py (Verawood): ``update_or_create`` keeps the row's verify_uuid."""
    existing = GeneratedCertificateFactory(user=learner, course_id=course.id, status="notpassing", grade="0.4")
    tasks.generate_certificate.apply(kwargs={"student": str(learner.id), "course_key": COURSE,
                                             "enrollment_mode": "verified", "course_grade": "0.9"})
    certificate = GeneratedCertificate.objects.get()
    assert (certificate.pk, certificate.verify_uuid) == (existing.pk, existing.verify_uuid)
    assert (certificate.status, certificate.grade) == ("downloadable", "0.9")


def test_eligible_certificates_leave_out_audit_certificates(course, learner):
    """
    lms/djangoapps/certificates/models.py ``EligibleCertificateManager`` and api.py ``get_certificate_for_user``
    (openedx-platform Verawood): audit certificates are not the learner's certificate, whatever else they are.
    """
    certificate = GeneratedCertificateFactory(user=learner, course_id=course.id, status="audit_passing")
    assert not GeneratedCertificate.eligible_certificates.exists() and GeneratedCertificate.objects.exists()
    assert SandboxBackend().get_certificate(learner, course.id) is None
    GeneratedCertificate.objects.filter(pk=certificate.pk).update(status="notpassing")
    assert GeneratedCertificate.eligible_certificates.get() == certificate
    assert SandboxBackend().get_certificate(learner, course.id).status == "notpassing"


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
    assert response.status_code == 200  # the LMS renders its invalid page with render_to_response: HTTP 200
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
    assert response.status_code == 200 and response.content.decode() == "revoked on Test Academy"


def test_alternative_invalid_certificate_with_a_missing_template_falls_back(client, certificate):
    with pipeline(RENDER, CaptureRender, behaviour=_raise(CertificateRenderStarted.RenderAlternativeInvalidCertificate(
            "Revoked.", template_name="steps/does-not-exist.html"))):
        response = client.get(_page(certificate))
    assert response.status_code == 200 and 'data-testid="invalid-certificate"' in response.content.decode()


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
    assert response.status_code == 200 and 'data-testid="invalid-certificate"' in response.content.decode()
    assert calls == []


def test_course_page_needs_a_login(client, course):
    response = client.get(f"/certificates/course/{COURSE}?preview=verified")
    assert response.status_code == 302 and "login" in response["Location"]


def test_preview_is_for_staff_only(client, course, learner):
    """The LMS's view fails for a preview without the permission; its handle_500 answers with the error page."""
    client.force_login(learner)
    with pipeline(RENDER, CaptureRender) as calls:
        response = client.get(f"/certificates/course/{COURSE}?preview=verified")
    assert response.status_code == 500 and calls == []


def test_certificates_wait_for_the_course_to_show_them(client, certificate):
    """certificates_viewable_for_course: before the course releases them, the page is the invalid one, no filter."""
    CourseOverview.objects.filter(pk=certificate.course_id).update(
        certificates_display_behavior="end_with_date", certificate_available_date=timezone.now() + timedelta(days=1))
    with pipeline(RENDER, CaptureRender) as calls:
        response = client.get(_page(certificate))
    assert response.status_code == 200 and 'data-testid="invalid-certificate"' in response.content.decode()
    assert calls == []
    CourseOverview.objects.filter(pk=certificate.course_id).update(
        certificate_available_date=timezone.now() - timedelta(seconds=1))
    with pipeline(RENDER, CaptureRender) as calls:
        assert client.get(_page(certificate)).status_code == 200 and len(calls) == 1


@pytest.mark.parametrize("has_user_certificate", [True, False])
def test_the_context_has_user_certificate_only_on_releases_that_send_it(client, settings, certificate,
                                                                       has_user_certificate):
    """openedx-platform#37486 (late 2025) added ``user_certificate``; earlier releases do not send it."""
    settings.SANDBOX_CONTEXT_USER_CERTIFICATE = has_user_certificate
    with pipeline(RENDER, CaptureRender) as calls:
        client.get(_page(certificate))
    assert ("user_certificate" in calls[0]["context"]) is has_user_certificate


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
    for url in (f"/certificates/course/{COURSE}", "/certificates/course/not-a-course-key"):
        response = client.get(url)
        assert response.status_code == 200 and 'data-testid="invalid-certificate"' in response.content.decode()


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
    no_profile = UserFactory(profile=None)
    assert backend.get_profile_name(no_profile) is None
    assert backend.get_organization_name("Nope") is None


def test_backend_language_preference_is_a_user_preference(learner):
    """
    openedx/core/djangoapps/user_api/preferences/api.py ``get_user_preference(user, "pref-lang")`` and
    user_api/models.py ``UserPreference`` (openedx-platform Verawood): a (user, key) row, None when unset.
    """
    backend = SandboxBackend()
    assert backend.get_language_preference(learner) is None
    UserPreference.objects.create(user=learner, key="pref-lang", value="pt-br")
    assert backend.get_language_preference(learner) == "pt-br"
    assert backend.get_language_preference(UserFactory(pref_lang="es-419")) == "es-419"
    assert backend.get_language_preference(UserFactory(profile=None)) is None
    assert not hasattr(UserProfile(), "language")  # not on the profile, as in the LMS


def test_backend_platform_name_is_the_sites_lowercase_platform_name(settings):
    """
    openedx/core/djangoapps/site_configuration/helpers.py (openedx-platform Verawood): ``get_value("platform_name",
    settings.PLATFORM_NAME)``; SANDBOX_SITE_CONFIGURATION stands for the site's configuration values.
    """
    backend = SandboxBackend()
    assert backend.get_platform_name() == "Test Academy"
    settings.SANDBOX_SITE_CONFIGURATION = {"PLATFORM_NAME": "Wrong key"}
    assert backend.get_platform_name() == "Test Academy"
    settings.SANDBOX_SITE_CONFIGURATION = {"platform_name": "Site Academy"}
    assert backend.get_platform_name() == "Site Academy"


def test_backend_reads_the_waffle_tables_like_course_waffle_flag():
    """
    openedx/core/djangoapps/waffle_utils/models.py (openedx-platform Verawood): the latest override row by
    change_date decides, only when enabled; the sandbox reads the tables with the platform backend's code.
    """
    flag, key, other = "module_pok.enable", CourseKey.from_string(COURSE), CourseKey.from_string("course-v1:X+Y+Z")
    assert SandboxBackend().get_course_flag_state(flag) == lms_tables.CourseFlagState(everyone=False)
    Flag.objects.create(name=flag, everyone=None, percent=50)
    assert SandboxBackend().get_course_flag_state(flag) == lms_tables.CourseFlagState(everyone=None)

    def override(model, choice, enabled, minutes, **where):
        row = model.objects.create(waffle_flag=flag, override_choice=choice, enabled=enabled, **where)
        # change_date is auto_now_add: set it afterwards to order the rows as the test needs.
        model.objects.filter(pk=row.pk).update(change_date=row.change_date + timedelta(minutes=minutes))

    override(WaffleFlagCourseOverrideModel, "on", True, 1, course_id=key)
    override(WaffleFlagCourseOverrideModel, "off", True, 2, course_id=key)  # latest: off
    override(WaffleFlagCourseOverrideModel, "on", True, 1, course_id=other)
    override(WaffleFlagCourseOverrideModel, "on", False, 2, course_id=other)  # latest is disabled: unset
    override(WaffleFlagOrgOverrideModel, "on", True, 1, org="PokX")
    WaffleFlagOrgOverrideModel.objects.create(waffle_flag="another.flag", org="Other", enabled=True)
    state = SandboxBackend().get_course_flag_state(flag)
    assert state.everyone is None
    assert dict(state.course_overrides) == {COURSE: False}
    assert state.org_overrides == (("PokX", True),)
    # The same answers as the LMS model's own override_value.
    assert WaffleFlagCourseOverrideModel.override_value(flag, key) == "off"
    assert WaffleFlagCourseOverrideModel.override_value(flag, other) == "unset"
    assert WaffleFlagOrgOverrideModel.override_value(flag, "PokX") == "on"
    assert WaffleFlagOrgOverrideModel.override_value(flag, "Other") == "unset"


def test_the_plugin_door_uses_the_sandbox_backend(course, learner):
    assert isinstance(compat.backend(), SandboxBackend)
    assert compat.get_course(course.id).certificate_title == "Certified Sandboxing"
    assert compat.get_profile_name(learner) == "Ana Certificate-Name"


# --- retirement -----------------------------------------------------------------------------------------------------

@contextmanager
def misc_receivers(*functions):
    """Connect ``functions`` to USER_RETIRE_LMS_MISC, in order, after the plugin's receiver; disconnect them after."""
    for index, function in enumerate(functions):
        retirement.USER_RETIRE_LMS_MISC.connect(function, dispatch_uid=f"test-lms-sandbox-misc-{index}", weak=False)
    try:
        yield
    finally:
        for index in range(len(functions)):
            retirement.USER_RETIRE_LMS_MISC.disconnect(dispatch_uid=f"test-lms-sandbox-misc-{index}")


def test_retirement_runs_in_the_lms_order(certificate, learner):
    """
    openedx/core/djangoapps/user_api/accounts/utils.py ``create_retirement_request_and_deactivate_account`` and
    views.py ``LMSAccountRetirementView`` / ``AccountRetirementView`` (openedx-platform Verawood): the e-mail is
    retired at deactivation, before USER_RETIRE_LMS_MISC; names and username only at the later LMS step.
    """
    seen = []
    retirement.deactivate_account(learner)
    learner.refresh_from_db()
    assert learner.email.startswith("retired__user_") and learner.email.endswith("@retired.invalid")
    assert not learner.has_usable_password() and learner.username == "ana" and learner.is_active

    with misc_receivers(lambda sender, user, **kwargs: seen.append((sender, user.email, user.username,
                                                                      user.profile.name))):
        assert retirement.retire_misc(learner) == 204
    assert seen == [(retirement.LMSAccountRetirementView, learner.email, "ana", "Ana Certificate-Name")]

    assert retirement.retire_account(learner) == 204
    learner.refresh_from_db()
    assert learner.username.startswith("retired__user_") and learner.email.startswith("retired__user_")
    assert (learner.first_name, learner.last_name, learner.is_active) == ("", "", False)
    assert learner.profile.name == "" and GeneratedCertificate.objects.get(pk=certificate.pk).name == ""


def test_retirement_steps_need_a_deactivated_account(learner):
    """The views answer 404 when the learner has no retirement request (``UserRetirementStatus.DoesNotExist``)."""
    seen = []
    with misc_receivers(lambda user, **kwargs: seen.append(user)):
        assert retirement.retire_misc(learner) == 404
        assert retirement.retire_account(learner) == 404
    assert seen == [] and UserFactory._meta.model.objects.get(pk=learner.pk).email == "ana@example.com"


def test_a_failing_misc_receiver_answers_500_and_keeps_what_earlier_ones_wrote(learner):
    """
    views.py ``LMSAccountRetirementView`` (openedx-platform Verawood): ``.send`` stops at the failing receiver, the
    view catches the error and answers 500, and nothing rolls back what the receivers before it wrote.
    """
    after = []

    def earlier(sender, user, **kwargs):
        UserPreference.objects.create(user=user, key="retired-by-earlier-receiver", value="yes")

    def failing(sender, user, **kwargs):
        raise RuntimeError("receiver bug")

    retirement.deactivate_account(learner)
    with misc_receivers(earlier, failing, lambda user, **kwargs: after.append(user)):
        assert retirement.retire_misc(learner) == 500
    assert UserPreference.get_value(learner, "retired-by-earlier-receiver") == "yes"
    assert after == []  # later receivers never ran: the pipeline retries the whole step


# --- admin ----------------------------------------------------------------------------------------------------------

def test_admin_lists_the_sandbox_tables_and_invalidates(client, certificate, events):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for model in ("courseoverview", "userprofile", "userpreference", "organization", "generatedcertificate",
                  "waffleflagcourseoverridemodel", "waffleflagorgoverridemodel"):
        assert client.get(reverse(f"admin:lms_sandbox_{model}_changelist")).status_code == 200
    events.clear()
    response = client.post(reverse("admin:lms_sandbox_generatedcertificate_changelist"), {
        "action": "invalidate", "_selected_action": [certificate.pk]})
    assert response.status_code == 302
    certificate.refresh_from_db()
    assert certificate.status == "unavailable" and _names(events) == ["changed", "revoked"]


# --- the database as Tutor configures it ----------------------------------------------------------------------------

@pytest.mark.mysql
def test_the_mariadb_run_uses_tutors_database_options(db):
    """
    tutor/templates/apps/openedx/config/partials/auth.yml (Tutor 19 to 22): every request in a transaction, strict
    mode, utf8mb4 connections; the database in utf8mb3, as an edxapp database created years ago.
    """
    assert connection.vendor == "mysql", "run with POK_TEST_DB=mysql (make test-mysql)"
    assert connection.settings_dict["ATOMIC_REQUESTS"] is True
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@SESSION.sql_mode, @@SESSION.character_set_connection, @@SESSION.tx_isolation, "
                       "@@character_set_database")
        sql_mode, charset, isolation, database_charset = cursor.fetchone()
    assert "STRICT_TRANS_TABLES" in sql_mode
    assert charset == "utf8mb4" and database_charset in ("utf8", "utf8mb3")
    assert isolation == "READ-COMMITTED"  # Django's default for MySQL; Tutor sets none
