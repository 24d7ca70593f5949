"""tinyface/__init__.py and the package's layering: ``import tinyface`` is lazy, the
graph IR loads no Numba, and no package imports one above it (the import graph,
read from the source, has no cycle between packages).

Each "what does this import load" case is a fresh process (``sys.modules``)."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

import tinyface

PACKAGE = Path(tinyface.__file__).parent
HEAVY = ("numba", "PIL", "onnx", "tinyface.kernels", "tinyface.runtime")


def loaded_by(statement):
    """The heavy modules in ``sys.modules`` after ``statement`` in a fresh process."""
    code = f"import sys; {statement}; print(' '.join(m for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    modules = done.stdout.split()
    return sorted({h for h in HEAVY for m in modules if m == h or m.startswith(h + ".")})


@pytest.mark.parametrize("statement, allowed", [
    ("import tinyface", []),
    ("import tinyface; tinyface.TinyfaceError", []),
    ("import tinyface.errors, tinyface.limits, tinyface.verify", []),
    ("import tinyface.graph.ops, tinyface.graph.passes, tinyface.graph.lower", []),
    ("import tinyface.graph.summary", ["onnx"]),             # reads ONNX files; runs nothing
    ("import tinyface.face.metadata", []),
])
def test_what_an_import_loads(statement, allowed):
    assert loaded_by(statement) == allowed


def test_every_public_name_resolves():
    for name in tinyface.__all__:
        assert getattr(tinyface, name) is not None, name
    assert tinyface.load.__self__ is tinyface.FaceModel
    assert set(tinyface.__all__) <= set(dir(tinyface))
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        tinyface.nothing


def imports_of(path):
    """The tinyface modules ``path`` imports, anywhere in it (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.startswith("tinyface.")}


def package_of(module):
    """``tinyface.graph.ops`` -> ``graph``; a top-level module is its own package."""
    return module.split(".")[1]


def package_graph():
    """{package: packages it imports} over every module of tinyface."""
    modules = {".".join(("tinyface",) + p.relative_to(PACKAGE).with_suffix("").parts): p
               for p in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        source = package_of(name.replace(".__init__", "")) if name != "tinyface.__init__" else "__init__"
        for target in imports_of(path):
            while target not in modules and f"{target}.__init__" not in modules:
                target = target.rsplit(".", 1)[0]          # ``from pkg import function``
            if target != "tinyface" and package_of(target) != source:
                edges.setdefault(source, set()).add(package_of(target))
    return edges


# What each layer may import; anything not listed may import any package.
LAYERS = {
    "errors": set(),
    "limits": {"errors"},
    "paths": set(),
    "graph": {"errors", "limits"},
    "kernels": {"errors", "jit_cache"},
    "runtime": {"errors", "limits", "graph", "kernels", "jit_cache"},
    "verify": set(),
}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_each_layer_imports_only_the_layers_below_it(package):
    assert package_graph().get(package, set()) <= LAYERS[package]


def test_no_cycle_between_packages():
    edges = package_graph()
    edges.pop("__init__", None)                   # the lazy table names every package

    def visit(node, path):
        assert node not in path, " -> ".join(path + [node])
        for nxt in sorted(edges.get(node, ())):
            visit(nxt, path + [node])
    for start in sorted(edges):
        visit(start, [])
