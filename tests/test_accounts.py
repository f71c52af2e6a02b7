"""
Several POK accounts: each course mapping issues, refreshes and previews with its own account's key; keys stay in
settings; a wrong key, an unreachable account or a malformed POK_ACCOUNTS holds credentials with a clear reason.
"""
import io
import logging

import pytest
from django.core.management import CommandError, call_command
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.factories import CourseOverviewFactory, OrganizationFactory, UserFactory
from lms_sandbox.generation import generate_certificate
from lms_sandbox.grades import CourseGrade
from openedx_pok.course_setup import accounts, catalog, configuration
from openedx_pok.exceptions import PokConfigurationError
from openedx_pok.issuance import staff_actions
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate

pytestmark = pytest.mark.django_db

BETA_KEY = "b7a1c9e2-0000-4000-8000-0000000000be"


@pytest.fixture
def beta(pok, settings):
    """A second POK organization on the simulator, configured as account 'beta', and a BetaX course mapped to it."""
    pok.add_organization(BETA_KEY, name="Beta Org", available_credits=3,
                         templates=[("tpl-beta", "Beta diploma", [("grade", "Grade")])], pages=[("page-b", "Beta")])
    settings.POK_ACCOUNTS = {"beta": {"url": pok.url, "key": BETA_KEY}}
    OrganizationFactory(short_name="BetaX", name="Beta University")
    overview = CourseOverviewFactory(id=CourseKey.from_string("course-v1:BetaX+B1+2026"), display_name="Beta 1",
                                     org="BetaX")
    CertificateTemplate.objects.create(organization="BetaX", template_id="tpl-beta", account="beta")
    return overview


def test_two_organizations_issue_each_with_their_own_key(pok, beta, course, learner, lms):
    lms.award(learner, course)
    lms.award(learner, beta)
    demo_row = PokCertificate.objects.get(course_key=course.id)
    beta_row = PokCertificate.objects.get(course_key=beta.id)
    assert demo_row.status == beta_row.status == CredentialStatus.EMITTED
    assert (demo_row.account, beta_row.account) == ("default", "beta")
    assert [c["id"] for c in pok.credentials_for(learner.email, organization="Beta Org")] == [
        beta_row.pok_credential_id]
    assert [c["id"] for c in pok.credentials_for(learner.email, organization=pok.organization_name)] == [
        demo_row.pok_credential_id]
    posts = [r for r in pok.requests if r.endpoint == "issue_credential"]
    assert {r.organization for r in posts} == {"Beta Org", pok.organization_name}
    assert beta_row.custom_parameters == {"grade": "90%"}


def test_refresh_uses_the_account_the_credential_was_issued_with(pok, beta, learner, lms):
    pok.emission_mode = "async"
    lms.award(learner, beta)
    row = PokCertificate.objects.get()
    assert row.status == CredentialStatus.IN_PROGRESS
    for _ in range(3):
        lms.run(staff_actions.refresh, PokCertificate.objects.get())
    assert PokCertificate.objects.get().status == CredentialStatus.EMITTED
    gets = [r for r in pok.requests if r.endpoint == "get_credential"]
    assert gets and {r.organization for r in gets} == {"Beta Org"}


def test_a_wrong_key_fails_that_account_only_and_says_so(pok, beta, course, settings, learner, lms):
    settings.POK_ACCOUNTS = {"beta": {"url": pok.url, "key": "not-the-beta-key"}}
    configuration.reset_clients()
    lms.award(learner, beta)
    lms.award(learner, course)
    beta_row = PokCertificate.objects.get(course_key=beta.id)
    assert beta_row.status == CredentialStatus.FAILED and "API key" in beta_row.status_reason
    assert "not-the-beta-key" not in beta_row.status_reason
    assert PokCertificate.objects.get(course_key=course.id).status == CredentialStatus.EMITTED
    report = catalog.test_connection("beta")
    assert not report.ok and "refused the API key of account 'beta'" in report.reason


@pytest.mark.parametrize("accounts, expected", [
    ("not a dict", "POK_ACCOUNTS must be a dictionary"),
    ({"beta": "https://api.pok.tech"}, "must be a dictionary with"),
    ({"beta": {"url": "https://api.pok.tech"}}, "has no API key"),
    ({"beta": {"key": BETA_KEY}}, "has no API URL"),
    ({"beta": {"url": "api.pok.tech", "key": BETA_KEY}}, "must be an absolute"),
    ({}, "is not configured"),
])
def test_a_malformed_account_holds_its_credentials_with_the_reason(pok, beta, settings, learner, lms, accounts,
                                                                    expected):
    lms.award(learner, beta)  # issued with the good configuration first: it must survive the bad one
    settings.POK_ACCOUNTS = accounts
    configuration.reset_clients()
    with pytest.raises(PokConfigurationError, match=expected):
        configuration.get_client("beta")
    assert PokCertificate.objects.get().status == CredentialStatus.EMITTED  # nothing issued is lost
    other = UserFactory(profile__name="Grace Hopper")
    lms.award(other, beta)
    held = PokCertificate.objects.get(user=other)
    assert held.status == CredentialStatus.HELD and expected in held.status_reason
    assert BETA_KEY not in held.status_reason
    assert not catalog.test_connection("beta").ok


