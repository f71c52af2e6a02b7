"""
The doctor: every system check is triggered by its bad configuration and silent on a good one; ``pok_check`` exits
non-zero when something is wrong (and, with ``--online``, when an account cannot be reached). The checks that read
the database run before the plugin's migrations too (``manage.py check`` or ``migrate`` on a fresh or an upgraded
database): tables really missing, not patched querysets.
"""
import sys
import types
from contextlib import contextmanager

import pytest
from django.apps.registry import Apps
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, models

from openedx_pok import api, checks
from openedx_pok.models import CertificateTemplate, PokTemplate
from openedx_pok.settings.common import CREATION_FILTER, RENDER_FILTER

pytestmark = pytest.mark.django_db


@pytest.fixture
def good(settings):
    """A configuration the doctor has nothing to say about."""
    settings.DEBUG = False
    settings.POK_API_URL = "https://api.pok.tech"
    settings.POK_API_KEY = "5e3c7a1d-0b8f-4c2e-9a6d-7f1e2b3c4d5e"
    settings.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz", "key": "beta-key"}}
    settings.POK_PARAMETER_SOURCES = {}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERYBEAT_SCHEDULE = {"pok": {"task": checks.RECONCILE_TASK, "schedule": 300}}
    CertificateTemplate.objects.create(organization="BetaX", template_id="tpl-beta", account="beta")
    PokTemplate.objects.create(account="beta", pok_id="tpl-beta", parameters=[{"id": "grade", "label": "Grade"}])
    return settings


def ids(found):
    return sorted(message.id for message in found)


def everything():
    return (checks.check_accounts() + checks.check_pipeline_steps() + checks.check_celery(running_tests=False)
            + checks.check_periodic_reconcile() + checks.check_mapped_templates())


def test_a_good_configuration_is_silent(good):
    assert ids(everything()) == []


def test_e001_an_account_a_mapping_uses_has_no_key(good):
    good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz", "key": ""}}
    [error] = checks.check_accounts()
    assert error.id == "openedx_pok.E001" and "beta" in error.msg and error.hint


def test_e002_pok_accounts_is_not_a_dict(good):
    good.POK_ACCOUNTS = ["beta"]
    assert "openedx_pok.E002" in ids(checks.check_accounts())


def test_e003_http_outside_debug(good):
    good.POK_API_URL = "http://api.pok.tech"
    assert ids(checks.check_accounts()) == ["openedx_pok.E003"]
    good.DEBUG = True
    assert checks.check_accounts() == []
    good.DEBUG, good.POK_API_URL = False, "http://127.0.0.1:8765"  # a local simulator or sidecar: no network
    assert checks.check_accounts() == []


def test_e004_pipeline_steps_missing_after_all_settings(good):
    good.OPEN_EDX_FILTERS_CONFIG = {CREATION_FILTER: {"pipeline": ["someone.else.Step"]}}
    assert ids(checks.check_pipeline_steps()) == ["openedx_pok.E004", "openedx_pok.E004"]
    good.OPEN_EDX_FILTERS_CONFIG = {CREATION_FILTER: {"pipeline": "openedx_pok.filters.CertificateCreatedFilter"},
                                    RENDER_FILTER: {"pipeline": ["openedx_pok.pipeline.RenderPokCredential"]}}
    assert checks.check_pipeline_steps() == []


def test_w001_eager_celery_outside_tests(good):
    good.CELERY_TASK_ALWAYS_EAGER = True
    assert ids(checks.check_celery(running_tests=False)) == ["openedx_pok.W001"]
    assert checks.check_celery(running_tests=True) == []


def test_w002_no_periodic_reconcile(good):
    good.CELERYBEAT_SCHEDULE = {}
    assert ids(checks.check_periodic_reconcile()) == ["openedx_pok.W002"]


def test_w003_mapped_template_missing_on_pok(good):
    PokTemplate.objects.filter(pok_id="tpl-beta").update(missing_on_pok=True)
    [warning] = checks.check_mapped_templates()
    assert warning.id == "openedx_pok.W003" and "tpl-beta" in warning.msg


def test_w004_unmapped_parameters(good):
    PokTemplate.objects.filter(pok_id="tpl-beta").update(parameters=[{"id": "honours", "label": "Honours"}])
    [warning] = checks.check_mapped_templates()
    assert warning.id == "openedx_pok.W004" and "honours" in warning.msg
    CertificateTemplate.objects.update(parameter_sources={"honours": {"source": "fixed", "value": "Cum laude"}})
    assert checks.check_mapped_templates() == []


def test_w005_malformed_parameter_sources(good):
    good.POK_PARAMETER_SOURCES = {"mine": {"label": "no function"}}
    assert ids(checks.check_mapped_templates()) == ["openedx_pok.W005"]


def test_w006_malformed_account_no_mapping_uses(good):
    good.POK_ACCOUNTS = {**good.POK_ACCOUNTS, "spare": {"url": "https://x.example"}}
    assert ids(checks.check_accounts()) == ["openedx_pok.W006"]


def test_pok_check_exits_non_zero_on_errors(good, capsys):
    call_command("pok_check")
    assert "POK configuration OK" in capsys.readouterr().out
    good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz"}}
    with pytest.raises(CommandError, match="problem"):
        call_command("pok_check")


