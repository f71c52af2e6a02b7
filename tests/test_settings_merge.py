"""
The plugin settings: every POK_* default and its Open edX annotation, the settings that change behaviour (the default
emission type of a new course mapping), and the pipeline steps merged into OPEN_EDX_FILTERS_CONFIG the way the
platform applies them (``common``, then the operator's YAML replacing the key, then ``production``).
"""
import ast
import re
import sys
import types
from pathlib import Path

import pytest
from django.conf import settings
from django.forms import modelform_factory
from django.utils.module_loading import import_string
from edx_django_utils.plugins import add_plugins
from opaque_keys.edx.keys import CourseKey

from lms_sandbox.compat import SandboxBackend
from openedx_pok import compat
from openedx_pok.models import CertificateTemplate, EmissionType, default_emission_type
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
        # The course team's instructor dashboard tab: the legacy page's section and the dashboard app's tab.
        common.LEGACY_DASHBOARD_FILTER: {"pipeline": ["openedx_pok.course_team.dashboard.AddPokSection"],
                                         "fail_silently": True},
        common.DASHBOARD_TABS_FILTER: {"pipeline": ["openedx_pok.course_team.dashboard.AddPokTab"],
                                       "fail_silently": True},
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


# --- Annotations: every default documented the Open edX way -------------------------------------------------------

PACKAGE_DIR = Path(common.__file__).resolve().parent.parent
ANNOTATION = re.compile(r"^#\s*\.\. (\w+): (.*)$")
CONTINUATION = re.compile(r"^#\s{2,}(\S.*)$")
DEFAULT_ENTRY = re.compile(r'^"(POK_[A-Z0-9_]+)":')
TOGGLE_TOKENS = {"toggle_name", "toggle_implementation", "toggle_default", "toggle_description", "toggle_use_cases",
                 "toggle_creation_date"}
SETTING_TOKENS = {"setting_name", "setting_default", "setting_description"}


def annotations_of_defaults():
    """``{setting: {token: text}}`` from the comment block right above each entry of ``DEFAULTS`` in common.py."""
    source = Path(common.__file__).read_text(encoding="utf-8")
    body = source[source.index("DEFAULTS = {"):]
    found, block, token = {}, {}, None
    for raw in body.splitlines()[1:]:
        line = raw.strip()
        if line == "}":
            break
        entry = DEFAULT_ENTRY.match(line)
        if entry:
            found[entry.group(1)] = block
            block, token = {}, None
            continue
        annotation = ANNOTATION.match(line)
        continuation = CONTINUATION.match(raw.strip(" ")) if not annotation else None
        if annotation:
            token = annotation.group(1)
            block[token] = annotation.group(2)
        elif continuation and token:
            block[token] += " " + continuation.group(1)
        elif not line.startswith("#") or line == "#":
            block, token = {}, None
    return found


def test_every_default_is_annotated_as_a_setting_or_as_a_toggle():
    annotations = annotations_of_defaults()
    assert set(annotations) == set(common.DEFAULTS)
    for name, value in common.DEFAULTS.items():
        block = annotations[name]
        if isinstance(value, bool):
            assert TOGGLE_TOKENS <= set(block), name
            assert block["toggle_name"] == name
            assert block["toggle_implementation"] == "DjangoSetting"
            assert block["toggle_use_cases"] == "open_edx"
            assert ast.literal_eval(block["toggle_default"]) is value, name
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", block["toggle_creation_date"]), name
        else:
            assert SETTING_TOKENS <= set(block), name
            assert block["setting_name"] == name
            assert ast.literal_eval(block["setting_default"]) == value, name
        description = block.get("toggle_description") or block["setting_description"]
        assert len(description) > 40, f"{name}: say what it does and why"