def test_an_unreachable_account_is_reported_and_retried(pok, beta, settings, learner, lms):
    settings.POK_ACCOUNTS = {"beta": {"url": "http://127.0.0.1:9", "key": BETA_KEY}}
    configuration.reset_clients()
    report = catalog.test_connection("beta")
    assert not report.ok and "unreachable" in report.reason
    lms.award(learner, beta)
    row = PokCertificate.objects.get()
    assert row.status in (CredentialStatus.PENDING, CredentialStatus.FAILED) and row.pok_credential_id is None


def test_a_tls_failure_is_named(pok, beta, settings):
    settings.POK_ACCOUNTS = {"beta": {"url": pok.url.replace("http://", "https://"), "key": BETA_KEY}}
    configuration.reset_clients()
    report = catalog.test_connection("beta")
    assert not report.ok and "TLS" in report.reason


def test_connection_test_shows_organization_wallet_and_credits(pok, beta):
    report = catalog.test_connection("beta")
    assert report.ok and (report.organization, report.available_credits) == ("Beta Org", 3)
    assert catalog.account_info("beta")["available_credits"] == 3


def test_single_account_installs_need_nothing_new(pok, course, learner, lms, settings):
    settings.POK_ACCOUNTS = {}
    lms.award(learner, course)
    assert PokCertificate.objects.get().status == CredentialStatus.EMITTED
    assert accounts.account_names() == ["default"]


def test_rate_limits_are_per_account(pok, beta):
    configuration.note_rate_limited(30, account="beta")
    assert configuration.account_wait_seconds("beta") > 25
    assert configuration.account_wait_seconds("default") == 0.0


def test_keys_never_reach_logs_or_reprs(pok, beta, learner, lms, caplog):
    caplog.set_level(logging.DEBUG)
    lms.award(learner, beta)
    catalog.test_connection("beta")
    catalog.sync("beta")
    assert BETA_KEY not in caplog.text
    assert BETA_KEY not in repr(configuration.accounts.get_account("beta"))


BAD_PORT = "https://api.pok.tech:443x"


def test_an_account_url_with_a_bad_port_is_refused_with_a_reason(pok, beta, course, settings, learner, lms):
    """Connection test, catalog sync and issuance name the bad URL; the other account goes on."""
    settings.POK_ACCOUNTS = {"beta": {"url": BAD_PORT, "key": BETA_KEY}}
    configuration.reset_clients()
    with pytest.raises(PokConfigurationError, match="'beta' is not a valid URL"):
        configuration.get_client("beta")
    report = catalog.test_connection("beta")
    assert not report.ok and "port" in report.reason
    default, broken = catalog.sync()
    assert not default.error and "port" in broken.error
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="Could not sync POK account beta."):
        call_command("pok_sync_templates", stdout=out, stderr=err)
    assert "2 templates" in out.getvalue() and "'beta' is not a valid URL" in err.getvalue()
    lms.award(learner, beta)
    lms.award(learner, course)
    held = PokCertificate.objects.get(course_key=beta.id)
    assert held.status == CredentialStatus.HELD and "'beta' is not a valid URL" in held.status_reason
    assert PokCertificate.objects.get(course_key=course.id).status == CredentialStatus.EMITTED


def test_pok_sync_goes_on_past_an_account_with_a_bad_port(pok, beta, course, settings, learner):
    """Credentials left pending (e.g. recorded while the queue was down) of two accounts, one of them broken."""
    for overview in (beta, course):  # recorded, their tasks never ran (no commit in this test)
        generate_certificate(learner, overview.id, CourseGrade(percent=0.9, passed=True, letter_grade="Pass"))
    assert set(PokCertificate.objects.values_list("status", flat=True)) == {CredentialStatus.PENDING}
    settings.POK_ACCOUNTS = {"beta": {"url": BAD_PORT, "key": BETA_KEY}}
    configuration.reset_clients()
    call_command("pok_sync", "--include-recent", stdout=io.StringIO())
    assert PokCertificate.objects.get(course_key=course.id).status == CredentialStatus.EMITTED
    held = PokCertificate.objects.get(course_key=beta.id)
    assert held.status == CredentialStatus.HELD and "'beta' is not a valid URL" in held.status_reason


@pytest.mark.parametrize("key", ["b7a1c9e2 0000", "b7a1c9e2\n0000", "b7a1c9e2\t0000", "b7a1c9e2\x000000", "clé-ñ"])
def test_a_key_with_inner_whitespace_or_odd_characters_is_refused(settings, key):
    settings.POK_ACCOUNTS = {"beta": {"url": "https://api.pok.tech", "key": key}}
    with pytest.raises(PokConfigurationError, match="'beta' contains spaces, line breaks") as raised:
        accounts.get_account("beta")
    assert key not in str(raised.value)
    assert [name for name, _message in accounts.problems()] == ["beta"]


def test_only_the_outer_whitespace_of_a_key_is_stripped(settings):
    settings.POK_ACCOUNTS = {"beta": {"url": " https://api.pok.tech ", "key": f"  {BETA_KEY}\n"}}
    settings.POK_API_KEY = f"\t{BETA_KEY} "
    assert accounts.get_account("beta").api_key == BETA_KEY == accounts.get_account().api_key
    assert accounts.problems() == []
