"""The whole bot under load, for `bench/throughput.py` and `bench/soak.py`: real processes, fake platforms.

`photodetective run` processes (one with `--role all`, or one `--role ingress` and several
`--role worker`) run exactly as a self-hoster starts them, configured by environment variables,
against the fake Bot API (and, for the cloud backend, the fake Rekognition endpoint) of
`tests/fakes`, all on 127.0.0.1. The rig sends photo updates at a chosen rate, records when each
went in and when its reply came out (both on this process's monotonic clock, the fakes' clock),
and samples the CPU time and memory of every bot process and its children from /proc.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import RedisServer  # noqa: E402
from tests.fakes.rekognition import FakeRekognition  # noqa: E402
from tests.fakes.telegram_api import TOKEN, FakeTelegram  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
REPLY_METHODS = ("sendPhoto", "sendMessage", "sendDocument")
QUEUED_NOTE = "Got it: queued"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def photo_set(count: int = 6) -> list[tuple[str, bytes]]:
    """Photos of several sizes: the shared faces and large JPEGs when present, else generated ones.

    Each is (kind, JPEG bytes); kind "photo" goes as a compressed Telegram photo (1280 px), kind
    "document" as the original file, as users send full-resolution pictures.
    """
    found: list[tuple[str, bytes]] = []
    faces = sorted((SHARED / "faces").rglob("*.jpg")) if (SHARED / "faces").is_dir() else []
    for path in faces[:count]:
        found.append(("photo", path.read_bytes()))
    large = SHARED / "large" / "synthetic_12mp_4000x3000_orient6.jpg"
    if large.is_file():
        found.append(("document", large.read_bytes()))
    while len(found) < count:
        index = len(found)
        side = (640, 1600, 3000)[index % 3]
        image = Image.new("RGB", (side, side * 3 // 4), (60 + 30 * index, 120, 180))
        draw = ImageDraw.Draw(image)
        draw.ellipse((side // 4, side // 8, side // 2, side // 2), fill=(225, 180, 150))
        draw.text((side // 10, side // 2), f"LOAD {index}", fill="white", font_size=side // 12)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=88)
        found.append(("document" if side == 3000 else "photo", buffer.getvalue()))
    return found


@dataclass
class Proc:
    """One bot process and how it was started, so a soak can kill and restart it."""

    role: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    cpu_dead: float = 0.0  # CPU seconds of earlier incarnations (killed), for totals

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                self.args, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def kill(self) -> None:
        """SIGKILL the whole process group: the worker and its image-work pool, as an OOM kill would."""
        if self.popen is not None and self.popen.poll() is None:
            self.cpu_dead += tree_cpu(self.popen.pid)
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.kill()

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(parent, []).append(int(entry))
    return tree


def _tree(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and all its descendants, reaped ones too."""
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime, stime and reaped children's
    return total / CLOCK_TICKS


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants, in MB."""
    total = 0
    for member in _tree(pid):
        try:
            total += int(Path(f"/proc/{member}/statm").read_text().split()[1])
        except OSError:
            continue
    return total * PAGE / 1e6


@dataclass
class Sent:
    chat_id: int
    message_id: int
    update_id: int
    at: float


@dataclass
class Rig:
    """Fakes, bot processes and the bookkeeping of one run."""

    telegram: FakeTelegram
    work: Path
    env: dict[str, str]
    rekognition: FakeRekognition | None = None
    redis: RedisServer | None = None
    procs: list[Proc] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    _users: int = 0

    def spawn(self, role: str, extra_env: Mapping[str, str] | None = None) -> Proc:
        port = _free_port()  # health endpoints; several rigs (a soak beside a benchmark) must not clash
        env = {**self.env, "PHOTODETECTIVE_HTTP_PORT": str(port), **(extra_env or {})}
        proc = Proc(
            role,
            [str(ROOT / ".venv" / "bin" / "photodetective"), "run", "--role", role],
            env,
            self.work / f"{role}-{len(self.procs)}.log",
        )
        self.procs.append(proc)
        proc.start()
        return proc

    def wait_ready(self, within_s: float = 60.0) -> None:
        """Until the ingress polls getUpdates (the workers' readiness shows in their first job)."""
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if any(c.method == "getUpdates" for c in self.telegram.calls):
                time.sleep(1.0)
                return
            time.sleep(0.1)
        raise RuntimeError(f"the bot did not start polling; see the logs in {self.work}")

    def messages(self, photos: list[tuple[str, bytes]], count: int, users: int) -> list[dict[str, Any]]:
        """`count` photo messages from `users` different people, built before the clock starts."""
        chats = []
        for _ in range(users):
            self._users += 1
            chats.append(
                self.telegram.private_chat(self.telegram.user(1000 + self._users, f"User{self._users}"))
            )
        built = []
        for index in range(count):
            kind, data = photos[index % len(photos)]
            chat = chats[index % users]
            if kind == "photo":
                built.append(self.telegram.photo_message(chat, data))
            else:
                built.append(
                    self.telegram.document_message(
                        chat, data, file_name=f"IMG_{index}.jpg", mime_type="image/jpeg"
                    )
                )
        return built

    def send(self, messages: list[dict[str, Any]], rate: float | None) -> None:
        """Inject the messages' updates, `rate` per second (None: all at once, a burst)."""
        started = time.monotonic()
        for index, message in enumerate(messages):
            if rate:
                delay = started + index / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            update = self.telegram.update_for(message)
            at = time.monotonic()
            self.telegram.inject(update)
            self.sent.append(
                Sent(int(message["chat"]["id"]), int(message["message_id"]), int(update["update_id"]), at)
            )

    def replies(self) -> dict[tuple[int, int], list[float]]:
        """When each sent message got a reply (successful send calls that quote it)."""
        found: dict[tuple[int, int], list[float]] = {}
        for call in self.telegram.calls_to(*REPLY_METHODS, ok=True):
            if call.method == "sendMessage" and call.visible_text.startswith(QUEUED_NOTE):
                continue  # "Got it: queued, N ahead of you." is an acknowledgement, not the answer
            if call.chat_id is not None and call.reply_to_message_id is not None:
                found.setdefault((call.chat_id, call.reply_to_message_id), []).append(call.started)
        return found

    def answered(self) -> int:
        replies = self.replies()
        return sum(1 for s in self.sent if (s.chat_id, s.message_id) in replies)

    def wait_answered(
        self, count: int, within_s: float, sample: list[tuple[float, int]] | None = None
    ) -> bool:
        """Until `count` sent messages have a reply; samples (time, backlog) each second when asked."""
        deadline = time.monotonic() + within_s
        last_sample = 0.0
        while time.monotonic() < deadline:
            done = self.answered()
            if sample is not None and time.monotonic() - last_sample >= 1.0:
                last_sample = time.monotonic()
                sample.append((last_sample, len(self.sent) - done))
            if done >= count:
                return True
            time.sleep(0.2)
        return False

    def cpu(self) -> float:
        return sum(tree_cpu(p.pid) + p.cpu_dead for p in self.procs if p.popen is not None)

    def rss_mb(self, role: str = "worker") -> float:
        return sum(tree_rss_mb(p.pid) for p in self.procs if p.role in (role, "all") and p.popen is not None)

    def latencies(self) -> list[float]:
        replies = self.replies()
        return sorted(
            replies[(s.chat_id, s.message_id)][0] - s.at
            for s in self.sent
            if (s.chat_id, s.message_id) in replies
        )


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


@contextmanager
def rig(
    *,
    backend: str = "local",
    redis: bool = False,
    redis_persistent: bool = False,
    rekognition_latency: tuple[float, float] = (0.2, 0.6),
    account_tps: float | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Rig]:
    """Start the fakes (and a redis-server) and yield a rig; stop every process on the way out."""
    work = Path(tempfile.mkdtemp(prefix="photodetective-load-"))
    with FakeTelegram() as telegram:
        fake_rekognition = FakeRekognition() if backend == "rekognition" else None
        redis_server = RedisServer(work / "redis", persistent=redis_persistent) if redis else None
        if redis_server is not None:
            (work / "redis").mkdir()
            redis_server.start()
        base = {
            key: value for key, value in os.environ.items() if not key.startswith(("PHOTODETECTIVE_", "AWS_"))
        }
        base.update(
            {
                "PHOTODETECTIVE_TELEGRAM_TOKEN": TOKEN,
                "PHOTODETECTIVE_TELEGRAM_API_URL": telegram.url,
                "PHOTODETECTIVE_DATA_DIR": str(work / "data"),
                "PHOTODETECTIVE_BACKEND": backend,
                "PHOTODETECTIVE_QUOTA_DAILY_LIMIT": "100000",
                "PHOTODETECTIVE_QUOTA_BURST_LIMIT": "100000",
                "PHOTODETECTIVE_QUOTA_MAX_CONCURRENT": "1000",
                "PHOTODETECTIVE_QUOTA_GLOBAL_DAILY_CALLS": "",
                "PHOTODETECTIVE_LOG_LEVEL": "WARNING",
                "PHOTODETECTIVE_METRICS_PORT": "0",  # several processes on one host: no /metrics port each
            }
        )
        if redis_server is not None:
            base["PHOTODETECTIVE_REDIS_URL"] = redis_server.url
        try:
            if fake_rekognition is not None:
                fake_rekognition.start()
                fake_rekognition.set_latency(*rekognition_latency, seed=1)
                if account_tps:
                    fake_rekognition.limit_tps(account_tps)
                base.update(
                    {
                        "PHOTODETECTIVE_REKOGNITION_ENDPOINT_URL": fake_rekognition.url,
                        "PHOTODETECTIVE_REKOGNITION_REGION": "us-east-1",
                        "AWS_ACCESS_KEY_ID": "AKIDLOADTEST",
                        "AWS_SECRET_ACCESS_KEY": "load-test-secret",
                        "AWS_EC2_METADATA_DISABLED": "true",
                        "AWS_CONFIG_FILE": str(work / "no-aws-config"),
                        "AWS_SHARED_CREDENTIALS_FILE": str(work / "no-aws-credentials"),
                    }
                )
            base.update(env or {})
            the_rig = Rig(telegram, work, base, fake_rekognition, redis_server)
            try:
                yield the_rig
            finally:
                for proc in the_rig.procs:
                    proc.stop()
        finally:
            if fake_rekognition is not None:
                fake_rekognition.stop()
            if redis_server is not None:
                redis_server.stop()
