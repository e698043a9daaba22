"""Faults under load: kill workers, restart Redis, make the Bot API fail, then count every answer.

    python bench/soak.py [--stores sqlite,redis] [--seconds 120] [--rate 1.0] [--kill-every 8]

For each store, one `--role ingress` and two `--role worker` processes (`bench/load_rig.py`: the
real `photodetective run`, the fake Bot API) take a steady stream of photos from 20 users while:

- every `--kill-every` seconds a worker is killed with SIGKILL (process group: the worker and its
  image pool, as the OOM killer would) and started again a second later, as a supervisor would;
- on Redis, a third of the way in, redis-server is restarted (SIGTERM, then started again on its
  append-only file, as a production Redis for the queue is configured);
- half way in, the fake Bot API answers 20 calls with 429 (retry_after 1), 20 with 500, and three
  getUpdates with 502.

With `--outage SECONDS` (the delivery test of issue 21), the Bot API instead has one long
outage starting `--outage-start` seconds in: for that long, sendPhoto answers 502 (nginx's HTML
page), sendMessage 500, sendDocument 429 with retry_after 30 and sendChatAction 503, while the
photo stream goes on (getUpdates and the file downloads still work, so photos keep arriving and
being analysed; their answers wait in the queue) and workers keep being killed. It prints the
queue just before the platform recovers and how long after recovery the last answer went out.

Then the stream stops, the faults stop, and the soak waits for the queue to drain. It checks, and
prints: every accepted photo answered exactly once (an analysis, or one apology when its job was
dead-lettered), none twice, none lost; quota charged once per analysis (the daily count of each
user equals their analyses, refunds equal apologies); the queue empty. Exit status 1 when any
check fails, so it can gate a release by hand. Timings are not asserted: the machine is shared.
"""

from __future__ import annotations

import argparse
import random
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_rig import QUEUED_NOTE, REPLY_METHODS, ROOT, Proc, Rig, photo_set, rig

from tests.fakes.faults import Fault

USERS = 20
VISIBILITY_S = 10.0  # a killed worker's jobs come back after this long (default 60; shorter to drain)


@dataclass
class Counts:
    store: str
    sent: int = 0
    analyses: int = 0
    apologies: int = 0
    twice: int = 0
    lost: int = 0
    kills: int = 0
    redis_restarts: int = 0
    bot_api_errors: int = 0
    charged: int = -1
    refunded: int = -1
    users_off: int = -1
    queue_left: str = "?"
    seconds: float = 0.0
    outage_s: float = 0.0
    queue_at_recovery: str = ""
    last_answer_after_recovery_s: float | None = None

    @property
    def ok(self) -> bool:
        return (
            self.twice == 0
            and self.lost == 0
            and self.analyses + self.apologies == self.sent
            and self.charged - self.refunded == self.analyses
            and self.users_off == 0
            and self.queue_left.startswith("0 waiting, 0 in progress")
        )


class Faults(threading.Thread):
    """The fault schedule, run beside the photo stream until `stop` is set."""

    def __init__(
        self,
        the_rig: Rig,
        workers: list[Proc],
        seconds: float,
        kill_every: float,
        outage: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.rig, self.workers, self.seconds, self.kill_every = the_rig, workers, seconds, kill_every
        self.outage = outage  # (start, length) in seconds from the start, instead of the short faults
        self.recovered_at: float | None = None  # monotonic time the outage ended
        self.stop = threading.Event()
        self.kills = self.redis_restarts = self.bot_api_errors = 0
        self.chance = random.Random(7)

    def begin_outage(self, length: float) -> None:
        """Every answering call fails, the way Telegram's front end and Bot API do, for `length` s."""
        until = time.monotonic() + length
        faults = self.rig.telegram.faults
        faults.add(Fault("status", "sendPhoto", 502, html=True, until=until))
        faults.add(Fault("status", "sendMessage", 500, error="Internal Server Error", until=until))
        faults.add(Fault("status", "sendDocument", 429, 30, "Too Many Requests: retry after 30", until=until))
        faults.add(Fault("status", "sendChatAction", 503, html=True, until=until))
        self.recovered_at = until

    def run(self) -> None:
        start = time.monotonic()
        next_kill = start + self.kill_every
        redis_at = start + self.seconds / 3 if self.rig.redis is not None else None
        bot_api_at: float | None = start + self.seconds / 2
        outage_at = None
        if self.outage is not None:
            outage_at, bot_api_at, redis_at = start + self.outage[0], None, None
        while not self.stop.wait(0.2):
            now = time.monotonic()
            if now >= next_kill:
                victim = self.chance.choice(self.workers)
                victim.kill()
                self.kills += 1
                time.sleep(1.0)
                victim.start()
                next_kill = now + self.kill_every
            if redis_at is not None and now >= redis_at and self.rig.redis is not None:
                self.rig.redis.stop()
                time.sleep(1.0)
                self.rig.redis.start()
                self.redis_restarts += 1
                redis_at = None
            if outage_at is not None and now >= outage_at and self.outage is not None:
                self.begin_outage(self.outage[1])
                outage_at = None
            if bot_api_at is not None and now >= bot_api_at:
                telegram = self.rig.telegram
                telegram.rate_limit(None, times=20, retry_after=1)
                telegram.fail(None, times=20, error_code=500, description="Internal Server Error")
                telegram.fail("getUpdates", times=3, error_code=502, description="Bad Gateway")
                self.bot_api_errors = 43
                bot_api_at = None


def _operator(the_rig: Rig, *args: str) -> str:
    """An operator command against the soak's stores, as an operator would run it."""
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "photodetective"), *args],
        env=the_rig.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


