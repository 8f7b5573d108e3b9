"""The code's layers, read from its imports: data flows one way, and no module imports a later layer or itself
round a cycle. Parsed with ast (nothing is imported), so the test is fast and sees imports inside functions too."""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("data_prep", "pipeline", "atomforge")  # folders; installed as atomforge.data_prep, atomforge.pipeline
# earlier first; a module may import its own layer and any earlier one. Evaluation scores a run's checkpoints
# straight from them (train.consolidate), so it sits below export, as data flows.
LAYERS = [
    ("atomforge.data_prep",),
    ("atomforge.pipeline", "atomforge.pipeline.runtime", "atomforge.pipeline.config_types"),
    ("atomforge.pipeline.data",),
    ("atomforge.pipeline.models",),
    ("atomforge.pipeline.train",),
    ("atomforge.pipeline.evaluate",),
    ("atomforge.pipeline.export",),
    ("atomforge.pipeline.compose",),
    ("atomforge.pipeline.sweep", "atomforge.pipeline.reproduce"),
    ("atomforge.pipeline.demo", "atomforge.pipeline.cli", "atomforge.pipeline.cli_help"),
    ("atomforge",),
]
# upward imports still left, each with its reason; the test fails when one disappears (shrink the list) or appears
KNOWN_UPWARD: set[tuple[str, str]] = set()


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (REPO / pkg).rglob("*.py"):
            parts = f.relative_to(REPO).with_suffix("").parts
            name = ".".join(parts if pkg == "atomforge" else ("atomforge", *parts))
            out[name.removesuffix(".__init__")] = f
    return out


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports (an imported name that is a submodule counts as that module)."""
    edges: dict[str, set[str]] = {}
    for name, f in mods.items():
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = name.split(".")[: len(name.split(".")) - node.level + (f.name == "__init__.py")]
                    base = ".".join(parts + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    edges.setdefault(name, set()).add(t)
    return edges


def layer(name: str) -> int:
    best, length = None, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (name == p or name.startswith(p + ".")) and len(p) > length:
                best, length = i, len(p)
    assert best is not None, f"{name} is in no layer: add it to LAYERS"
    return best


def test_no_module_imports_a_later_layer():
    edges = imports(modules())
    upward = {(m, t) for m, ts in edges.items() for t in ts if layer(t) > layer(m)}
    assert upward == KNOWN_UPWARD, (f"new upward imports: {sorted(upward - KNOWN_UPWARD)}; "
                                    f"gone (remove from KNOWN_UPWARD): {sorted(KNOWN_UPWARD - upward)}")


def test_no_import_cycles():
    edges = imports(modules())
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(modules()):
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_every_error_has_the_one_root():
    from atomforge.data_prep.errors import AtomforgeError

    classes = []
    for name, f in modules().items():
        for node in ast.parse(f.read_text()).body:
            if isinstance(node, ast.ClassDef) and node.name.endswith(("Error", "Locked", "Loss", "Input", "Shard",
                                                                      "Interrupted")):
                classes.append((name, node.name))
    assert len(classes) >= 10
    import importlib

    for mod, cls in classes:
        obj = getattr(importlib.import_module(mod), cls)
        if isinstance(obj, type) and issubclass(obj, BaseException):
            assert issubclass(obj, AtomforgeError), f"{mod}.{cls} does not derive from AtomforgeError"
