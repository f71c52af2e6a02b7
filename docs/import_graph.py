"""
Print the import graph of the ``openedx_pok`` package: for each module, the plugin modules it imports.

    python docs/import_graph.py            # module -> imported plugin modules, one line each
    python docs/import_graph.py --dot      # the same as a Graphviz digraph
    python docs/import_graph.py --root /tmp/old/openedx_pok   # another checkout, e.g. from `git archive`

Standard library only (it reads the source with ``ast``, it imports nothing), so it runs anywhere, before and after a
change, and ``tests/test_architecture.py`` checks the layers with the same function.
"""
import argparse
import ast
import pathlib
import sys

PACKAGE = "openedx_pok"
ROOT = pathlib.Path(__file__).resolve().parent.parent / PACKAGE


def module_name(path, root=None):
    """``openedx_pok/client/http.py`` -> ``client``; ``openedx_pok/api.py`` -> ``api``: the room a file belongs to."""
    parts = path.relative_to(root or ROOT).with_suffix("").parts
    if parts[0] == "management":
        return "management"
    return parts[0]


def plugin_imports(path, root=None):
    """The plugin rooms a source file imports (absolute and relative imports alike)."""
    root = root or ROOT
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package_parts = (PACKAGE, *path.relative_to(root).parent.parts)
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package_parts[: len(package_parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names = [module] + [f"{module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == PACKAGE and len(parts) > 1 and (
                    (root / parts[1]).with_suffix(".py").exists() or (root / parts[1]).is_dir()):
                found.add("management" if parts[1] == "management" else parts[1])
    return found


def import_graph(root=None):
    """{room: set of rooms it imports}, self-imports left out, for every source file of the package."""
    root = pathlib.Path(root) if root else ROOT
    graph = {}
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts:
            continue
        room = module_name(path, root)
        graph.setdefault(room, set()).update(plugin_imports(path, root) - {room})
    return graph


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--dot", action="store_true", help="print a Graphviz digraph")
    parser.add_argument("--root", help="the openedx_pok folder to read (default: this checkout's)")
    args = parser.parse_args(argv)
    graph = import_graph(args.root)
    if args.dot:
        print("digraph openedx_pok {")
        for room, targets in sorted(graph.items()):
            for target in sorted(targets):
                print(f'  "{room}" -> "{target}";')
        print("}")
    else:
        width = max(len(room) for room in graph)
        for room, targets in sorted(graph.items()):
            print(f"{room:<{width}} -> {', '.join(sorted(targets)) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
