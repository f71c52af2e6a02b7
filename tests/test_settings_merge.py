"""
The plugin settings: every POK_* default, and the pipeline steps merged into OPEN_EDX_FILTERS_CONFIG the way the
platform applies them (``common``, then the operator's YAML replacing the key, then ``production``).
"""
import types

import pytest
from django.conf import settings
from edx_django_utils.plugins import add_plugins

from openedx_pok.settings import common, production

CREATION = common.CREATION_FILTER
RENDER = common.RENDER_FILTER
OTHER_STEP = "other_plugin.pipeline.OtherStep"


def settings_module(**values):
    module = types.ModuleType("lms_settings")
    for name, value in values.items():
        setattr(module, name, value)
    return module


def test_defaults_are_applied_and_existing_values_kept():
    module = settings_module(POK_API_URL="https://api.credentity.xyz")
    common.plugin_settings(module)
    assert module.POK_API_URL == "https://api.credentity.xyz"
    for name, value in common.DEFAULTS.items():
        if name != "POK_API_URL":
            assert getattr(module, name) == value
    assert module.POK_TIMEOUT <= 10


def test_steps_registered_when_no_config_exists():
    module = settings_module()
    common.plugin_settings(module)
    assert module.OPEN_EDX_FILTERS_CONFIG == {
        CREATION: {"pipeline": [common.PIPELINE_STEPS[CREATION]], "fail_silently": True},
        RENDER: {"pipeline": [common.PIPELINE_STEPS[RENDER]], "fail_silently": True},
    }


@pytest.mark.parametrize("phases", [(common,), (common, common), (common, production), (production, production)])
def test_other_plugins_steps_kept_and_ours_added_once(phases):
    module = settings_module(OPEN_EDX_FILTERS_CONFIG={
        CREATION: {"pipeline": [OTHER_STEP], "fail_silently": False},
        RENDER: {"pipeline": OTHER_STEP},  # a single string is accepted by openedx-filters
        "org.openedx.learning.course.enrollment.started.v1": {"pipeline": ["x.Y"], "fail_silently": True},
    })
    for phase in phases:
        phase.plugin_settings(module)
    config = module.OPEN_EDX_FILTERS_CONFIG
    assert config[CREATION] == {"pipeline": [OTHER_STEP, common.PIPELINE_STEPS[CREATION]], "fail_silently": False}
    assert config[RENDER]["pipeline"] == [OTHER_STEP, common.PIPELINE_STEPS[RENDER]]
    assert config["org.openedx.learning.course.enrollment.started.v1"] == {"pipeline": ["x.Y"], "fail_silently": True}


def test_yaml_replacing_the_key_between_phases_is_repaired_by_production():
    module = settings_module()
    common.plugin_settings(module)
    # The operator's YAML overwrites the whole key after the common phase.
    module.OPEN_EDX_FILTERS_CONFIG = {CREATION: {"pipeline": [OTHER_STEP], "fail_silently": False}}
    production.plugin_settings(module)
    assert module.OPEN_EDX_FILTERS_CONFIG[CREATION] == {
        "pipeline": [OTHER_STEP, common.PIPELINE_STEPS[CREATION]], "fail_silently": False,
    }
    assert module.OPEN_EDX_FILTERS_CONFIG[RENDER]["pipeline"] == [common.PIPELINE_STEPS[RENDER]]


def test_shared_dict_is_not_mutated():
    shared = {CREATION: {"pipeline": [OTHER_STEP]}}
    module = settings_module(OPEN_EDX_FILTERS_CONFIG=shared)
    common.plugin_settings(module)
    assert shared == {CREATION: {"pipeline": [OTHER_STEP]}}


@pytest.mark.parametrize("settings_type", ["common", "production"])
def test_installed_package_through_the_platform_plugin_loader_twice(settings_type):
    """The real edx-django-utils loader finds the plugin by its entry point and applies its settings module."""
    module = settings_module(OPEN_EDX_FILTERS_CONFIG={CREATION: {"pipeline": [OTHER_STEP], "fail_silently": True}})
    import sys

    sys.modules["lms_settings_under_test"] = module
    try:
        add_plugins("lms_settings_under_test", "lms.djangoapp", settings_type)
        add_plugins("lms_settings_under_test", "lms.djangoapp", settings_type)
    finally:
        del sys.modules["lms_settings_under_test"]
    assert module.OPEN_EDX_FILTERS_CONFIG[CREATION]["pipeline"] == [OTHER_STEP, common.PIPELINE_STEPS[CREATION]]
    assert module.OPEN_EDX_FILTERS_CONFIG[RENDER]["pipeline"] == [common.PIPELINE_STEPS[RENDER]]


def test_test_settings_went_through_the_plugin_loader():
    assert settings.OPEN_EDX_FILTERS_CONFIG[CREATION]["pipeline"] == [common.PIPELINE_STEPS[CREATION]]
    assert any(app.split(".")[0] == "openedx_pok" for app in settings.INSTALLED_APPS)
