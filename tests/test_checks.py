"""
The doctor: every system check is triggered by its bad configuration and silent on a good one; ``pok_check`` exits
non-zero when something is wrong (and, with ``--online``, when an account cannot be reached).
"""
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

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
