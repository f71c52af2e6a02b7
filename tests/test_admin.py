"""
Django admin: staff see mappings and credentials and repair issuance with the retry and refresh actions.
"""
import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from pok_simulator import Fault

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = get_user_model().objects.create_superuser("boss", "boss@example.com", "pw")
    client.force_login(admin)
    return client


def test_changelists_and_change_pages_load(admin_client, pok, course, learner, lms):
    lms.award(learner, course)
    row = PokCertificate.objects.get()
    for url in (
        reverse("admin:openedx_pok_pokcertificate_changelist"),
        reverse("admin:openedx_pok_pokcertificate_changelist") + "?status=emitted",
        reverse("admin:openedx_pok_pokcertificate_changelist") + f"?q={row.pok_credential_id}",
        reverse("admin:openedx_pok_pokcertificate_change", args=[row.id]),
        reverse("admin:openedx_pok_certificatetemplate_changelist"),
        reverse("admin:openedx_pok_certificatetemplate_add"),
        reverse("admin:openedx_pok_poktemplate_changelist"),
        reverse("admin:openedx_pok_accounts"),
    ):
        assert admin_client.get(url).status_code == 200, url
    assert admin_client.get(reverse("admin:openedx_pok_pokcertificate_add")).status_code == 403


def test_staff_find_a_learner_by_email_username_or_course(admin_client, pok, course, learner, lms):
    """The search of the credential list understands what staff paste (see tests/test_admin_performance.py)."""
    lms.award(learner, course)
    row = PokCertificate.objects.get()
    url = reverse("admin:openedx_pok_pokcertificate_changelist")
    for term in (learner.email.upper(), learner.username, learner.username[:4], str(course.id), str(row.uuid),
                 row.pok_credential_id, str(learner.id)):
        response = admin_client.get(url, {"q": term})
        assert [shown.id for shown in response.context["cl"].result_list] == [row.id], term
        assert learner.username in response.content.decode()
    response = admin_client.get(url, {"q": "someone.else@example.com"})
    assert list(response.context["cl"].result_list) == []


def test_a_number_too_large_for_an_id_is_searched_as_a_pok_id(admin_client, pok, course, learner, lms):
    lms.award(learner, course)
    row = PokCertificate.objects.get()
    PokCertificate.objects.filter(id=row.id).update(pok_credential_id="12345678901234567890123")
    url = reverse("admin:openedx_pok_pokcertificate_changelist")
    for term, shown in (("12345678901234567890123", [row.id]), ("９", []), ("²", [])):  # no 500
        response = admin_client.get(url, {"q": term})
        assert response.status_code == 200 and [r.id for r in response.context["cl"].result_list] == shown, term


def test_mapping_added_in_admin_takes_the_course_org(admin_client, pok, db):
    response = admin_client.post(reverse("admin:openedx_pok_certificatetemplate_add"), {
        "course_key": "course-v1:OrgZ+C1+2026", "organization": "", "template_id": "tpl-basic",
        "emission_type": "pok", "page_id": "", "enabled": "on",
    })
    assert response.status_code == 302
    assert CertificateTemplate.objects.get().organization == "OrgZ"
    response = admin_client.post(reverse("admin:openedx_pok_certificatetemplate_add"), {
        "course_key": "", "organization": "", "template_id": "tpl-basic", "emission_type": "pok",
    })
    assert response.status_code == 200 and CertificateTemplate.objects.count() == 1  # form error shown


def test_retry_action_issues_a_failed_credential(
    admin_client, pok, course, learner, lms, django_capture_on_commit_callbacks,
):
    pok.add_fault(Fault("status", endpoint="issue_credential", status=400, times=1))
    lms.award(learner, course)
    row = PokCertificate.objects.get()
    assert row.status == CredentialStatus.FAILED
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(reverse("admin:openedx_pok_pokcertificate_changelist"), {
            "action": "retry_issuance", "_selected_action": [row.id], "post": "yes",
        }, follow=True)
    assert b"1 credential scheduled for issuance" in response.content
    assert PokCertificate.objects.get().status == CredentialStatus.EMITTED
    assert len(pok.credentials_for(learner.email)) == 1


def test_refresh_action_polls_pok(admin_client, pok, course, learner, lms, django_capture_on_commit_callbacks):
    pok.emission_mode = "async"
    pok.polls_until_emitted = 1
    lms.award(learner, course)
    row = PokCertificate.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post(reverse("admin:openedx_pok_pokcertificate_changelist"), {
            "action": "refresh_from_pok", "_selected_action": [row.id], "post": "yes",
        })
    assert PokCertificate.objects.get().status == CredentialStatus.EMITTED
