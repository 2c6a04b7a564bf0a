"""docker-compose.yml describes the production stack, and the commands its containers run work.

No Docker engine runs here: the file is checked by structure (and by Debian's docker-compose
``config``, which validates without an engine), and each container's command is resolved
outside Docker.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_it_has_the_production_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "web", "beat"} <= set(services)
    assert any(name.startswith("worker") for name in services)
    assert {"pgdata", "media", "hidden"} <= set(compose["volumes"])


def test_it_publishes_only_the_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    published = {name for name, service in services.items() if service.get("ports")}
    assert published == {"proxy"}
    proxy = services["proxy"]
    assert {"80:80", "443:443"} <= set(proxy["ports"])
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in proxy["volumes"]
    assert proxy["environment"]["UPSTREAM"] == "web:8000"
    assert (ROOT / "deploy" / "Caddyfile").is_file()
    # the tested Caddyfile uses caddy 2.6's syntax: the image is pinned to Debian's version
    assert proxy["image"] == "caddy:2.6.2"
    assert {"caddydata", "caddyconfig"} <= set(compose["volumes"])  # certificates survive
    assert services["web"]["expose"] == ["8000"]


def test_it_runs_gunicorn_with_static_files_on_the_web_container(compose: dict[str, Any]) -> None:
    web = compose["services"]["web"]
    assert "gunicorn config.wsgi:application -c deploy/gunicorn.conf.py" in web["command"]
    assert "collectstatic" in web["command"]
    assert "media:/srv/media" in web["volumes"]
    # The hidden test sets are for workers only.
    assert not any("hidden" in v for v in web["volumes"])


def workers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in compose["services"].items() if k.startswith("worker")}


def test_it_runs_every_worker_sandboxed_with_the_hidden_data_read_only(
    compose: dict[str, Any],
) -> None:
    for worker in workers(compose).values():
        assert "--concurrency=1" in worker["command"]
        assert "--prefetch-multiplier=1" in worker["command"]
        assert "hidden:/srv/hidden:ro" in worker["volumes"]
        # The sandbox needs namespaces, never a privileged container.
        assert not worker.get("privileged")
        assert "ALL" not in worker.get("cap_add", [])
        profile = next(o for o in worker["security_opt"] if o.startswith("seccomp="))
        assert (ROOT / profile.split("=", 1)[1]).is_file()
    # Jobs of one uid share the kernel's process limit: no two workers share a uid.
    uids = [int(w["environment"]["GRADER_SANDBOX_UID"]) for w in workers(compose).values()]
    assert len(set(uids)) == len(uids)


def test_it_gives_each_gpu_worker_one_gpu(compose: dict[str, Any]) -> None:
    gpu_workers = {k: v for k, v in workers(compose).items() if k.startswith("worker-gpu")}
    assert gpu_workers
    for name, worker in gpu_workers.items():
        devices = worker["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and len(devices[0]["device_ids"]) == 1
        index = devices[0]["device_ids"][0]
        assert name == f"worker-gpu{index}"
        assert worker["environment"]["GRADER_DEVICE"] == f"cuda:{index}"


def test_it_has_a_cpu_worker_for_challenges_that_need_no_gpu(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker-cpu"]
    assert worker["environment"]["GRADER_DEVICE"] == "cpu"
    assert worker["environment"]["GRADER_SERVES"] == "cpu"
    assert "deploy" not in worker


def test_it_points_the_app_at_postgres_and_redis(compose: dict[str, Any]) -> None:
    env = compose["x-app"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://")
    assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379")
    assert env["DEBUG"] == "false"


def test_it_is_valid_for_docker_compose(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    assert binary, "docker-compose is missing: run `make install-dev`"
    # A copy beside the example settings, as an operator would have it (.env is not committed).
    shutil.copy(ROOT / "docker-compose.yml", tmp_path)
    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    result = subprocess.run(
        [binary, "-f", str(tmp_path / "docker-compose.yml"), "config", "--quiet"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_it_can_run_each_container_command_outside_docker() -> None:
    """The WSGI app, the Celery app and beat's schedule all load from the repo."""
    script = (
        "import config.wsgi, worker;"
        "assert worker.app.conf.task_acks_late and worker.app.conf.worker_prefetch_multiplier == 1;"
        "import sys; assert 'torch' not in sys.modules, 'the web process imported torch'"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    gunicorn = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--check-config", "config.wsgi:application"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert gunicorn.returncode == 0, gunicorn.stderr
