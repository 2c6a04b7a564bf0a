"""The layout's rules, read from the source: a one-way dependency graph between the top-level
packages that is exactly the README's table, and nothing outside a kind's own modules that
names a kind.

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

#: the README's table of packages, whose last column lists what each one imports
README = ROOT / "README.md"
_TABLE_ROW = re.compile(r"^\| `(?P<package>[a-z_]+)/` \|.*\| (?P<imports>[^|]*) \|$")


def declared_edges(text: str | None = None) -> dict[str, set[str]]:
    """package -> the packages it imports, as the README's Architecture table says."""
    text = README.read_text() if text is None else text
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str]] = {}
    for line in section.splitlines():
        if match := _TABLE_ROW.match(line.strip()):
            # A reason may follow a name in parentheses: only the names outside count.
            listed = re.sub(r"\([^)]*\)", "", match["imports"])
            names = set(re.findall(r"`([a-z_]+)`", listed))
            table[match["package"]] = names
    return table


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


def test_the_readme_table_lists_every_package() -> None:
    assert sorted(declared_edges()) == sorted(PACKAGES)


def test_the_readme_table_is_read_as_written() -> None:
    text = """## Architecture
| package | what | imports |
|---|---|---|
| `alpha/` | No Django. Uses `beta` in prose. | — |
| `beta/` | Things. | `alpha` (its `readers`), `gamma` |
## Next
| `gamma/` | not in the section | `alpha` |
"""
    assert declared_edges(text) == {"alpha": set(), "beta": {"alpha", "gamma"}}


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_imports_exactly_what_the_readme_says(package: str) -> None:
    """Direct imports only, both ways: an import the table lacks, and an edge the table keeps
    after the code dropped it, both fail (an edge implied through a third package does not
    count)."""
    found = edges()[package]
    declared = declared_edges().get(package, set())

    undeclared = {other: where for other, where in found.items() if other not in declared}
    stale = declared - set(found)

    assert not undeclared, f"{package} imports {undeclared}, not in the README's table"
    assert not stale, f"the README's table says {package} imports {sorted(stale)}; it does not"


def test_the_declared_graph_has_no_cycle() -> None:
    graph = {
        package: dict.fromkeys(others, "README") for package, others in declared_edges().items()
    }

    assert not find_cycle(graph)


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

#: where a kind may be named: its own modules (and the migrations that record history), and
#: the one module that says which kind the benchmarks measure
KIND_HOMES = [
    re.compile(r"^(grader|leaderboard)/kinds/"),
    re.compile(r"^eval_data/kinds/"),
    re.compile(r"^leaderboard/templates/leaderboard/kinds/"),
    re.compile(r"/migrations/"),
    re.compile(r"^benchmarks/subject\.py$"),
]
#: scanned for kind names besides the packages
SCANNED = [*PACKAGES, "benchmarks"]


def kind_names() -> list[str]:
    from grader.kinds import kind_names as names

    return names()


def kind_own_figures() -> set[str]:
    """Metric keys that one kind alone has (keypoints' "mse"): naming one is knowing the kind.
    Keys several kinds share ("score", "accuracy") are the platform's words."""
    from grader.kinds import get_kind

    owners: dict[str, set[str]] = {}
    for name in kind_names():
        kind = get_kind(name)
        keys = {figure.key for figure in kind.figures} | set(kind.ranked_options) | {kind.score_key}
        for key in keys:
            owners.setdefault(key, set()).add(name)
    # "score" is the platform's own word (``Submission.score``), whichever figure ranks.
    return {key for key, kinds in owners.items() if len(kinds) == 1} - {"score"}


def outside_kind_homes(pattern: str) -> Iterator[Path]:
    for package in SCANNED:
        for path in sorted((ROOT / package).rglob(pattern)):
            relative = path.relative_to(ROOT).as_posix()
            if not any(home.search(relative) for home in KIND_HOMES):
                yield path


def test_no_code_outside_a_kind_names_it() -> None:
    """Neither a kind's name nor a figure only that kind has ("mse" as an API key, a
    formatting style or a chart's note), in the packages and the benchmarks alike."""
    names = set(kind_names()) | kind_own_figures()
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


# --- the suite's own rules --------------------------------------------------------------------


def test_a_postgres_test_outside_the_second_pass_is_an_error() -> None:
    """``make test`` runs ``postgres`` tests only in its PostgreSQL pass, over two folders: one
    elsewhere would never run, so the collection refuses it (``tests/conftest.py``)."""
    from dataclasses import dataclass

    from tests.conftest import postgres_tests_outside_the_second_pass

    @dataclass
    class Collected:
        nodeid: str
        path: Path
        postgres: bool

        def get_closest_marker(self, name: str) -> object | None:
            return object() if self.postgres and name == "postgres" else None

    items = [
        Collected("a", ROOT / "tests/platform/test_a.py", True),
        Collected("b", ROOT / "tests/integration/test_b.py", True),
        Collected("c", ROOT / "tests/grader/test_c.py", True),
        Collected("d", ROOT / "tests/grader/test_d.py", False),
    ]

    assert postgres_tests_outside_the_second_pass(items, ROOT) == ["c"]  # type: ignore[arg-type]
