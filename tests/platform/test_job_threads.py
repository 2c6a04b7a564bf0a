"""Each job gets its share of the worker's cores: cores ÷ concurrency, or the setting."""

from __future__ import annotations

import os

from tests.platform.conftest import make_submission
from worker.grading import job_threads, limits_for


def test_it_shares_the_cores_among_the_pool_processes(settings):
    settings.GRADER_THREADS_PER_JOB = 0
    cores = len(os.sched_getaffinity(0))
    settings.CELERY_WORKER_CONCURRENCY = 1
    assert job_threads() == cores
    settings.CELERY_WORKER_CONCURRENCY = cores * 2
    assert job_threads() == 1  # never none


def test_the_setting_overrides_and_scales_the_cpu_budget(settings, enrollment, challenge):
    settings.GRADER_THREADS_PER_JOB = 3

    limits = limits_for(make_submission(enrollment, challenge))

    assert limits.threads == 3
    assert limits.cpu_seconds == 3 * max(60, 2 * challenge.time_limit_seconds)
