"""The package's layout as an import graph: no cycles, and the layers stay apart (the models never import
training, export never imports the training pipeline, the weights never import the models)."""

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "efficientnet_keras"


def _modules() -> dict[str, pathlib.Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _imported(name: str, path: pathlib.Path, local: bool) -> set[str]:
    """The package's modules that ``name`` imports: at module level (with ``local``, inside functions too).
    ``from package import submodule`` is an import of the submodule, not of the package's other names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if local:
        nodes = list(ast.walk(tree))
    else:  # module level, including the bodies of top-level if/try blocks
        nodes, stack = [], list(tree.body)
        while stack:
            node = stack.pop()
            nodes.append(node)
            if isinstance(node, (ast.If, ast.Try)):
                stack += [*node.body, *node.orelse, *getattr(node, "finalbody", []),
                          *(n for h in getattr(node, "handlers", []) for n in h.body)]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                module = ".".join(base[:len(base) - node.level + 1] + ([node.module] if node.module else []))
            else:
                module = node.module
            submodules = {f"{module}.{alias.name}" for alias in node.names} & MODULES.keys()
            found |= submodules
            if len(submodules) < len(node.names):
                found.add(module)
    return found & MODULES.keys()


def _graph(local: bool) -> dict[str, set[str]]:
    return {name: _imported(name, path, local) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _reaches(graph, start: str, targets: tuple[str, ...]) -> list[str]:
    """The modules under ``targets`` that importing ``start`` may import, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for module in graph[todo.pop()] - seen:
            seen.add(module)
            todo.append(module)
    return sorted(m for m in seen if m.startswith(targets))


def test_the_graph_sees_imports_of_every_form():
    graph = _graph(local=True)
    assert "efficientnet_keras.training.config" in graph["efficientnet_keras.training.trainer"]  # from x import y
    assert "efficientnet_keras.training.freeze" in graph["efficientnet_keras.training.trainer"]  # from pkg import mod
    assert "efficientnet_keras.builder" in graph["efficientnet_keras.models"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _reaches({"a": {"b"}, "b": {"c"}, "c": set()}, "a", ("c",)) == ["c"]


def test_no_import_cycle_at_module_level():
    assert _cycles(_graph(local=False)) == []


def test_the_models_never_import_training_or_export():
    graph = _graph(local=True)
    for module in ("efficientnet_keras.models", "efficientnet_keras.builder", "efficientnet_keras.layers",
                   "efficientnet_keras.attention", "efficientnet_keras.block_args"):
        assert _reaches(graph, module, ("efficientnet_keras.training", "efficientnet_keras.export")) == [], module


def test_block_kinds_never_import_the_builder_the_variants_or_the_weights():
    """A block kind is its module and its config: the builder dispatches to it, never the other way round."""
    graph = _graph(local=True)
    blocks = [m for m in graph if m.startswith("efficientnet_keras.blocks")]
    assert {"efficientnet_keras.blocks.mbconv", "efficientnet_keras.blocks.coatnet"} <= set(blocks)
    for module in blocks:
        assert _reaches(graph, module, ("efficientnet_keras.builder", "efficientnet_keras.models",
                                        "efficientnet_keras.weights", "efficientnet_keras.training")) == [], module


def test_export_and_predict_never_import_the_training_pipeline():
    """They read a run's files and, for int8 calibration, a dataset's sources: not augmentation, not the trainer."""
    graph = _graph(local=True)
    pipeline = ("efficientnet_keras.training.data", "efficientnet_keras.training.augment",
                "efficientnet_keras.training.trainer", "efficientnet_keras.training.randaugment")
    for module in ("efficientnet_keras.export", "efficientnet_keras.predict"):
        assert _reaches(graph, module, pipeline) == [], module


def test_training_config_and_evaluation_do_not_import_the_trainer():
    graph = _graph(local=True)
    for module in ("efficientnet_keras.training.config", "efficientnet_keras.training.evaluation"):
        assert "efficientnet_keras.training.trainer" not in graph[module]


def test_no_import_cycle_even_through_function_level_imports():
    assert _cycles(_graph(local=True)) == []


def test_weights_never_import_the_models_even_inside_functions():
    """Converters take a build callable (``weights.load.resolve(build=)``): the zoo imports the weights, never the
    other way round."""
    graph = _graph(local=True)
    for module in (m for m in graph if m.startswith("efficientnet_keras.weights")):
        assert _reaches(graph, module, ("efficientnet_keras.models",)) == [], module


MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def test_no_module_is_over_400_lines():
    long = {name: n for name, path in MODULES.items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}; split them by idea."


def _long_functions_without_a_reason() -> dict[str, int]:
    """Functions over the limit whose ``def`` (up to the line that ends the signature) carries no comment."""
    found = {}
    for name, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = node.end_lineno - node.lineno + 1
                signature = lines[node.lineno - 1:node.body[0].lineno - 1]
                if length > MAX_FUNCTION_LINES and not any("#" in line for line in signature):
                    found[f"{name}.{node.name}"] = length
    return found


def test_no_function_is_over_60_lines_without_a_comment_saying_why():
    long = _long_functions_without_a_reason()
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines with no reason on their def line: {long}"


def test_every_data_file_of_the_package_is_in_package_data():
    """A file the package reads at run time but setup.py does not ship works from the source tree and fails in the
    installed wheel (scripts/wheel_test.sh proves the wheel; this finds the omission in a second)."""
    setup = ast.parse((PACKAGE.parent / "setup.py").read_text(encoding="utf-8"))
    call = next(n for n in ast.walk(setup) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    package_data = ast.literal_eval(next(k.value for k in call.keywords if k.arg == "package_data"))
    patterns = package_data["efficientnet_keras"]
    data = [p.relative_to(PACKAGE) for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert data, "the package holds no data files: this test would check nothing"
    unshipped = [str(p) for p in data if not any(p.match(pattern) for pattern in patterns)]
    assert not unshipped, f"package files not in setup.py's package_data: {unshipped}"
