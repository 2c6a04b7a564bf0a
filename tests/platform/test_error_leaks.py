"""Hidden test inputs never reach a student through an error: real grading of hostile TorchScript
models (a plain child process), then the API, the result page and the email are read back.

Each model encodes the first pixels of the first hidden image as letters. Before messages were
worded in the parent, the raise reached the student as "your model raised ValueError: LEAK…".
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from django.core import mail

from submissions.models import Submission
from tests.platform.conftest import DATA_DIR, make_submission
from worker.tasks import grade_submission

# Each test starts its grading runners anew (the settings they read change per test).
pytestmark = pytest.mark.usefixtures("fresh_runners")

PIXELS = 48

ENCODE = """
def encode(x: torch.Tensor) -> str:
    pixels = x[0].flatten()
    text = ""
    for i in range({pixels}):
        text += chr(97 + int(pixels[i].item() * 25.0))
    return text
"""

MODELS = {
    "raises": """
class Model(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError("LEAK" + encode(x))
""",
    "prints": """
class Model(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        print("LEAK" + encode(x))
        return x.flatten(1)[:, :7]
""",
}


def script(tmp_path: Path, name: str) -> bytes:
    import torch

    source = "import torch\n" + ENCODE.format(pixels=PIXELS) + MODELS[name]
    module_file = tmp_path / f"{name}.py"
    module_file.write_text(textwrap.dedent(source))
    namespace: dict[str, Any] = {"__name__": f"hostile_{name}", "__file__": str(module_file)}
    exec(compile(source, str(module_file), "exec"), namespace)
    path = tmp_path / f"{name}.pt"
    torch.jit.save(torch.jit.script(namespace["Model"]()), str(path))
    return path.read_bytes()


def hidden_text(data_root: Path) -> str:
    """What the models encode, computed here from the hidden set."""
    import eval_data

    pixels = eval_data.load(data_root / DATA_DIR, "keypoints").inputs[0].ravel()[:PIXELS]
    return "".join(chr(97 + int(float(v) * 25.0)) for v in pixels)


@pytest.mark.parametrize("name", ["raises", "prints"])
def test_it_keeps_what_the_model_wrote_out_of_everything_the_student_sees(
    name, tmp_path, data_root, enrollment, challenge, student, token, client,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    challenge.allowed_formats = ["pt2", "onnx", "torchscript"]
    challenge.save()
    submission = make_submission(
        enrollment, challenge, content=script(tmp_path, name), format="torchscript"
    )

    with django_capture_on_commit_callbacks(execute=True):
        grade_submission.run(str(submission.pk))

    submission.refresh_from_db()
    leaked = hidden_text(data_root)
    run = submission.runs.get()
    assert submission.status == Submission.Status.FAILED, submission.error
    assert "LEAK" + leaked in run.log  # the model ran and wrote it: staff see it
    api = client.get(
        f"/api/submissions/{submission.pk}/", HTTP_AUTHORIZATION=f"Token {token}"
    ).content.decode()
    client.force_login(student)
    page = client.get(f"/submissions/{submission.pk}/").content.decode()
    emails = [f"{m.subject}\n{m.body}" for m in mail.outbox]
    assert emails
    for seen in [api, page, *emails]:
        assert "LEAK" not in seen
        assert leaked[:12] not in seen
    assert submission.error.startswith("your model")


def test_it_names_only_the_built_in_class_of_the_exception(
    tmp_path, enrollment, challenge, django_capture_on_commit_callbacks
):
    challenge.allowed_formats = ["pt2", "onnx", "torchscript"]
    challenge.save()
    submission = make_submission(
        enrollment, challenge, content=script(tmp_path, "raises"), format="torchscript"
    )

    grade_submission.run(str(submission.pk))

    submission.refresh_from_db()
    assert submission.error.startswith("your model raised ValueError;")
