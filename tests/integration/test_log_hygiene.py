"""The log as an attacker and an operator see it: `photodetective run` with every platform on.

The real process runs with Telegram (polling in the text run, webhook in the JSON run), Slack
(HTTP events) and the web page against the fakes, with known marker values as every secret, and
is sent what an attacker can send without any credential: forged Slack bodies carrying newlines
and a fake log line, a 200 KB forged body, oversized bodies, a request with more bytes than its
Content-Length (the surplus is a photo), a path with a forged log line in it, forged Telegram
webhook deliveries, a signed event the bot does not handle, a photo whose EXIF text holds control
characters and marker strings and one whose EXIF is cut short (Pillow warns about it in the image
worker process). A second run starts with a wrong Telegram token. Whatever happens, no marker,
no body content and no photo byte may appear in stdout or stderr, and every line must be a
well-formed record (in JSON mode, each line parses), so no outside string can forge a line. Both
formats are walked because they fail differently.
"""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import piexif
import pytest
from PIL import Image
from slack_sdk.signature import SignatureVerifier

from tests.fakes.rekognition import FakeRekognition
from tests.fakes.slack_api import FakeSlack
from tests.fakes.telegram_api import FakeTelegram
from tests.integration.runner_helpers import PHOTODETECTIVE, clean_env, free_port, get, wait_for

TELEGRAM_TOKEN = "987654321:MARKERtelegramTOKEN_h3-0001"
SECRETS = {
    "telegram token": TELEGRAM_TOKEN,
    "telegram webhook secret": "MARKERwebhookSECRET_h3_0002",
    "slack bot token": "xoxb-MARKERslackBOT-h3-0003",
    "slack signing secret": "MARKERsigningSECRET-h3-0004",
    "slack app token": "xapp-MARKERslackAPP-h3-0005",
    "web session key": "MARKERsessionKEY-h3-0006",
    "aws access key id": "AKIAMARKERH300000007",
    "aws secret access key": "MARKERawsSECRET/h3+0008",
    "describe api key": "sk-MARKERdescribeKEY-h3-0009",
}
BODY_MARKER = "MARKERforgedBODY"
PHOTO_MARKER = b"MARKERphotoBYTES"
EXIF_MARKER = "MARKERexifTEXT"
FAKE_LINE = "2020-01-01 00:00:00,000 ERROR bot.runner: FAKE INJECTED LINE"
FAKE_PATH_LINE = "2020-01-01 00:00:00,000 ERROR bot.runner: FAKE PATH LINE"
FAKE_JSON = '{"time": "2020-01-01T00:00:00", "level": "error", "logger": "bot.runner", "message": "FAKE"}'
TEXT_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) \S+: ")


def hostile_photo() -> bytes:
    """A JPEG whose EXIF text fields hold terminal escapes, forged lines and every secret."""
    nasty = f"\x1b[2J\r\n{FAKE_LINE}\n{EXIF_MARKER} " + " ".join(SECRETS.values())
    exif = piexif.dump(
        {
            "0th": {
                piexif.ImageIFD.ImageDescription: nasty.encode(),
                piexif.ImageIFD.Make: f"{EXIF_MARKER}\x00\x07\x1b]0;title\x07".encode(),
                piexif.ImageIFD.Artist: f"{EXIF_MARKER}\u2028{FAKE_LINE}".encode(),
            },
            "Exif": {},
            "GPS": {},
            "1st": {},
            "thumbnail": None,
        }
    )
    buffer = io.BytesIO()
    Image.new("RGB", (640, 480), (200, 90, 40)).save(buffer, "JPEG", quality=90, exif=exif)
    data = buffer.getvalue()
    # A JPEG comment right after SOI: these bytes travel with the photo wherever it goes.
    comment = PHOTO_MARKER + b"\n" + FAKE_LINE.encode() + b"\n"
    return data[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + data[2:]


def corrupt_exif_photo() -> bytes:
    """A JPEG whose EXIF block ends mid-entry: Pillow warns about it (in the image worker process)."""
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (10, 200, 30)).save(buffer, "JPEG")
    data = buffer.getvalue()
    entry = struct.pack("<HHII", 0x010F, 2, 20, 200)  # Make: 20 characters at an offset past the end
    app1 = b"Exif\x00\x00II*\x00" + struct.pack("<IH", 8, 4) + entry + b"\x01\x02\x03"
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    base: str
    port: int
    log_file: Path


