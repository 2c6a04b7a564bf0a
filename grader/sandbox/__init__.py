"""The sandbox that runs untrusted models: bubblewrap, a warm zygote, rlimits and seccomp.

``SandboxRunner.create()`` starts a zygote under bubblewrap (``bwrap``: what the sandbox sees),
which pre-imports the runtime and forks one locked-in process tree per job (``zygote``), with
the seccomp filter of ``seccomp``. ``runner`` is the trusted parent's side. The README's
"Untrusted models" section says what it protects against and how.
"""

from grader.sandbox.runner import SandboxRunner

__all__ = ["SandboxRunner"]
