"""Recovery from faults and a deadline rush: ``python -m benchmarks.bench_faults [--quick]``.

Runs on two stacks, each in a child process of its own with a fresh temporary folder: the
embedded default (SQLite file + ``filesystem://`` broker) and PostgreSQL + Redis (a private
PostgreSQL 15 cluster and a private ``redis-server``, both on free ports of 127.0.0.1 and
started here, never the machine's shared ones, since they are killed and restarted). Production
timings: heartbeat 5 s, dead after 30 s, sweep every 15 s. Scenarios:

* ``kill -9`` of a worker's process group while it grades the seed-size keypoint model on 300
  images, a second worker started at once (both stacks);
* broker restart with work queued: 10 uploads of the keypoints demo model, Redis killed while
  the first is graded and started again 2 s later without persistence, so every queued message
  is gone (PostgreSQL + Redis);
* database restart mid-grading: ``pg_ctl stop -m fast`` of the private cluster while the seed
  model is graded, started again 5 s later (PostgreSQL + Redis);
* deadline rush: 200 uploads of the keypoints demo model in 60 s from 25 students through the
  JSON API against gunicorn (``deploy/gunicorn.conf.py``, 3 sync workers), graded by two
  workers (both stacks).

Each recovery is measured from the fault until every affected submission is graded, with the
count of graded runs per submission (lost: none, double: more than one). ``--quick`` shrinks
the rush to 40 uploads in 12 s from 5 students and the broker scenario to 4 uploads.

The PostgreSQL + Redis stack needs Debian's ``redis-server`` and PostgreSQL 15 binaries and root
(the cluster runs as the ``postgres`` user through ``runuser``); ``--stacks embedded`` needs
neither.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.fault_stack import ROOT, Stack
from benchmarks.subject import KIND

IMAGES = 300
TIMINGS = {
    "GRADER_HEARTBEAT_SECONDS": "5",
    "GRADER_WORKER_DEAD_SECONDS": "30",
    "GRADER_SWEEP_EVERY_SECONDS": "15",
}
STACKS = ("embedded", "postgres")
GOALS = {"recovery_s": "<= 90 s", "p95_ms": "<= 300 ms", "lost": "0", "double": "0"}


def _demo_model(path: Path) -> bytes:
    """The keypoints demo model (about 375k parameters), trained here in seconds."""
    import torch

    from eval_data.demo_models import _export
    from eval_data.kinds import get_kind

    torch.manual_seed(0)
    models = get_kind(KIND).demo_models(0, False)
    _export(models.passing, models.example, path)
    return path.read_bytes()


def run_stack(name: str, quick: bool, out: Path) -> None:
    """One stack's scenarios, in this process; writes the figures as JSON to ``out``."""
    stack = Stack(name, TIMINGS)
    try:
        os.environ.update(stack.env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from benchmarks import fault_scenarios as s
        from benchmarks.bench_sandbox import export

        bench = s.Bench(stack, IMAGES)
        seed = export(stack.tmp / "seed.pt2")
        demo = _demo_model(stack.tmp / "demo.pt2")
        figures: dict[str, Any] = {}

        def record(key: str, value: Any) -> None:
            figures[key] = value
            print(f"[{name}] {key}: {json.dumps(value)}", flush=True)
            out.write_text(json.dumps(figures))

        def scenario(key: str, run: Callable[[], dict[str, Any]]) -> None:
            # One scenario's failure is reported in its column; the others still run.
            try:
                record(key, run())
            except Exception as exc:
                traceback.print_exc()
                record(key, {"error": f"{type(exc).__name__}: {exc}"})

        scenario("kill -9 worker", lambda: s.kill_worker(bench, seed))
        if name == "postgres":
            queued = 4 if quick else 10
            scenario("broker restart", lambda: s.broker_restart(bench, demo, queued))
            scenario("database restart", lambda: s.database_restart(bench, seed))
        students, uploads, window = (5, 40, 12.0) if quick else (25, 200, 60.0)
        scenario("deadline rush", lambda: s.rush(bench, demo, students, uploads, window))
    finally:
        stack.close()


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "not within limit" if math.isinf(value) else f"{value:.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value)


def print_table(results: dict[str, dict[str, Any]]) -> None:
    scenarios = []
    for figures in results.values():
        scenarios += [k for k in figures if k not in scenarios]
    width = 30
    print(f"\n{'':<{width}}{'goal':<12}" + "".join(f"{s:<28}" for s in results))
    for scenario in scenarios:
        print(f"{scenario}")
        keys: list[str] = []
        for figures in results.values():
            keys += [k for k in figures.get(scenario, {}) if k not in keys]
        for key in keys:
            row = f"  {key:<{width - 2}}{GOALS.get(key, ''):<12}"
            for figures in results.values():
                row += f"{_fmt(figures.get(scenario, {}).get(key, None)):<28}"
            print(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--stack", choices=STACKS, help="run one stack in this process")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--stacks", default=",".join(STACKS), help="which stacks, comma-separated")
    args, _ = parser.parse_known_args(argv)
    if args.stack:
        run_stack(args.stack, args.quick, args.out)
        return 0
    results: dict[str, dict[str, Any]] = {}
    code = 0
    with tempfile.TemporaryDirectory(prefix="bench-faults-") as tmp:
        for name in args.stacks.split(","):
            out = Path(tmp) / f"{name}.json"
            # Each stack in its own process: Django's settings are read once per process.
            command = [sys.executable, "-m", "benchmarks.bench_faults", "--stack", name,
                       "--out", str(out)] + (["--quick"] if args.quick else [])  # fmt: skip
            code = subprocess.run(command, cwd=ROOT, timeout=3600).returncode or code
            results[name] = json.loads(out.read_text()) if out.exists() else {}
    print_table(results)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
