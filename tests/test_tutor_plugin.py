"""
The Tutor plugin (``tutor/``, module ``tutorpok``) with the real ``tutor`` command from PyPI, no Docker.

Tutor runs from its own environment, ``.tox/tutor`` (``tox -e tutor``: the pinned tutor of tutor/requirements/tutor.txt
plus the plugin, installed by the fixture below when it is missing; ``POK_TEST_TUTOR`` points at another ``tutor``).
Each test renders a Tutor project in a temporary ``TUTOR_ROOT`` with the plugin enabled and checks what Tutor wrote:
the image install, the settings fragments, which are **executed** against a settings namespace that already holds
another plugin's filter steps, and the ``pok-beat`` service in docker-compose and Kubernetes. An in-place upgrade
from the earlier tutor-contrib-pok (21.x/22.x) starts from a config.yml that holds that plugin's keys. With tutor-mfe
(tutor/requirements/tutor.txt), the MFEs' env.config.jsx gets the learner widgets in their two slots.
"""
import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
from celery import Celery

import openedx_pok
from openedx_pok import tasks

REPO = Path(__file__).resolve().parent.parent
CREATION = "org.openedx.learning.certificate.creation.requested.v1"
RENDER = "org.openedx.learning.certificate.render.started.v1"
ENROLLMENT = "org.openedx.learning.course.enrollment.started.v1"
NEW_CREATE = "openedx_pok.pipeline.RequestPokCredential"
NEW_RENDER = "openedx_pok.pipeline.RenderPokCredential"
API_KEY = "0b7c2a4e-5d1f-4c3b-9a8e-7f6d5c4b3a21"


