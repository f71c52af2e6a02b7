"""
The catalog sync: each account's templates and pages in local tables, 'missing on POK' instead of deleting, lists
at the limit reported as possibly truncated, the command, and the at-most-hourly run from the reconcile task.
"""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from lms_sandbox.factories import UserFactory
from openedx_pok import tasks
from openedx_pok.course_setup import catalog, configuration
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate, PokPage, PokTemplate
from test_utils import credential_of

pytestmark = pytest.mark.django_db
BETA_KEY = "b7a1c9e2-0000-4000-8000-0000000000be"


def test_sync_pulls_templates_with_parameters_and_pages(pok):
    [report] = catalog.sync("default")
    assert not report.error and (report.templates, report.pages) == (2, 1)
    grade = PokTemplate.objects.get(account="default", pok_id="tpl-grade")
    assert grade.name == "Certificate with grade" and grade.last_seen is not None
    assert grade.parameters == [{"id": "grade", "label": "Grade"}, {"id": "platform", "label": "Platform"}]
    assert PokPage.objects.get(pok_id="page-1").name == "Default page"


def test_deleted_templates_are_flagged_missing_not_deleted(pok):
    catalog.sync("default")
    pok.remove_template("tpl-grade")
    pok.remove_page("page-1")
    [report] = catalog.sync("default")
    assert report.missing_templates == ("tpl-grade",) and report.missing_pages == ("page-1",)
    assert PokTemplate.objects.get(pok_id="tpl-grade").missing_on_pok
    assert not PokTemplate.objects.get(pok_id="tpl-basic").missing_on_pok
    pok.add_template("tpl-grade", "Back again", [("grade", "Grade")])
    catalog.sync("default")
    assert not PokTemplate.objects.get(pok_id="tpl-grade").missing_on_pok


def test_a_list_at_the_limit_is_possibly_truncated_and_marks_nothing_missing(pok, settings):
    catalog.sync("default")
    settings.POK_CATALOG_LIST_LIMIT = 1
    [report] = catalog.sync("default")
    assert report.templates_truncated and any("truncated" in line for line in report.messages)
    assert not PokTemplate.objects.filter(missing_on_pok=True).exists()


def test_sync_is_per_account(pok, settings):
    pok.add_organization(BETA_KEY, name="Beta Org", templates=[("tpl-beta", "Beta diploma")], pages=[])
    settings.POK_ACCOUNTS = {"beta": {"url": pok.url, "key": BETA_KEY}}
    reports = catalog.sync()
    assert [r.account for r in reports] == ["default", "beta"] and not any(r.error for r in reports)
    assert set(PokTemplate.objects.filter(account="beta").values_list("pok_id", flat=True)) == {"tpl-beta"}
    assert PokTemplate.objects.filter(account="default").count() == 2


def test_a_renamed_parameter_is_seen_by_the_next_issuance(pok, course, learner, lms):
    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="tpl-grade")
    catalog.sync("default")
    from openedx_pok.course_setup import configuration
    configuration.template("tpl-grade")  # cached before the change on POK
    pok.add_template("tpl-grade", "Certificate with grade", [("honours", "Honours"), ("platform", "Platform")])
    catalog.sync("default")
    lms.award(learner, course)
    row = PokCertificate.objects.get()
    assert row.status == CredentialStatus.HELD and "honours" in row.status_reason


def test_command_syncs_and_fails_loudly_for_a_bad_account(pok, settings, capsys):
    call_command("pok_sync_templates", "--account", "default")
    assert "2 templates" in capsys.readouterr().out
    settings.POK_ACCOUNTS = {"broken": {"url": pok.url, "key": "wrong"}}
    with pytest.raises(CommandError, match="broken"):
        call_command("pok_sync_templates")
    with pytest.raises(CommandError, match="Unknown"):
        call_command("pok_sync_templates", "--account", "nope")


def test_reconcile_task_syncs_at_most_once_per_period_and_never_fails(pok, settings):
    tasks.reconcile_credentials_task()
    tasks.reconcile_credentials_task()
    assert pok.count("list_templates") == 1
    assert PokTemplate.objects.count() == 2
    from django.core.cache import cache
    cache.delete(catalog.SYNC_LEASE_KEY)
    settings.POK_API_KEY = "wrong"
    configuration.reset_clients()
    tasks.reconcile_credentials_task()  # a failing sync does not break the reconcile run
    settings.POK_CATALOG_SYNC_SECONDS = 0
    cache.delete(catalog.SYNC_LEASE_KEY)
    before = pok.count("list_templates")
    tasks.reconcile_credentials_task()
    assert pok.count("list_templates") == before


# ---- the template definition issuance cached is read afresh after a fix ---------------------------------------


