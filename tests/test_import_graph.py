"""The project's import graph: no circles, and the four parts' arrows point one way
(shared/DESIGN.md: app -> workflows -> (model, db_schemas)).

Reference: the source itself, every import statement (module level or inside a
function), read with ``ast``; a script's ``if __name__ == "__main__"`` block and an
``if TYPE_CHECKING`` block (annotations) are not imports of the module.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PARTS = {"model": "omni_flows.model", "db_schemas": "omni_flows.db_schemas",
         "workflows": "omni_flows.workflows", "omni_flows": "omni_flows"}
# what each part may import of the project (besides itself)
MAY_IMPORT = {"omni_flows.model": set(), "omni_flows.db_schemas": set(),
              "omni_flows.workflows": {"omni_flows.model", "omni_flows.db_schemas"}}


def modules() -> dict[str, Path]:
    found = {}
    for folder, package in PARTS.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = [p for p in path.relative_to(ROOT / folder).with_suffix("").parts
                     if p != "__init__"]
            found[".".join([package, *parts])] = path
    return found


def _not_run_on_import(node) -> bool:
    """``if __name__ == "__main__":`` (a script's) or ``if TYPE_CHECKING:`` (annotations)."""
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Compare) and isinstance(test.left, ast.Name)
        and test.left.id == "__name__")


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules that ``name`` imports (a name imported from a package counts
    as its submodule when there is one)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    stack = list(ast.parse(path.read_text()).body)
    while stack:
        node = stack.pop()
        if _not_run_on_import(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                found.add(sub if sub in known else module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in known and m != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return out


def _part(module: str) -> str:
    return next(p for p in ("omni_flows.model", "omni_flows.db_schemas", "omni_flows.workflows",
                            "omni_flows") if module == p or module.startswith(p + "."))


def test_the_checker_sees_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circles():
    assert circles(graph()) == []


def test_the_parts_import_one_way():
    wrong = sorted((module, target) for module, targets in graph().items()
                   for target in targets
                   if _part(module) != _part(target) and _part(module) in MAY_IMPORT
                   and _part(target) not in MAY_IMPORT[_part(module)])
    assert wrong == []
