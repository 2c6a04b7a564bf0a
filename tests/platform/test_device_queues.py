"""Routing by device: a challenge's jobs go to its device's queue, and a worker consumes the
queues of what it has (a GPU worker also takes CPU work, so a site of GPU workers grades all)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from courses.models import Challenge
from submissions.services import submission_create
from tests.platform.conftest import make_challenge, model_upload

ROOT = Path(__file__).resolve().parents[2]


def worker_queues(**env: str) -> subprocess.CompletedProcess[str]:
    """The queues ``celery -A worker worker`` would consume with ``env``, and the default."""
    code = (
        "import json, worker; c = worker.app.conf;"
        "print(json.dumps({'queues': [q.name for q in c.task_queues],"
        " 'default': c.task_default_queue}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GRADER_", "CELERY"))}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("device", "queue"), [(Challenge.Device.CPU, "grade-cpu"), (Challenge.Device.GPU, "grade-gpu")]
)
def test_it_sends_an_upload_to_its_challenges_device_queue(
    semester, enrollment, tiny_models, sent, django_capture_on_commit_callbacks, device, queue
):
    challenge = make_challenge(semester, slug=f"kp-{device}", device=device)

    with django_capture_on_commit_callbacks(execute=True):
        submission_create(
            enrollment=enrollment,
            challenge=challenge,
            upload=model_upload(tiny_models.zeros),
            fmt="pt2",
        )

    assert [m.options["queue"] for m in sent] == [queue]


def test_it_names_the_queues_with_the_sites_prefix(
    settings, enrollment, challenge, tiny_models, sent, django_capture_on_commit_callbacks
):
    settings.GRADER_QUEUE_PREFIX = "staging-"

    with django_capture_on_commit_callbacks(execute=True):
        submission_create(
            enrollment=enrollment,
            challenge=challenge,
            upload=model_upload(tiny_models.zeros),
            fmt="pt2",
        )

    assert [m.options["queue"] for m in sent] == ["staging-cpu"]


@pytest.mark.parametrize(
    ("env", "queues"),
    [
        ({}, ["grade-cpu", "grade-housekeeping"]),
        ({"GRADER_DEVICE": "cuda:1"}, ["grade-gpu", "grade-cpu", "grade-housekeeping"]),
        ({"GRADER_DEVICE": "cuda:0", "GRADER_SERVES": "gpu"}, ["grade-gpu", "grade-housekeeping"]),
        ({"GRADER_QUEUE_PREFIX": "staging-"}, ["staging-cpu", "staging-housekeeping"]),
    ],
)
def test_it_consumes_the_queues_of_the_workers_device(env, queues):
    done = worker_queues(**env)

    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["queues"] == queues
    # The sweep a worker asks for and anything else untargeted is housekeeping, which every
    # worker serves beside its grading.
    assert answer["default"] == queues[-1]


def test_it_refuses_a_cpu_worker_that_claims_the_gpu_queue():
    done = worker_queues(GRADER_DEVICE="cpu", GRADER_SERVES="gpu,cpu")

    assert done.returncode != 0
    assert "GRADER_SERVES has 'gpu' but GRADER_DEVICE is not cuda:N" in done.stderr


def test_housekeeping_goes_to_its_own_queue(db, sent, django_capture_on_commit_callbacks):
    from accounts.mail import Email, email_send_later
    from worker import SweepOnConnect

    with django_capture_on_commit_callbacks(execute=True):
        email_send_later(Email(subject="s", body="b", from_email=None, to=["a@example.com"]))
    SweepOnConnect(None).start(None)

    assert [(m.name, m.options["queue"]) for m in sent] == [
        ("worker.tasks.send_email", "grade-housekeeping"),
        ("worker.tasks.sweep_stuck", "grade-housekeeping"),
    ]


def test_a_message_sent_to_one_queue_reaches_that_queue_only(settings):
    """Each queue has an exchange and routing key of its own: bound to the default queue's, a
    grading sent to ``grade-cpu`` also reached the housekeeping queue (run in the worker's main
    process) and a GPU host's queue. Published as Celery publishes to a named queue (to its
    exchange with its routing key) on a real in-memory broker."""
    from kombu import Connection, Producer

    from config.celery import app

    queues = list(app.amqp.queues.values())
    assert {q.name for q in queues} >= {"grade-cpu", settings.HOUSEKEEPING_QUEUE}
    with Connection("memory://") as conn:
        channel = conn.channel()
        for queue in queues:
            queue(channel).declare()
        for queue in queues:
            Producer(channel).publish(
                {"to": queue.name}, exchange=queue.exchange, routing_key=queue.routing_key
            )
            got = {q.name: q(channel).get(no_ack=True) is not None for q in queues}
            assert got == {q.name: q.name == queue.name for q in queues}, queue.name
