"""
An operator upgrading from openedx-pok 21.x/22.x keeps the old step paths and settings in the LMS YAML.

Everything goes through the real openedx-filters loader and the sandbox LMS: the YAML's ``OPEN_EDX_FILTERS_CONFIG``
with ``fail_silently: False`` and the old paths only, and the configuration the platform really ends up with (the
plugin's ``production`` settings merge the new paths in after the YAML), old and new together. In each case the
certificate is generated, the learner gets exactly one credential and the certificate page redirects to it, the old
steps never call POK and never prevent a certificate, and each old path logs one deprecation warning per process.
"""
import logging
import types

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils.module_loading import import_string
from openedx_filters.learning.filters import CertificateCreationRequested

from lms_sandbox.factories import CourseOverviewFactory, GeneratedCertificateFactory
from lms_sandbox.grades import CourseGrade
from openedx_pok import filters, pipeline
from openedx_pok.course_setup import configuration
from openedx_pok.models import CertificateTemplate, CredentialStatus, PokCertificate
from openedx_pok.settings import common, production
from pok_simulator import Fault

pytestmark = pytest.mark.django_db

CREATION = "org.openedx.learning.certificate.creation.requested.v1"
RENDER = "org.openedx.learning.certificate.render.started.v1"
OLD_CREATE = "openedx_pok.filters.CertificateCreatedFilter"
OLD_RENDER = "openedx_pok.filters.CertificateRenderFilter"
NEW_CREATE = "openedx_pok.pipeline.RequestPokCredential"
NEW_RENDER = "openedx_pok.pipeline.RenderPokCredential"


def legacy_yaml():
    """What an operator of openedx-pok 21.x/22.x has in the LMS YAML."""
    return {
        CREATION: {"fail_silently": False, "pipeline": [OLD_CREATE]},
        RENDER: {"fail_silently": False, "pipeline": [OLD_RENDER]},
    }


def platform_settings_after(yaml_values):
    """The LMS settings phases: plugin ``common``, then the operator's YAML overwriting keys, then ``production``."""
    module = types.ModuleType("lms_settings")
    common.plugin_settings(module)
    for name, value in yaml_values.items():
        setattr(module, name, value)
    production.plugin_settings(module)
    return module


def merged_config():
    """The filter configuration the LMS runs with after the upgrade: the YAML's old paths plus the new ones."""
    config = platform_settings_after({"OPEN_EDX_FILTERS_CONFIG": legacy_yaml()}).OPEN_EDX_FILTERS_CONFIG
    assert config[CREATION] == {"fail_silently": False, "pipeline": [OLD_CREATE, NEW_CREATE]}
    assert config[RENDER] == {"fail_silently": False, "pipeline": [OLD_RENDER, NEW_RENDER]}
    return config


def new_first_config():
    return {
        CREATION: {"fail_silently": False, "pipeline": [NEW_CREATE, OLD_CREATE]},
        RENDER: {"fail_silently": False, "pipeline": [NEW_RENDER, OLD_RENDER]},
    }


CONFIGS = {"old paths only": legacy_yaml, "old then new (production merge)": merged_config,
           "new then old": new_first_config}


@pytest.fixture(autouse=True)
def fresh_process_warnings():
    """Each test starts like a new LMS process: no deprecation warning logged yet."""
    filters._warned.clear()  # noqa: SLF001
    yield
    filters._warned.clear()  # noqa: SLF001


def deprecation_warnings(caplog):
    return [record for record in caplog.records if record.name == "openedx_pok.filters"
            and record.levelno == logging.WARNING]


def test_old_paths_import_and_are_the_new_steps():
    assert issubclass(import_string(OLD_CREATE), pipeline.RequestPokCredential)
    assert issubclass(import_string(OLD_RENDER), pipeline.RenderPokCredential)


@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_upgraded_lms_issues_one_credential_and_redirects(pok, course, learner, lms, settings, caplog, config_name):
    settings.OPEN_EDX_FILTERS_CONFIG = CONFIGS[config_name]()
    caplog.set_level(logging.WARNING, logger="openedx_pok.filters")

    certificate = lms.award(learner, course)
    lms.award(learner, course)  # the LMS runs the creation filter again on regeneration

    assert certificate.status == "downloadable"
    row = PokCertificate.objects.get(user=learner, course_key=course.id)
    assert row.status == CredentialStatus.EMITTED, row.status_reason
    assert pok.count("issue_credential") == 1
    assert len(pok.credentials_for(learner.email)) == 1

    client = Client()
    for _ in range(2):
        response = client.get(f"/certificates/{certificate.verify_uuid}")
        assert response.status_code == 302
        assert response["Location"] == row.view_url

    # One warning per old path that ran, however often it ran. After the new render step the old one never runs:
    # the new step's redirect ends the pipeline.
    old_render_runs = config_name != "new then old"
    warnings = [w.getMessage() for w in deprecation_warnings(caplog)]
    assert len(warnings) == (2 if old_render_runs else 1), warnings
    assert any(OLD_CREATE in m and NEW_CREATE in m for m in warnings)
    assert any(OLD_RENDER in m and NEW_RENDER in m for m in warnings) == old_render_runs


