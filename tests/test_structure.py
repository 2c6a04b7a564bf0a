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
    "lti",
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


# --- every state change in the state machine -------------------------------------------------

#: where a submission's status and a run's outcome may change
STATE_HOME = "submissions/lifecycle.py"
#: modules that write rows in a finished state without any transition, and why
STATE_EXEMPT = {
    "submissions/demo.py": "seed_demo writes invented history (graded uploads whose runs say"
    " 'seeded'): nothing changes state",
}
#: field -> (its model, the related-manager name that reaches it, states a new row may take)
STATE_FIELDS = {
    "status": ("Submission", "submissions", {"QUEUED"}),
    "outcome": ("GradingRun", "runs", {"QUEUED", "RUNNING"}),
}


def state_modules() -> Iterator[Path]:
    """Every module that can reach the models (``submissions`` and whoever may import it)."""
    declared = declared_edges()

    def reaches(package: str, target: str) -> bool:
        return target in declared[package] or any(reaches(o, target) for o in declared[package])

    for package in PACKAGES:
        if package != "submissions" and not reaches(package, "submissions"):
            continue  # cannot import the models: an ``outcome`` there is something else
        for path in python_files(package):
            relative = path.relative_to(ROOT).as_posix()
            if "/migrations/" in relative or relative == STATE_HOME or relative in STATE_EXEMPT:
                continue
            yield path


def _chain(node: ast.expr) -> list[str]:
    """The names along ``A.b.c(...).d``: ["A", "b", "c", "d"]."""
    names: list[str] = []
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            names.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Name):
            names.append(node.id)
            return names[::-1]
        else:
            return names[::-1]


def _other_model(field: str, value: ast.expr | None, receiver: list[str] | None = None) -> bool:
    """True when the write is plainly on another model that has a field of that name: the
    value is another model's choice (``RegradeBatch.Status.PUBLISHED``), or the query starts
    at another model (``RegradeBatch.objects``)."""
    model, related, _initial = STATE_FIELDS[field]
    if value is not None:
        names = _chain(value)
        if len(names) == 3 and names[0][:1].isupper() and names[0] != model:
            return True
    if receiver:
        if related in receiver or receiver[0] == model:
            return False
        return receiver[0][:1].isupper() and "objects" in receiver
    return False


def _initial_state(field: str, value: ast.expr) -> bool:
    """``GradingRun.Outcome.QUEUED``: a new row in a state it may be born in."""
    model, _related, initial = STATE_FIELDS[field]
    names = _chain(value)
    return len(names) == 3 and names[0] == model and names[2] in initial


def _assigned(node: ast.AST) -> Iterator[tuple[ast.expr, ast.expr | None]]:
    """(target, value) of an assignment, tuples paired element by element."""
    if isinstance(node, ast.Assign):
        for target in node.targets:
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                yield from zip(target.elts, node.value.elts, strict=False)
            elif isinstance(target, ast.Tuple):
                yield from ((elt, None) for elt in target.elts)
            else:
                yield target, node.value
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        yield node.target, node.value


def state_writes(source: str) -> Iterator[tuple[int, str]]:
    """(line, what) of every write of a submission's status or a run's outcome in ``source``."""
    for node in ast.walk(ast.parse(source)):
        for target, value in _assigned(node):
            if (
                isinstance(target, ast.Attribute)
                and target.attr in STATE_FIELDS
                and not _other_model(target.attr, value)
            ):
                yield node.lineno, f"assigns .{target.attr}"
        if not isinstance(node, ast.Call):
            continue
        func, names = node.func, _chain(node.func)
        method = names[-1] if names else ""
        receiver = names[:-1]
        fields = [kw for kw in node.keywords if kw.arg in STATE_FIELDS]
        if method == "update" and isinstance(func, ast.Attribute):
            for kw in fields:
                assert kw.arg is not None
                if not _other_model(kw.arg, kw.value, receiver):
                    yield node.lineno, f"update({kw.arg}=...)"
            reaches = any(
                receiver[:1] == [model] or related in receiver
                for model, related, _ in STATE_FIELDS.values()
            )
            if reaches and any(kw.arg is None for kw in node.keywords):
                yield node.lineno, "update(**...) on a submission or a run: may write its state"
        elif method == "setattr" and len(node.args) >= 2:
            name = node.args[1]
            if not isinstance(name, ast.Constant) or name.value in STATE_FIELDS:
                yield node.lineno, "setattr(...) of a field that may be the state"
        elif method in ("bulk_update", "save", "get_or_create", "update_or_create"):
            for kw in node.keywords:
                listed = {
                    elt.value
                    for elt in getattr(kw.value, "elts", []) + getattr(kw.value, "keys", [])
                    if isinstance(elt, ast.Constant)
                }
                if kw.arg in ("update_fields", "defaults", "create_defaults") and (
                    listed & set(STATE_FIELDS)
                ):
                    yield node.lineno, f"{method}({kw.arg}=...) names the state"
            if method == "bulk_update" and len(node.args) >= 2:
                listed = {
                    e.value
                    for e in getattr(node.args[1], "elts", [])
                    if isinstance(e, ast.Constant)
                }
                if listed & set(STATE_FIELDS):
                    yield node.lineno, "bulk_update(...) of the state"
        else:
            # Creating a row: a constructor (``GradingRun(...)``) or ``.create(...)``.
            creates = method == "create" or method in {m for m, _, _ in STATE_FIELDS.values()}
            for kw in fields if creates else []:
                assert kw.arg is not None
                if not _initial_state(kw.arg, kw.value) and not _other_model(
                    kw.arg, kw.value, receiver if method == "create" else [method]
                ):
                    yield node.lineno, f"creates a row with {kw.arg}=... (not its first state)"


