"""The seccomp filter of a job's model process.

Allow by default (PyTorch and onnxruntime use a wide, version-dependent set of calls), deny what
a model never needs and what widens the kernel surface: sockets answer EPERM, so a library that
merely probes for networking keeps working, while debugging other processes, namespaces, mounts,
keyrings, BPF, perf, io_uring, module loading and the like kill the process (SIGSYS, which the
parent reports as a forbidden system call). Namespace flags on ``clone`` are refused too, and
``clone3`` answers ENOSYS because its flags sit in memory a filter cannot read: glibc then falls
back to ``clone``, whose flags the filter checks.
"""

from __future__ import annotations

import errno

import pyseccomp

from grader.sandbox.syscalls import NAMESPACE_FLAGS

#: calls that answer EPERM
REFUSED = ("socket", "socketpair")

#: calls that kill the process
FORBIDDEN = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "mount",
    "umount2",
    "unshare",
    "setns",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "keyctl",
    "add_key",
    "request_key",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "iopl",
    "ioperm",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "sethostname",
    "setdomainname",
    "name_to_handle_at",
    "open_by_handle_at",
    "lookup_dcookie",
    "vhangup",
    "uselib",
)


def _known(name: str) -> bool:
    try:
        return pyseccomp.resolve_syscall(pyseccomp.system_arch(), name) >= 0
    except (OSError, ValueError):
        return False


def build_filter() -> pyseccomp.SyscallFilter:
    rules = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    # Every thread, including any a library started before the filter is loaded.
    rules.set_attr(pyseccomp.Attr.CTL_TSYNC, 1)
    for name in REFUSED:
        rules.add_rule(pyseccomp.ERRNO(errno.EPERM), name)
    for name in FORBIDDEN:
        if _known(name):  # libseccomp older than the kernel: nothing to refuse by that name
            rules.add_rule(pyseccomp.KILL_PROCESS, name)
    for flag in NAMESPACE_FLAGS:
        rules.add_rule(
            pyseccomp.KILL_PROCESS, "clone", pyseccomp.Arg(0, pyseccomp.MASKED_EQ, flag, flag)
        )
    if _known("clone3"):
        rules.add_rule(pyseccomp.ERRNO(errno.ENOSYS), "clone3")
    return rules


def install() -> None:
    """Load the filter into the calling process; needs no_new_privs (or CAP_SYS_ADMIN)."""
    build_filter().load()
