"""Grading yields the CPU to the web server: each pool process lowers its own priority
(``GRADER_NICE``) before it starts its sandbox, so the sandbox and every model it runs inherit
it. The worker's main process, which takes messages from the broker, keeps its priority.

On a host where web and workers share cores, an upload on a deadline night would otherwise
wait behind gradings for its share of the CPU (``benchmarks.bench_rush`` measures it).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from celery.signals import worker_process_init
from django.conf import settings

logger = logging.getLogger(__name__)


def lower_priority(niceness: int) -> int:
    """Add ``niceness`` to this process's; returns the new value."""
    return os.nice(niceness) if niceness else os.nice(0)


@worker_process_init.connect
def _yield_to_web(**_: Any) -> None:
    # Connected before worker.tasks' handler that starts the sandbox (worker/__init__.py
    # imports this module first), so the sandbox starts at the lower priority.
    now = lower_priority(settings.GRADER_NICE)
    logger.debug("pool process %s grades at niceness %s", os.getpid(), now)
