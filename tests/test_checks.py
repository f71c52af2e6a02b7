"""
The doctor: every system check is triggered by its bad configuration and silent on a good one; ``pok_check`` exits
non-zero when something is wrong (and, with ``--online``, when an account cannot be reached). No setting shape makes
a check raise. The checks are deployment checks: with every one of them triggered, ``migrate``, ``check`` and
``showmigrations`` still succeed and print none of them; ``check --deploy`` and ``pok_check`` report them. The checks
that read the database read it only when given ``databases`` (pok_check gives them), and report nothing from it on a
fresh or an upgraded database before the plugin's migrations: tables really missing, not patched querysets.
"""
import io
import sys
import types
from contextlib import contextmanager

import pytest
from django.apps.registry import Apps
from django.core.checks import Tags, run_checks
from django.core.checks.registry import registry
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import connection, models

from openedx_pok import checks
from openedx_pok.course_setup import configuration
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


# What pok_check passes: without databases the database checks read nothing (Django's convention).
DB = ["default"]


def ids(found):
    return sorted(message.id for message in found)


def everything():
    return (checks.check_accounts(databases=DB) + checks.check_pipeline_steps() + checks.check_celery()
            + checks.check_periodic_reconcile(databases=DB) + checks.check_mapped_templates(databases=DB))


def test_a_good_configuration_is_silent(good):
    assert ids(everything()) == []


def test_e001_an_account_a_mapping_uses_has_no_key(good):
    good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz", "key": ""}}
    [error] = checks.check_accounts(databases=DB)
    assert error.id == "openedx_pok.E001" and "beta" in error.msg and error.hint


def test_e002_pok_accounts_is_not_a_dict(good):
    good.POK_ACCOUNTS = ["beta"]
    assert "openedx_pok.E002" in ids(checks.check_accounts(databases=DB))


def test_e003_http_outside_debug(good):
    good.POK_API_URL = "http://api.pok.tech"
    assert ids(checks.check_accounts(databases=DB)) == ["openedx_pok.E003"]
    good.DEBUG = True
    assert checks.check_accounts(databases=DB) == []
    good.DEBUG, good.POK_API_URL = False, "http://127.0.0.1:8765"  # a local simulator or sidecar: no network
    assert checks.check_accounts(databases=DB) == []


def test_e004_pipeline_steps_missing_after_all_settings(good):
    good.OPEN_EDX_FILTERS_CONFIG = {CREATION_FILTER: {"pipeline": ["someone.else.Step"]}}
    assert ids(checks.check_pipeline_steps()) == ["openedx_pok.E004", "openedx_pok.E004"]
    good.OPEN_EDX_FILTERS_CONFIG = {CREATION_FILTER: "openedx_pok.filters.CertificateCreatedFilter",
                                    RENDER_FILTER: {"pipeline": ["openedx_pok.pipeline.RenderPokCredential"]}}
    assert checks.check_pipeline_steps() == []


def test_e005_a_single_path_as_the_pipeline_of_a_dict(good):
    """openedx-filters iterates a dict's pipeline: a single path is read one character at a time, no step runs."""
    good.OPEN_EDX_FILTERS_CONFIG = {CREATION_FILTER: {"pipeline": "openedx_pok.pipeline.RequestPokCredential"},
                                    RENDER_FILTER: {"pipeline": ["openedx_pok.pipeline.RenderPokCredential"]}}
    assert ids(checks.check_pipeline_steps()) == ["openedx_pok.E005"]


def test_w001_eager_celery(good):
    good.CELERY_TASK_ALWAYS_EAGER = True
    assert ids(checks.check_celery()) == ["openedx_pok.W001"]


def test_w002_no_periodic_reconcile(good):
    good.CELERYBEAT_SCHEDULE = {}
    assert ids(checks.check_periodic_reconcile(databases=DB)) == ["openedx_pok.W002"]


def test_w003_mapped_template_missing_on_pok(good):
    PokTemplate.objects.filter(pok_id="tpl-beta").update(missing_on_pok=True)
    [warning] = checks.check_mapped_templates(databases=DB)
    assert warning.id == "openedx_pok.W003" and "tpl-beta" in warning.msg