def start(tmp_path: Path, log_format: str, level: str, **env: str) -> Run:
    port = free_port()
    environment = clean_env(
        tmp_path,
        AWS_ACCESS_KEY_ID=SECRETS["aws access key id"],
        AWS_SECRET_ACCESS_KEY=SECRETS["aws secret access key"],
        AWS_DEFAULT_REGION="us-east-1",
        PHOTODETECTIVE_BACKEND="rekognition",
        PHOTODETECTIVE_REKOGNITION_MAX_ATTEMPTS="1",
        PHOTODETECTIVE_TELEGRAM_TOKEN=SECRETS["telegram token"],
        PHOTODETECTIVE_TELEGRAM_WEBHOOK_SECRET=SECRETS["telegram webhook secret"],
        PHOTODETECTIVE_SLACK_BOT_TOKEN=SECRETS["slack bot token"],
        PHOTODETECTIVE_SLACK_SIGNING_SECRET=SECRETS["slack signing secret"],
        PHOTODETECTIVE_SLACK_APP_TOKEN=SECRETS["slack app token"],
        PHOTODETECTIVE_WEB_ENABLED="true",
        PHOTODETECTIVE_WEB_SESSION_SECRET=SECRETS["web session key"],
        PHOTODETECTIVE_DESCRIBE_API_KEY=SECRETS["describe api key"],
        PHOTODETECTIVE_HTTP_PORT=str(port),
        PHOTODETECTIVE_WORKER_PROCESSES="1",
        PHOTODETECTIVE_SHUTDOWN_GRACE_S="10",
        PHOTODETECTIVE_LOG_FORMAT=log_format,
        PHOTODETECTIVE_LOG_LEVEL=level,
        **env,
    )
    # Files, not pipes: a pipe nobody reads fills up and would stall the bot mid-test.
    log_file = tmp_path / "output.log"
    with log_file.open("wb") as sink:
        process = subprocess.Popen(
            [str(PHOTODETECTIVE), "run"], env=environment, cwd=tmp_path, stdout=sink, stderr=sink
        )
    return Run(process, f"http://127.0.0.1:{port}", port, log_file)


def stop(run: Run) -> str:
    """SIGTERM, then everything the process wrote to stdout and stderr."""
    if run.process.poll() is None:
        run.process.send_signal(signal.SIGTERM)
    try:
        run.process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        run.process.kill()
        run.process.wait(timeout=10)
    return run.log_file.read_bytes().decode("utf-8", "backslashreplace")


def post(url: str, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return 0  # the server may cut an oversized body short; what matters is what it logs


def forged_slack(base: str, body: str, content_type: str = "application/json") -> int:
    headers = {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
    }
    return post(f"{base}/slack/events", body.encode(), headers)


def signed_slack(base: str, body: str) -> int:
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(SECRETS["slack signing secret"]).generate_signature(
        timestamp=timestamp, body=body
    )
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": signature or "",
    }
    return post(f"{base}/slack/events", body.encode(), headers)


def short_content_length(port: int, path: str, payload: bytes, declared: int = 16) -> bytes:
    """A request that sends more bytes than its Content-Length says, the surplus a moment later."""
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        conn.sendall(f"{head}Content-Length: {declared}\r\n\r\n".encode() + payload[:declared])
        time.sleep(0.3)
        try:
            conn.sendall(payload[declared:])
            conn.shutdown(socket.SHUT_WR)
            while chunk := conn.recv(65536):
                answer += chunk
        except OSError:
            pass
    return answer


def telegram_webhook(base: str, body: str, secret: str) -> int:
    headers = {"Content-Type": "application/json", "X-Telegram-Bot-Api-Secret-Token": secret}
    return post(f"{base}/telegram/webhook", body.encode(), headers)


