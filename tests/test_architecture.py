"""
The layers of the plugin, checked on its source (docs/decisions/0005-layers-and-names.rst).

Entry points (pipeline steps, receivers, views, admin, commands) go through ``api`` only; ``api`` reaches the rooms
below it; nothing below imports upward; ``client`` knows HTTP and the POK API only. A new import that breaks a layer
fails here with the room and the import named, before it turns into a tangle. ``python docs/import_graph.py`` prints
the same graph.
"""
import importlib.util
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("import_graph", ROOT / "docs" / "import_graph.py")
import_graph = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(import_graph)

# What each room may import of the plugin. Every module of the package is a room: the test tooling (the POK simulator
# and its fixtures) lives outside it, at the repository root.
ENTRY_POINT = {"api"}
ALLOWED = {
    "__init__": set(),
    "admin": ENTRY_POINT | {"keys", "models", "admin_forms", "admin_credentials"},
    "admin_credentials": ENTRY_POINT | {"keys", "models"},  # the credential admin's filters, history and confirmations
    "admin_forms": ENTRY_POINT | {"models"},  # the course mapping form (pickers, validation on save)
    "pipeline": ENTRY_POINT,
    "receivers": ENTRY_POINT,
    "views": ENTRY_POINT,
    "management": ENTRY_POINT,
    "filters": {"pipeline"},  # the earlier plugin's step paths, kept as aliases of the pipeline steps
    "urls": {"views"},
    "apps": {"log_filters", "checks"},
    # Issue 9, course setup: accounts, the synced catalog of templates and pages, parameter sources, the doctor.
    "checks": {"accounts", "parameters", "payload", "models", "settings", "exceptions"},
    "catalog": {"accounts", "caching", "compat", "configuration", "parameters", "payload", "models", "exceptions"},
    "accounts": {"exceptions"},
    "parameters": set(),
    "log_filters": set(),
    "api": {"keys", "caching", "history", "staff", "tasks", "configuration", "media", "render", "sharing", "states",
            "models", "exceptions", "payload", "legacy", "events", "backfill", "report", "retirement", "accounts",
            "catalog", "parameters"},
    "tasks": {"issuance", "reconcile", "media", "states", "exceptions", "backfill", "catalog", "history"},
    # Issue 10, the credential admin's actions and the history every status change writes.
    "staff": {"caching", "events", "history", "tasks", "states", "models"},
    "history": set(),
    # Issuance at scale: the backfill (scheduling handed in by api / tasks), the CSV report, learner retirement.
    "backfill": {"compat", "configuration", "events", "keys", "lms_tables", "states", "models", "exceptions"},
    "report": {"keyset", "states", "models"},
    "retirement": {"states", "models"},
    "events": {"compat"},
    "reconcile": {"answers", "configuration", "states", "models"},
    "issuance": {"answers", "configuration", "compat", "payload", "states", "models", "exceptions"},
    "answers": {"caching", "events", "media", "states", "models", "exceptions"},
    "caching": set(),
    "media": {"caching", "configuration", "client", "compat", "payload", "states", "models", "exceptions"},
    "legacy": {"keys", "states", "models", "exceptions", "compat"},
    "configuration": {"accounts", "caching", "client", "compat", "models", "exceptions"},
    "render": {"keys"},
    "keys": set(),  # the one course-key parser
    "sharing": {"compat"},
    "payload": {"parameters", "exceptions"},
    "compat": {"lms_tables"},
    "lms_tables": {"keyset"},  # the readings of the LMS's tables both compat backends share
    "keyset": set(),  # the one keyset walk of a large table
    "models": {"states", "history"},
    "states": {"client", "events", "history"},
    "client": {"exceptions"},
    "exceptions": set(),
    "settings": set(),
}


def test_every_room_is_known():
    rooms = set(import_graph.import_graph())
    assert rooms <= set(ALLOWED), f"new plugin modules need a place in the layers: {sorted(rooms - set(ALLOWED))}"


@pytest.mark.parametrize("room", sorted(ALLOWED))
def test_room_imports_only_what_its_layer_allows(room):
    imported = import_graph.import_graph().get(room, set())
    assert imported <= ALLOWED[room], f"{room} imports {sorted(imported - ALLOWED[room])}, outside its layer"


def test_the_graph_detects_a_forbidden_import(tmp_path):
    """The checker itself: a view that imports tasks directly is seen (so the tests above can fail)."""
    package = tmp_path / "openedx_pok"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tasks.py").write_text("")
    (package / "views.py").write_text("from openedx_pok import tasks\nfrom . import tasks as again\n")
    assert import_graph.import_graph(package)["views"] == {"tasks"}


def test_no_module_of_the_plugin_is_a_monolith():
    sizes = {
        str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines())
        for path in (ROOT / "openedx_pok").rglob("*.py")
        if "migrations" not in path.parts
    }
    assert {path: lines for path, lines in sizes.items() if lines > 420} == {}
