"""Errors raised while grading.

Two families, because they are handled differently everywhere downstream:

* ``GradingError``: the submission is at fault. ``message`` is written for the student and says
  what to change; ``detail`` is for staff only (it may quote the model's stderr, which can echo
  test inputs). The attempt is final: retrying the same file gives the same answer. A
  ``GradingError`` raised inside the model process is never shown as it is: the model runs
  there and could have written it; the trusted parent rewords it from its code and ``facts``
  (``grader.runners.wording``).
* ``PlatformError``: the grading host is at fault (sandbox unavailable, dataset missing, worker
  killed). The student is told nothing beyond "grading will be retried"; the attempt is retried
  and never counts against the student's quota.
"""

from __future__ import annotations

import re


class GraderError(Exception):
    """A coded error with a message for the person who can act on it and a staff-only detail."""

    def __init__(
        self, code: str, message: str, detail: str = "", facts: dict[str, int] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        #: counts the parent may word for the student once it has bounded them
        self.facts = dict(facts or {})

    def as_dict(self) -> dict[str, str]:
        return {"error": self.message, "code": self.code}


class GradingError(GraderError):
    """The submitted model was rejected; ``message`` is safe to show the student."""


class PlatformError(GraderError):
    """The grading host could not do its job; nothing the student did caused it."""


def safe_message(exc: BaseException) -> str:
    """The first line of an exception's message, with numbers that could carry data removed.

    A framework error ("mat1 and mat2 shapes cannot be multiplied (4x10368 and 1296x256)") is
    what a student needs to fix their model; a message built from test inputs must not reach
    them, so decimals are dropped and a message with many numbers keeps only its words.
    """
    lines = str(exc).strip().splitlines()
    text = re.sub(r"-?\d*\.\d+([eE][-+]?\d+)?|-?\d+[eE][-+]?\d+", "…", lines[0] if lines else "")
    if len(re.findall(r"\d+", text)) > 8:
        text = re.sub(r"\d+", "…", text)
    return text[:200] or "(no message)"
