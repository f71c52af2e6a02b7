"""
The catalog sync: each account's templates and pages in local tables, 'missing on POK' instead of deleting, lists
at the limit reported as possibly truncated, the command, and the at-most-hourly run from the reconcile task.
"""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from openedx_pok import tasks
from openedx_pok.course_setup import catalog, configuration
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate, PokPage, PokTemplate

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