def test_old_creation_step_records_the_credential_without_calling_pok(pok, course, learner, settings,
                                                                     django_capture_on_commit_callbacks):
    """The old step alone (no certificate saved, so no CERTIFICATE_CREATED receiver) records and schedules."""
    settings.OPEN_EDX_FILTERS_CONFIG = legacy_yaml()
    grade = CourseGrade(percent=0.9, passed=True, letter_grade="Pass")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = CertificateCreationRequested.run_filter(
            user=learner, course_key=course.id, mode="verified", status=None, grade=grade, generation_mode=None,
        )
    assert result == (learner, course.id, "verified", None, grade, None)
    row = PokCertificate.objects.get(user=learner, course_key=course.id)
    assert row.status == CredentialStatus.PENDING
    assert pok.count() == 0  # nothing sent to POK from inside the LMS call
    assert callbacks  # the issuance task is scheduled after commit


def test_old_steps_never_prevent_a_certificate_when_pok_is_down(pok, course, learner, lms, settings):
    settings.OPEN_EDX_FILTERS_CONFIG = legacy_yaml()
    pok.add_fault(Fault("status", endpoint="issue_credential", status=503, times=None))
    certificate = lms.award(learner, course)
    assert certificate.status == "downloadable"
    row = PokCertificate.objects.get(user=learner, course_key=course.id)
    assert row.status != CredentialStatus.EMITTED and row.status_reason
    response = Client().get(f"/certificates/{certificate.verify_uuid}")
    assert response.status_code == 200  # the status page, not an error


def _creation_queries(user, course_key, pipeline_paths):
    with CaptureQueriesContext(connection) as queries:
        CertificateCreationRequested.run_filter(
            user=user, course_key=course_key, mode="verified", status=None,
            grade=CourseGrade(percent=0.9, passed=True, letter_grade="Pass"), generation_mode=None,
        )
    return len(queries)


@pytest.mark.parametrize("both", [[OLD_CREATE, NEW_CREATE], [NEW_CREATE, OLD_CREATE]])
def test_creation_step_runs_once_when_old_and_new_are_listed(pok, course, learner, settings, both,
                                                            django_capture_on_commit_callbacks):
    def queries_with(paths):
        settings.OPEN_EDX_FILTERS_CONFIG = {CREATION: {"pipeline": paths, "fail_silently": False}}
        with django_capture_on_commit_callbacks(execute=False):
            return _creation_queries(learner, course.id, paths)

    queries_with([NEW_CREATE])  # the first run creates the row; later runs are the repeated, cheap case
    once = queries_with([NEW_CREATE])
    assert once > 0
    assert queries_with([NEW_CREATE, NEW_CREATE]) > once  # the measure sees a step that runs twice
    assert queries_with([OLD_CREATE]) == once  # the old path alone is the new step
    assert queries_with(both) == once
    assert PokCertificate.objects.filter(user=learner).count() == 1


@pytest.mark.parametrize("both", [[OLD_RENDER, NEW_RENDER], [NEW_RENDER, OLD_RENDER]])
def test_render_step_runs_once_when_old_and_new_are_listed(pok, learner, settings, both):
    """
    A course whose mapping is disabled: the step reads the learner's credential and leaves the page to Open edX each
    time (a course with no mapping at all costs no query, so it could not show how often the step ran).
    """
    unmapped = CourseOverviewFactory()
    CertificateTemplate.objects.create(course_key=unmapped.id, template_id="tpl-basic", enabled=False)
    certificate = GeneratedCertificateFactory(user=learner, course_id=unmapped.id)
    client = Client()

    def queries_with(paths):
        settings.OPEN_EDX_FILTERS_CONFIG = {RENDER: {"pipeline": paths, "fail_silently": False}}
        with CaptureQueriesContext(connection) as queries:
            response = client.get(f"/certificates/{certificate.verify_uuid}")
        assert response.status_code == 200
        return len(queries)

    queries_with([NEW_RENDER])
    once = queries_with([NEW_RENDER])
    assert queries_with([NEW_RENDER, NEW_RENDER]) > once
    assert queries_with([OLD_RENDER]) == once
    assert queries_with(both) == once


def test_old_step_skipping_adds_no_keys(learner, course, settings):
    """Other plugins' steps after ours get exactly the LMS's arguments."""
    settings.OPEN_EDX_FILTERS_CONFIG = {CREATION: {"pipeline": [NEW_CREATE], "fail_silently": False}}
    step = filters.CertificateCreatedFilter(CREATION, [OLD_CREATE, NEW_CREATE])
    arguments = {"user": learner, "course_key": course.id, "mode": "verified", "status": None, "grade": None,
                 "generation_mode": None}
    assert step.run_filter(**arguments) == arguments
    assert not PokCertificate.objects.exists()


