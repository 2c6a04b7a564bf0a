"""Command line for hidden test sets: synthesise, (re)write and verify manifests, demo models.

    python -m eval_data synth keypoints DIR --count 300 --seed 1
    python -m eval_data manifest DIR --task keypoints
    python -m eval_data verify DIR --task keypoints
    python -m eval_data demo-models OUT_DIR --seed 0

Problems with the data end in one line on stderr and exit code 1, never a traceback: the
operator needs to know which file to fix, not where in this package the check lives.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval_data.dataset import DatasetError
from eval_data.kinds import get_kind, kind_names
from eval_data.manifest import verify_manifest, write_manifest


def _summary(root: Path, manifest: dict[str, Any]) -> str:
    counts = manifest.get("counts", {})
    return (
        f"{manifest['task']} dataset {root}: {counts.get('samples', '?')} samples in"
        f" {counts.get('files', '?')} files, dataset hash {manifest['dataset_hash']}"
    )


def _report(manifest: dict[str, Any]) -> str:
    report = manifest.get("report") or {}
    return ", ".join(f"{key} {value}" for key, value in sorted(report.items()))


def _synth(args: argparse.Namespace) -> None:
    if args.count < 1:
        raise DatasetError("--count must be at least 1")
    start = time.monotonic()
    print(f"synthesising {args.count} {args.task} samples (seed {args.seed}) ...", file=sys.stderr)
    get_kind(args.task).synth(args.dir, args.count, args.seed)
    manifest = write_manifest(args.dir, args.task)
    print(f"{_summary(args.dir, manifest)} ({time.monotonic() - start:.1f} s)")


def _manifest(args: argparse.Namespace) -> None:
    manifest = write_manifest(args.dir, args.task)
    print(_summary(args.dir, manifest))
    if _report(manifest):
        print(f"report: {_report(manifest)}")


def _verify(args: argparse.Namespace) -> None:
    manifest = verify_manifest(args.dir, args.task)
    # Reading it too catches files that match their hashes but no longer parse the same way
    # (a hand-written manifest, or a reader that changed since the manifest was written).
    dataset = get_kind(args.task).read(args.dir, manifest["dataset_hash"])
    recorded = manifest.get("counts", {}).get("samples")
    if recorded is not None and recorded != len(dataset):
        raise DatasetError(
            f"{args.dir} now reads as {len(dataset)} samples but its manifest records {recorded};"
            f" if that is expected run: python -m eval_data manifest {args.dir} --task {args.task}"
        )
    print(f"OK {_summary(args.dir, manifest)}")


def _demo_models(args: argparse.Namespace) -> None:
    # Imported here: torch is slow to import and only this command needs it.
    from eval_data.demo_models import build_demo_models

    start = time.monotonic()
    paths = build_demo_models(args.out_dir, seed=args.seed, progress=True)
    names = ", ".join(sorted(paths))
    print(f"wrote {names} to {args.out_dir} in {time.monotonic() - start:.1f} s")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m eval_data", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    tasks = kind_names()

    synth = commands.add_parser("synth", help="write a deterministic synthetic test set")
    synth.add_argument("task", choices=tasks)
    synth.add_argument("dir", type=Path)
    synth.add_argument("--count", type=int, default=300)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(run=_synth)

    manifest = commands.add_parser("manifest", help="hash a test set and (re)write manifest.json")
    manifest.add_argument("dir", type=Path)
    manifest.add_argument("--task", choices=tasks, required=True)
    manifest.set_defaults(run=_manifest)

    verify = commands.add_parser("verify", help="check a test set against its manifest")
    verify.add_argument("dir", type=Path)
    verify.add_argument("--task", choices=tasks, required=True)
    verify.set_defaults(run=_verify)

    demo = commands.add_parser("demo-models", help="train and export passing and failing models")
    demo.add_argument("out_dir", type=Path)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo_models)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except DatasetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        # Unwritable output folder, full disk: the operator's to fix, and the message says where.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
