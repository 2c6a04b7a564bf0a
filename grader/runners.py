"""Which runner grades: the sandbox on grading hosts, a plain process only when asked for."""

from __future__ import annotations

from grader.runner import ProcessRunner, Runner


def make_runner(*, sandboxed: bool = True) -> Runner:
    """Return the sandboxed runner, or raise ``PlatformError`` if this host cannot sandbox.

    There is no silent fallback: an unsandboxed runner is only returned when asked for.
    """
    if not sandboxed:
        return ProcessRunner()
    from grader.sandbox import SandboxRunner

    return SandboxRunner.create()
