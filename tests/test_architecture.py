"""The house's map holds: monitor's modules import each other without cycles (counting the
imports made inside functions, which hide a cycle from Python's start-up but not from a
reader), and data flows one way — the pure decision core and the leaf types import nothing
of the pipeline, the store knows no stage after it. Read from the source with `ast`, so a
new module is checked the day it is written."""

from __future__ import annotations

import ast
import functools
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO
from tests.sources import parse_python

PACKAGE = REPO / "monitor"


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement, inside functions too, but not those only type checkers run."""
    for node in ast.iter_child_nodes(tree):
        if _type_checking_only(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _imports(node)


def _imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The monitor modules `name` imports (a `from package import module` counts as the
    module; a name from a package's `__init__` counts as the package)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _imports(parse_python(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        for target in targets:
            target = _lazy_home(target)
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(f"{target}."):
                found.add(target)  # a module importing its own package's __init__ is no cycle
    return found


def _lazy_home(target: str) -> str:
    """The module a package's name comes from when the package imports it on first use
    (PEP 562, as monitor.store does through its `_HOME`): `monitor.store.Store` is
    `monitor.store.core`, which the package's source never imports where `ast` sees it."""
    package, _, name = target.rpartition(".")
    home = getattr(sys.modules.get(package) or _package(package), "_HOME", {}).get(name)
    return f"{package}.{home}" if home else target


def _package(name: str) -> object:
    """The monitor package `name`, imported (light: PEP 562), or None for anything else."""
    if not name.startswith("monitor") or not (PACKAGE.parent / name.replace(".", "/")).is_dir():
        return None
    return importlib.import_module(name)


@functools.cache  # read once per test process
def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imported(name, path, known) for name, path in known.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _reaches(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for child in graph[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def test_the_modules_import_each_other_without_a_cycle() -> None:
    graph = _graph()
    assert len(graph) > 100 and "monitor.check" in graph["monitor.scheduler"] | _reaches(
        graph, "monitor.scheduler"
    )
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function() -> None:
    # The same reading of the source, on a made-up pair that imports each other lazily.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    tree = ast.parse("def f():\n    from monitor import check\n")
    assert [ast.unparse(node) for node in _imports(tree)] == ["from monitor import check"]


def test_data_flows_one_way_the_core_and_the_leaves_import_no_stage() -> None:
    graph = _graph()
    # The pure decision core and the leaf types (README's Architecture names them): no I/O,
    # no stage, no store.
    leaves = ("monitor.fetched", "monitor.statement", "monitor.store.records", "monitor.clock")
    for leaf in ("monitor.decide", *leaves):
        stages = {m for m in _reaches(graph, leaf) - _TYPED_VALUES if _within(m, _STAGES)}
        assert stages == set(), f"{leaf} reaches {sorted(stages)}"
    # The store is written by the checks and read by the UI; it knows neither.
    assert _after_store(graph) == {}


def _after_store(graph: dict[str, set[str]]) -> dict[str, list[str]]:
    """What each module of the store reaches of the stages after it (its package's own
    source imports none of them: they are imported on first use)."""
    found = {}
    for module in graph:
        if _within(module, ("monitor.store",)):
            after = sorted(m for m in _reaches(graph, module) if _within(m, _AFTER_STORE))
            if after:
                found[module] = after
    return found


def test_the_one_way_rule_sees_through_the_store_package() -> None:
    # A name the store's package imports on first use is the module it comes from; a store
    # module's imports count, not only the package's.
    assert _lazy_home("monitor.store.Store") == "monitor.store.core"
    assert _lazy_home("monitor.store.StoreError") == "monitor.store.records"
    assert _lazy_home("monitor.store.archive") == "monitor.store.archive"
    graph = {**_graph(), "monitor.store.archive": {"monitor.check"}}
    found = _after_store(graph)
    assert "monitor.check" in set(found["monitor.store.archive"]) & set(found["monitor.store.core"])


def _within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == name or module.startswith(f"{name}.") for name in packages)


# The store's typed records (records.py imports nothing of the store; the package's
# __init__ imports its modules on first use, PEP 562): values any stage may hold.
_TYPED_VALUES = {"monitor.store", "monitor.store.records"}
# Modules that do I/O or run a stage of the pipeline.
_STAGES = (
    "monitor.scheduler",
    "monitor.check",
    "monitor.fetch",
    "monitor.transports",
    "monitor.store",
    "monitor.alerts",
    "monitor.channels",
    "monitor.web",
    "monitor.cli",
)
# What comes after the store in the data's flow, or sits beside it as a user of it.
_AFTER_STORE = (
    "monitor.scheduler",
    "monitor.check",
    "monitor.alerts",
    "monitor.channels",
    "monitor.web",
    "monitor.cli",
    "monitor.wiring",
)


class _FormatsATracebackWhenCollected:
    """Garbage only the cyclic collector frees, whose finalizer formats a traceback (as
    asyncio's "Future exception was never retrieved" does)."""

    def __init__(self) -> None:
        self.itself = self

    def __del__(self) -> None:
        import traceback

        try:
            _ = 1 / 0
        except ZeroDivisionError as err:
            traceback.format_exception(err)


def test_the_sources_are_read_whatever_a_collection_meanwhile_does() -> None:
    """A test before this one may leave such garbage behind; collected during a parse of a
    module, it made the parse fail on Python 3.11 (see tests/sources.py)."""
    import gc

    source = (REPO / "monitor" / "alerts.py").read_text(encoding="utf-8")
    threshold = gc.get_threshold()
    gc.set_threshold(1)  # a collection at nearly every allocation: during the parse
    try:
        for _ in range(20):
            for _ in range(50):
                _FormatsATracebackWhenCollected()
            assert parse_python(source).body
    finally:
        gc.set_threshold(*threshold)
        gc.collect()
