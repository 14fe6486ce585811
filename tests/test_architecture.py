"""The layout's rules, read from the package's own imports with ``ast`` (every import, those inside
functions included): no import cycle, no lower layer importing a higher one, gradio only in ``ui/``,
argparse only in ``cli/``, and no module reaching into another's underscore names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "facedemo"

# Each top-level component of the package and its layer. A module may import its own component, or a
# component of a lower layer; the foundation (layer 0) modules may import each other.
LAYERS = {
    "errors": 0,
    "settings": 0,
    "device": 0,
    "vectors": 0,
    "files": 0,
    "progress": 0,
    # params: the ranges of every numeric input, in the foundation so that the pipeline (thresholds), the
    # gallery (top-k, face index), the CLI and the dashboard all refuse the same values with the same words.
    "params": 0,
    # words: counting things in a sentence ("1 face", "3 people"), for every layer that writes one
    "words": 0,
    # runtime: ONNX Runtime sessions on the CPU, for the detector's networks (vision) and the embedders' (models)
    "runtime": 0,
    "vision": 1,
    "models": 2,
    "pipeline": 3,
    # rules: the identification decision rules, one class each, read by evaluation, gallery, explorer and bench
    "rules": 3,
    "evaluation": 4,
    "gallery": 5,
    "training": 6,
    "explorer": 7,
    "bench": 8,
    "services": 9,
    "ui": 10,
    "cli": 10,
}
# The public API (lazy re-exports) and `python -m facedemo` sit above every layer.
ABOVE_ALL = {"facedemo", "facedemo.__main__"}
ONLY_IN = {"gradio": "ui", "argparse": "cli"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


KNOWN = modules()


def resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative levels resolved)."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: str, path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, the names taken from it, line) for every import in the file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = resolve(module, path, node)
            names = [alias.name for alias in node.names]
            submodules = [f"{target}.{n}" for n in names if f"{target}.{n}" in KNOWN]
            if submodules:  # `from . import adapter`: the edge goes to the submodule itself
                found += [(s, [], node.lineno) for s in submodules]
                names = [n for n in names if f"{target}.{n}" not in KNOWN]
                if not names:
                    continue
            found.append((target, names, node.lineno))
    return found


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {m: set() for m in KNOWN}
    for module, path in KNOWN.items():
        for target, _, _ in imports_of(module, path):
            if target in KNOWN and target != module:
                edges[module].add(target)
    return edges


def component(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_module_has_a_layer():
    missing = sorted({component(m) for m in KNOWN if m not in ABOVE_ALL and component(m) not in LAYERS})
    assert not missing, f"new top-level parts of facedemo need a layer in LAYERS: {missing}"


def test_no_import_cycle():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for module, targets in graph().items():
        if module in ABOVE_ALL:
            continue
        mine = component(module)
        for target in targets:
            theirs = component(target)
            if theirs is None or theirs == mine:
                continue
            low, high = LAYERS[theirs], LAYERS[mine]
            if low > high or (low == high and high != 0):
                wrong.append(f"{module} (layer {high}) imports {target} (layer {low})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("library", sorted(ONLY_IN))
def test_libraries_confined_to_their_package(library):
    wrong = [
        f"{module}:{line} imports {target}"
        for module, path in KNOWN.items()
        for target, _, line in imports_of(module, path)
        if target.split(".")[0] == library and component(module) != ONLY_IN[library]
    ]
    assert not wrong, f"only facedemo/{ONLY_IN[library]}/ may import {library}:\n" + "\n".join(wrong)


def private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def test_no_module_reaches_into_underscore_names():
    """``from x import _y``, ``module._y`` and ``obj._y`` (other than ``self._y``) are all reaches into
    something another module keeps private."""
    wrong = []
    for module, path in KNOWN.items():
        for target, names, line in imports_of(module, path):
            if target.startswith("facedemo"):
                wrong += [f"{module}:{line} imports {target}.{n}" for n in names if private(n)]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and private(node.attr):
                owner = node.value.id if isinstance(node.value, ast.Name) else None
                if owner not in ("self", "cls"):
                    wrong.append(f"{module}:{node.lineno} reads {ast.unparse(node)}")
    assert not wrong, "\n".join(wrong)


def test_the_rules_catch_what_they_guard(tmp_path):
    """The checkers themselves, on a made-up graph: a cycle is found, and an upward import is one."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    source = tmp_path / "facedemo" / "vision" / "x.py"
    source.parent.mkdir(parents=True)
    source.write_text("from ..gallery.store import _thing\nfrom . import detect\n")
    node = ast.parse(source.read_text()).body[0]
    assert resolve("facedemo.vision.x", source, node) == "facedemo.gallery.store"
    assert LAYERS[component("facedemo.gallery.store")] > LAYERS[component("facedemo.vision.x")]
    assert private("_thing") and not private("__version__")


# -- the gallery seam ---------------------------------------------------------------------------------------
WRITES = {
    "enroll",
    "enroll_faces",
    "import_path",
    "import_archive",
    "import_folder",
    "rename",
    "delete",
    "reindex",
    "refresh_centroids",
    "clear",
    "backfill",
    "write_vectors",
    "fill_in",
    "person_for",
    "prepare",
}


