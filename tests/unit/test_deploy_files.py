"""The files in deploy/ stay true to the code: the IAM policy grants exactly the calls we make."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from core.recognizers import rekognition

# The model the policy names: the docs' example; an operator puts their own model id there.
EXAMPLE_MODEL = "amazon.nova-lite-v1:0"

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_iam_policy_grants_exactly_the_rekognition_calls_the_code_makes() -> None:
    policy = json.loads((DEPLOY / "iam-policy.json").read_text())
    actions = {action for statement in policy["Statement"] for action in statement["Action"]}
    assert actions == {f"rekognition:{name}" for name in rekognition._METHODS} | {"bedrock:InvokeModel"}
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])


def test_iam_policy_allows_bedrock_only_on_one_model() -> None:
    """Converse needs bedrock:InvokeModel, and only on the model PHOTODETECTIVE_DESCRIBE_MODEL names."""
    policy = json.loads((DEPLOY / "iam-policy.json").read_text())
    (bedrock,) = [s for s in policy["Statement"] if any(a.startswith("bedrock:") for a in s["Action"])]
    assert bedrock["Action"] == ["bedrock:InvokeModel"]
    assert bedrock["Resource"] == [f"arn:aws:bedrock:*::foundation-model/{EXAMPLE_MODEL}"]  # not "*"


def test_compose_file_builds_the_project_root_and_reads_its_env_file() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    for name in ("ingress", "worker"):
        service = compose["services"][name]
        assert (DEPLOY / service["build"] / "Dockerfile").is_file()
        assert service["env_file"] == "../.env"
        assert service["command"][:2] == ["run", "--role"]
