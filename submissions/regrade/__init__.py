"""Re-grading a challenge's submissions as one batch.

``batches``: start a batch, complete it when its last attempt ends, publish it (or hold it and
say why), cancel it, report what changed, tell whoever started it. ``attempts``: the worker's
side of one attempt. The sweep's part is in ``submissions.sweep``; the state changes of an
attempt are in ``submissions.lifecycle``.
"""

from submissions.regrade.batches import (
    Change,
    Progress,
    RegradeRefused,
    regrade_batch_cancel,
    regrade_batch_check,
    regrade_batch_notify,
    regrade_batch_publish,
    regrade_batch_report,
    regrade_batch_start,
)

__all__ = [
    "Change",
    "Progress",
    "RegradeRefused",
    "regrade_batch_cancel",
    "regrade_batch_check",
    "regrade_batch_notify",
    "regrade_batch_publish",
    "regrade_batch_report",
    "regrade_batch_start",
]