def test_the_read_only_gallery_has_no_write_methods():
    """Public mode hands visitors the shared gallery as a GalleryView: writing it is not refused, it is impossible."""
    from facedemo.gallery import Gallery, GalleryView

    assert not WRITES & set(dir(GalleryView))
    assert WRITES <= set(dir(Gallery))  # the writer has every one of them, so the list above is not stale


def test_the_store_protocol_lists_every_method_the_code_calls_on_a_store():
    """Every ``<x>.store.<name>`` (and ``store.<name>``) used anywhere in the package is declared by ``FaceStore``."""
    from facedemo.gallery.store import ChromaStore, FaceStore

    declared = {n for n in vars(FaceStore) if not n.startswith("_")} | set(getattr(FaceStore, "__annotations__", {}))
    used = set()
    for path in KNOWN.values():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and not node.attr.startswith("_"):
                owner = node.value
                if (isinstance(owner, ast.Attribute) and owner.attr == "store") or (
                    isinstance(owner, ast.Name) and owner.id == "store"
                ):
                    used.add(node.attr)
    implemented = {n for n in dir(ChromaStore) if not n.startswith("_")} | {
        "lock",
        "namespace",
        "classifiers",
        "state",
        "thumbs_dir",
        "client",
        "persist_dir",
    }
    assert used - implemented == set()  # every attribute used exists on the store
    concrete_only = {"client", "persist_dir", "thumbs_dir"}  # the Chroma store's own, used by its tests and compaction
    assert used - declared - concrete_only == set(), sorted(used - declared - concrete_only)


# The store's parts: each concern of the Chroma store in its own module, all of them below the gallery's use
# of the store (core, identify, enroll reach them through ``FaceStore``; they never reach back).
STORE_PARTS = (
    "store",
    "chroma",
    "layout",
    "records",
    "registry",
    "embeddings",
    "facefiles",
    "erasure",
    "recovery",
    "legacy",
    "visitors",
)
ABOVE_THE_STORE = {f"facedemo.gallery.{m}" for m in ("core", "identify", "enroll")} | {"facedemo.gallery"}


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in edges[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_store_parts_sit_below_the_gallery_that_uses_them():
    """Every part of the store, and everything it imports in turn, stays at or below the gallery layer and
    never reaches the gallery's own modules (core, identify, enroll, or the package that re-exports them)."""
    edges = graph()
    parts = [f"facedemo.gallery.{p}" for p in STORE_PARTS]
    assert all(p in KNOWN for p in parts), sorted(set(parts) - set(KNOWN))
    wrong = []
    for part in parts:
        for target in sorted(reachable(edges, part)):
            theirs = component(target)
            if target in ABOVE_THE_STORE or (theirs is not None and LAYERS[theirs] > LAYERS["gallery"]):
                wrong.append(f"{part} reaches {target}")
    assert not wrong, "\n".join(wrong)
    # the rule can fail: the gallery's core reaches the store, so the store reaching core would be a cycle
    assert "facedemo.gallery.store" in reachable(edges, "facedemo.gallery.core")


# What the dashboard may take from below the use cases: names and words (choices, their descriptions, a
# file's hash), never behaviour. Everything a tab does goes through ``services`` (the façade and its use
# cases) and ``explorer`` (the figures).
UI_VOCABULARY = {
    "facedemo.gallery.cluster": {"CLUSTER_METHODS", "DEFAULT_CLUSTER_METHOD"},
    "facedemo.vision.images": {"image_sha"},
    "facedemo.evaluation.pairs": {"describe_pairs"},
    "facedemo.training": {"LOSSES"},
    "facedemo.vision.degrade": {"CONDITIONS", "SEVERITIES"},
    "facedemo.gallery.identify": {"size_note"},
    "facedemo.rules": {"DEFAULT_METHOD", "described", "methods", "distance_methods"},
}


def test_the_ui_imports_only_the_use_cases_the_figures_and_words():
    allowed = {"services", "explorer", "ui"} | {c for c, layer in LAYERS.items() if layer == 0}
    wrong = []
    for module, path in KNOWN.items():
        if component(module) != "ui":
            continue
        for target, names, line in imports_of(module, path):
            if not target.startswith("facedemo.") or component(target) in allowed:
                continue
            extra = set(names) - UI_VOCABULARY.get(target, set())
            if extra or not names:
                wrong.append(f"{path.name}:{line} takes {sorted(extra) or target} from {target}")
    assert not wrong, "\n".join(wrong)


def test_the_ui_never_runs_the_pipeline_itself():
    """A tab hands the request's pipeline to a use case; it calls none of its methods (the façade's
    ``pipeline_for`` and ``request`` are where a request's pipeline and galleries come from)."""

    def through_pipeline(node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id == "pipeline"
        if isinstance(node, ast.Attribute):
            return node.attr == "pipeline" or through_pipeline(node.value)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            return node.func.attr == "pipeline_for"
        return False

    wrong = []
    for module, path in KNOWN.items():
        if component(module) != "ui":
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and through_pipeline(node.func.value)
            ):
                wrong.append(f"{path.name}:{node.lineno} calls {ast.unparse(node.func)}")
    assert not wrong, "\n".join(wrong)