def send_hostile_requests(run: Run, telegram: FakeTelegram, mode: str) -> dict[str, int]:
    """Everything an outsider can send; returns each request's status, checked after the log is."""
    base = run.base
    secrets = " ".join(SECRETS.values())
    status: dict[str, int] = {}
    # (a) forged Slack bodies: newlines and a fake line, JSON and form-encoded, and 200 KB of it.
    status["forged json"] = forged_slack(
        base, f'{{"type": "{BODY_MARKER}\n{FAKE_LINE}\n{FAKE_JSON}\n{secrets}"}}'
    )
    status["forged broken json"] = forged_slack(base, f'{{"type": "{BODY_MARKER}\n{FAKE_LINE}\n{secrets}')
    form = f"payload={BODY_MARKER}\r\n{FAKE_LINE}\x1b[31m&command=/x\n{FAKE_LINE}"
    status["forged form"] = forged_slack(base, form, "application/x-www-form-urlencoded")
    big = json.dumps({"type": BODY_MARKER + ("\n" + FAKE_LINE) * (200_000 // (len(FAKE_LINE) + 1))})
    status["forged 200 KB"] = forged_slack(base, big)
    # An oversized body, to Slack's route and to the web page's upload.
    huge = (BODY_MARKER + "\n" + FAKE_LINE + "\n") * (3_000_000 // 80)
    status["oversized slack"] = forged_slack(base, huge)
    status["oversized upload"] = post(
        f"{base}/upload", huge.encode(), {"Content-Type": "multipart/form-data; boundary=x"}
    )
    # (c) more bytes than Content-Length: the surplus is a photo, on a signed-in-or-not path.
    photo = hostile_photo()
    short_content_length(run.port, "/slack/events", b'{"type": "url_verification"}' + photo)
    short_content_length(run.port, "/upload", b"--x\r\nContent-Disposition: f\r\n\r\n" + photo)
    short_content_length(run.port, "/healthz", b"x" * 16 + b"GET\n" + photo)
    # A path from outside is logged as a path: its newlines must not make lines.
    status["forged path"] = get(f"{base}/no-such-page%0A{FAKE_PATH_LINE.replace(' ', '%20')}%1B%5B31m")[0]
    # (d) a signed event the bot has no listener for.
    event = {
        "type": "event_callback",
        "team_id": "T0FAKE",
        "api_app_id": "A0FAKE",
        "event": {"type": "file_shared", "file_id": "F0NOPE", "user_id": "U0ALICE", "channel_id": "C0"},
        "event_id": "Ev0H3FILE",
        "event_time": int(time.time()),
    }
    status["unhandled event"] = signed_slack(base, json.dumps(event))
    # A photo with hostile EXIF, sent as a file so the EXIF survives, analysed and answered.
    alice = telegram.user(4242)
    chat = telegram.private_chat(alice)
    messages = [
        telegram.document_message(chat, photo, sender=alice, file_name=f"{EXIF_MARKER}\n{FAKE_LINE}.jpg"),
        telegram.document_message(chat, corrupt_exif_photo(), sender=alice),
    ]
    if mode == "webhook":
        # A forged delivery (wrong secret), one with the secret that is not JSON, then the real ones.
        forged = f'{{"update_id": 1, "message": "{BODY_MARKER}\n{FAKE_LINE}"}}'
        status["webhook forged"] = telegram_webhook(run.base, forged, "wrong-secret")
        secret = SECRETS["telegram webhook secret"]
        status["webhook not json"] = telegram_webhook(run.base, f"{BODY_MARKER}\n{FAKE_LINE}", secret)
        for message in messages:
            assert telegram_webhook(run.base, json.dumps(telegram.update_for(message)), secret) == 200
    else:
        for message in messages:
            telegram.send(message)
    wait_for(lambda: len(telegram.sent(telegram.private_chat(alice))) >= 2, "both replies", 60)
    return status


def assert_hygienic(output: str, log_format: str) -> list[Any]:
    """No marker anywhere, and every line a record of its own; returns the parsed JSON records.

    Every problem is listed, not just the first, so a failure shows the whole state of the log.
    """
    problems = [f"the {name} reached the log" for name, secret in SECRETS.items() if secret in output]
    unescaped = output.replace("\\n", " ")
    for marker in (BODY_MARKER, PHOTO_MARKER.decode(), EXIF_MARKER, "FAKE INJECTED LINE"):
        if marker in unescaped:
            at = unescaped.index(marker)
            problems.append(f"{marker} reached the log: {unescaped[max(0, at - 150) : at + 50]!r}")
    records: list[Any] = []
    for line in output.split("\n"):
        if not line:
            continue
        if log_format == "json":
            try:
                record = json.loads(line)
            except ValueError:
                problems.append(f"not a JSON record: {line[:150]!r}")
                continue
            if not (isinstance(record, dict) and {"time", "level", "logger", "message"} <= record.keys()):
                problems.append(f"not a log record: {line[:150]!r}")
            records.append(record)
        elif not (TEXT_RECORD.match(line) or line.startswith(" ")) or line.startswith("2020-01-01"):
            problems.append(f"not a log record of its own: {line[:150]!r}")
    assert not problems, "\n".join(dict.fromkeys(problems))
    return records


@pytest.fixture
def fakes() -> Iterator[tuple[FakeTelegram, FakeSlack, FakeRekognition]]:
    with (
        FakeTelegram(token=SECRETS["telegram token"]) as telegram,
        FakeSlack(bot_token=SECRETS["slack bot token"], app_token=SECRETS["slack app token"]) as slack,
        FakeRekognition() as rekognition,
    ):
        yield telegram, slack, rekognition


@pytest.mark.parametrize(
    ("log_format", "level", "mode"), [("text", "DEBUG", "polling"), ("json", "INFO", "webhook")]
)
def test_hostile_requests_leave_no_secret_body_or_photo_byte_in_the_log(
    tmp_path: Path,
    fakes: tuple[FakeTelegram, FakeSlack, FakeRekognition],
    log_format: str,
    level: str,
    mode: str,
) -> None:
    telegram, slack, rekognition = fakes
    run = start(
        tmp_path,
        log_format,
        level,
        PHOTODETECTIVE_TELEGRAM_MODE=mode,
        PHOTODETECTIVE_TELEGRAM_WEBHOOK_URL="https://bot.example/telegram/webhook",
        PHOTODETECTIVE_TELEGRAM_API_URL=telegram.url,
        PHOTODETECTIVE_SLACK_API_URL=slack.api_url,
        PHOTODETECTIVE_SLACK_FILE_HOSTS=slack.file_host,
        PHOTODETECTIVE_REKOGNITION_ENDPOINT_URL=rekognition.url,
    )
    try:
        wait_for(
            lambda: get(f"{run.base}/healthz")[0] == 200 or run.process.poll() is not None, "the server", 60
        )
        assert run.process.poll() is None, stop(run)
        status = send_hostile_requests(run, telegram, mode)
    finally:
        output = stop(run)
        print(output)  # shown by pytest when the test fails
    records = assert_hygienic(output, log_format)
    # Refused, and as a client error: not a 500 and an ERROR traceback for each forged body.
    assert status["forged 200 KB"] == 401  # valid JSON, bad signature
    assert {status[name] for name in ("forged json", "forged broken json", "forged form")} <= {400, 401}
    assert status["oversized slack"] in (0, 401, 413)  # 0: cut off mid-body, as a server may
    assert status["oversized upload"] in (0, 400, 401, 403, 413)
    assert status["forged path"] == 404
    assert status["unhandled event"] == 404  # Bolt refuses an event no listener takes
    if mode == "webhook":
        assert status["webhook forged"] == 403
        assert status["webhook not json"] == 400
    # What an operator does get for a refused request: method, path, status and size, on one line.
    if log_format == "json":
        refused = {(r.get("method"), r.get("path"), r.get("status")) for r in records}
        assert ("POST", "/slack/events", 401) in refused, "a forged Slack request leaves no trace"
        assert ("POST", "/upload", 413) in refused or ("POST", "/upload", 401) in refused
    else:
        assert "method=POST path=/slack/events status=401" in output, "a forged Slack request leaves no trace"
        assert "path=/no-such-page\\n2020-01-01" in output, "the forged path is not logged escaped"


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_wrong_telegram_token_never_reaches_the_log(tmp_path: Path, log_format: str) -> None:
    with FakeTelegram(token="111111111:the-right-token") as telegram:
        run = start(
            tmp_path,
            log_format,
            "DEBUG",
            PHOTODETECTIVE_TELEGRAM_API_URL=telegram.url,
        )
        try:
            run.process.wait(timeout=60)
        finally:
            output = stop(run)
    assert run.process.returncode != 0
    assert_hygienic(output, log_format)