def test_w004_unmapped_parameters(good):
    PokTemplate.objects.filter(pok_id="tpl-beta").update(parameters=[{"id": "honours", "label": "Honours"}])
    [warning] = checks.check_mapped_templates(databases=DB)
    assert warning.id == "openedx_pok.W004" and "honours" in warning.msg
    CertificateTemplate.objects.update(parameter_sources={"honours": {"source": "fixed", "value": "Cum laude"}})
    assert checks.check_mapped_templates(databases=DB) == []


def test_w005_malformed_parameter_sources(good):
    good.POK_PARAMETER_SOURCES = {"mine": {"label": "no function"}}
    assert ids(checks.check_mapped_templates(databases=DB)) == ["openedx_pok.W005"]


def test_w006_malformed_account_no_mapping_uses(good):
    good.POK_ACCOUNTS = {**good.POK_ACCOUNTS, "spare": {"url": "https://x.example"}}
    assert ids(checks.check_accounts(databases=DB)) == ["openedx_pok.W006"]


def test_a_bad_port_or_a_key_with_spaces_is_named_by_the_checks(good):
    good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz:443x", "key": "beta-key"},
                         "spare": {"url": "https://api.credentity.xyz", "key": "spare key"}}
    found = checks.check_accounts(databases=DB)
    assert ids(found) == ["openedx_pok.E001", "openedx_pok.W006"]
    assert "'beta' is not a valid URL (check its port" in found[0].msg
    assert "'spare' contains spaces" in found[1].msg and "spare key" not in found[1].msg
    # Without the mappings (check --deploy): warnings only; the default account is named once its key is set.
    good.POK_API_URL = "https://api.pok.tech:443x"
    assert ids(checks.check_accounts()) == ["openedx_pok.W006", "openedx_pok.W006", "openedx_pok.W006"]
    good.POK_API_KEY = ""
    assert ids(checks.check_accounts()) == ["openedx_pok.W006", "openedx_pok.W006"]


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
    configuration.reset_clients()
    call_command("pok_check", "--online")
    out = capsys.readouterr().out
    assert "account beta: OK, organization Beta Org" in out
    good.POK_ACCOUNTS = {"beta": {"url": pok.url, "key": "wrong-key"}}
    configuration.reset_clients()
    with pytest.raises(CommandError):
        call_command("pok_check", "--online")
    assert "refused the API key of account 'beta'" in capsys.readouterr().err


# ---- never in the way of a deploy -----------------------------------------------------------------------------------


@pytest.fixture
def broken(good):
    """Every check triggered that can be at once (E002 and E005 exclude E001 and E004: see ``broken_shapes``)."""
    good.POK_API_URL = "http://api.pok.tech"  # E003
    good.OPEN_EDX_FILTERS_CONFIG = {CREATION_FILTER: {"pipeline": ["someone.else.Step"]}}  # E004 twice
    good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz"}, "spare": ["x"]}  # E001 beta, W006 spare
    good.CELERY_TASK_ALWAYS_EAGER = True  # W001
    good.CELERYBEAT_SCHEDULE = {}  # W002
    good.POK_PARAMETER_SOURCES = {"mine": {"label": "no function"}}  # W005
    PokTemplate.objects.filter(pok_id="tpl-beta").update(missing_on_pok=True)  # W003
    CertificateTemplate.objects.create(organization="GammaX", template_id="tpl-gamma", account="beta")
    PokTemplate.objects.create(account="beta", pok_id="tpl-gamma", parameters=[{"id": "honours"}])  # W004
    return good


EVERY_ID = ["openedx_pok.E001", "openedx_pok.E003", "openedx_pok.E004", "openedx_pok.E004", "openedx_pok.W001",
            "openedx_pok.W002", "openedx_pok.W003", "openedx_pok.W004", "openedx_pok.W005", "openedx_pok.W006"]


@pytest.fixture(params=["every check", "malformed settings"])
def broken_shapes(request, broken):
    if request.param == "malformed settings":
        broken.POK_ACCOUNTS, broken.OPEN_EDX_FILTERS_CONFIG = ["beta"], "not a dict"  # E002, E005
    return broken


