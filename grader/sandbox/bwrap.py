"""The bubblewrap command line that starts the zygote.

What the sandbox sees, and nothing else: ``/usr`` and the ``/lib``-style links for system
libraries, ``/etc/ld.so.cache`` so the dynamic loader finds them, the Python runtime (the venv
and the base interpreter's prefix, found from ``sys`` and resolved through symlinks, since the
interpreter is built outside ``/usr``), the repo's ``grader`` and ``eval_data`` packages,
``/dev`` with the harmless nodes bubblewrap creates, its own ``/proc``, and a small ``/tmp`` of
the zygote's, hidden from every job by the fresh one the job mounts. All the rest read-only, the
root itself too. No user namespace: bwrap runs as root so that jobs can drop to a real unprivileged
uid (see ``zygote``), keeping only the capabilities the zygote needs to build each job.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from grader.runners import clean_env

#: what the zygote keeps: namespaces and mounts per job, the uid switch, dropping the bounding
#: set, and signalling the unprivileged processes of a job
CAPABILITIES = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_SETPCAP", "CAP_KILL")
REPO_PACKAGES = ("grader", "eval_data")
SYSTEM_LINKS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


@dataclass(frozen=True)
class Layout:
    #: the interpreter to start, as the venv names it (keeps ``sys.prefix`` pointing at the venv)
    python: str
    #: folders of the runtime, bound read-only at the same path
    runtime: tuple[str, ...]
    #: the folder put on PYTHONPATH, and the packages bound from it
    repo: str
    packages: tuple[str, ...]


def _outermost(paths: Iterable[str]) -> tuple[str, ...]:
    """Drop paths inside another one of the set, and anything under /usr (bound anyway)."""
    result: list[str] = []
    for path in sorted(set(paths), key=len):
        if path == "/usr" or path.startswith("/usr/"):
            continue
        if not any(path == kept or path.startswith(kept + "/") for kept in result):
            result.append(path)
    return tuple(result)


def current_layout() -> Layout:
    """The runtime of the calling interpreter and the repo this package lives in."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths = set(prefixes) | {os.path.realpath(p) for p in prefixes}
    real_python = os.path.realpath(sys.executable)
    paths.add(os.path.dirname(os.path.dirname(real_python)))
    repo = str(Path(__file__).resolve().parents[2])
    packages = tuple(os.path.join(repo, name) for name in REPO_PACKAGES)
    return Layout(
        python=sys.executable,
        runtime=_outermost(p for p in paths if os.path.isdir(p)),
        repo=repo,
        packages=tuple(p for p in packages if os.path.isdir(p)),
    )


#: where host paths under /tmp are bound: the sandbox's own /tmp (the zygote's, then each job's
#: fresh one) is mounted over /tmp and would hide a runtime or repo that lives there
RELOCATED = "/run/host"


def inside(path: str) -> str:
    """Where the host ``path`` appears in the sandbox."""
    if path == "/tmp" or path.startswith("/tmp/"):
        return RELOCATED + path
    return path


def _parents(paths: Iterable[str]) -> list[str]:
    """Every ancestor folder of ``paths``, outermost first, each once."""
    seen: list[str] = []
    for path in paths:
        parts = Path(path).parts[1:-1]
        for depth in range(1, len(parts) + 1):
            parent = "/" + "/".join(parts[:depth])
            if parent not in seen:
                seen.append(parent)
    return seen


#: the driver's shared nodes: every CUDA process opens these, whichever GPU it uses
GPU_CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
#: The zygote sees no GPU: torch's "is CUDA available?" (export's fake tensors ask it while
#: the zygote warms up) then answers from these variables, without starting the driver in the
#: process every job is forked from. A GPU job makes its GPU visible after the fork
#: (``grader.sandbox.job``) and starts CUDA itself.
ZYGOTE_CUDA_ENV = {"CUDA_VISIBLE_DEVICES": "", "PYTORCH_NVML_BASED_CUDA_CHECK": "1"}
#: where the host's device nodes are
DEV = "/dev"


def gpu_index(device: str) -> int | None:
    """The GPU of a ``cuda:N`` device (``cuda`` is GPU 0); None for the CPU."""
    if not device.startswith("cuda"):
        return None
    _, _, index = device.partition(":")
    return int(index or 0)


def gpu_devices(index: int, dev: str | None = None) -> list[str]:
    """The device nodes a job on GPU ``index`` gets: the driver's shared nodes and that one
    GPU's ``/dev/nvidiaN``, never another GPU's. CUDA skips GPUs whose node it cannot open, so
    inside the sandbox the job sees exactly one GPU, as ``cuda:0``. (N is the driver's minor
    number, the index ``nvidia-smi`` shows.) The driver's libraries come with /usr."""
    root = dev or DEV
    names = [*GPU_CONTROL_NODES, f"nvidia{index}"]
    return sorted(path for name in names if os.path.exists(path := os.path.join(root, name)))


def command(
    bwrap: str, layout: Layout, control_fd: int, *, gpu: int | None = None, uid: int = 65534
) -> list[str]:
    args = [
        bwrap,
        "--die-with-parent",
        "--new-session",
        "--unshare-pid",
        "--unshare-net",
        "--unshare-ipc",
        "--unshare-uts",
        "--hostname",
        "sandbox",
        "--unshare-cgroup-try",
        "--cap-drop",
        "ALL",
    ]
    for cap in CAPABILITIES:
        args += ["--cap-add", cap]
    args += ["--ro-bind", "/usr", "/usr"]
    for name in SYSTEM_LINKS:
        path = "/" + name
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    if os.path.exists("/etc/ld.so.cache"):
        args += ["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"]
    args += ["--dev", "/dev", "--proc", "/proc"]
    if gpu is not None:
        for node in gpu_devices(gpu):
            args += ["--dev-bind", node, node]
    binds = [*layout.runtime, *layout.packages]
    # Folders bwrap creates for bind targets would otherwise be 0700 root: uid 65534 could not
    # reach the runtime and Python would silently fall back to Debian's /usr/lib/python3.
    for parent in _parents(inside(path) for path in binds):
        args += ["--perms", "0755", "--dir", parent]
    for path in binds:
        args += ["--ro-bind", path, inside(path)]
    # The zygote's own /tmp: writable because importing torch insists on a usable temporary
    # folder, small, and never seen by a job, which mounts a fresh one over it.
    args += ["--perms", "0700", "--size", str(16 << 20), "--tmpfs", "/tmp", "--remount-ro", "/"]
    args += ["--chdir", "/"]
    env = clean_env({"PYTHONPATH": inside(layout.repo), "TMPDIR": "/tmp", **ZYGOTE_CUDA_ENV})
    for key, value in sorted(env.items()):
        args += ["--setenv", key, value]
    args += [
        "--",
        inside(layout.python),
        "-P",  # no script folder or cwd on sys.path: only the runtime and PYTHONPATH
        "-s",
        "-m",
        "grader.sandbox.zygote",
        str(control_fd),
        str(uid),
    ]
    return args
