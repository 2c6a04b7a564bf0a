"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The four demo models (keypoints/segmentation × pass/fail), trained once per session."""
    from eval_data.demo_models import build_demo_models

    return build_demo_models(tmp_path_factory.mktemp("demo-models"), seed=0)
