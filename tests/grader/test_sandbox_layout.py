"""What the zygote's bubblewrap command binds, for a checkout that lives under /tmp.

CI clones the repo into a fresh folder, which may be under /tmp; the sandbox mounts its own
/tmp, so such a runtime must be bound elsewhere or the zygote cannot even start Python.
"""

from __future__ import annotations

from grader.sandbox.bwrap import RELOCATED, Layout, command, inside


def binds(args: list[str]) -> dict[str, str]:
    return {args[i + 2]: args[i + 1] for i, arg in enumerate(args) if arg == "--ro-bind"}


def test_it_binds_a_runtime_under_tmp_where_the_sandbox_tmp_cannot_hide_it() -> None:
    layout = Layout(
        python="/tmp/clone/.venv/bin/python",
        runtime=("/tmp/clone/.venv", "/root/.pyenv/versions/3.11.7"),
        repo="/tmp/clone",
        packages=("/tmp/clone/grader", "/tmp/clone/eval_data"),
    )

    args = command("/usr/bin/bwrap", layout, 3)

    mounted = binds(args)
    assert mounted[f"{RELOCATED}/tmp/clone/.venv"] == "/tmp/clone/.venv"
    assert mounted[f"{RELOCATED}/tmp/clone/grader"] == "/tmp/clone/grader"
    assert mounted["/root/.pyenv/versions/3.11.7"] == "/root/.pyenv/versions/3.11.7"
    assert not any(target.startswith("/tmp/") for target in mounted)
    assert args[args.index("--") + 1] == f"{RELOCATED}/tmp/clone/.venv/bin/python"
    assert f"PYTHONPATH={RELOCATED}/tmp/clone" in [
        f"{args[i + 1]}={args[i + 2]}" for i, a in enumerate(args) if a == "--setenv"
    ]


def test_it_keeps_other_paths_where_they_are() -> None:
    assert inside("/work/main/.venv") == "/work/main/.venv"
    assert inside("/tmpfoo") == "/tmpfoo"
    assert inside("/tmp") == f"{RELOCATED}/tmp"
