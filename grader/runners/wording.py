"""The student's message for an error frame from the model process, worded in the trusted parent.

The model runs inside the process that sends the frame, and that process holds the hidden test
inputs, so every string in the frame may carry test data: a message built from pixels, an
exception class made at run time with the data in its name, a loader error quoting whatever the
model's own code put there. The student's message is therefore built here, by construction, from

* the frame's ``code``, looked up in a fixed table (an unknown code reads as a raised exception);
* facts the parent knows itself: the job's limits, the image count, the expected output shape;
* counts from the frame's ``facts`` only where the table says so, clamped to ``[0, images]``
  (at most ``2 * log2(images)`` bits per upload, the same order as the score itself);
* the class name of a raised exception only if it is on ``BUILTIN_EXCEPTIONS``.

Everything else the frame carries (``message``, ``detail``, the exception's name) and the
model's stderr go to ``GradingError.detail``, the staff-only log. Loader errors lose their quote
of the upload for the same reason: a course zip runs student code while loading, with the
inputs already in the process.
"""

from __future__ import annotations

from typing import Any

from grader.errors import GradingError
from grader.i18n import gettext_noop
from grader.kinds import get_kind, nonfinite_message
from grader.runners import Job

#: built-in exception classes whose name a student may see; a name built at run time never is
BUILTIN_EXCEPTIONS = frozenset(
    {
        "ArithmeticError",
        "AssertionError",
        "AttributeError",
        "FileNotFoundError",
        "ImportError",
        "IndexError",
        "KeyError",
        "LookupError",
        "ModuleNotFoundError",
        "NameError",
        "NotImplementedError",
        "OSError",
        "OverflowError",
        "PermissionError",
        "RecursionError",
        "RuntimeError",
        "TypeError",
        "UnboundLocalError",
        "ValueError",
        "ZeroDivisionError",
    }
)

#: appended to a message whose cause only the student's own run of the grader shows
HOW_TO_DEBUG = gettext_noop(
    "%(problem)s; run the grader's check command on your own machine to see the details"
)


def _debug(problem: str) -> str:
    return HOW_TO_DEBUG % {"problem": problem}


#: fixed wordings for codes the model process may report; none of them quotes the frame
FIXED: dict[str, str] = {
    "invalid_model": _debug(gettext_noop("the grader could not load this model file")),
    "output_type": gettext_noop("your model returned something other than a single tensor"),
    "output_dtype": gettext_noop(
        "your model returned values that are not numbers; the challenge needs floating-point"
        " numbers"
    ),
    "course_model_file": _debug(
        gettext_noop(
            "the zip's model file under models/ could not be used (exactly one *.model, *.p,"
            " *.pt or *.pth file holding a torch.nn.Module, or the course's state_dict and"
            " hparams)"
        )
    ),
    "course_model_class": _debug(
        gettext_noop(
            "the zip's exercise_code does not define the model class the challenge rebuilds"
        )
    ),
    "missing_module": _debug(
        gettext_noop("your code imports a module the course environment does not provide")
    ),
    "onnx_external_data": gettext_noop(
        "your ONNX model keeps tensors in an external file; save it as one file"
        " (onnx.save(model, path, save_as_external_data=False))"
    ),
    "model_inputs": gettext_noop("the ONNX model must take exactly one input (the image batch)"),
    "exported_in_training_mode": gettext_noop(
        "your .pt2 was exported in training mode; call model.eval() before torch.export.export"
    ),
    "bad_predictions": gettext_noop("the grader could not read your model's predictions"),
    "archive_entries": gettext_noop("the archive has too many entries"),
    "archive_path": gettext_noop("the archive holds an entry with an unsafe path"),
    "archive_symlink": gettext_noop("the archive holds a symbolic link"),
    "archive_duplicate": gettext_noop("the archive holds an entry more than once"),
    "archive_bomb": gettext_noop("an archive entry expands too much; that looks like a zip bomb"),
    "archive_too_large": gettext_noop("the archive expands to more than the grader accepts"),
    "unknown_format": gettext_noop("this is not a model file the grader recognises"),
}
for _code in ("pt2_layout", "pt2_pickle", "pt2_constant", "pt2_member", "pt2_expression"):
    FIXED[_code] = _debug(
        gettext_noop(
            "your .pt2 holds something the grader does not accept; re-export the model with"
            " torch.export.save"
        )
    )


def _count(facts: Any, key: str, count: int) -> int:
    value = facts.get(key, 0) if isinstance(facts, dict) else 0
    return min(max(value, 0), count) if isinstance(value, int) else 0


def student_error(code: str, header: dict[str, Any], job: Job, count: int) -> GradingError:
    """The student's ``GradingError`` for an error frame with ``code``; ``detail`` left empty."""
    if code in FIXED:
        return GradingError(code, FIXED[code])
    if code == "too_many_parameters":
        return GradingError(
            code,
            gettext_noop(
                "your model has too many parameters; this challenge allows fewer than %(max)s"
            )
            % {"max": f"{job.limits.max_params:,}"},
        )
    if code == "output_shape":
        described = get_kind(job.kind).describe_output(job.params)
        return GradingError(
            code,
            gettext_noop(
                "your model's output does not have the shape the challenge needs:"
                " %(described)s, with N the number of images in the batch"
            )
            % {"described": described},
        )
    if code == "output_not_finite":
        facts = header.get("facts")
        n_nan, n_inf = _count(facts, "nan", count), _count(facts, "inf", count)
        if n_nan or n_inf:
            return GradingError(code, nonfinite_message(n_nan, n_inf, count))
        return GradingError(
            code, gettext_noop("your model returned values that are not finite numbers")
        )
    name = header.get("exception")
    if name in BUILTIN_EXCEPTIONS:
        raised = gettext_noop("your model raised %(exception)s") % {"exception": name}
        return GradingError("model_error", _debug(raised))
    return GradingError("model_error", _debug(gettext_noop("your model raised an exception")))


def staff_detail(header: dict[str, Any], log: str) -> str:
    """Everything the frame said, for the staff log: it may quote test inputs."""
    parts = [
        f"model process reported {str(header.get('code', ''))[:100]!r}",
        str(header.get("message", "")),
        str(header.get("detail", "")),
        log,
    ]
    return "\n".join(filter(None, parts))
