"""The processes of one job, forked by the zygote (see ``grader.sandbox.zygote``).

The *leader* enters new mount, pid, ipc, net and uts namespaces and mounts a fresh tmpfs on
/tmp, then starts the job's *init* (pid 1, whose death makes the kernel kill every process left
in the job, ``setsid`` or not) and its *worker* (pid 2). The worker mounts the job's own /proc,
applies the rlimits, drops to the zygote's unprivileged uid/gid (65534 unless configured) with
no capabilities and no_new_privs, loads the seccomp filter, says it is ready, and only then runs
``grader.child`` on the job's pipes. The
leader waits for the worker, kills the init, and reports the worker's exit status (and whether
it got as far as ready) on a pipe: a model cannot forge that report, so a crash is never
mistaken for a host problem or the reverse.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import traceback
from typing import Any

from grader.sandbox import seccomp, syscalls

NOBODY = 65534
#: the lowest uid a job may be given: below it are the system's and people's accounts
MIN_JOB_UID = 1000
#: pid 1 of every job: holds the job's pid namespace open until the leader kills it
INIT_PROGRAM = ("/usr/bin/sleep", "infinity")


def _status_returncode(status: int) -> int:
    """A wait status in ``subprocess.Popen.returncode`` form (negative signal number)."""
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 255


def close_fds_except(keep: set[int]) -> None:
    """Close every fd from 3 up but ``keep``: nothing of the zygote's (its control socket,
    other jobs' pipes) reaches a job."""
    low = 3
    for fd in sorted(k for k in keep if k >= 3):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 16)


def proc_status(field_name: str) -> int:
    """A ``kB`` field of /proc/self/status, in bytes."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _apply_rlimits(spec: dict[str, Any]) -> None:
    import resource

    memory = int(spec["memory_bytes"])
    # The fork starts with the zygote's runtime already mapped (about 3 GB of address space,
    # 0.8 GB of data, mostly torch); the model's budget comes on top of that.
    limits = {
        resource.RLIMIT_DATA: proc_status("VmData") + memory,
        resource.RLIMIT_CPU: int(spec["cpu_seconds"]),
        resource.RLIMIT_FSIZE: int(spec["write_bytes"]),
        resource.RLIMIT_NOFILE: int(spec["open_files"]),
        resource.RLIMIT_NPROC: int(spec["processes"]),
        resource.RLIMIT_CORE: 0,
    }
    if not str(spec["device"]).startswith("cuda"):
        # CUDA reserves tens of GB of address space up front; on a GPU only RLIMIT_DATA holds.
        limits[resource.RLIMIT_AS] = proc_status("VmSize") + memory
    for kind, value in limits.items():
        # The hard CPU limit is a few seconds later: SIGXCPU at the soft one tells the student
        # why, SIGKILL at the hard one catches a model that ignores SIGXCPU.
        hard = value + 5 if kind == resource.RLIMIT_CPU else value
        resource.setrlimit(kind, (value, hard))


def checked_uid(uid: int) -> int:
    """``uid`` if a job may run as it, else ``ValueError``: only unprivileged uids."""
    if not MIN_JOB_UID <= uid <= NOBODY:
        raise ValueError(f"job uid {uid} is not an unprivileged uid ({MIN_JOB_UID}-{NOBODY})")
    return uid


def job_uid(spec: dict[str, Any]) -> int:
    """The unprivileged uid (and gid) the job runs as: the zygote's, 65534 unless configured."""
    return checked_uid(int(spec.get("uid", NOBODY)))


def _become_nobody(uid: int) -> None:
    syscalls.prctl(syscalls.PR_SET_NO_NEW_PRIVS, 1)
    syscalls.drop_all_capabilities()
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # clears the effective and permitted capabilities
    syscalls.clear_capability_sets()  # and the inheritable ones