def grade_course(course):
    """The course issues with tpl-grade, whose definition (grade, platform) issuance has cached."""
    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="tpl-grade")
    configuration.forget_mappings()
    configuration.template("tpl-grade")


def test_the_first_sync_makes_the_next_issuance_read_the_template_afresh(pok, course, learner, lms):
    grade_course(course)
    pok.add_template("tpl-grade", "Certificate with grade", [("grade", "Grade"), ("honours", "Honours")])
    [report] = catalog.sync("default")  # the first sync: the table knew nothing to compare with
    assert not report.error
    lms.award(learner, course)
    row = PokCertificate.objects.get()
    # Held with the true reason, not POSTed without the new parameter (a 400).
    assert row.status == CredentialStatus.HELD and "honours" in row.status_reason
    assert pok.count("issue_credential") == 0


def test_a_staff_retry_reads_the_template_afresh(pok, course, learner, lms):
    from openedx_pok.issuance import staff_actions

    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="tpl-grade")
    configuration.forget_mappings()
    pok.add_template("tpl-grade", "Certificate with grade", [("grade", "Grade"), ("honours", "Honours")])
    lms.award(learner, course)
    assert PokCertificate.objects.get().status == CredentialStatus.HELD
    pok.add_template("tpl-grade", "Certificate with grade", [("grade", "Grade")])  # the course team removed it
    assert lms.run(staff_actions.retry, PokCertificate.objects.get())
    row = PokCertificate.objects.get()
    assert row.status == CredentialStatus.EMITTED and row.custom_parameters == {"grade": "90%"}


def test_saving_a_mapping_makes_the_next_issuance_read_its_template_afresh(pok, course, learner, lms):
    grade_course(course)
    pok.add_template("tpl-grade", "Certificate with grade", [("grade", "Grade"), ("honours", "Honours")])
    mapping = CertificateTemplate.objects.get()
    mapping.parameter_sources = {"honours": {"source": "fixed", "value": "Cum laude"}}
    mapping.save()  # the course team mapped the new parameter
    lms.award(learner, course)
    row = PokCertificate.objects.get()
    assert row.status == CredentialStatus.EMITTED and row.custom_parameters["honours"] == "Cum laude"


def test_a_refusal_naming_a_parameter_makes_the_next_issuance_read_the_template_afresh(pok, course, lms):
    grade_course(course)
    pok.add_template("tpl-grade", "Certificate with grade", [("grade", "Grade")])
    first, second, third = (UserFactory(profile__name=name) for name in ("Ada Lovelace", "Alan Turing", "Kurt Godel"))
    lms.award(first, course)  # caches the definition
    assert credential_of(first, course).status == CredentialStatus.EMITTED
    pok.add_template("tpl-grade", "Certificate with grade", [("grade", "Grade"), ("honours", "Honours")])
    lms.award(second, course)  # the cached definition lacks "honours": POK refuses the POST (400)
    assert credential_of(second, course).status == CredentialStatus.FAILED
    posts = pok.count("issue_credential")
    lms.award(third, course)
    row = credential_of(third, course)
    # Read afresh after the refusal: held with the true reason, no second POST doomed to the same 400.
    assert row.status == CredentialStatus.HELD and "honours" in row.status_reason
    assert pok.count("issue_credential") == posts


# ---- ids from POK that cannot be used ----------------------------------------------------------------------------


def test_unusable_ids_are_skipped_with_a_reason_and_the_sync_goes_on(pok, capsys):
    pok.add_template("..", "Dots")  # listed without parameters: the sync would GET /template/..
    pok.add_template(".", "Dot", [("grade", "Grade")])
    pok.add_template("t" * 300, "Long", [("grade", "Grade")])  # longer than the column: fails MySQL's strict mode
    pok.add_page("..", "Dots")
    pok.add_page("p" * 256, "Long")
    [report] = catalog.sync("default")
    assert not report.error and (report.templates, report.pages) == (2, 1)
    assert len(report.skipped) == 5 and all(line.startswith("Skipped: ") for line in report.skipped)
    assert set(report.skipped) <= set(report.messages)
    assert "'..' cannot be the id of a POK template." in " ".join(report.skipped)
    assert "longer than 255 characters" in " ".join(report.skipped)
    assert set(PokTemplate.objects.values_list("pok_id", flat=True)) == {"tpl-basic", "tpl-grade"}
    assert set(PokPage.objects.values_list("pok_id", flat=True)) == {"page-1"}
    call_command("pok_sync_templates")  # the command goes on too, and says what it skipped
    out = capsys.readouterr().out
    assert "2 templates, 1 page." in out and "cannot be the id of a POK page" in out
