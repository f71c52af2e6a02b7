"""
factory_boy factories of the plugin's own models: course mappings and credentials.

The learners and courses come from the sandbox LMS factories (``lms_sandbox.factories``), so a mapping's course
exists in the sandbox LMS and a credential's learner has a profile, exactly as in the LMS. The model classes keep the
names of the earlier openedx-pok (``CertificateTemplate`` is a course mapping, ``PokCertificate`` a credential); the
factories are named after what they make.

Each credential status has a trait that fills the fields the plugin would have written on the way there, e.g.
``CredentialFactory(emitted=True)`` has a POK id, the ``emitted`` POK state and a view URL; ``failed_retryable``,
``held`` and ``revoked`` carry a reason as staff would see it. Rows are written directly: no task runs, no POK call
is made, so a test that needs the real flow awards a certificate through the sandbox LMS instead.
"""
import uuid

import factory
from django.conf import settings
from django.utils import timezone

from lms_sandbox.factories import CourseOverviewFactory, UserFactory
from lms_sandbox.models import CourseOverview
from openedx_pok.models import CertificateTemplate, CredentialStatus, EmissionType, PokCertificate

#: A template the POK simulator serves by default, so a mapped course can really issue against it.
DEFAULT_TEMPLATE_ID = "tpl-basic"
#: Where the simulator and POK show an emitted credential; the id is appended.
VIEW_URL_BASE = "https://pok.tech/view/"


class CourseMappingFactory(factory.django.DjangoModelFactory):
    """
    An enabled mapping of a new sandbox course run to the simulator's basic template.

    The emission type is left to the model's default (the ``POK_DEFAULT_EMISSION_TYPE`` setting) unless given.
    Traits: ``organization_default`` (no course: the default of a new organization), ``disabled``, ``blockchain``.
    """

    class Meta:
        model = CertificateTemplate

    course_key = factory.LazyFunction(lambda: CourseOverviewFactory().id)
    # Filled from the course key by CertificateTemplate.save(); set here so build() gives the same value.
    organization = factory.LazyAttribute(lambda o: getattr(o.course_key, "org", ""))
    template_id = DEFAULT_TEMPLATE_ID
    page_id = ""
    enabled = True

    class Params:
        organization_default = factory.Trait(
            course_key="",
            organization=factory.Sequence(lambda n: f"PokOrg{n}"),
        )
        disabled = factory.Trait(enabled=False)
        blockchain = factory.Trait(emission_type=EmissionType.BLOCKCHAIN)


def _course_title(course_key):
    overview = CourseOverview.objects.filter(id=course_key).first()
    return overview.display_name if overview else str(course_key)


def _receiver(user):
    """The receiver block as the plugin sends it (see ``payload.build_receiver``), without the language tag."""
    return {"firstName": user.first_name, "lastName": user.last_name, "email": user.email}


def _new_pok_id():
    return str(uuid.uuid4())


def _sent():
    """What the traits of a credential that POK accepted fill in: one POST, what it sent, the POK id."""
    return {
        "pok_credential_id": factory.LazyFunction(_new_pok_id),
        "title": factory.LazyAttribute(lambda o: _course_title(o.course_key)),
        "emitter": factory.LazyAttribute(lambda o: o.course_key.org),
        "tags": factory.LazyAttribute(lambda o: [str(o.course_key)]),
        "receiver": factory.LazyAttribute(lambda o: _receiver(o.user)),
        "attempts": 1,
        "requested_at": factory.LazyFunction(timezone.now),
    }


class CredentialFactory(factory.django.DjangoModelFactory):
    """
    A learner's pending credential for a new mapped course (the row the pipeline step records, before any POST).

    Traits, one per status: ``requesting``, ``in_progress``, ``emitted``, ``failed_retryable``, ``failed``, ``held``,
    ``revoked``. Pass ``course_key`` of an existing course to reuse its mapping.
    """

    class Meta:
        model = PokCertificate

    user = factory.SubFactory(UserFactory)
    course_key = factory.LazyFunction(lambda: CourseMappingFactory().course_key)
    status = CredentialStatus.PENDING
    template_id = DEFAULT_TEMPLATE_ID
    emission_type = EmissionType.POK
    grade = 0.9

    class Params:
        requesting = factory.Trait(
            status=CredentialStatus.REQUESTING,
            attempts=1,
            requested_at=factory.LazyFunction(timezone.now),
        )
        in_progress = factory.Trait(
            status=CredentialStatus.IN_PROGRESS,
            pok_state="processing",
            last_synced_at=factory.LazyFunction(timezone.now),
            **_sent(),
        )
        emitted = factory.Trait(
            status=CredentialStatus.EMITTED,
            pok_state="emitted",
            view_url=factory.LazyAttribute(lambda o: f"{VIEW_URL_BASE}{o.pok_credential_id}"),
            emission_date=factory.LazyFunction(timezone.now),
            last_synced_at=factory.LazyFunction(timezone.now),
            **_sent(),
        )
        failed_retryable = factory.Trait(
            status=CredentialStatus.FAILED,
            retryable=True,
            # Every automatic retry was spent; the reconcile run picks it up again.
            attempts=factory.LazyFunction(lambda: settings.POK_MAX_RETRIES + 1),
            requested_at=factory.LazyFunction(timezone.now),
            status_reason="POK was unavailable (HTTP 503); the reconcile run will try again.",
        )
        failed = factory.Trait(
            status=CredentialStatus.FAILED,
            retryable=False,
            attempts=1,
            requested_at=factory.LazyFunction(timezone.now),
            status_reason="POK refused the credential: the template does not exist.",
        )
        held = factory.Trait(
            status=CredentialStatus.HELD,
            status_reason="The learner has no usable name for the credential.",
        )
        revoked = factory.Trait(
            status=CredentialStatus.REVOKED,
            pok_state="emitted",
            view_url=factory.LazyAttribute(lambda o: f"{VIEW_URL_BASE}{o.pok_credential_id}"),
            emission_date=factory.LazyFunction(timezone.now),
            status_reason=factory.LazyAttribute(
                lambda o: f"The Open edX certificate was revoked (status unavailable). Revoke credential "
                          f"{o.pok_credential_id} on POK as well."
            ),
            **_sent(),
        )