def _classify(the_rig: Rig, counts: Counts) -> dict[int, int]:
    """Fill in answered/apologised/twice/lost; return each user's number of analyses."""
    answers: dict[tuple[int, int], list[str]] = {}
    for call in the_rig.telegram.calls_to(*REPLY_METHODS, ok=True):
        if call.method == "sendMessage" and call.visible_text.startswith(QUEUED_NOTE):
            continue
        if call.chat_id is not None and call.reply_to_message_id is not None:
            answers.setdefault((call.chat_id, call.reply_to_message_id), []).append(call.method)
    per_user: dict[int, int] = {}
    for sent in the_rig.sent:
        got = answers.get((sent.chat_id, sent.message_id), [])
        if not got:
            counts.lost += 1
            print(f"  lost: chat {sent.chat_id} message {sent.message_id} update {sent.update_id}")
            continue
        if len(got) > 1:
            counts.twice += 1
            methods = ", ".join(got)
            print(f"  answered {len(got)} times: chat {sent.chat_id} message {sent.message_id} ({methods})")
        if got[0] == "sendMessage":
            counts.apologies += 1
        else:
            counts.analyses += 1
            per_user[sent.chat_id] = per_user.get(sent.chat_id, 0) + 1
    return per_user


def _check_quota(the_rig: Rig, counts: Counts, per_user: dict[int, int]) -> None:
    stats = _operator(the_rig, "quota", "stats")
    match = re.search(r"(\d+) photos charged, (\d+) refunded", stats)
    if match:
        counts.charged, counts.refunded = int(match[1]), int(match[2])
    off = 0
    for chat_id in sorted({s.chat_id for s in the_rig.sent}):
        shown = _operator(the_rig, "quota", "show", f"telegram:{chat_id}")
        used = re.search(r": (\d+) of \d+ photos used", shown)
        if used is None or int(used[1]) != per_user.get(chat_id, 0):
            off += 1
            print(f"  quota off for {chat_id}: {shown!r}, analyses {per_user.get(chat_id, 0)}")
    counts.users_off = off
    counts.queue_left = _operator(the_rig, "jobs", "stats")


def _ride_out_the_outage(the_rig: Rig, faults: Faults, counts: Counts) -> None:
    """Wait for the outage to end (workers still being killed), noting the queue shortly before.

    The snapshot starts 30 s early: the operator command is a process of its own, slow to start
    on a loaded machine, and must read the queue while the platform is still down.
    """
    while faults.recovered_at is None or time.monotonic() < faults.recovered_at - 30:
        time.sleep(1.0)
    counts.queue_at_recovery = _operator(the_rig, "jobs", "stats")
    late = time.monotonic() - faults.recovered_at
    print(f"  {-late:.0f} s before recovery: {counts.queue_at_recovery}", flush=True)
    while time.monotonic() < faults.recovered_at:
        time.sleep(0.2)