def test_pok_check_online_calls_every_account(good, pok, capsys):
    good.DEBUG = True  # the simulator speaks http
    good.POK_API_URL, good.POK_API_KEY = pok.url, pok.api_key
    good.POK_ACCOUNTS = {"beta": {"url": pok.url, "key": "beta-key"}}
    pok.add_organization("beta-key", name="Beta Org")
    api.reset_clients()
    call_command("pok_check", "--online")
    out = capsys.readouterr().out
    assert "account beta: OK, organization Beta Org" in out
    good.POK_ACCOUNTS = {"beta": {"url": pok.url, "key": "wrong-key"}}
    api.reset_clients()
    with pytest.raises(CommandError):
        call_command("pok_check", "--online")
    assert "refused the API key of account 'beta'" in capsys.readouterr().err


# ---- before the plugin's migrations ran --------------------------------------------------------------------------


@contextmanager
def plugin_migrated_to(target):
    """The plugin's tables as its migration ``target`` left them ("zero": none at all); forward again afterwards."""
    call_command("migrate", "openedx_pok", target, verbosity=0)
    try:
        yield set(connection.introspection.table_names())
    finally:
        call_command("migrate", "openedx_pok", verbosity=0)


def database_checks():
    return checks.check_accounts() + checks.check_mapped_templates() + checks.check_periodic_reconcile()


@pytest.mark.django_db(transaction=True)
def test_a_fresh_database_without_the_plugins_tables(good):
    with plugin_migrated_to("zero") as tables:
        assert not {CertificateTemplate._meta.db_table, PokTemplate._meta.db_table} & tables
        assert database_checks() == []
        assert ids(run_checks(tags=[checks.TAG])) == []
        # What does not need the tables is still reported.
        good.POK_PARAMETER_SOURCES = {"mine": {"label": "no function"}}
        good.CELERYBEAT_SCHEDULE = {}
        assert ids(database_checks()) == ["openedx_pok.W002", "openedx_pok.W005"]
        # No mapping can be read, so a broken account is a warning that does not claim nothing uses it.
        good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz", "key": ""}}
        [warning] = checks.check_accounts()
        assert warning.id == "openedx_pok.W006" and "run migrate" in warning.hint
        good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz", "key": "beta-key"}}
        good.POK_PARAMETER_SOURCES, good.CELERYBEAT_SCHEDULE = {}, {"pok": {"task": checks.RECONCILE_TASK}}
        # migrate runs every system check before it creates the tables: it must get past ours.
        call_command("migrate", "openedx_pok", verbosity=0, skip_checks=False)
        assert CertificateTemplate._meta.db_table in connection.introspection.table_names()
    assert ids(everything()) == []


@pytest.mark.django_db(transaction=True)
def test_an_upgraded_database_before_the_course_setup_migration(good):
    """Mappings of an earlier release: their table exists but has no account column, and the catalog tables do not."""
    with plugin_migrated_to("1005_credential_refresh_index") as tables:
        assert CertificateTemplate._meta.db_table in tables and PokTemplate._meta.db_table not in tables
        assert "account" not in {column.name for column in connection.introspection.get_table_description(
            connection.cursor(), CertificateTemplate._meta.db_table)}
        assert database_checks() == []
        good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz"}}
        assert ids(checks.check_accounts()) == ["openedx_pok.W006"]
        good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz", "key": "beta-key"}}
        call_command("migrate", "openedx_pok", verbosity=0, skip_checks=False)
    # Migrated: the mapping kept through the upgrade is read again (on the default account the migration gives it).
    assert CertificateTemplate.objects.get().account == "default"
    good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz"}}
    [warning] = checks.check_accounts()
    assert warning.id == "openedx_pok.W006" and "no course mapping uses it" in warning.hint
    CertificateTemplate.objects.update(account="beta")
    assert ids(checks.check_accounts()) == ["openedx_pok.E001"]


@pytest.fixture
def celery_beat(monkeypatch):
    """
    ``django_celery_beat.models.PeriodicTask`` as the check imports it (the package is not a test requirement): a
    model of its own registry on django_celery_beat's real table name, whose table does not exist until a test
    creates it.
    """

    class PeriodicTask(models.Model):
        name = models.CharField(max_length=200, unique=True)
        task = models.CharField(max_length=200)
        enabled = models.BooleanField(default=True)

        class Meta:
            apps = Apps()
            app_label = "django_celery_beat"
            db_table = "django_celery_beat_periodictask"

        def __str__(self):
            return self.name

    package = types.ModuleType("django_celery_beat")
    package.models = types.ModuleType("django_celery_beat.models")
    package.models.PeriodicTask = PeriodicTask
    monkeypatch.setitem(sys.modules, "django_celery_beat", package)
    monkeypatch.setitem(sys.modules, "django_celery_beat.models", package.models)
    return PeriodicTask


@contextmanager
def table_of(model):
    with connection.schema_editor() as editor:
        editor.create_model(model)
    try:
        yield
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(model)


@pytest.mark.django_db(transaction=True)
def test_w002_reads_django_celery_beat_and_tolerates_its_missing_table(good, celery_beat):
    good.CELERYBEAT_SCHEDULE = {}
    assert celery_beat._meta.db_table not in connection.introspection.table_names()
    assert ids(checks.check_periodic_reconcile()) == ["openedx_pok.W002"]
    good.CELERYBEAT_SCHEDULE = {"pok": {"task": checks.RECONCILE_TASK}}
    assert checks.check_periodic_reconcile() == []  # the settings schedule still counts
    good.CELERYBEAT_SCHEDULE = {}
    with table_of(celery_beat):
        celery_beat.objects.create(name="pok reconcile", task=checks.RECONCILE_TASK, enabled=False)
        assert ids(checks.check_periodic_reconcile()) == ["openedx_pok.W002"]
        celery_beat.objects.update(enabled=True)
        assert checks.check_periodic_reconcile() == []
