"""What a backup must bring back, as JSON: every challenge's board and grade book, and each
model's row count. Run in the test process and, against the restored database, as
``python -m tests.platform.backup_boards`` so the two can be compared."""

from __future__ import annotations

import dataclasses
import json
from typing import Any


def site_state() -> dict[str, Any]:
    from django.apps import apps

    from courses.models import Challenge
    from leaderboard.boards import gradebook_rows, leaderboard_compute

    state: dict[str, Any] = {"boards": {}, "gradebooks": {}, "counts": {}}
    for challenge in Challenge.objects.order_by("slug"):
        board = leaderboard_compute(challenge)
        state["boards"][challenge.slug] = [dataclasses.asdict(r) for r in board.rows]
        state["gradebooks"][challenge.slug] = [
            dataclasses.asdict(r) for r in gradebook_rows(challenge)
        ]
    for model in apps.get_models():
        if model._meta.app_label in ("courses", "submissions", "auth"):
            state["counts"][model._meta.label] = model.objects.count()
    return json.loads(json.dumps(state, default=str, sort_keys=True))


if __name__ == "__main__":
    import django

    django.setup()
    print(json.dumps(site_state()))