def run(*args, **options):
    """``call_command`` with the system checks on, as manage.py runs it (``check`` always runs them), and both
    outputs captured."""
    out, err = io.StringIO(), io.StringIO()
    if args[0] != "check":
        options["skip_checks"] = False
    call_command(*args, stdout=out, stderr=err, **options)
    return out.getvalue() + err.getvalue()


def test_every_check_is_triggered(broken):
    assert ids(run_checks(tags=[checks.TAG], include_deployment_checks=True, databases=DB)) == EVERY_ID


def test_ordinary_commands_never_fail_nor_print_a_pok_check(broken_shapes):
    assert "openedx_pok." not in run("migrate")
    assert "openedx_pok." not in run("showmigrations", "openedx_pok")
    assert "openedx_pok." not in run("check")
    assert "openedx_pok." not in run("check", databases=DB)


def test_check_deploy_and_pok_check_report_them(broken_shapes, capsys):
    with pytest.raises(SystemCheckError) as raised:
        run("check", deploy=True)
    for found in ("openedx_pok.E003", "openedx_pok.W001", "openedx_pok.W005"):
        assert found in str(raised.value)
    with pytest.raises(SystemCheckError) as raised:
        run("check", deploy=True, databases=DB)
    assert "openedx_pok.W003" in str(raised.value)
    with pytest.raises(CommandError, match="problems found"):
        call_command("pok_check")
    out, err = capsys.readouterr()
    assert "openedx_pok.E003" in err and "openedx_pok.W003" in out and "openedx_pok.E006" not in out + err


def test_pok_check_counts_its_problems(broken):
    with pytest.raises(CommandError, match="^4 problems found"):
        call_command("pok_check", stdout=io.StringIO(), stderr=io.StringIO())
    broken.POK_API_URL = "https://api.pok.tech"
    broken.OPEN_EDX_FILTERS_CONFIG = {CREATION_FILTER: {"pipeline": ["openedx_pok.pipeline.RequestPokCredential"]},
                                      RENDER_FILTER: ["someone.else.Step"]}
    with pytest.raises(CommandError, match="^2 problems found"):
        call_command("pok_check", stdout=io.StringIO(), stderr=io.StringIO())
    broken.OPEN_EDX_FILTERS_CONFIG = {CREATION_FILTER: "openedx_pok.pipeline.RequestPokCredential",
                                      RENDER_FILTER: ["openedx_pok.pipeline.RenderPokCredential"]}
    with pytest.raises(CommandError, match="^1 problem found"):
        call_command("pok_check", stdout=io.StringIO(), stderr=io.StringIO())


def test_the_checks_are_deployment_checks_and_the_database_ones_say_so():
    for check in (checks.check_accounts, checks.check_pipeline_steps, checks.check_celery,
                  checks.check_periodic_reconcile, checks.check_mapped_templates):
        assert check in registry.deployment_checks and check not in registry.registered_checks
        assert (Tags.database in check.tags) == (check in (checks.check_accounts, checks.check_periodic_reconcile,
                                                           checks.check_mapped_templates))


def test_without_databases_the_database_checks_read_nothing(broken, django_assert_num_queries):
    with django_assert_num_queries(0):
        found = checks.check_accounts() + checks.check_mapped_templates() + checks.check_periodic_reconcile()
    # Settings are still checked; whether a mapping uses the broken account is left to pok_check.
    assert ids(found) == ["openedx_pok.E003", "openedx_pok.W002", "openedx_pok.W005", "openedx_pok.W006",
                          "openedx_pok.W006"]
    assert all("pok_check" in message.hint for message in found if message.id == "openedx_pok.W006")


# ---- no setting shape crashes a check ------------------------------------------------------------------------------


