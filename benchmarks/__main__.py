"""Run every benchmark: ``python -m benchmarks [--quick]`` (``make bench``)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "benchmarks.bench_grader",
    "benchmarks.bench_sandbox",
    "benchmarks.bench_leaderboard",
    "benchmarks.bench_threads",
    "benchmarks.bench_faults",
]


def main() -> int:
    args = sys.argv[1:]
    for name in BENCHMARKS:
        print(f"\n=== {name} ===", flush=True)
        module = importlib.import_module(name)
        code = module.main(args)
        if code:
            return int(code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