def _last_answer_after(the_rig: Rig, moment: float) -> float:
    replies = the_rig.replies()
    last = max((times[0] for times in replies.values()), default=moment)
    return max(0.0, last - moment)


def soak(
    store: str,
    seconds: float,
    rate: float,
    kill_every: float,
    log_level: str = "WARNING",
    outage: tuple[float, float] | None = None,
    backend: str = "local",
) -> Counts:
    counts = Counts(store)
    counts.outage_s = outage[1] if outage else 0.0
    env = {
        "PHOTODETECTIVE_JOB_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S),
        "PHOTODETECTIVE_WORKER_PROCESSES": "1",
        "PHOTODETECTIVE_QUOTA_DAILY_LIMIT": "1000",
        "PHOTODETECTIVE_LOG_LEVEL": log_level,
        "PHOTODETECTIVE_METRICS_PORT": "0",  # several processes on one host: no /metrics port each
    }
    started = time.monotonic()
    with rig(backend=backend, redis=store == "redis", redis_persistent=True, env=env) as the_rig:
        the_rig.spawn("ingress")
        workers = [the_rig.spawn("worker"), the_rig.spawn("worker")]
        the_rig.wait_ready()
        photos = photo_set()
        messages = the_rig.messages(photos, int(seconds * rate), USERS)
        faults = Faults(the_rig, workers, seconds, kill_every, outage)
        faults.start()
        the_rig.send(messages, rate)
        if outage is not None:
            _ride_out_the_outage(the_rig, faults, counts)
        faults.stop.set()
        faults.join()
        counts.kills, counts.redis_restarts = faults.kills, faults.redis_restarts
        counts.bot_api_errors = faults.bot_api_errors
        counts.sent = len(the_rig.sent)
        # Jobs of a killed worker come back after the visibility timeout, up to the attempt limit.
        the_rig.wait_answered(counts.sent, 600)
        if faults.recovered_at is not None:
            counts.last_answer_after_recovery_s = _last_answer_after(the_rig, faults.recovered_at)
        time.sleep(3 * VISIBILITY_S)  # long enough for a second answer to show, if one were coming
        per_user = _classify(the_rig, counts)
        _check_quota(the_rig, counts, per_user)
        print(f"  logs: {the_rig.work}")
    counts.seconds = time.monotonic() - started
    return counts


HEADER = (
    "| store | sent | analysed | apologised (dead-lettered) | answered twice | lost | SIGKILLs "
    "| Redis restarts | Bot API errors | charged - refunded | users' counts off | queue after | checks |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def row(c: Counts) -> str:
    return (
        f"| {c.store} | {c.sent} | {c.analyses} | {c.apologies} | {c.twice} | {c.lost} | {c.kills} | "
        f"{c.redis_restarts} | {c.bot_api_errors} | {c.charged} - {c.refunded} = {c.charged - c.refunded} | "
        f"{c.users_off} | {c.queue_left.split(';')[0]} | {'pass' if c.ok else 'FAIL'} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stores", default="sqlite,redis")
    parser.add_argument("--seconds", type=float, default=120.0, help="length of the photo stream")
    parser.add_argument("--rate", type=float, default=1.0, help="photos per second")
    parser.add_argument("--kill-every", type=float, default=8.0, help="seconds between worker SIGKILLs")
    parser.add_argument("--log-level", default="WARNING", help="the bot's log level (INFO to trace a loss)")
    parser.add_argument("--outage", type=float, default=0.0, help="seconds of Bot API outage (0: none)")
    parser.add_argument("--outage-start", type=float, default=20.0, help="seconds in when it starts")
    parser.add_argument("--backend", default="local", help="recognizer backend of the bot (none: EXIF only)")
    args = parser.parse_args()
    outage = (args.outage_start, args.outage) if args.outage > 0 else None
    results = []
    for store in args.stores.split(","):
        print(f"soak on {store}: {args.seconds:g} s at {args.rate:g} photos/s", flush=True)
        results.append(
            soak(store, args.seconds, args.rate, args.kill_every, args.log_level, outage, args.backend)
        )
        print(row(results[-1]), flush=True)
        if outage is not None:
            after = results[-1].last_answer_after_recovery_s
            print(f"  outage {args.outage:g} s; last answer {after} s after recovery", flush=True)
    print()
    print(HEADER)
    print("\n".join(row(c) for c in results))
    return 0 if all(c.ok for c in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
