"""
The plugin loads in the platform's settings phases, in their real order, for the LMS, Studio and Tutor's image build.

Each case starts a fresh Python process (settings load once per process) with one of the sandbox's settings modules
(``lms_sandbox/envs``, each copying the order of the real file it names) and one shape of ``LOCALE_PATHS`` at the
time of the plugin's ``common`` phase: a ``Derived`` placeholder (Teak and later), a function derived later (Sumac),
a list, a tuple, or absent. The process then checks what an operator would: the platform's own settings were derived
as usual, the plugin's steps are in ``OPEN_EDX_FILTERS_CONFIG`` next to the operator's, and a request in es-419 gets
the plugin's page translated.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CREATION = "org.openedx.learning.certificate.creation.requested.v1"
RENDER = "org.openedx.learning.certificate.render.started.v1"

# What the process reports: the settings as the platform left them, and the plugin's status page rendered in a
# request whose browser asks for Spanish (Latin America), through the LocaleMiddleware the LMS uses.
PROBE = """
import json
import django
django.setup()
from django.conf import settings
from django.http import HttpResponse
from django.middleware.locale import LocaleMiddleware
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.utils.translation import get_language

def view(request):
    page = render_to_string("openedx_pok/status.html", {"reference": "r", "poll_config": {}})
    return HttpResponse(f"{get_language()}|{page}")

request = RequestFactory().get("/", HTTP_ACCEPT_LANGUAGE="es-419")
language, page = LocaleMiddleware(view)(request).content.decode().split("|", 1)
print(json.dumps({
    "locale_paths": [str(path) for path in settings.LOCALE_PATHS],
    "filters": settings.OPEN_EDX_FILTERS_CONFIG,
    "root_urlconf": settings.ROOT_URLCONF,
    "pok_default": settings.POK_API_URL,
    "language": language,
    "translated": "Su credencial se está emitiendo" in page,
}))
"""

OPERATOR_YAML = json.dumps({  # JSON is YAML: the operator replaces the whole key, as Tutor's config files do
    "SECRET_KEY": "operator",
    "OPEN_EDX_FILTERS_CONFIG": {CREATION: {"pipeline": ["other_plugin.pipeline.Step"], "fail_silently": False}},
})


def load(settings_module, locale_paths="derived", config_variable=None, tmp_path=None):
    """Load ``settings_module`` in a new process and return what PROBE reports (the process's error when it fails)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, "SANDBOX_LOCALE_PATHS": locale_paths,
           "PYTHONPATH": str(REPO)}
    for variable in ("LMS_CFG", "CMS_CFG"):
        env.pop(variable, None)
    if config_variable:
        config = tmp_path / "operator.yml"
        config.write_text(OPERATOR_YAML, encoding="utf-8")
        env[config_variable] = str(config)
    result = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=tmp_path or REPO, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, f"{settings_module} with LOCALE_PATHS {locale_paths}:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_platform_derived(report, locale_paths):
    """The platform's catalogs are still its own: a plugin that replaced the placeholder would have dropped them."""
    platform_catalogs = str(REPO / "lms_sandbox" / "conf" / "locale")
    if locale_paths == "absent":
        assert report["locale_paths"] == []
    else:
        assert report["locale_paths"] == [platform_catalogs]
    assert report["root_urlconf"].startswith("lms_sandbox.")


def assert_translated(report):
    assert report["language"] == "es-419"
    assert report["translated"]


@pytest.mark.parametrize("locale_paths", ["derived", "function", "list", "tuple", "absent"])
@pytest.mark.parametrize("project", ["lms", "cms"])
def test_production_settings_load_with_the_operators_yaml(project, locale_paths, tmp_path):
    report = load(f"lms_sandbox.envs.{project}_production", locale_paths, f"{project.upper()}_CFG", tmp_path)
    assert_platform_derived(report, locale_paths)
    assert_translated(report)
    # The YAML replaced the key after the common phase; the production phase merged the steps in again.
    assert report["filters"][CREATION] == {
        "pipeline": ["other_plugin.pipeline.Step", "openedx_pok.pipeline.RequestPokCredential"],
        "fail_silently": False,
    }
    assert report["filters"][RENDER]["pipeline"] == ["openedx_pok.pipeline.RenderPokCredential"]
    assert report["pok_default"] == "https://api.pok.tech"


@pytest.mark.parametrize("locale_paths", ["derived", "function"])
@pytest.mark.parametrize("settings_module", ["lms_sandbox.envs.lms_test", "lms_sandbox.envs.lms_build"])
def test_test_phase_and_tutor_image_build_load(settings_module, locale_paths, tmp_path):
    """The LMS's test phase runs before derive_settings; Tutor's build (compilemessages, collectstatic) runs the
    common phase and derives, with no production phase after it."""
    report = load(settings_module, locale_paths, tmp_path=tmp_path)
    assert_platform_derived(report, locale_paths)
    assert_translated(report)
    assert report["filters"][CREATION]["pipeline"] == ["openedx_pok.pipeline.RequestPokCredential"]
