"""Which runner grades: the sandbox on grading hosts, a plain process only when asked for."""

from __future__ import annotations

from grader.runner import ProcessRunner, Runner


def make_runner(*, sandboxed: bool = True, own_code: bool = False, uid: int = 65534) -> Runner:
    """Return the sandboxed runner, or raise ``PlatformError`` if this host cannot sandbox.

    There is no silent fallback: an unsandboxed runner is only returned when asked for.
    ``own_code`` (a student checking their own files on their own machine) also lets that
    runner execute the course zip's Python code.
    """
    if not sandboxed:
        return ProcessRunner(allow_course_zip=own_code)
    from grader.sandbox import SandboxRunner

    return SandboxRunner.create(uid=uid)
