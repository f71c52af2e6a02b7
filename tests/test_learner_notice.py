"""
A held credential, as its learner meets it: the certificate page says what they can fix (their full name, their
e-mail) with a link to their account settings, and the credential follows by itself once they fix it.

The page is public (anyone with the link may open it): only the learner, logged in, is told what to fix; anyone
else, and causes only staff can fix, get the plain notice and its reference, which claims nothing.
"""
import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from lms_sandbox.factories import GeneratedCertificateFactory, UserFactory
from openedx_pok import api
from openedx_pok.issuance import retirement
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from test_utils import credential_of

ACCOUNT_LINK = 'href="/account/settings" data-testid="account-settings"'


def page(client, certificate):
    response = client.get(f"/certificates/{certificate.verify_uuid}")
    assert response.status_code == 200
    return response.content.decode()


@pytest.fixture
def nameless(db):
    return UserFactory(username="ada_l", profile__name="")


def test_a_learner_without_a_full_name_is_told_to_set_it_and_where(client, pok, course, nameless, lms):
    certificate = lms.award(nameless, course)
    assert credential_of(nameless, course).status == CredentialStatus.HELD
    client.force_login(nameless)
    content = page(client, certificate)
    assert "Set your full name in your account settings" in content and ACCOUNT_LINK in content
    assert "issued by itself" in content
    assert f'href="/courses/{course.id}/"' in content and "Back to the course" in content
    assert "ada_l" not in content  # never the username in place of a name
    assert "contact support" not in content and "notified" not in content


def test_the_account_link_follows_the_platforms_account_app(client, settings, pok, course, nameless, lms):
    settings.ACCOUNT_MICROFRONTEND_URL = "https://apps.example.org/account/"
    certificate = lms.award(nameless, course)
    client.force_login(nameless)
    assert 'href="https://apps.example.org/account/"' in page(client, certificate)


def test_a_learner_whose_email_cannot_receive_it_is_told_to_update_it(client, pok, course, lms):
    learner = UserFactory(profile__name="Ada Lovelace", email="ada-at-example")
    certificate = lms.award(learner, course)
    client.force_login(learner)
    content = page(client, certificate)
    assert "Update your e-mail address in your account settings" in content and ACCOUNT_LINK in content


def test_anyone_else_sees_only_the_plain_notice(client, pok, course, nameless, lms):
    certificate = lms.award(nameless, course)
    for viewer in (None, UserFactory()):
        client.logout()
        if viewer is not None:
            client.force_login(viewer)
        content = page(client, certificate)
        assert "account settings" not in content and "full name" not in content
        assert str(credential_of(nameless, course).uuid) in content and "contact support" in content


def test_a_cause_only_staff_can_fix_gets_the_plain_notice_without_claims(client, pok, course, learner, lms):
    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="")
    certificate = lms.award(learner, course)
    assert credential_of(learner, course).status == CredentialStatus.HELD
    client.force_login(learner)
    content = page(client, certificate)
    assert "account settings" not in content and "contact support" in content
    assert "notified" not in content and "staff" not in content.lower()


def test_setting_the_full_name_sends_the_held_credential(pok, course, nameless, lms):
    lms.award(nameless, course)
    row = credential_of(nameless, course)
    assert row.status == CredentialStatus.HELD and pok.count("issue_credential") == 0

    nameless.profile.name = "Ada Lovelace"
    lms.run(nameless.profile.save)

    row = credential_of(nameless, course)
    assert row.status == CredentialStatus.EMITTED and pok.count("issue_credential") == 1
    assert row.receiver["firstName"] == "Ada" and row.receiver["lastName"] == "Lovelace"


def test_fixing_the_email_sends_the_held_credential(pok, course, lms):
    learner = UserFactory(profile__name="Ada Lovelace", email="ada-at-example")
    lms.award(learner, course)
    assert credential_of(learner, course).status == CredentialStatus.HELD

    learner.email = "ada@example.com"
    lms.run(learner.save)  # as the LMS confirms an e-mail change: a save of the whole user

    assert credential_of(learner, course).status == CredentialStatus.EMITTED
    assert pok.count("issue_credential") == 1


def test_a_change_that_fixes_nothing_holds_it_again_without_a_request(pok, course, nameless, lms):
    lms.award(nameless, course)
    nameless.profile.location = "London"  # still no name
    lms.run(nameless.profile.save)
    row = credential_of(nameless, course)
    assert row.status == CredentialStatus.HELD and pok.count("issue_credential") == 0


def test_a_login_costs_no_query_of_the_plugin(nameless):
    PokCertificate.objects.create(user=nameless, course_key="course-v1:DemoX+POK101+2026",
                                  status=CredentialStatus.HELD)
    with CaptureQueriesContext(connection) as queries:
        nameless.save(update_fields=["last_login"])  # what django.contrib.auth does at every login
    assert not [query for query in queries if "openedx_pok" in query["sql"]]


def test_a_retired_learners_credential_is_not_sent_when_their_profile_is_saved(pok, course, nameless, lms):
    lms.award(nameless, course)
    lms.run(api.retire_learner, nameless.id)
    nameless.profile.name = "Ada Lovelace"
    lms.run(nameless.profile.save)
    row = credential_of(nameless, course)
    assert row.status == CredentialStatus.HELD and retirement.is_retired(row.receiver)
    assert pok.count("issue_credential") == 0


def test_an_error_never_reaches_the_lms_save(monkeypatch, caplog, nameless):
    GeneratedCertificateFactory(user=nameless)

    def broken(user_id):
        raise RuntimeError("database gone")

    monkeypatch.setattr(api, "learner_data_changed", broken)
    nameless.profile.name = "Ada Lovelace"
    with caplog.at_level(logging.ERROR, logger="openedx_pok"):
        nameless.profile.save()
    assert f"account change of user {nameless.id}" in caplog.text and "Ada" not in caplog.text
