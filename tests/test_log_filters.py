"""
The certificate page's deliberate outcomes stay out of the error log: openedx-filters logs every exception a step
raises (with a traceback, at ERROR), including the redirect that is how the plugin shows an emitted credential. The
app's log filter drops those, for the render step under its name and under the earlier openedx-pok's name, and
nothing else.
"""
import logging

import pytest
from django.test import Client
from openedx_filters import PipelineStep

from openedx_pok.log_filters import DropDeliberateRenderExceptions

pytestmark = pytest.mark.django_db

RENDER = "org.openedx.learning.certificate.render.started.v1"


class Broken(PipelineStep):
    """Another plugin's step with a real error: that one must still be logged."""

    def run_filter(self, context, custom_template):
        raise RuntimeError("a real error")


def tooling_errors(caplog):
    return [record for record in caplog.records
            if record.name == "openedx_filters.tooling" and record.levelno >= logging.ERROR]


def test_the_app_installs_the_filter_once():
    filters = logging.getLogger("openedx_filters.tooling").filters
    assert sum(isinstance(f, DropDeliberateRenderExceptions) for f in filters) == 1


@pytest.mark.parametrize("step", ["openedx_pok.pipeline.RenderPokCredential",
                                  "openedx_pok.filters.CertificateRenderFilter"])
def test_a_redirect_to_the_credential_is_not_an_error(settings, caplog, pok, course, learner, lms, step):
    settings.OPEN_EDX_FILTERS_CONFIG = {RENDER: {"pipeline": [step], "fail_silently": False}}
    certificate = lms.award(learner, course)
    with caplog.at_level(logging.INFO, logger="openedx_filters.tooling"):
        response = Client().get(f"/certificates/{certificate.verify_uuid}")
    assert response.status_code == 302
    assert tooling_errors(caplog) == []


def test_a_real_error_of_another_step_is_still_logged(settings, caplog, pok, course, learner, lms):
    settings.OPEN_EDX_FILTERS_CONFIG = {RENDER: {"pipeline": [f"{__name__}.Broken"], "fail_silently": True}}
    certificate = lms.award(learner, course)
    with caplog.at_level(logging.INFO, logger="openedx_filters.tooling"):
        Client().get(f"/certificates/{certificate.verify_uuid}")
    [record] = tooling_errors(caplog)
    assert record.exc_info[0] is RuntimeError