def _worker(spec: dict[str, Any], fds: list[int], ready: int) -> None:
    """pid 2 of the job: lock itself in, then run the model. Never returns."""
    try:
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        close_fds_except({ready})
        os.setsid()
        # The job's own /proc: only the job's processes, and hidepid keeps the (root) init out.
        flags = syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC
        syscalls.mount("proc", "/proc", "proc", flags, "hidepid=invisible")
        with open("/proc/self/oom_score_adj", "w") as fh:
            fh.write("1000")  # under memory pressure the kernel kills a model, not the zygote
        _apply_rlimits(spec)
        _become_nobody(job_uid(spec))
        os.chdir("/tmp")
        seccomp.install()
        os.write(ready, b"1")
        os.close(ready)
    except BaseException:
        traceback.print_exc()
        os._exit(1)
    if spec.get("probe"):
        os._exit(_probe(job_uid(spec)))
    if str(spec["device"]).startswith("cuda"):
        # The zygote ran with no GPU visible, so it never initialised CUDA (a context does not
        # survive fork): this job initialises it itself, on the one GPU bound into the sandbox.
        os.environ["CUDA_VISIBLE_DEVICES"] = "0"
    from grader import child

    try:
        code = child.main()
    except BaseException:
        traceback.print_exc()
        code = 1
    os._exit(code)


def _probe(uid: int) -> int:
    """The start-up self-test: is the job locked in as intended?"""
    problems = []
    if os.getuid() != uid or os.getgid() != uid:
        problems.append(f"uid {os.getuid()} gid {os.getgid()}")
    with open("/proc/self/status") as fh:
        status = dict(line.split(":", 1) for line in fh if ":" in line)
    if status.get("Seccomp", "").strip() != "2":
        problems.append("seccomp filter not active")
    if status.get("NoNewPrivs", "").strip() != "1":
        problems.append("no_new_privs not set")
    for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        if int(status.get(name, "1").strip(), 16):
            problems.append(f"{name} not empty")
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
        problems.append("socket() allowed")
    except PermissionError:
        pass
    if problems:
        print("sandbox self-test: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


def leader(spec: dict[str, Any], fds: list[int], report: int) -> None:
    """Build the job's namespaces, fork its init and worker, report the worker's fate."""

    def send(message: dict[str, Any]) -> None:
        os.write(report, json.dumps(message).encode() + b"\n")

    try:
        close_fds_except({*fds, report})
        uid = job_uid(spec)
        syscalls.unshare(
            syscalls.CLONE_NEWNS
            | syscalls.CLONE_NEWPID
            | syscalls.CLONE_NEWIPC
            | syscalls.CLONE_NEWNET
            | syscalls.CLONE_NEWUTS
        )
        syscalls.mount(None, "/", None, syscalls.MS_REC | syscalls.MS_PRIVATE)
        syscalls.mount(
            "tmpfs",
            "/tmp",
            "tmpfs",
            syscalls.MS_NOSUID | syscalls.MS_NODEV | syscalls.MS_NOEXEC,
            f"size={int(spec['tmp_bytes'])},nr_inodes=16384,mode=0700,uid={uid},gid={uid}",
        )
        # The first process in the new pid namespace is its init: a plain `sleep` (no copy of
        # this process needed). It never reaps, so a job's exited processes stay zombies and
        # keep counting against RLIMIT_NPROC until the namespace ends: a fork bomb stalls.
        init = os.posix_spawn(
            INIT_PROGRAM[0],
            list(INIT_PROGRAM),
            {},
            file_actions=[(os.POSIX_SPAWN_CLOSE, fd) for fd in (*fds, report)],
        )
        send({"init": init})
        ready_r, ready_w = os.pipe()
        worker = os.fork()
        if worker == 0:
            os.close(ready_r)
            os.close(report)
            _worker(spec, fds, ready_w)
        os.close(ready_w)
        for fd in fds:
            os.close(fd)
        ready = os.read(ready_r, 1) == b"1"
        _, status, usage = os.wait4(worker, 0)
        os.kill(init, signal.SIGKILL)
        os.waitpid(init, 0)
        send(
            {
                "returncode": _status_returncode(status),
                "ready": ready,
                "cpu": usage.ru_utime + usage.ru_stime,
            }
        )
    except BaseException:
        traceback.print_exc()
        with contextlib.suppress(OSError):
            send({"error": traceback.format_exc(limit=3)[-1000:]})
        os._exit(1)
    os._exit(0)
