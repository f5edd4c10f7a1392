"""The package's layers (README, *Design*): each module imports only its own layer and the ones below, and no
modules import each other in a cycle. Read from the source with `ast`, so an import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "rancherlab"

# Lowest first. A module belongs to the first layer with a prefix that names it or a package above it.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("protocol", ("rancherlab.protocol", "rancherlab.errors", "rancherlab._version")),
    ("values", ("rancherlab.scope", "rancherlab.credentials", "rancherlab.redaction")),
    (
        "I/O",
        (
            "rancherlab._handshake",
            "rancherlab._loop",
            "rancherlab._spool",
            "rancherlab._wsserver",
            "rancherlab.stream",
            "rancherlab.rest",
            "rancherlab.recording",
            "rancherlab.replay",
            "rancherlab.replayserver",
            "rancherlab.simulator",
            "rancherlab.source",
            "rancherlab.har",
            "rancherlab.clientcheck",
        ),
    ),
    ("analysis", ("rancherlab.analysis",)),
    ("faces", ("rancherlab.capture", "rancherlab.explorer", "rancherlab.cli", "rancherlab.__main__", "rancherlab")),
)


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _layer(module: str) -> int:
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix != "rancherlab" and module.startswith(prefix + ".")):
                return index
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and to the README's design section)")


def _imports(module: str) -> list[tuple[str, bool]]:
    """(imported rancherlab module, at module level) for each import statement of `module`."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    out = []
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        out += [(t, id(node) in top) for t in targets if t in MODULES and t != module]
    return out


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        _layer(module)


def test_no_module_imports_a_layer_above_its_own() -> None:
    wrong = [
        f"{module} ({LAYERS[_layer(module)][0]}) imports {target} ({LAYERS[_layer(target)][0]})"
        for module in MODULES
        for target, _ in _imports(module)
        if _layer(target) > _layer(module)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles() -> None:
    # Module-level imports only: an import inside a function runs after every module is loaded.
    graph = {m: {t for t, top in _imports(m) if top} for m in MODULES}
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_checks_see_real_imports() -> None:
    # Guards the parser itself: known edges must be found, or every other test here would pass vacuously.
    assert ("rancherlab.protocol.frames", True) in _imports("rancherlab.recording")
    assert ("rancherlab.protocol.frames", False) in _imports("rancherlab.protocol.event")
    assert ("rancherlab.recording", True) in _imports("rancherlab.analysis._load")
