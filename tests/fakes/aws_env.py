"""Dummy AWS credentials for tests that run a real boto3 client (against Stubber or the fake service).

boto3 looks for credentials and a region in many places: environment variables, ~/.aws files and the
EC2 instance-metadata endpoint. A test must see only the dummy values it sets, whatever the machine
has, and must never wait on a metadata lookup with no network.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def use_dummy_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *, access_key: str, secret_key: str
) -> None:
    """Replace every `AWS_*` variable with these credentials, us-east-1, no config files, no metadata."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