def test_it_finds_every_kind_of_state_write() -> None:
    """The check itself: each write below is found, the lines after ``# fine`` are not."""
    source = """
run.outcome = GradingRun.Outcome.GRADED
submission.status, submission.error = Submission.Status.FAILED, "no"
GradingRun.objects.filter(pk=1).update(outcome=outcome, log=note)
Submission.objects.filter(pk=1).update(status=Submission.Status.QUEUED)
submission.runs.filter(outcome="running").update(outcome="lost")
Submission.objects.filter(pk=1).update(**fields)
GradingRun.objects.create(submission=s, outcome=GradingRun.Outcome.LOST)
Submission(id=1, status=Submission.Status.GRADED)
setattr(submission, "status", value)
run.save(update_fields=["outcome", "log"])
# fine
GradingRun.objects.create(submission=s, attempt=1)
GradingRun(submission_id=1, outcome=GradingRun.Outcome.QUEUED)
RegradeBatch.objects.filter(pk=1).update(status=RegradeBatch.Status.PUBLISHED)
batch.status, batch.note = RegradeBatch.Status.CANCELLED, note
Submission.objects.filter(pk=1).update(pictures=stored)
GradingRun.objects.filter(pk=1).update(log=log)
WorkerHeartbeat.objects.filter(name=name).update(**fields)
lifecycle.publish(pk, {"status": Submission.Status.GRADED})
"""
    found = sorted({line for line, _what in state_writes(source)})
    fine = source.splitlines().index("# fine") + 1

    assert found == list(range(2, fine))


def test_every_state_change_is_a_transition_in_the_lifecycle() -> None:
    """A submission's status and a run's outcome change only in ``submissions/lifecycle.py``,
    each change one conditional update that names the state it leaves: anywhere else, a write
    that does not check the state can undo one that did (a late worker overwriting "lost").

    Creating a row is not a transition, so it may be written elsewhere in the state a row is
    born in (an upload ``queued``, a run ``running`` or ``queued``), never in a later one.
    Migrations, tests and benchmarks build data and are not read, nor are the packages that
    cannot import the models (a sandbox job in ``grader`` has an ``outcome`` of its own);
    ``STATE_EXEMPT`` says why each module it lists may write rows born finished. A write whose
    model the code does not show (``queryset.update(status=...)``, ``setattr`` with a computed
    name) is reported too: name the model in the code, or move the write into the lifecycle.
    A ``RegradeBatch`` has a status of its own: a batch is not in this machine, and its changes
    stay with the batch (``submissions/regrade/batches.py``: conditional updates, or the update
    of a row locked in the state it leaves).
    """
    found = [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in state_modules()
        for line, what in state_writes(path.read_text())
    ]

    assert not found


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


# --- who owns which URLs ------------------------------------------------------------------------


def routes(patterns: list[object], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(full route, the URLconf module that declares it) of every pattern below ``patterns``."""
    from django.urls import URLPattern, URLResolver

    for entry in patterns:
        if isinstance(entry, URLResolver):
            name = getattr(entry.urlconf_name, "__name__", str(entry.urlconf_name))
            for route, module in routes(entry.url_patterns, prefix + str(entry.pattern)):
                yield route, module if module != "?" else name
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), "?"


def test_accounts_own_every_page_under_accounts() -> None:
    from django.urls import get_resolver

    resolver = get_resolver()
    owners = {
        route: module if module != "?" else str(resolver.urlconf_name)
        for route, module in routes(resolver.url_patterns)
    }
    elsewhere = {
        r: m for r, m in owners.items() if r.startswith("accounts/") and m != "accounts.urls"
    }

    assert "accounts/profile/" in owners
    assert not elsewhere
