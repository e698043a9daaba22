"""`photodetective analyze` with the Bedrock describer: Rekognition and Bedrock both on their local fakes,
configured through the environment exactly as an operator would (the standard AWS chain, the
`AWS_ENDPOINT_URL_BEDROCK_RUNTIME` endpoint override, PHOTODETECTIVE_DESCRIBE_*)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.describe_helpers import assert_no_metadata
from tests.fakes.bedrock import FakeBedrock
from tests.fakes.rekognition import FakeRekognition
from tests.integration.test_cli import clean_environment, run, write_photo

__all__ = ["clean_environment"]  # the autouse fixture: no developer .env, no real AWS credentials

MODEL = "amazon.nova-lite-v1:0"


@pytest.fixture
def clouds(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeRekognition, FakeBedrock]]:
    with FakeRekognition() as rekognition, FakeBedrock() as bedrock:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFAKEDESCRIBE0000")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fake-describe-secret")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("PHOTODETECTIVE_REKOGNITION_ENDPOINT_URL", rekognition.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", bedrock.url)
        monkeypatch.setenv("PHOTODETECTIVE_DESCRIBE_BACKEND", "bedrock")
        monkeypatch.setenv("PHOTODETECTIVE_DESCRIBE_MODEL", MODEL)
        yield rekognition, bedrock


def test_caption_first_in_the_summary_and_in_the_json(
    tmp_path: Path, clouds: tuple[FakeRekognition, FakeBedrock]
) -> None:
    _, bedrock = clouds
    photo = write_photo(tmp_path / "street.jpg")
    code, out, err = run("analyze", str(photo), "--backend", "rekognition", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["description"] == {
        "text": "Two people stand in front of a Ferris wheel at dusk.",
        "backend": "bedrock",
        "model": MODEL,
    }
    assert "describe" in doc["features"]
    described = [label for label in doc["labels"] if label.get("source") == "describe"]
    assert [label["name"] for label in described] == ["Ferris wheel", "Dusk"]
    own = [label for label in doc["labels"] if "source" not in label]
    assert doc["labels"] == [*own, *described]  # the describer's tags come after the recognizer's
    (seen,) = bedrock.seen
    assert seen.path == f"/model/{MODEL}/converse"
    assert seen.image is not None
    assert_no_metadata(seen.image)
    assert "Canon" not in json.dumps(seen.body)

    code, out, err = run("analyze", str(photo), "--backend", "rekognition")
    assert code == 0, err
    summary = out.split("\n", 1)[1]  # after the "== file -> annotated" line
    assert summary.startswith("Description: Two people stand in front of a Ferris wheel at dusk.\n")


def test_a_hosted_describer_sees_no_photo_that_moderation_did_not_check(
    tmp_path: Path, clouds: tuple[FakeRekognition, FakeBedrock]
) -> None:
    _, bedrock = clouds
    photo = write_photo(tmp_path / "street.jpg")
    code, out, err = run(
        "analyze", str(photo), "--backend", "rekognition", "--json", "--features", "labels,describe"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert "description" not in doc
    assert doc["errors"] == [
        {
            "feature": "describe",
            "kind": "error",
            "message": "not sent to the hosted model: the photo could not be checked for explicit content",
        }
    ]
    assert bedrock.seen == []


def test_bedrock_down_leaves_the_analysis_with_a_note(
    tmp_path: Path, clouds: tuple[FakeRekognition, FakeBedrock]
) -> None:
    _, bedrock = clouds
    bedrock.misbehave("status", status=503, error_type="ServiceUnavailableException", times=None)
    photo = write_photo(tmp_path / "street.jpg")
    code, out, err = run("analyze", str(photo), "--backend", "rekognition", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert "description" not in doc
    assert doc["labels"]
    assert [(e["feature"], e["kind"]) for e in doc["errors"]] == [("describe", "unavailable")]
    assert len(bedrock.seen) == 3  # botocore's standard retries