def settings_read_by_the_plugin():
    """Every POK_* name in the plugin's code (outside the settings module and the migrations)."""
    names = set()
    for path in PACKAGE_DIR.rglob("*.py"):
        relative = path.relative_to(PACKAGE_DIR).parts
        if relative[0] in ("settings", "migrations"):
            continue
        names |= set(re.findall(r"\bPOK_[A-Z][A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    return names


def test_every_setting_the_plugin_reads_has_a_documented_default():
    read = settings_read_by_the_plugin()
    assert {"POK_API_URL", "POK_COMPAT_BACKEND", "POK_DEFAULT_TEMPLATE_ID"} <= read
    assert read - set(common.DEFAULTS) == set()


def test_every_setting_named_in_the_settings_module_is_annotated():
    """Including names without a default, such as the openedx-pok 21.x aliases the settings module reads."""
    source = Path(common.__file__).read_text(encoding="utf-8")
    annotated = set(re.findall(r"^\s*# \.\. (?:setting|toggle)_name: (POK_[A-Z0-9_]+)$", source, re.MULTILINE))
    named = set(re.findall(r"\bPOK_[A-Z][A-Z0-9_]*[A-Z0-9]\b", source))
    assert set(common.LEGACY_DEFAULTS.values()) <= named
    assert named - annotated == set()


def test_compat_backend_default_is_the_platform_backend():
    module = settings_module()
    common.plugin_settings(module)
    assert import_string(module.POK_COMPAT_BACKEND) is compat.PlatformBackend
    # The sandbox LMS's settings chose its own backend before the plugin's phases ran, and the phases kept it.
    assert isinstance(compat.backend(), SandboxBackend)


# --- POK_DEFAULT_EMISSION_TYPE: the emission type a new course mapping starts with ----------------------------------

COURSE = CourseKey.from_string("course-v1:DemoX+Emission+2026")


def test_default_emission_type_of_the_shipped_settings_is_the_free_one():
    assert common.DEFAULTS["POK_DEFAULT_EMISSION_TYPE"] == EmissionType.POK
    assert settings.POK_DEFAULT_EMISSION_TYPE == EmissionType.POK
    assert CertificateTemplate(course_key=COURSE).emission_type == EmissionType.POK


@pytest.mark.django_db
def test_new_mapping_takes_the_setting_and_keeps_it(settings):
    settings.POK_DEFAULT_EMISSION_TYPE = "blockchain"
    mapping = CertificateTemplate.objects.create(course_key=COURSE, template_id="tpl-basic")
    assert CertificateTemplate.objects.get(pk=mapping.pk).emission_type == EmissionType.BLOCKCHAIN
    # Changing the setting later leaves existing mappings alone and applies to the next one.
    settings.POK_DEFAULT_EMISSION_TYPE = "pok"
    assert CertificateTemplate.objects.get(pk=mapping.pk).emission_type == EmissionType.BLOCKCHAIN
    other = CertificateTemplate.objects.create(organization="DemoX", template_id="tpl-basic")
    assert CertificateTemplate.objects.get(pk=other.pk).emission_type == EmissionType.POK


@pytest.mark.django_db
def test_explicit_emission_type_wins_over_the_setting(settings):
    settings.POK_DEFAULT_EMISSION_TYPE = "blockchain"
    mapping = CertificateTemplate.objects.create(course_key=COURSE, template_id="tpl-basic", emission_type="pok")
    assert CertificateTemplate.objects.get(pk=mapping.pk).emission_type == EmissionType.POK


def test_the_admin_form_of_a_new_mapping_starts_with_the_setting(settings):
    settings.POK_DEFAULT_EMISSION_TYPE = "blockchain"
    form = modelform_factory(CertificateTemplate, fields=["emission_type"])()
    assert form["emission_type"].value() == EmissionType.BLOCKCHAIN


@pytest.mark.parametrize(("value", "expected"), [
    ("blockchain", EmissionType.BLOCKCHAIN),
    (" Blockchain ", EmissionType.BLOCKCHAIN),
    ("pok", EmissionType.POK),
    ("gold", EmissionType.POK),
    ("", EmissionType.POK),
    (None, EmissionType.POK),
    (["blockchain"], EmissionType.POK),
])
def test_an_invalid_setting_falls_back_to_the_free_emission(settings, value, expected):
    settings.POK_DEFAULT_EMISSION_TYPE = value
    assert default_emission_type() == expected
    assert CertificateTemplate(course_key=COURSE).emission_type == expected


def test_the_readme_lists_every_setting():
    readme = (Path(__file__).resolve().parent.parent / "README.rst").read_text(encoding="utf-8")
    listed = set(re.findall(r"^``(POK_[A-Z0-9_]+)``", readme, re.MULTILINE))
    assert set(common.DEFAULTS) - listed == set()
