"""
factory_boy factories for the sandbox LMS, for the test-suite and the demo.

As in the LMS's own test factories, every user gets a profile (``UserFactory(profile__name="Ana")`` sets its name,
``UserFactory(profile=None)`` makes a user without one). ``UserFactory(pref_lang="es-419")`` sets the learner's
language preference, a ``UserPreference`` row as in the LMS. ``UserProfileFactory(user=user, ...)`` updates that profile
instead of failing on the one-to-one, so both ways of writing a test work. Creating a certificate saves it, which
sends the certificate signals exactly like the LMS.
"""
from datetime import timedelta
from functools import cache

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.utils import timezone
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.models import (
    CertificateStatuses,
    CourseEnrollment,
    CourseOverview,
    GeneratedCertificate,
    Organization,
    UserPreference,
    UserProfile,
)


@cache
def _password_hash():
    """The hash of "password", computed once: a hash per user costs ~0.3 s with Django's default hasher."""
    return make_password("password")


class UserProfileFactory(factory.django.DjangoModelFactory):
    """The learner's profile: the certificate name."""

    class Meta:
        model = UserProfile

    user = factory.SubFactory("lms_sandbox.factories.UserFactory", profile=None)
    name = factory.LazyAttribute(lambda o: f"{o.user.first_name} {o.user.last_name}".strip() or o.user.username)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # update_or_create: a UserFactory user already has a profile, and tests often set its fields afterwards.
        user = kwargs.pop("user")
        profile, _created = model_class.objects.update_or_create(user=user, defaults=kwargs)
        return profile


class UserFactory(factory.django.DjangoModelFactory):
    """A learner with unique username and email, password "password", and a profile."""

    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"learner{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    first_name = factory.Sequence(lambda n: f"Ada{n}")
    last_name = "Lovelace"
    password = factory.LazyFunction(_password_hash)
    is_active = True
    is_staff = False
    profile = factory.RelatedFactory(UserProfileFactory, factory_related_name="user")

    @factory.post_generation
    def pref_lang(user, create, extracted, **kwargs):
        """``pref_lang="es-419"``: the "pref-lang" preference (none by default, as a new LMS account)."""
        if extracted and create:
            UserPreference.objects.update_or_create(user=user, key="pref-lang", defaults={"value": extracted})


class StaffFactory(UserFactory):
    """A course staff member (may preview certificates)."""

    username = factory.Sequence(lambda n: f"staff{n}")
    is_staff = True


class OrganizationFactory(factory.django.DjangoModelFactory):
    """An edx-organizations entry."""

    class Meta:
        model = Organization
        django_get_or_create = ("short_name",)

    short_name = factory.Sequence(lambda n: f"PokX{n}")
    name = factory.LazyAttribute(lambda o: f"{o.short_name} University")


class CourseOverviewFactory(factory.django.DjangoModelFactory):
    """A course run with a certificate configuration (title and one signatory)."""

    class Meta:
        model = CourseOverview
        django_get_or_create = ("id",)

    id = factory.Sequence(lambda n: CourseKey.from_string(f"course-v1:PokX+C{n}+2026"))
    display_name = factory.Sequence(lambda n: f"Verifiable Credentials {n}")
    org = factory.LazyAttribute(lambda o: o.id.org)
    display_org_with_default = factory.LazyAttribute(lambda o: o.org)
    start = factory.LazyFunction(lambda: timezone.now() - timedelta(days=30))
    end = factory.LazyFunction(lambda: timezone.now() + timedelta(days=60))
    language = "en"
    # Certificates shown as soon as they are earned, as most tests want; the model's own default, as the LMS's, is
    # "end" (shown once the course has ended).
    certificates_display_behavior = "early_no_info"
    certificate_title = factory.LazyAttribute(lambda o: o.display_name)
    signatories = factory.LazyAttribute(
        lambda o: [{"name": "Grace Hopper", "title": "Course Director", "organization": o.display_org_with_default}]
    )


class CourseEnrollmentFactory(factory.django.DjangoModelFactory):
    """An active enrollment of a new learner in a new course (unless given)."""

    class Meta:
        model = CourseEnrollment

    user = factory.SubFactory(UserFactory)
    course = factory.SubFactory(CourseOverviewFactory)
    is_active = True
    mode = "verified"


class GeneratedCertificateFactory(factory.django.DjangoModelFactory):
    """A downloadable verified certificate for a new learner in a new course (unless given)."""

    class Meta:
        model = GeneratedCertificate

    user = factory.SubFactory(UserFactory)
    course_id = factory.LazyFunction(lambda: CourseOverviewFactory().id)
    status = CertificateStatuses.downloadable
    mode = "verified"
    grade = "0.85"
    name = factory.LazyAttribute(lambda o: getattr(getattr(o.user, "profile", None), "name", "") or o.user.username)
    download_url = ""
