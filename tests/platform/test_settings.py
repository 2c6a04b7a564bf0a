"""The settings module: env-driven, loud on bad values, safe defaults on a fresh clone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config import settings as config

ROOT = Path(__file__).resolve().parents[2]


def load_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """Import the settings in a fresh interpreter with ``env`` and print a few values."""
    code = (
        "import json; from config import settings as s;"
        "print(json.dumps({'db': s.DATABASES['default'], 'broker': s.CELERY_BROKER_URL,"
        " 'options': s.CELERY_BROKER_TRANSPORT_OPTIONS, 'debug': s.DEBUG}, default=str))"
    )
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE", "TEST_DATABASE", "CELERY", "DEBUG"))
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean, "VAR_DIR": env.pop("VAR_DIR", str(ROOT / "var")), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("helper", "value"),
    [(config.env_bool, "maybe"), (config.env_int, "12x"), (config.env_float, "fast")],
)
def test_it_fails_loudly_on_a_malformed_value(monkeypatch, helper, value):
    monkeypatch.setenv("SOME_SETTING", value)

    with pytest.raises(ImproperlyConfigured, match="SOME_SETTING"):
        helper("SOME_SETTING", 1)


def test_it_reads_booleans_lists_and_json(monkeypatch):
    monkeypatch.setenv("A_BOOL", "Off")
    monkeypatch.setenv("A_LIST", "a, b,,c")
    monkeypatch.setenv("A_JSON", '{"polling_interval": 0.1}')

    assert config.env_bool("A_BOOL", True) is False
    assert config.env_list("A_LIST", []) == ["a", "b", "c"]
    assert config.env_json("A_JSON", {}) == {"polling_interval": 0.1}
    monkeypatch.setenv("A_JSON", "[1]")
    with pytest.raises(ImproperlyConfigured):
        config.env_json("A_JSON", {})


def test_it_rejects_a_minimum_violation(monkeypatch):
    monkeypatch.setenv("WORKERS", "0")

    with pytest.raises(ImproperlyConfigured, match="minimum"):
        config.env_int("WORKERS", 1, minimum=1)


def test_it_runs_on_sqlite_and_the_filesystem_broker_by_default(tmp_path):
    result = load_settings(VAR_DIR=str(tmp_path))

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["db"]["ENGINE"] == "django.db.backends.sqlite3"
    assert values["db"]["NAME"] == str(tmp_path / "db.sqlite3")
    # A file, not memory: a worker subprocess must see the test database.
    test_db = Path(values["db"]["TEST"]["NAME"])
    assert test_db.parent == tmp_path and test_db.name.startswith("test-db-")
    assert values["broker"] == "filesystem://"
    options = values["options"]
    assert options["data_folder_in"] == options["data_folder_out"]
    assert Path(options["data_folder_in"]).is_dir()
    assert Path(options["processed_folder"]).is_dir()


def test_it_switches_to_postgres_and_redis(tmp_path):
    result = load_settings(
        VAR_DIR=str(tmp_path),
        DATABASE_URL="postgres://u:p@db.example:5432/board",
        CELERY_BROKER_URL="redis://cache.example:6379/0",
    )

    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["db"]["ENGINE"] == "django.db.backends.postgresql"
    assert values["db"]["NAME"] == "board"
    assert values["broker"] == "redis://cache.example:6379/0"
    assert values["options"]["visibility_timeout"] > 3600


def test_it_merges_broker_options_from_the_environment(tmp_path):
    result = load_settings(
        VAR_DIR=str(tmp_path), CELERY_BROKER_TRANSPORT_OPTIONS='{"polling_interval": 0.1}'
    )

    assert json.loads(result.stdout)["options"]["polling_interval"] == 0.1


def test_it_needs_a_secret_key_without_debug(tmp_path):
    result = load_settings(VAR_DIR=str(tmp_path), DEBUG="false")

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_it_refuses_to_grade_unsandboxed_without_debug(tmp_path):
    result = load_settings(
        VAR_DIR=str(tmp_path), DEBUG="false", SECRET_KEY="x" * 50, GRADER_SANDBOX="false"
    )

    assert result.returncode != 0
    assert "GRADER_SANDBOX=false is only allowed with DEBUG=true" in result.stderr


def test_it_rejects_an_unknown_device(tmp_path):
    result = load_settings(VAR_DIR=str(tmp_path), GRADER_DEVICE="tpu")

    assert "GRADER_DEVICE" in result.stderr


def test_it_never_imports_torch_in_the_web_process():
    code = (
        "import os, sys, django;"
        " os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup();"
        " import config.urls, config.wsgi; print('torch' in sys.modules)"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert result.stdout.strip() == "False", result.stderr


def test_it_configures_celery_for_one_job_at_a_time(settings):
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    assert settings.CELERY_WORKER_CONCURRENCY == 1
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.TIME_ZONE == "UTC" and settings.USE_TZ is True


# --- production defaults ----------------------------------------------------------------------


def manage(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py`` in a fresh interpreter with only ``env`` on top of a clean environment."""
    keep = ("PATH", "HOME", "LANG", "PYTHONPATH", "VIRTUAL_ENV")
    base = {k: v for k, v in os.environ.items() if k in keep}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, "VAR_DIR": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k3y-" + "a1B2c3D4e5F6g7H8i9J0" * 3,
    "ALLOWED_HOSTS": "leaderboard.example.edu",
}


def test_it_passes_the_deploy_check_with_only_a_key_and_hosts(tmp_path):
    result = manage(tmp_path, "check", "--deploy", **PRODUCTION)

    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr


def test_it_is_https_only_by_default_in_production(tmp_path):
    code = (
        "import json; from config import settings as s; print(json.dumps([s.SESSION_COOKIE_SECURE,"
        " s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS,"
        " s.SECURE_PROXY_SSL_HEADER]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "VAR_DIR": str(tmp_path), **PRODUCTION},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert json.loads(result.stdout) == [
        True, True, True, 31536000, ["HTTP_X_FORWARDED_PROTO", "https"]
    ]  # fmt: skip


def test_it_warns_at_start_up_when_told_to_serve_plain_http(tmp_path):
    result = manage(tmp_path, "check", **PRODUCTION, SERVE_PLAIN_HTTP="true")

    assert result.returncode == 0, result.stderr
    assert "SERVE_PLAIN_HTTP is set: this site serves plain HTTP" in result.stderr
    deploy = manage(tmp_path, "check", "--deploy", **PRODUCTION, SERVE_PLAIN_HTTP="true")
    assert "security.W012" in deploy.stdout + deploy.stderr  # and the deploy check says so


def test_it_stays_quiet_and_plain_on_a_developer_machine(tmp_path):
    result = manage(tmp_path, "check")

    assert result.returncode == 0, result.stderr
    assert "SERVE_PLAIN_HTTP" not in result.stderr
