"""Every family file reads the same way (DESIGN.md, issue 9): config dataclass -> special blocks -> model ->
`validate_config` -> builder helper -> registered builders; and models depend only on layers/ and the registry's
decorator and `build_config` (and the shared models/base.py, models/features.py), never on convert/, checkpoint.py or train/."""

import ast
from pathlib import Path

import pytest

import vitkit

MODELS = Path(vitkit.__file__).parent / "models"
# Image families; vivit.py and timesformer.py join this list once their own anatomy pass is merged.
FAMILIES = ["cnn", "cvt", "mvit", "swin", "timesformer", "vit", "vivit"]


def _tree(family: str) -> ast.Module:
    return ast.parse((MODELS / f"{family}.py").read_text())


def _is_builder(node: ast.stmt) -> bool:
    return isinstance(node, ast.FunctionDef) and any(
        isinstance(d, ast.Name) and d.id == "register_model" for d in node.decorator_list)


@pytest.mark.parametrize("family", [*FAMILIES, "deit", "base"])
def test_models_import_only_public_layers_errors_and_the_registry_decorator(family):
    for node in ast.walk(_tree(family)):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            module = node.module or ""
            assert module.split(".")[0] in ("layers", "errors", "registry", "base", "features", "vit"), (family, module)
            if module.startswith("layers"):
                assert not any(a.name.startswith("_") for a in node.names), (family, "private layer name")
            if module == "registry":
                assert {a.name for a in node.names} <= {"register_model", "build_config"}, (family, module)


@pytest.mark.parametrize("family", FAMILIES)
def test_family_file_order(family):
    body = [n for n in _tree(family).body if isinstance(n, (ast.ClassDef, ast.FunctionDef))]
    names = [n.name for n in body]
    assert body[0].name.endswith("Config"), f"{family}.py starts with {names[0]}, not its config dataclass"
    validate = names.index("validate_config")
    model = body[validate - 1]
    assert isinstance(model, ast.ClassDef), f"validate_config in {family}.py does not follow the model class"
    classes = {n.name: n for n in body if isinstance(n, ast.ClassDef)}

    def calls_validate(cls: ast.ClassDef) -> bool:
        """Its __init__ calls validate_config, or it inherits the __init__ of a class in the file that does."""
        init = next((n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "__init__"), None)
        calls = [c.func.id for c in ast.walk(init) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)] \
            if init is not None else []
        bases = [classes[b.id] for b in cls.bases if isinstance(b, ast.Name) and b.id in classes]
        return "validate_config" in calls or any(calls_validate(b) for b in bases)

    assert calls_validate(model), f"{model.name}.__init__ does not call validate_config"
    helper, builders = body[validate + 1], body[validate + 2:]
    assert isinstance(helper, ast.FunctionDef) and helper.name.startswith("_") and not _is_builder(helper)
    assert builders and all(_is_builder(b) for b in builders), f"{family}.py: only registered builders after {helper.name}"
    assert not any(_is_builder(b) for b in body[:validate]), f"{family}.py registers a builder before its model"
