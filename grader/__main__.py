"""Command line: ``python -m grader evaluate|check MODEL --challenge TASK ...``.

``evaluate`` is what the worker runs, with the same code path; ``check`` is what a student runs
on their own validation data before uploading. Exit status: 0 graded (passed or not), 2 model
rejected, 3 grading host problem.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from grader import formats
from grader.errors import GradingError, PlatformError
from grader.evaluate import Evaluation, evaluate
from grader.kinds import get_kind, kind_names
from grader.limits import MB, Limits
from grader.runners import make_runner


def _progress_bar(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    bar: dict[str, Any] = {}

    def update(done: int, total: int) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, unit="img", desc="predicting", file=sys.stderr)
        bar["bar"].update(done - bar["bar"].n)
        if done >= total:
            bar["bar"].close()

    return update


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return "∞" if value == float("inf") else f"{value:.6g}"
    return str(value)


def _rows(rows: list[tuple[str, str]]) -> list[str]:
    return [f"{name + ':':<18}{value}" for name, value in rows]


def _show(evaluation: Evaluation) -> str:
    """A human-readable report; ``--json`` gives every figure, per-class ones included."""
    kind = get_kind(evaluation.task)
    rows = [
        ("format", formats.FORMATS[evaluation.format]),
        ("parameters", f"{evaluation.params:,}"),
        *(
            (key.replace("_", " "), _figure(value))
            for key, value in evaluation.metrics.items()
            if isinstance(value, int | float | str)
        ),
        ("dataset hash", evaluation.dataset_hash[:16]),
        ("runner", evaluation.runner),
    ]
    lines = _rows(rows)
    verdict = "PASSED" if evaluation.passed else "NOT PASSED"
    lines.append(
        f"{verdict}: {kind.score_key} {_figure(evaluation.score)}, threshold"
        f" {evaluation.threshold:g} ({evaluation.seconds:.1f} s)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("evaluate", "grade a model against a hidden test set in the course format"),
        ("check", "check a model on your own validation data before uploading it"),
    ):
        cmd = sub.add_parser(name, help=help_text)
        cmd.add_argument("model", type=Path)
        cmd.add_argument("--challenge", required=True, choices=kind_names())
        cmd.add_argument("--data", type=Path, required=(name == "evaluate"))
        cmd.add_argument("--threshold", type=float)
        cmd.add_argument(
            "--device",
            default=os.environ.get("GRADER_DEVICE", "cpu"),
            help="cpu or cuda:N (default: $GRADER_DEVICE, else cpu)",
        )
        cmd.add_argument("--batch-size", type=int, default=32)
        cmd.add_argument("--max-params", type=int, default=5_000_000)
        cmd.add_argument("--max-file-mb", type=int)
        cmd.add_argument("--timeout", type=float, default=300.0, help="wall-clock seconds")
        cmd.add_argument(
            "--no-sandbox",
            action="store_true",
            help="run the model in a plain child process (your own machine only)",
        )
        cmd.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    kind = get_kind(args.challenge)
    limits = Limits(
        max_params=args.max_params,
        max_file_bytes=(args.max_file_mb or kind.default_max_file_mb) * MB,
        wall_seconds=args.timeout,
    )
    try:
        runner = make_runner(sandboxed=not args.no_sandbox, own_code=args.no_sandbox)
        if args.no_sandbox and not args.json:
            print("note: running without the sandbox (--no-sandbox)", file=sys.stderr)
        if args.command == "check" and args.data is None:
            return _check_without_data(args, runner, limits)
        result = evaluate(
            args.model,
            args.challenge,
            args.data,
            runner,
            threshold=args.threshold,
            limits=limits,
            device=args.device,
            batch_size=args.batch_size,
            progress=_progress_bar(
                args.command == "check" or (not args.json and sys.stderr.isatty())
            ),
        )
    except GradingError as exc:
        if args.json:
            print(json.dumps(exc.as_dict()))
        else:
            print(f"rejected ({exc.code}): {exc.message}", file=sys.stderr)
            if exc.detail and args.command == "check":
                print(exc.detail, file=sys.stderr)
        return 2
    except PlatformError as exc:
        if args.json:
            print(json.dumps(exc.as_dict()))
        else:
            print(f"grading unavailable ({exc.code}): {exc.message}\n{exc.detail}", file=sys.stderr)
        return 3
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(_show(result))
    return 0


def _check_without_data(args: argparse.Namespace, runner: Any, limits: Limits) -> int:
    """Without data: format, limits and output shape on random inputs of the right shape."""
    import numpy as np

    from grader.formats.upload import prepare_upload
    from grader.runners import Job

    kind = get_kind(args.challenge)
    fmt, model = prepare_upload(
        args.model, allowed_formats=tuple(formats.FORMATS), max_bytes=limits.max_file_bytes
    )
    inputs = np.random.default_rng(0).random((2, *kind.input_shape), dtype=np.float32)
    # No data, so none of the parameters the data decides (classification: the number of
    # classes): the kind checks what it can without them.
    job = Job(args.challenge, fmt, model, args.device, 2, limits)
    prediction = runner.predict(job, inputs, 1 << 26)
    kind.check_predictions(prediction.predictions, 2, {})
    if args.json:
        # No data, so no score: what was checked, in the same keys ``evaluate --json`` uses.
        checked = {"task": args.challenge, "format": fmt, "params": prediction.params}
        print(json.dumps({**checked, "output_shape": "ok", "score": None}))
        return 0
    rows = [
        ("format", formats.FORMATS[fmt]),
        ("parameters", f"{prediction.params:,}"),
        ("output shape", "OK (no --data given, so no score; pass --data DIR for one)"),
    ]
    print("\n".join(_rows(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
