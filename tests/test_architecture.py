"""The dependency rules of docs/architecture.md, checked on the source: no module outside models/ imports a
family's classes (the layers above ask the model protocol instead), the import graph of src/vitkit has no cycle
(imports inside functions count), and `import vitkit` does not load the tools layer."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import vitkit

SRC = Path(vitkit.__file__).parent
# Shared model code that the layers above may use: the protocol's base class and the feature-map wrapper.
# (convert/ too picks its key maps by the `weight_layout` a family declares, not by its class.)
MODEL_HELPERS = {"vitkit.models", "vitkit.models.base", "vitkit.models.features"}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def imports(module: str, source: str, is_package: bool = False) -> list[tuple[str, list[str]]]:
    """(imported module, names) for every import statement of `source` (module level and inside functions),
    relative imports resolved from `module`; `from X import name` where X.name is a module of vitkit gives X.name."""
    package = module if is_package else module.rsplit(".", 1)[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.append((sub, []) if sub in MODULES else (base, [a.name]))
    return out


def concrete_model_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    """The imports of a family module (or of names from one) made by `module`, outside models/."""
    if module.startswith("vitkit.models.") or module == "vitkit.models":
        return []
    return [f"{target} {names}" for target, names in imports(module, source, is_package)
            if target.startswith("vitkit.models.") and target not in MODEL_HELPERS]


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for module, path in MODULES.items():
        targets = imports(module, path.read_text(), path.name == "__init__.py")
        graph[module] = {t for t, _ in targets if t in MODULES and t != module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph as [a, b, ..., a], or None (depth-first search for a back edge)."""
    state, path = {}, []

    def visit(u):
        state[u] = "open"
        path.append(u)
        for v in sorted(graph.get(u, ())):
            if state.get(v) == "open":
                return [*path[path.index(v):], v]
            if v not in state and (cycle := visit(v)):
                return cycle
        path.pop()
        state[u] = "done"
        return None

    for u in sorted(graph):
        if u not in state and (cycle := visit(u)):
            return cycle
    return None


def test_the_checks_catch_what_they_are_for():
    tools = "from ..models.vit import VisionTransformer\nfrom ..models.base import VitkitModel\n" \
            "def f():\n    from ..models import swin\n"
    assert concrete_model_imports("vitkit.tools.x", tools) == ["vitkit.models.vit ['VisionTransformer']",
                                                               "vitkit.models.swin []"]
    assert concrete_model_imports("vitkit.models.deit", "from .vit import VisionTransformer") == []
    assert concrete_model_imports("vitkit.convert.timm", "from ..models.mvit import MViT") == ["vitkit.models.mvit ['MViT']"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "d": {"a", "c"}}) is None
    # in-function imports are edges too: registry.create_model imports checkpoint inside the function
    assert "vitkit.checkpoint" in import_graph()["vitkit.registry"]


def test_no_module_outside_models_imports_a_family_class():
    found = {m: bad for m, p in MODULES.items()
             if (bad := concrete_model_imports(m, p.read_text(), p.name == "__init__.py"))}
    assert not found, f"ask the model (models/base.py protocol) instead of importing its class: {found}"


def test_the_import_graph_has_no_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_import_vitkit_does_not_load_the_tools_layer():
    code = ("import sys, vitkit\n"
            "print(sorted(m for m in sys.modules if m.startswith('vitkit.tools')))\n"
            "vitkit.record_attention, vitkit.export_onnx, vitkit.optimize_for_inference\n"
            "print('vitkit.tools.attention_maps' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[0] == "[]" and out[1] == "True", out  # the public names still resolve, on first use


def test_no_source_file_over_500_lines():
    long = {str(p.relative_to(SRC)): n for p in SRC.rglob("*.py") if (n := len(p.read_text().splitlines())) > 500}
    assert not long, long


def long_functions(source: str, limit: int = 60) -> list[str]:
    """'name (N lines)' for every function or method of `source` longer than `limit` lines (decorators excluded)."""
    return [f"{node.name} ({n} lines)" for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and (n := node.end_lineno - node.lineno + 1) > limit]


def test_the_function_length_check_counts_lines():
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    assert long_functions(f"def f():\n{body}") == ["f (61 lines)"]
    assert long_functions(f"def f():\n{body}", limit=61) == []
    assert long_functions(f"class A:\n    def g(self):\n    {body.replace(chr(10), chr(10) + '    ')}") == ["g (61 lines)"]


@pytest.mark.parametrize("folder", ["cli", "train"])
def test_no_function_over_60_lines(folder):
    found = {str(p.relative_to(SRC)): bad for p in (SRC / folder).rglob("*.py") if (bad := long_functions(p.read_text()))}
    assert not found, f"split these (issue 21: no function over 60 lines in cli/ and train/): {found}"


def test_files_are_replaced_only_through_io_atomic_write():
    # One atomic write (io.atomic_write): no private alias of it is imported, and no module but io.py renames a
    # temporary file onto its destination itself (sharded_state renames a finished checkpoint folder, not a file).
    own_rename = {m for m, p in MODULES.items() if "os.replace(" in p.read_text()} - {"vitkit.io", "vitkit.train.sharded_state"}
    private = {m for m, p in MODULES.items() if "_atomic_write" in p.read_text()}
    assert not own_rename and not private, (own_rename, private)
