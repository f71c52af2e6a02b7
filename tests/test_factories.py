"""
The shared test factories (test_utils.factories) make rows the plugin itself would have written: a mapped course that
exists in the sandbox LMS, and a credential per status with the fields that status implies.
"""
import pytest
from django.db import IntegrityError, transaction

from lms_sandbox.factories import CourseOverviewFactory, UserFactory
from lms_sandbox.models import CourseOverview
from openedx_pok.issuance.states import PublicStatus, is_web_url, public_status
from openedx_pok.models import CertificateTemplate, CredentialStatus, EmissionType, PokCertificate
from test_utils import credential_of
from test_utils.factories import DEFAULT_TEMPLATE_ID, CourseMappingFactory, CredentialFactory

pytestmark = pytest.mark.django_db


def test_mapping_maps_a_course_that_exists_in_the_lms():
    mapping = CourseMappingFactory()
    assert CourseOverview.objects.filter(id=mapping.course_key).exists()
    assert mapping.organization == mapping.course_key.org
    assert mapping.enabled and mapping.template_id == DEFAULT_TEMPLATE_ID
    assert CertificateTemplate.objects.for_course(mapping.course_key) == mapping


def test_mapping_emission_type_follows_the_setting_unless_given(settings):
    settings.POK_DEFAULT_EMISSION_TYPE = "blockchain"
    assert CourseMappingFactory().emission_type == EmissionType.BLOCKCHAIN
    assert CourseMappingFactory(emission_type="pok").emission_type == EmissionType.POK
    settings.POK_DEFAULT_EMISSION_TYPE = "pok"
    assert CourseMappingFactory(blockchain=True).emission_type == EmissionType.BLOCKCHAIN


def test_organization_default_applies_to_the_organizations_courses():
    default = CourseMappingFactory(organization_default=True)
    assert not default.course_key and default.organization
    other = CourseMappingFactory(organization_default=True)
    assert other.organization != default.organization
    course = CourseOverviewFactory()
    assert CertificateTemplate.objects.for_course(course.id.replace(org=default.organization)) == default


def test_disabled_mapping_opts_its_course_out():
    mapping = CourseMappingFactory(disabled=True)
    assert CertificateTemplate.objects.for_course(mapping.course_key).enabled is False


def test_pending_credential_is_for_a_mapped_course_and_not_sent_yet():
    row = CredentialFactory()
    assert row.status == CredentialStatus.PENDING
    assert CertificateTemplate.objects.for_course(row.course_key).template_id == row.template_id
    assert row.pok_credential_id is None and row.attempts == 0 and not row.view_url
    assert public_status(row) == PublicStatus.IN_PROGRESS


def test_credential_for_an_existing_course_reuses_its_mapping():
    mapping = CourseMappingFactory()
    CredentialFactory(course_key=mapping.course_key)
    CredentialFactory(course_key=mapping.course_key)
    assert CertificateTemplate.objects.count() == 1
    assert PokCertificate.objects.filter(course_key=mapping.course_key).count() == 2


@pytest.mark.parametrize(("trait", "status", "public"), [
    ("requesting", CredentialStatus.REQUESTING, PublicStatus.IN_PROGRESS),
    ("in_progress", CredentialStatus.IN_PROGRESS, PublicStatus.IN_PROGRESS),
    ("emitted", CredentialStatus.EMITTED, PublicStatus.EMITTED),
    ("failed_retryable", CredentialStatus.FAILED, PublicStatus.DELAYED),
    ("failed", CredentialStatus.FAILED, PublicStatus.DELAYED),
    ("held", CredentialStatus.HELD, PublicStatus.DELAYED),
    ("revoked", CredentialStatus.REVOKED, PublicStatus.REVOKED),
])
def test_each_status_trait_gives_the_status_the_learner_sees(trait, status, public):
    row = PokCertificate.objects.get(pk=CredentialFactory(**{trait: True}).pk)
    assert row.status == status
    assert public_status(row) == public
    if status in (CredentialStatus.FAILED, CredentialStatus.HELD, CredentialStatus.REVOKED):
        assert row.status_reason
    else:
        assert row.status_reason == ""


def test_emitted_credential_has_a_pok_id_a_view_url_and_what_was_sent():
    user = UserFactory(first_name="Grace", last_name="Hopper")
    row = CredentialFactory(emitted=True, user=user)
    assert row.pok_credential_id and row.pok_state == "emitted"
    assert is_web_url(row.view_url) and row.view_url.endswith(row.pok_credential_id)
    assert row.emission_date is not None and row.attempts == 1
    assert row.receiver == {"firstName": "Grace", "lastName": "Hopper", "email": user.email}
    assert row.title == CourseOverview.objects.get(id=row.course_key).display_name
    assert str(row.course_key) in row.tags


def test_failed_retryable_spent_its_retries_and_waits_for_reconcile(settings):
    settings.POK_MAX_RETRIES = 3
    row = CredentialFactory(failed_retryable=True)
    assert row.retryable is True and row.attempts == 4
    assert CredentialFactory(failed=True).retryable is False


def test_revoked_credential_names_the_pok_credential_to_revoke():
    row = CredentialFactory(revoked=True)
    assert row.pok_credential_id in row.status_reason
    assert public_status(row) == PublicStatus.REVOKED


def test_pok_ids_are_unique_as_the_database_requires():
    first, second = CredentialFactory(emitted=True), CredentialFactory(in_progress=True)
    assert first.pok_credential_id != second.pok_credential_id
    with pytest.raises(IntegrityError), transaction.atomic():
        CredentialFactory(emitted=True, pok_credential_id=first.pok_credential_id)


def test_credential_of_reads_the_committed_row():
    row = CredentialFactory()
    course = CourseOverview.objects.get(id=row.course_key)
    PokCertificate.objects.filter(pk=row.pk).update(status=CredentialStatus.HELD)
    assert credential_of(row.user, course).status == CredentialStatus.HELD
    with pytest.raises(PokCertificate.DoesNotExist):
        credential_of(UserFactory(), course)