def plugin_version():
    text = (REPO / "tutor" / "tutorpok" / "__about__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


@pytest.fixture(scope="session")
def tutor_bin():
    """The ``tutor`` command of .tox/tutor, created with ``tox -e tutor`` on first use."""
    configured = os.environ.get("POK_TEST_TUTOR")
    if configured:
        return Path(configured)
    path = REPO / ".tox" / "tutor" / "bin" / "tutor"
    # An environment from before tutor-mfe was a requirement lacks it: tox installs what tutor.txt added.
    if not path.exists() or not list((path.parent.parent / "lib").glob("python*/site-packages/tutormfe")):
        result = subprocess.run([sys.executable, "-m", "tox", "run", "-e", "tutor"], cwd=REPO, capture_output=True,
                                text=True, timeout=900, check=False)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert path.exists(), f"{path} is missing: run `tox -e tutor`"
    return path


class TutorProject:
    """One ``TUTOR_ROOT`` and the tutor command that renders it."""

    def __init__(self, tutor_bin, root):
        self.tutor_bin = tutor_bin
        self.root = root
        self.env = {**os.environ, "TUTOR_ROOT": str(root), "TUTOR_PLUGINS_ROOT": str(root / "plugins")}

    def execute(self, *args):
        """Run ``tutor *args``, which must succeed; the finished process (Tutor prints its notices on stderr)."""
        result = subprocess.run([str(self.tutor_bin), *args], env=self.env, capture_output=True, text=True,
                                timeout=300, check=False)
        assert result.returncode == 0, f"tutor {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def run(self, *args):
        return self.execute(*args).stdout

    def file(self, relative):
        return (self.root / "env" / relative).read_text(encoding="utf-8")

    def yaml_documents(self, relative):
        """The YAML documents of a rendered file, parsed by the PyYAML that Tutor itself uses."""
        python = self.tutor_bin.parent / "python"
        code = "import json, sys, yaml; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))"
        result = subprocess.run([str(python), "-c", code, str(self.root / "env" / relative)], capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        return [document for document in json.loads(result.stdout) if document]


def make_project(tutor_bin, root, *settings):
    project = TutorProject(tutor_bin, root)
    project.run("plugins", "enable", "pok")
    set_options = [option for name_value in settings for option in ("--set", name_value)]
    project.run("config", "save", *set_options)
    return project


@pytest.fixture(scope="module")
def project(tutor_bin, tmp_path_factory):
    """A project with the API key and a default template set, as the plugin's README tells operators to do."""
    return make_project(tutor_bin, tmp_path_factory.mktemp("tutor-root"), f"POK_API_KEY={API_KEY}",
                        "POK_DEFAULT_TEMPLATE_ID=tpl-basic")


def fragment(text, start, end):
    """The lines of ``text`` from the line starting with ``start`` to the line starting with ``end``, inclusive."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith(start))
    last = next(i for i, line in enumerate(lines) if i >= first and line.startswith(end))
    return "\n".join(lines[first:last + 1]) + "\n"


def lms_fragment(project):
    production = project.file("apps/openedx/settings/lms/production.py")
    code = fragment(production, "# openedx-pok: the plugin's pipeline steps", "del _pok_")
    # Tutor's patches come after the LMS (and so the plugins') production settings.
    assert production.index("from lms.envs.production import *") < production.index(code)
    return code


def other_plugin_settings():
    """An LMS settings namespace after the plugins' production phase, another plugin's steps included."""
    return {
        "OPEN_EDX_FILTERS_CONFIG": {
            CREATION: {"pipeline": ["other_plugin.steps.Creation", NEW_CREATE], "fail_silently": False},
            RENDER: {"pipeline": "other_plugin.steps.Render"},
            ENROLLMENT: {"pipeline": ["other_plugin.steps.Enrollment"], "fail_silently": True},
        },
        "CELERYBEAT_SCHEDULE": {"other-task": {"task": "other_plugin.tasks.cleanup", "schedule": 60.0}},
    }


# --- the plugin in Tutor ---------------------------------------------------------------------------------------------

def test_plugin_is_installed_and_enabled(project):
    listing = project.run("plugins", "list")
    assert re.search(rf"^pok\s+.*enabled\s+{re.escape(plugin_version())}$", listing, re.M), listing


def test_plugin_and_package_versions_match(project):
    assert plugin_version() == openedx_pok.__version__
    assert project.run("config", "printvalue", "POK_VERSION").strip() == plugin_version()


def test_config_defaults_and_saved_values(project):
    assert project.run("config", "printvalue", "POK_API_URL").strip() == "https://api.pok.tech"
    assert project.run("config", "printvalue", "POK_API_KEY").strip() == API_KEY
    assert project.run("config", "printvalue", "POK_RECONCILE_INTERVAL").strip() == "300"
    config = (project.root / "config.yml").read_text(encoding="utf-8")
    assert f"POK_API_KEY: {API_KEY}" in config  # the operator's value is saved in config.yml


def test_image_installs_the_plugin(project):
    dockerfile = project.file("build/openedx/Dockerfile")
    line = f"$PIP_COMMAND install 'openedx-pok=={plugin_version()}'"
    assert line in dockerfile
    # In the python stage, after edx-platform's own requirements.
    assert dockerfile.index("requirements/edx/base.txt") < dockerfile.index(line)


# --- settings fragments, executed ------------------------------------------------------------------------------------

def test_lms_fragment_merges_into_the_filters_of_other_plugins(project):
    namespace = other_plugin_settings()
    code = lms_fragment(project)
    exec(compile(code, "lms-production-fragment", "exec"), namespace)
    config = namespace["OPEN_EDX_FILTERS_CONFIG"]
    assert config[CREATION] == {"pipeline": ["other_plugin.steps.Creation", NEW_CREATE], "fail_silently": False}
    assert config[RENDER] == {"pipeline": ["other_plugin.steps.Render", NEW_RENDER], "fail_silently": True}
    assert config[ENROLLMENT] == {"pipeline": ["other_plugin.steps.Enrollment"], "fail_silently": True}

    exec(compile(code, "lms-production-fragment", "exec"), namespace)  # applied twice: no change
    assert namespace["OPEN_EDX_FILTERS_CONFIG"] == config
    assert not [name for name in namespace if name.startswith("_pok")]  # no helper names left in the settings


def test_lms_fragment_on_empty_settings(project):
    namespace = {}
    exec(compile(lms_fragment(project), "lms-production-fragment", "exec"), namespace)
    assert namespace["OPEN_EDX_FILTERS_CONFIG"] == {
        CREATION: {"pipeline": [NEW_CREATE], "fail_silently": True},
        RENDER: {"pipeline": [NEW_RENDER], "fail_silently": True},
        "org.openedx.learning.instructor.dashboard.render.started.v1": {
            "pipeline": ["openedx_pok.course_team.dashboard.AddPokSection"], "fail_silently": True},
        "org.openedx.learning.instructor.dashboard.tabs.requested.v1": {
            "pipeline": ["openedx_pok.course_team.dashboard.AddPokTab"], "fail_silently": True},
    }


def test_reconcile_schedule_reaches_celery_beat_as_the_lms_configures_it(project):
    namespace = other_plugin_settings()
    exec(compile(lms_fragment(project), "lms-production-fragment", "exec"), namespace)
    assert namespace["CELERYBEAT_SCHEDULE"]["other-task"]["task"] == "other_plugin.tasks.cleanup"
    # The LMS's Celery app: Celery("proj").config_from_object("django.conf:settings"), no namespace.
    lms_settings = types.SimpleNamespace(BROKER_URL="redis://redis:6379/0", CELERY_DEFAULT_QUEUE="edx.lms.core.default",
                                         **{k: v for k, v in namespace.items() if k.isupper()})
    app = Celery("proj")
    app.config_from_object(lms_settings)
    entry = app.conf.beat_schedule["openedx-pok-reconcile"]
    assert entry == {"task": "openedx_pok.tasks.reconcile_credentials", "schedule": 300.0}
    assert entry["task"] == tasks.reconcile_credentials_task.name  # the plugin's real task
    assert "other-task" in app.conf.beat_schedule
    # A Celery app configured with namespace="CELERY" finds it too.
    namespaced = Celery("proj")
    namespaced.config_from_object(lms_settings, namespace="CELERY")
    assert namespaced.conf.beat_schedule["openedx-pok-reconcile"] == entry


@pytest.mark.parametrize("service", ["lms", "cms"])
def test_common_fragment_sets_the_configured_values_only(project, service):
    production = project.file(f"apps/openedx/settings/{service}/production.py")
    code = fragment(production, f"# openedx-pok {plugin_version()} (tutor-contrib-pok)", "POK_DEFAULT_TEMPLATE_ID")
    namespace = {"POK_DEFAULT_PAGE_ID": "page-from-yaml"}
    exec(compile(code, "common-fragment", "exec"), namespace)
    assert namespace["POK_API_URL"] == "https://api.pok.tech"
    assert namespace["POK_API_KEY"] == API_KEY
    assert namespace["POK_DEFAULT_TEMPLATE_ID"] == "tpl-basic"
    assert namespace["POK_DEFAULT_PAGE_ID"] == "page-from-yaml"  # empty in Tutor: not set, the LMS value stays
    assert "POK_DEFAULT_PAGE_ID" not in production


# --- the reconcile job -----------------------------------------------------------------------------------------------

def compose_services(project, relative):
    (document,) = project.yaml_documents(relative)
    return document["services"]


def test_local_beat_service_runs_celery_beat_next_to_the_lms_worker(project):
    services = compose_services(project, "local/docker-compose.prod.yml")
    beat, worker = services["pok-beat"], services["lms-worker"]
    assert beat["command"][:3] == ["celery", "--app=lms.celery", "beat"]
    assert "--pidfile=" in beat["command"]  # a restarted container must not find a stale pid file
    schedule = next(arg for arg in beat["command"] if arg.startswith("--schedule="))
    assert schedule.startswith("--schedule=/openedx/data/")  # the LMS data volume, writable by the app user
    assert beat["image"] == worker["image"]
    assert beat["environment"] == worker["environment"]
    assert set(beat["volumes"]) <= set(worker["volumes"])  # same settings, config and data as the worker
    assert any(volume.endswith(":/openedx/edx-platform/lms/envs/tutor:roz") for volume in beat["volumes"])
    assert beat["depends_on"] == ["lms"]
    assert "pok-beat" not in compose_services(project, "local/docker-compose.yml")
    assert "pok-beat" not in compose_services(project, "dev/docker-compose.yml")  # tutor dev runs no worker


def test_kubernetes_beat_deployment(project):
    deployments = {doc["metadata"]["name"]: doc for doc in project.yaml_documents("k8s/deployments.yml")}
    beat = deployments["pok-beat"]
    assert beat["kind"] == "Deployment" and beat["spec"]["replicas"] == 1
    (container,) = beat["spec"]["template"]["spec"]["containers"]
    (worker,) = deployments["lms-worker"]["spec"]["template"]["spec"]["containers"]
    assert container["args"][:3] == ["celery", "--app=lms.celery", "beat"]
    assert container["image"] == worker["image"]
    assert container["env"] == worker["env"]
    assert container["volumeMounts"] == worker["volumeMounts"]


def test_run_beat_false_drops_the_service_but_keeps_the_schedule(tutor_bin, tmp_path):
    project = make_project(tutor_bin, tmp_path / "root", "POK_RUN_BEAT=false", "POK_RECONCILE_INTERVAL=120")
    assert "pok-beat" not in compose_services(project, "local/docker-compose.prod.yml")
    assert "pok-beat" not in {doc["metadata"]["name"] for doc in project.yaml_documents("k8s/deployments.yml")}
    namespace = {}
    exec(compile(lms_fragment(project), "lms-production-fragment", "exec"), namespace)
    assert namespace["CELERYBEAT_SCHEDULE"]["openedx-pok-reconcile"]["schedule"] == 120.0


def test_disabling_the_plugin_removes_everything(tutor_bin, tmp_path):
    project = make_project(tutor_bin, tmp_path / "root", f"POK_API_KEY={API_KEY}")
    project.run("plugins", "disable", "pok")
    project.run("config", "save")
    assert "openedx_pok" not in project.file("apps/openedx/settings/lms/production.py")
    assert "openedx-pok" not in project.file("build/openedx/Dockerfile")
    assert "pok-beat" not in compose_services(project, "local/docker-compose.prod.yml")
    env_config = project.root / "env" / "plugins/mfe/build/mfe/env.config.jsx"  # Tutor enables tutor-mfe by default
    assert env_config.exists() and "PokWidgets" not in env_config.read_text(encoding="utf-8")


# --- the learner widgets in the MFEs (tutor-mfe) ---------------------------------------------------------------------

ENV_CONFIG = "plugins/mfe/build/mfe/env.config.jsx"
PROGRESS_SLOT = "org.openedx.frontend.learning.progress_certificate_status.v1"
SIDEBAR_SLOT = "org.openedx.frontend.learner_dashboard.widget_sidebar.v1"
WIDGETS_SOURCE = REPO / "tutor" / "tutorpok" / "mfe" / "pok_widgets.js"


def mfe_project(tutor_bin, root, *settings):
    """A project with tutor-mfe and the plugin enabled, its environment rendered (``settings``: ``--set`` values)."""
    project = TutorProject(tutor_bin, root)
    project.run("plugins", "enable", "mfe", "pok")
    project.run("config", "save", *[option for name_value in settings for option in ("--set", name_value)])
    return project


def slot_plugins(env_config):
    """{(MFE or "all", slot): [plugin configuration, ...]} of the ``addPlugins(config, slot, [...])`` calls."""
    found, app = {}, "all"
    for line in env_config.splitlines():
        block = re.search(r"if \(process\.env\.APP_ID == '([^']+)'\)", line)
        if block:
            app = block.group(1)
        call = re.search(r"addPlugins\(config, '([^']+)', \[(.*)\]\);$", line.strip())
        if call:
            found.setdefault((app, call.group(1)), []).append(call.group(2))
    return found


@pytest.fixture(scope="module")
def mfe(tutor_bin, tmp_path_factory):
    return mfe_project(tutor_bin, tmp_path_factory.mktemp("tutor-root"))


def test_mfe_widgets_are_inserted_beside_the_slots_default_content(mfe):
    env_config = mfe.file(ENV_CONFIG)
    plugins = slot_plugins(env_config)
    assert plugins[("learning", PROGRESS_SLOT)] == [
        "{ op: PLUGIN_OPERATIONS.Insert, widget: { id: 'pok_credential_status', type: DIRECT_PLUGIN, priority: 60, "
        "RenderWidget: PokWidgets.CredentialStatus } }"]
    assert plugins[("learner-dashboard", SIDEBAR_SLOT)] == [
        "{ op: PLUGIN_OPERATIONS.Insert, widget: { id: 'pok_my_credentials', type: DIRECT_PLUGIN, priority: 60, "
        "RenderWidget: PokWidgets.MyCredentials } }"]
    # Only where they belong, and the slots' own content stays: nothing hidden, replaced or modified.
    assert [key for key, configs in plugins.items() if any("PokWidgets" in c for c in configs)] == [
        ("learner-dashboard", SIDEBAR_SLOT), ("learning", PROGRESS_SLOT)]
    for operation in ("Hide", "Modify", "Wrap"):
        assert f"PLUGIN_OPERATIONS.{operation}" not in env_config


def test_mfe_widgets_source_is_in_env_config_as_shipped(mfe):
    env_config = mfe.file(ENV_CONFIG)
    source = WIDGETS_SOURCE.read_text(encoding="utf-8")
    imports = [line for line in source.splitlines() if line.startswith("import ")]
    body = "\n".join(line for line in source.splitlines() if not line.startswith(("import ", "//"))).strip()
    assert len(imports) == 3 and body.startswith("const PokWidgets = ")
    # The imports at the top (the buildtime-imports patch), the definitions before setConfig uses them.
    head = env_config[:env_config.index("function addPlugins")]
    assert all(line in head.splitlines() for line in imports)
    assert body in env_config and env_config.index(body) < env_config.index("async function setConfig")
    assert env_config.count("const PokWidgets = ") == 1


def test_mfe_widgets_setting_off_removes_them(tutor_bin, tmp_path):
    project = mfe_project(tutor_bin, tmp_path / "root", "POK_MFE_WIDGETS=false")
    assert project.run("config", "printvalue", "POK_MFE_WIDGETS").strip() == "false"
    env_config = project.file(ENV_CONFIG)
    assert "PokWidgets" not in env_config and "pokGetConfig" not in env_config and "PokReact" not in env_config
    assert not [key for key in slot_plugins(env_config) if key[1] in (PROGRESS_SLOT, SIDEBAR_SLOT)]
    project.run("config", "save", "--set", "POK_MFE_WIDGETS=true")  # and back on
    assert set(slot_plugins(project.file(ENV_CONFIG))) >= {("learning", PROGRESS_SLOT),
                                                          ("learner-dashboard", SIDEBAR_SLOT)}


# --- in-place upgrade from the earlier tutor-contrib-pok (21.x/22.x) ------------------------------------------------

# config.yml as the earlier plugin left it after `tutor config save --set ...` (its docs: API key, default template,
# the openedx-pok version to install).
EARLIER_KEYS = f"POK_API_KEY: {API_KEY}\nPOK_PLUGIN_VERSION: 22.0.0\nPOK_TEMPLATE_ID: tpl-old\n"
NOTICE = "config.yml holds keys of the earlier tutor-contrib-pok (21.x/22.x)"


def upgraded_project(tutor_bin, root, earlier_keys):
    """The earlier plugin's project after ``pip install`` of ours and ``tutor config save`` (in ``project.saved``)."""
    project = TutorProject(tutor_bin, root)
    project.run("plugins", "enable", "pok")
    with (root / "config.yml").open("a", encoding="utf-8") as config:
        config.write(earlier_keys)
    project.saved = project.execute("config", "save")
    return project


@pytest.fixture(scope="module")
def upgraded(tutor_bin, tmp_path_factory):
    return upgraded_project(tutor_bin, tmp_path_factory.mktemp("tutor-root"), EARLIER_KEYS)


def common_settings(project, service):
    """The ``POK_*`` settings of ``service`` that the openedx-common-settings fragment sets, executed."""
    production = project.file(f"apps/openedx/settings/{service}/production.py")
    code = fragment(production, f"# openedx-pok {plugin_version()} (tutor-contrib-pok)", "######## End of settings")
    namespace = {}
    exec(compile(code, "common-fragment", "exec"), namespace)
    return {name: value for name, value in namespace.items() if name.startswith("POK_")}


@pytest.mark.parametrize("service", ["lms", "cms"])
def test_upgrade_carries_the_earlier_default_template_over(upgraded, service):
    assert 'POK_DEFAULT_TEMPLATE_ID = "tpl-old"' in upgraded.file(f"apps/openedx/settings/{service}/production.py")
    assert common_settings(upgraded, service) == {"POK_API_URL": "https://api.pok.tech", "POK_API_KEY": API_KEY,
                                                  "POK_DEFAULT_TEMPLATE_ID": "tpl-old"}


def test_upgrade_a_set_new_default_template_wins(tutor_bin, tmp_path):
    project = upgraded_project(tutor_bin, tmp_path / "root", EARLIER_KEYS + "POK_DEFAULT_TEMPLATE_ID: tpl-new\n")
    for service in ("lms", "cms"):
        assert common_settings(project, service)["POK_DEFAULT_TEMPLATE_ID"] == "tpl-new"
        assert "tpl-old" not in project.file(f"apps/openedx/settings/{service}/production.py")
    assert "POK_TEMPLATE_ID is ignored: POK_DEFAULT_TEMPLATE_ID is set." in project.saved.stderr


def test_fresh_project_sets_no_default_template_and_prints_no_notice(tutor_bin, tmp_path):
    project = TutorProject(tutor_bin, tmp_path / "root")
    project.run("plugins", "enable", "pok")
    saved = project.execute("config", "save")
    for service in ("lms", "cms"):
        assert common_settings(project, service) == {"POK_API_URL": "https://api.pok.tech"}
    assert "POK_DEFAULT_TEMPLATE_ID" not in project.file("apps/openedx/settings/lms/development.py")
    assert NOTICE not in saved.stderr


def test_upgrade_values_are_python_string_literals(tutor_bin, tmp_path):
    # The earlier plugin wrote "{{ POK_TEMPLATE_ID }}": a number stayed a string there, and must here.
    keys = "POK_API_KEY: 12345\nPOK_TEMPLATE_ID: 'tpl \"q\" \\ x \U0001F600'\n"
    project = upgraded_project(tutor_bin, tmp_path / "root", keys)
    settings = common_settings(project, "lms")
    assert settings["POK_DEFAULT_TEMPLATE_ID"] == 'tpl "q" \\ x \U0001F600'
    assert settings["POK_API_KEY"] == "12345"


def test_upgrade_earlier_plugin_version_does_not_change_what_pip_installs(upgraded):
    dockerfile = upgraded.file("build/openedx/Dockerfile")
    assert f"$PIP_COMMAND install 'openedx-pok=={plugin_version()}'" in dockerfile
    assert "22.0.0" not in dockerfile


def test_upgrade_notice_says_what_was_carried_over_and_what_to_rename(upgraded):
    lines = [line.strip() for line in upgraded.saved.stderr.splitlines()]
    assert any(line.endswith(f"tutor-contrib-pok: {NOTICE}.") for line in lines)
    assert "- POK_TEMPLATE_ID=tpl-old is used as POK_DEFAULT_TEMPLATE_ID (mappings without a template)." in lines
    installs = f"openedx-pok=={plugin_version()}"
    assert f"- POK_PLUGIN_VERSION is ignored: the image installs {installs} (POK_PIP_REQUIREMENT)." in lines
    command = ("tutor config save --set POK_DEFAULT_TEMPLATE_ID=tpl-old --unset POK_TEMPLATE_ID "
               "--unset POK_PLUGIN_VERSION")
    assert f"Rename or remove them: {command}" in lines
    assert API_KEY not in upgraded.saved.stderr  # the key is carried over as it is, and never printed


def test_upgrade_the_notice_command_keeps_the_template_and_ends_the_notice(tutor_bin, tmp_path):
    project = upgraded_project(tutor_bin, tmp_path / "root", EARLIER_KEYS)
    saved = project.execute("config", "save", "--set", "POK_DEFAULT_TEMPLATE_ID=tpl-old", "--unset", "POK_TEMPLATE_ID",
                            "--unset", "POK_PLUGIN_VERSION")
    assert NOTICE not in saved.stderr
    assert common_settings(project, "lms")["POK_DEFAULT_TEMPLATE_ID"] == "tpl-old"
    assert "POK_TEMPLATE_ID" not in (project.root / "config.yml").read_text(encoding="utf-8")


def test_upgrade_notice_reports_an_earlier_pok_version(tutor_bin, tmp_path):
    # POK_VERSION is a key of both plugins; ours installs openedx-pok=={{ POK_VERSION }}, so 22.0.0 is the old backend.
    project = upgraded_project(tutor_bin, tmp_path / "root", "POK_VERSION: 22.0.0\n")
    assert "- POK_VERSION=22.0.0 makes the image install the earlier openedx-pok 22.0.0" in project.saved.stderr
    assert "Rename or remove them: tutor config save --unset POK_VERSION" in project.saved.stderr
