"""The layout's rules, read from the source: a one-way dependency graph between the top-level
packages, and nothing outside a kind's own modules that names a kind.

Every ``import`` counts, at module level or inside a function, ``TYPE_CHECKING`` included: a
lazy import is still a dependency.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = [
    "eval_data",
    "grader",
    "courses",
    "accounts",
    "submissions",
    "leaderboard",
    "worker",
    "config",
]

#: who may import whom (README, "Architecture"); benchmarks and tests may import anything
ALLOWED = {
    "eval_data": set(),
    "grader": {"eval_data"},
    "courses": {"grader", "eval_data"},
    "accounts": {"courses", "grader", "eval_data"},
    "submissions": {"courses", "grader", "eval_data"},
    "leaderboard": {"accounts", "submissions", "courses", "grader", "eval_data"},
    "worker": {"config", "submissions", "courses", "grader", "eval_data"},
    "config": {"leaderboard", "accounts", "submissions", "courses"},
}
#: third-party frameworks the grading libraries never import
FRAMEWORKS = {"django", "celery", "kombu"}


def python_files(package: str) -> Iterator[Path]:
    yield from sorted((ROOT / package).rglob("*.py"))


def imported(path: Path) -> Iterator[tuple[str, int]]:
    """(top-level name, line) of every module ``path`` imports."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0], node.lineno


def edges() -> dict[str, dict[str, str]]:
    """package -> {imported package: "file:line" of the first such import}."""
    graph: dict[str, dict[str, str]] = {package: {} for package in PACKAGES}
    for package in PACKAGES:
        for path in python_files(package):
            for name, line in imported(path):
                if name in PACKAGES and name != package:
                    where = f"{path.relative_to(ROOT)}:{line}"
                    graph[package].setdefault(name, where)
    return graph


def find_cycle(graph: dict[str, dict[str, str]]) -> list[str]:
    """A cycle between packages as [a, b, ..., a], or [] if the graph is acyclic."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return []

    for node in graph:
        if node not in state and (found := visit(node)):
            return found
    return []


def test_it_finds_a_cycle_when_there_is_one() -> None:
    assert find_cycle({"a": {"b": ""}, "b": {"c": ""}, "c": {"a": ""}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": ""}, "b": {}, "c": {"a": ""}}) == []


def test_the_packages_depend_on_each_other_one_way_only() -> None:
    graph = edges()

    cycle = find_cycle(graph)

    assert not cycle, " -> ".join(f"{a} ({graph[a][b]})" for a, b in itertools.pairwise(cycle))


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_only_what_the_layering_allows(package: str) -> None:
    unexpected = {
        other: where for other, where in edges()[package].items() if other not in ALLOWED[package]
    }

    assert not unexpected, f"{package} imports {unexpected}"


@pytest.mark.parametrize("package", ["grader", "eval_data"])
def test_the_grading_libraries_import_no_framework(package: str) -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in python_files(package)
        for name, line in imported(path)
        if name in FRAMEWORKS
    ]

    assert not found


# --- one place per kind -----------------------------------------------------------------------

#: where a kind may be named: its own modules (and the migrations that record history)
KIND_HOMES = [
    re.compile(r"^(grader|leaderboard)/kinds/"),
    re.compile(r"^eval_data/kinds/"),
    re.compile(r"^leaderboard/templates/leaderboard/kinds/"),
    re.compile(r"/migrations/"),
]


def kind_names() -> list[str]:
    from grader.kinds import kind_names as names

    return names()


def outside_kind_homes(pattern: str) -> Iterator[Path]:
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob(pattern)):
            relative = path.relative_to(ROOT).as_posix()
            if not any(home.search(relative) for home in KIND_HOMES):
                yield path


def test_no_code_outside_a_kind_names_it() -> None:
    names = set(kind_names())
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}"
        for path in outside_kind_homes("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and node.value in names
    ]

    assert not found


def test_no_template_outside_a_kind_names_it() -> None:
    quoted = re.compile("|".join(rf"[\"']{re.escape(name)}[\"']" for name in kind_names()))
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in outside_kind_homes("*.html")
        for match in quoted.finditer(path.read_text())
    ]

    assert not found


def test_every_kind_has_its_module_in_each_layer() -> None:
    import eval_data
    from leaderboard.kinds import page_names

    assert kind_names() == eval_data.kind_names() == page_names()