def test_old_step_never_raises_on_unexpected_arguments(learner, course, caplog):
    """A platform calling the step with other arguments must not fail a fail_silently: False pipeline."""
    step = filters.CertificateCreatedFilter(CREATION, [OLD_CREATE])
    arguments = {"user": learner, "course_key": course.id}  # no mode, status, grade, generation_mode
    with caplog.at_level(logging.ERROR, logger="openedx_pok.filters"):
        assert step.run_filter(**arguments) == arguments
    assert any(record.levelno == logging.ERROR and NEW_CREATE in record.getMessage() for record in caplog.records)


def test_old_step_outside_a_pipeline_reads_the_settings(settings, learner, course, django_capture_on_commit_callbacks):
    """Instantiated without a running pipeline, the step looks at OPEN_EDX_FILTERS_CONFIG (any form it accepts)."""
    arguments = {"user": learner, "course_key": course.id, "mode": "verified", "status": None, "grade": None,
                 "generation_mode": None}
    settings.OPEN_EDX_FILTERS_CONFIG = {CREATION: {"pipeline": NEW_CREATE}}  # a single string: new step configured
    with django_capture_on_commit_callbacks(execute=False):
        assert filters.CertificateCreatedFilter(CREATION, None).run_filter(**arguments) == arguments
    assert not PokCertificate.objects.exists()
    settings.OPEN_EDX_FILTERS_CONFIG = {CREATION: [OLD_CREATE]}  # a bare list: only the old path
    with django_capture_on_commit_callbacks(execute=False):
        filters.CertificateCreatedFilter(CREATION, None).run_filter(**arguments)
    assert PokCertificate.objects.filter(user=learner, course_key=course.id).exists()


def test_one_warning_per_process_and_class(caplog, learner, course):
    caplog.set_level(logging.WARNING, logger="openedx_pok.filters")
    arguments = {"user": learner, "course_key": course.id, "mode": "verified", "status": "unverified",
                 "grade": None, "generation_mode": None}
    for _ in range(3):
        filters.CertificateCreatedFilter(CREATION, [OLD_CREATE]).run_filter(**arguments)
    assert len(deprecation_warnings(caplog)) == 1
    filters._warned.clear()  # noqa: SLF001 - a new process
    filters.CertificateCreatedFilter(CREATION, [OLD_CREATE]).run_filter(**arguments)
    assert len(deprecation_warnings(caplog)) == 2


# --- old settings ---------------------------------------------------------------------------------------------------

def test_old_template_and_page_ids_become_the_defaults_in_the_production_phase():
    module = platform_settings_after({"POK_TEMPLATE_ID": "tpl-legacy", "POK_PAGE_ID": "page-legacy"})
    assert module.POK_DEFAULT_TEMPLATE_ID == "tpl-legacy"
    assert module.POK_DEFAULT_PAGE_ID == "page-legacy"


def test_new_default_names_win_over_the_old_ones():
    module = platform_settings_after({"POK_TEMPLATE_ID": "tpl-legacy", "POK_DEFAULT_TEMPLATE_ID": "tpl-new",
                                      "POK_PAGE_ID": "page-legacy", "POK_DEFAULT_PAGE_ID": "page-new"})
    assert module.POK_DEFAULT_TEMPLATE_ID == "tpl-new"
    assert module.POK_DEFAULT_PAGE_ID == "page-new"


def test_no_old_names_leave_the_defaults_empty():
    module = platform_settings_after({})
    assert module.POK_DEFAULT_TEMPLATE_ID == "" and module.POK_DEFAULT_PAGE_ID == ""
    assert not hasattr(module, "POK_TEMPLATE_ID")


def test_legacy_yaml_settings_reach_the_credential(pok, course, learner, lms, settings):
    """POK_TEMPLATE_ID / POK_PAGE_ID / POK_DATE_FORMAT / POK_TIMEOUT from an old YAML, end to end."""
    resolved = platform_settings_after({
        "POK_API_URL": pok.url + "/", "POK_API_KEY": pok.api_key,  # the old default URL ended with a slash
        "POK_TEMPLATE_ID": "tpl-basic", "POK_PAGE_ID": "page-1", "POK_DATE_FORMAT": "MM/dd/yyyy", "POK_TIMEOUT": 7,
        "OPEN_EDX_FILTERS_CONFIG": legacy_yaml(),
    })
    for name in ("POK_API_URL", "POK_DEFAULT_TEMPLATE_ID", "POK_DEFAULT_PAGE_ID", "POK_DATE_FORMAT", "POK_TIMEOUT",
                 "OPEN_EDX_FILTERS_CONFIG"):
        setattr(settings, name, getattr(resolved, name))
    configuration.reset_clients()
    CertificateTemplate.objects.filter(course_key=course.id).update(template_id="", page_id="")

    lms.award(learner, course)

    row = PokCertificate.objects.get(user=learner, course_key=course.id)
    assert row.status == CredentialStatus.EMITTED, row.status_reason
    body = pok.requests[-1].body
    assert body["customization"]["template"]["id"] == "tpl-basic"
    assert body["customization"]["page"] == "page-1"
    assert body["credential"]["dateFormat"] == "MM/dd/yyyy"
    assert configuration.get_client().timeout == 7
