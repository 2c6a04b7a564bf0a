"""A real S3 server for tests: moto's server mode as a process on 127.0.0.1 and a free port.

The server authenticates requests (``INITIAL_NO_AUTH_ACTION_COUNT``): the first three calls
create an IAM user with an access key and an S3 policy, and every call after them needs that
key, so a test with wrong credentials gets the 403 a real store gives. The bucket is made with
that key. ``settings_for`` and ``env_for`` point the test process and worker processes at it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

START_SECONDS = 30
#: the IAM calls moto lets through before it starts checking credentials
BOOTSTRAP_CALLS = 3


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class S3Server:
    proc: subprocess.Popen[bytes]
    endpoint: str
    access_key: str
    secret_key: str
    bucket: str
    region: str = "us-east-1"

    def client(self, **overrides: Any) -> Any:
        import boto3

        options = {
            "endpoint_url": self.endpoint,
            "region_name": self.region,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
            **overrides,
        }
        return boto3.client("s3", **options)

    def object_names(self) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def storage_options(self, **overrides: Any) -> dict[str, Any]:
        """The ``OPTIONS`` config/settings.py builds from the AWS_* variables."""
        from config.settings import _s3_client_config

        return {
            "bucket_name": self.bucket,
            "endpoint_url": self.endpoint,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
            "region_name": self.region,
            "default_acl": "private",
            "querystring_auth": True,
            "file_overwrite": True,
            "client_config": _s3_client_config(),
            **overrides,
        }

    def use_in(self, settings: Any, **overrides: Any) -> None:
        """Point this process's default storage at the server (pytest-django's ``settings``)."""
        settings.MEDIA_STORAGE = "s3"
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {
                "BACKEND": "storages.backends.s3.S3Storage",
                "OPTIONS": self.storage_options(**overrides),
            },
        }

    def env(self, **overrides: str) -> dict[str, str]:
        """The variables a web or worker host sets to use the server."""
        return {
            "MEDIA_STORAGE": "s3",
            "AWS_STORAGE_BUCKET_NAME": self.bucket,
            "AWS_S3_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_S3_REGION_NAME": self.region,
            **overrides,
        }

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_s3_server(bucket: str = "media") -> S3Server:
    import boto3

    port = free_port()
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(BOOTSTRAP_CALLS)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"moto's S3 server did not start on port {port}", pytrace=False)
            time.sleep(0.1)
    endpoint = f"http://127.0.0.1:{port}"
    iam = boto3.client(
        "iam",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bootstrap",
        aws_secret_access_key="bootstrap",
    )
    iam.create_user(UserName="leaderboard")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
    }
    iam.put_user_policy(
        UserName="leaderboard", PolicyName="media", PolicyDocument=json.dumps(policy)
    )
    key = iam.create_access_key(UserName="leaderboard")["AccessKey"]
    server = S3Server(proc, endpoint, key["AccessKeyId"], key["SecretAccessKey"], bucket)
    server.client().create_bucket(Bucket=bucket)
    return server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = start_s3_server()
    yield server
    server.stop()