MALFORMED = [
    ("OPEN_EDX_FILTERS_CONFIG", ["openedx_pok.pipeline.RequestPokCredential"], "E005"),
    ("OPEN_EDX_FILTERS_CONFIG", "openedx_pok.pipeline.RequestPokCredential", "E005"),
    ("OPEN_EDX_FILTERS_CONFIG", None, "E005"),
    ("OPEN_EDX_FILTERS_CONFIG", 5, "E005"),
    ("OPEN_EDX_FILTERS_CONFIG", {CREATION_FILTER: 5}, "E005"),
    ("OPEN_EDX_FILTERS_CONFIG", {CREATION_FILTER: ("openedx_pok.pipeline.RequestPokCredential",)}, "E005"),
    ("OPEN_EDX_FILTERS_CONFIG", {CREATION_FILTER: {"pipeline": 5}}, "E005"),
    ("OPEN_EDX_FILTERS_CONFIG", {CREATION_FILTER: {"pipeline": {"a": 1}}}, "E005"),
    ("OPEN_EDX_FILTERS_CONFIG", {CREATION_FILTER: {"pipeline": [5]}}, "E005"),
    ("OPEN_EDX_FILTERS_CONFIG", {CREATION_FILTER: "someone.else.Step"}, "E004"),
    ("OPEN_EDX_FILTERS_CONFIG", {CREATION_FILTER: ["someone.else.Step"]}, "E004"),
    ("OPEN_EDX_FILTERS_CONFIG", {CREATION_FILTER: None}, "E004"),
    ("POK_ACCOUNTS", "beta", "E002"),
    ("POK_ACCOUNTS", 5, "E002"),
    ("POK_ACCOUNTS", {"beta": "https://api.credentity.xyz"}, "E001"),
    ("POK_ACCOUNTS", {"beta": None}, "E001"),
    ("POK_ACCOUNTS", {"beta": {"url": 5, "key": "beta-key"}}, "E001"),
    ("POK_ACCOUNTS", {"beta": {"url": "https://api.credentity.xyz", "key": 5}}, "E001"),
    ("POK_ACCOUNTS", {5: {"url": "https://api.credentity.xyz", "key": "k"}}, "W006"),
    ("POK_ACCOUNTS", {"beta": {"url": "https://api.credentity.xyz:443x", "key": "beta-key"}}, "E001"),
    ("POK_ACCOUNTS", {"beta": {"url": "https://api.credentity.xyz:70000", "key": "beta-key"}}, "E001"),
    ("POK_ACCOUNTS", {"beta": {"url": "https://[api.credentity.xyz", "key": "beta-key"}}, "E001"),
    ("POK_ACCOUNTS", {"beta": {"url": "https://api.credentity.xyz", "key": "beta key"}}, "E001"),
    ("POK_ACCOUNTS", {"beta": {"url": "https://api.credentity.xyz", "key": "beta-key\nbeta"}}, "E001"),
    ("POK_API_URL", "https://api.pok.tech:443x", "W006"),
    ("POK_API_KEY", "5e3c7a1d-0b8f\n4c2e", "W006"),
    ("CELERYBEAT_SCHEDULE", [{"task": "openedx_pok.tasks.reconcile_credentials"}], "W002"),
    ("CELERYBEAT_SCHEDULE", "openedx_pok.tasks.reconcile_credentials", "W002"),
    ("CELERYBEAT_SCHEDULE", {"pok": "openedx_pok.tasks.reconcile_credentials"}, "W002"),
    ("CELERYBEAT_SCHEDULE", {"pok": {"task": ["openedx_pok.tasks.reconcile_credentials"]}}, "W002"),
    ("CELERYBEAT_SCHEDULE", {"pok": None, "other": 5}, "W002"),
    ("CELERY_BEAT_SCHEDULE", 5, "W002"),
    ("CELERY_BEAT_SCHEDULE", {"pok": {"task": {"name": "x"}}}, "W002"),
    ("POK_PARAMETER_SOURCES", "mine", "W005"),
    ("POK_PARAMETER_SOURCES", ["mine"], "W005"),
    ("POK_PARAMETER_SOURCES", 5, "W005"),
    ("POK_PARAMETER_SOURCES", {"mine": 5}, "W005"),
    ("POK_PARAMETER_SOURCES", {"mine": {"function": 5}}, "W005"),
]


