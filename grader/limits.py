"""Resource limits for one grading job, filled from a challenge's settings."""

from __future__ import annotations

from dataclasses import dataclass

GB = 1 << 30
MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_params: int = 5_000_000
    max_file_bytes: int = 50 * MB
    #: memory the model's process may use (its address space; under the sandbox, what it
    #: allocates on top of the pre-loaded runtime it was forked from)
    memory_bytes: int = 4 * GB
    #: CPU seconds the model's process may burn (all threads)
    cpu_seconds: int = 600
    #: wall-clock deadline for loading the model and predicting every input
    wall_seconds: float = 300.0
    #: threads the model may use for inference
    threads: int = 1
    #: largest file the model's process may write (its private /tmp; temp files of loaders)
    write_bytes: int = 64 * MB
    #: size of the sandboxed job's private /tmp (memory-backed; an extracted course zip lives
    #: there)
    tmp_bytes: int = 512 * MB
    #: open files per process
    open_files: int = 256
    #: processes and threads of the job's unprivileged user; the kernel counts them per user,
    #: so jobs running at the same time on one host share this budget
    processes: int = 64
