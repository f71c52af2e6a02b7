"""
The layers of the plugin, checked on its source (docs/decisions/0005-layers-and-names.rst).

Rooms are the top-level modules and the subpackages of ``openedx_pok``. Entry points never reach the POK client, a
Celery task or platform code themselves; services never import the entry points or ``api``; the state machine never
enqueues; ``client`` knows HTTP and the POK API only; only ``compat`` imports the platform's modules. A new import
that breaks a layer fails here with the room and the import named. ``python docs/import_graph.py`` prints the graph.
"""
import ast
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "openedx_pok"
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "docs" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_graph)

#: What the LMS, Django or Celery calls: they read their input and call ``api`` and the services.
ENTRY_POINTS = {"pipeline", "filters", "receivers", "views", "urls", "admin", "management", "checks", "apps",
                "log_filters", "course_team", "learner_api"}
#: The work: a credential's life, course setup, the certificate page's parts, the legacy import.
SERVICES = {"issuance", "course_setup", "pages", "legacy"}
#: Below everything: data, errors, small shared helpers, the platform door, the settings phases.
FOUNDATIONS = {"models", "exceptions", "keys", "keyset", "caching", "compat", "lms_tables", "compiled_reads",
               "settings", "__init__"}
ROOMS = ENTRY_POINTS | SERVICES | FOUNDATIONS | {"api", "tasks", "client"}
# Platform modules only compat may import (lazily), so the plugin imports cleanly outside the LMS.
PLATFORM = ("lms", "openedx", "common", "cms", "xmodule", "organizations", "eventtracking")


def graph():
    return import_graph.import_graph()


def test_every_room_is_known():
    rooms = set(graph())
    assert rooms <= ROOMS, f"new plugin modules need a place in the layers: {sorted(rooms - ROOMS)}"


@pytest.mark.parametrize("room", sorted(ENTRY_POINTS))
def test_entry_points_never_reach_pok_celery_or_the_platform_themselves(room):
    imported = graph().get(room, set())
    assert not imported & {"client", "tasks", "compat", "lms_tables"}, f"{room} imports {sorted(imported)}"


@pytest.mark.parametrize("room", sorted(SERVICES | {"tasks"} | FOUNDATIONS - {"__init__"}))
def test_nothing_below_imports_upward(room):
    imported = graph().get(room, set())
    assert not imported & (ENTRY_POINTS | {"api"}), f"{room} imports {sorted(imported & (ENTRY_POINTS | {'api'}))}"


@pytest.mark.parametrize("room", sorted(FOUNDATIONS - {"__init__"}))
def test_foundations_stay_below_the_services(room):
    # The models take their status choices and history causes from issuance's states and history, nothing else.
    allowed = {"issuance"} if room == "models" else set()
    imported = graph().get(room, set())
    assert imported & (SERVICES | {"tasks", "client"}) <= allowed, f"{room} imports {sorted(imported)}"


def test_client_knows_http_and_the_pok_api_only():
    assert graph()["client"] <= {"exceptions"}


@pytest.mark.parametrize("module", ["machine", "reconcile", "backfill", "states", "answers", "outage"])
def test_the_state_machine_never_enqueues(module):
    """"Try again later" is RetryLater and the work to do is returned: only tasks, api and staff actions enqueue."""
    assert "tasks" not in import_graph.plugin_imports(PACKAGE / "issuance" / f"{module}.py")


def test_only_compat_imports_platform_code():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "compat.py" or "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            offenders += [f"{path.relative_to(ROOT)}: {name}" for name in names if name.split(".")[0] in PLATFORM]
    assert offenders == []


def test_the_graph_detects_a_forbidden_import(tmp_path):
    """The checker itself: a view that imports tasks directly is seen (so the tests above can fail)."""
    package = tmp_path / "openedx_pok"
    (package / "issuance").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text("")
    (package / "issuance" / "__init__.py").write_text("")
    (package / "issuance" / "machine.py").write_text("from openedx_pok import tasks\n")
    (package / "views.py").write_text("from openedx_pok import tasks\nfrom . import tasks as again\n")
    found = import_graph.import_graph(package)
    assert found["views"] == {"tasks"} and found["issuance"] == {"tasks"}


def test_no_module_of_the_plugin_is_a_monolith():
    """A module past ~450 lines does more than one job; split it by job, not by line count."""
    sizes = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
             for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}
    assert {path: lines for path, lines in sizes.items() if lines > 450} == {}