@pytest.mark.parametrize(("name", "value", "expected"), MALFORMED)
def test_a_malformed_setting_is_reported_and_crashes_nothing(good, name, value, expected):
    if name.endswith("BEAT_SCHEDULE"):
        good.CELERYBEAT_SCHEDULE = {}
    setattr(good, name, value)
    found = ids(run_checks(tags=[checks.TAG], include_deployment_checks=True, databases=DB))
    assert f"openedx_pok.{expected}" in found and "openedx_pok.E006" not in found
    if expected.startswith("E"):
        with pytest.raises(CommandError):
            call_command("pok_check", stdout=io.StringIO(), stderr=io.StringIO())
    else:
        call_command("pok_check", stdout=io.StringIO(), stderr=io.StringIO())


def test_the_filters_config_message_says_why(good):
    good.OPEN_EDX_FILTERS_CONFIG = [{"pipeline": ["openedx_pok.pipeline.RequestPokCredential"]}]
    [error] = checks.check_pipeline_steps()
    assert error.id == "openedx_pok.E005" and "list" in error.msg and "filters cannot work" in error.hint


def test_a_check_that_fails_anyway_is_one_error_naming_it(good, monkeypatch):
    def fail():
        raise KeyError("a secret value")

    monkeypatch.setattr(checks.accounts, "problems", fail)
    [error] = checks.check_accounts(databases=DB)
    assert error.id == "openedx_pok.E006" and "check_accounts" in error.msg and "KeyError" in error.msg
    assert "secret" not in error.msg
    # The other checks still run, and pok_check fails on it.
    assert ids(run_checks(tags=[checks.TAG], include_deployment_checks=True, databases=DB)) == ["openedx_pok.E006"]
    with pytest.raises(CommandError):
        call_command("pok_check", stdout=io.StringIO(), stderr=io.StringIO())


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
    return (checks.check_accounts(databases=DB) + checks.check_mapped_templates(databases=DB)
            + checks.check_periodic_reconcile(databases=DB))


@pytest.mark.django_db(transaction=True)
def test_a_fresh_database_without_the_plugins_tables(good):
    with plugin_migrated_to("zero") as tables:
        assert not {CertificateTemplate._meta.db_table, PokTemplate._meta.db_table} & tables
        assert database_checks() == []
        assert ids(run_checks(tags=[checks.TAG], include_deployment_checks=True, databases=DB)) == []
        call_command("pok_check")  # no crash, nothing to report
        # What does not need the tables is still reported.
        good.POK_PARAMETER_SOURCES = {"mine": {"label": "no function"}}
        good.CELERYBEAT_SCHEDULE = {}
        assert ids(database_checks()) == ["openedx_pok.W002", "openedx_pok.W005"]
        # No mapping can be read, so a broken account is a warning that does not claim nothing uses it.
        good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz", "key": ""}}
        [warning] = checks.check_accounts(databases=DB)
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
        assert ids(checks.check_accounts(databases=DB)) == ["openedx_pok.W006"]
        good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz", "key": "beta-key"}}
        call_command("migrate", "openedx_pok", verbosity=0, skip_checks=False)
    # Migrated: the mapping kept through the upgrade is read again (on the default account the migration gives it).
    assert CertificateTemplate.objects.get().account == "default"
    good.POK_ACCOUNTS = {"beta": {"url": "https://api.credentity.xyz"}}
    [warning] = checks.check_accounts(databases=DB)
    assert warning.id == "openedx_pok.W006" and "no course mapping uses it" in warning.hint
    CertificateTemplate.objects.update(account="beta")
    assert ids(checks.check_accounts(databases=DB)) == ["openedx_pok.E001"]


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
    assert ids(checks.check_periodic_reconcile(databases=DB)) == ["openedx_pok.W002"]
    assert checks.check_periodic_reconcile() == []  # installed but not read: the task may be there, pok_check tells
    good.CELERYBEAT_SCHEDULE = {"pok": {"task": checks.RECONCILE_TASK}}
    assert checks.check_periodic_reconcile(databases=DB) == []  # the settings schedule still counts
    good.CELERYBEAT_SCHEDULE = {}
    with table_of(celery_beat):
        celery_beat.objects.create(name="pok reconcile", task=checks.RECONCILE_TASK, enabled=False)
        assert ids(checks.check_periodic_reconcile(databases=DB)) == ["openedx_pok.W002"]
        celery_beat.objects.update(enabled=True)
        assert checks.check_periodic_reconcile(databases=DB) == []
