"""
Model invariants the database enforces, and migrations that match the models and coexist with openedx-pok 21.x.
"""
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.factories import UserFactory
from openedx_pok.models import CertificateTemplate, PokCertificate

COURSE = CourseKey.from_string("course-v1:DemoX+POK101+2026")
OTHER_COURSE = CourseKey.from_string("course-v1:DemoX+POK102+2026")


@pytest.mark.django_db
class TestCertificateTemplate:
    def test_course_mapping_takes_its_org_and_wins_over_the_org_default(self):
        org_default = CertificateTemplate.objects.create(organization="DemoX", template_id="tpl-org")
        course_mapping = CertificateTemplate.objects.create(course_key=COURSE, template_id="tpl-course")
        assert course_mapping.organization == "DemoX"
        assert CertificateTemplate.objects.for_course(COURSE) == course_mapping
        assert CertificateTemplate.objects.for_course(OTHER_COURSE) == org_default
        assert CertificateTemplate.objects.for_course(CourseKey.from_string("course-v1:Else+X+1")) is None

    def test_disabled_course_mapping_still_decides(self):
        CertificateTemplate.objects.create(organization="DemoX", template_id="tpl-org")
        opt_out = CertificateTemplate.objects.create(course_key=COURSE, template_id="tpl", enabled=False)
        assert CertificateTemplate.objects.for_course(COURSE) == opt_out

    def test_one_mapping_per_course(self):
        CertificateTemplate.objects.create(course_key=COURSE, template_id="a")
        with pytest.raises(IntegrityError), transaction.atomic():
            CertificateTemplate.objects.create(course_key=COURSE, template_id="b")

    def test_one_default_per_organization(self):
        CertificateTemplate.objects.create(organization="DemoX", template_id="a")
        with pytest.raises(IntegrityError), transaction.atomic():
            CertificateTemplate.objects.create(organization="DemoX", template_id="b")

    def test_clean_requires_a_course_or_an_organization(self):
        with pytest.raises(ValidationError):
            CertificateTemplate(template_id="a").full_clean()
        CertificateTemplate(course_key=COURSE, template_id="a").full_clean()


@pytest.mark.django_db
class TestPokCertificate:
    def test_one_row_per_learner_and_course(self):
        user = UserFactory()
        PokCertificate.objects.create(user=user, course_key=COURSE)
        PokCertificate.objects.create(user=user, course_key=OTHER_COURSE)
        with pytest.raises(IntegrityError), transaction.atomic():
            PokCertificate.objects.create(user=user, course_key=COURSE)

    def test_pok_id_unique_when_set_but_many_rows_without_one(self):
        first, second, third = UserFactory(), UserFactory(), UserFactory()
        PokCertificate.objects.create(user=first, course_key=COURSE)
        PokCertificate.objects.create(user=second, course_key=COURSE)
        PokCertificate.objects.filter(user=first).update(pok_credential_id="abc")
        with pytest.raises(IntegrityError), transaction.atomic():
            PokCertificate.objects.create(user=third, course_key=COURSE, pok_credential_id="abc")

    def test_idempotency_key_changes_only_with_the_issuance(self):
        row = PokCertificate.objects.create(user=UserFactory(), course_key=COURSE)
        key = row.idempotency_key
        assert key == PokCertificate.objects.get(id=row.id).idempotency_key
        row.issuance += 1
        assert row.idempotency_key != key and str(row.uuid) in key


@pytest.mark.django_db
def test_models_and_migrations_match():
    call_command("makemigrations", "openedx_pok", "--check", "--dry-run", verbosity=0)


OLD_MIGRATIONS = ["0001_initial", "0002_something", "0012_alter_certificatetemplate_course"]


@pytest.mark.django_db(transaction=True)
def test_migrates_on_a_database_that_ran_openedx_pok_21():
    """An LMS that ran 21.x has its migration rows and tables; ours must still be created, theirs left alone."""
    executor = MigrationExecutor(connection)
    executor.migrate([("openedx_pok", None)])
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE openedx_pok_pokcertificate (id integer PRIMARY KEY, pok_id varchar(64))")
        cursor.execute("CREATE TABLE openedx_pok_certificatetemplate (id integer PRIMARY KEY, course varchar(64))")
        cursor.execute("INSERT INTO openedx_pok_pokcertificate (id, pok_id) VALUES (1, 'old-credential')")
        for name in OLD_MIGRATIONS:
            cursor.execute(
                "INSERT INTO django_migrations (app, name, applied) VALUES ('openedx_pok', %s, CURRENT_TIMESTAMP)",
                [name],
            )
    try:
        call_command("migrate", "openedx_pok", verbosity=0)
        tables = connection.introspection.table_names()
        assert {"openedx_pok_credential", "openedx_pok_course_template_mapping"} <= set(tables)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pok_id FROM openedx_pok_pokcertificate")
            assert [tuple(r) for r in cursor.fetchall()] == [("old-credential",)]
        assert PokCertificate.objects.count() == 0
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TABLE openedx_pok_pokcertificate")
            cursor.execute("DROP TABLE openedx_pok_certificatetemplate")
            cursor.execute("DELETE FROM django_migrations WHERE app = 'openedx_pok' AND name LIKE '00%%'")
        call_command("migrate", "openedx_pok", verbosity=0)
