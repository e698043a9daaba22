"""End-to-end throughput of the real bot processes, against the fake Bot API (and fake Rekognition).

    python bench/throughput.py [--scenarios embedded,rekognition,scale,burst,memory] [--photos N]
                               [--minutes M] [--baseline DIR]

Every number comes from `photodetective run` processes started as a self-hoster would
(`bench/load_rig.py`), fed Telegram updates from the fake Bot API on 127.0.0.1:

- embedded: one process (`--role all`, SQLite), the embedded recognizer. First a calibration,
  photos one at a time, gives the CPU seconds of one photo; the bound is cores / that, in the same
  run. Then a stream faster than the bound, and the throughput against it. With `--baseline DIR`
  (another checkout, e.g. `git worktree add /tmp/engine-base <commit>`), that checkout's code
  runs the same scenario, taking turns with this one, so a shared machine's load falls on both.
- rekognition: the fake endpoint answers after 200-600 ms and enforces a 10-TPS quota per API;
  the bot's shared gate is set to 8. The bound is then the gate (8 photos/s: each photo makes one
  call per API), not our CPU, and many photos are in flight at once.
- scale: Redis, one `--role ingress` and 1, 2 and 4 `--role worker` processes, embedded recognizer,
  each worker taking `--jobs-per-worker` jobs at once (default 1: one core's worth of work).
- burst: 500 updates at once to an ingress; the time until all are confirmed to Telegram (i.e.
  queued), then workers (fast fake Rekognition) answer every one; each must be answered once.
- memory: a steady stream under the bound for M minutes (default 10); worker RSS over time.
- describe: no recognizer, the describer on (`openai` backend) against the fake OpenAI-compatible
  server answering after 1-3 s with 4 answers at once (a model server's batch): the bound is the
  fake's rate, 4 / 2 s = 2 photos/s. First photos without the describer and with it, both well
  under the bound (the latency it adds), then a stream at twice the bound.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_rig import Rig, median, percentile, photo_set, rig

from tests.fakes.openai_api import FakeOpenAI

CORES = os.cpu_count() or 1


def _stream(
    the_rig: Rig, photos: list[tuple[str, bytes]], count: int, rate: float, users: int = 10
) -> dict[str, float]:
    """Send `count` photos at `rate`/s, wait for every reply; throughput, latency, CPU and memory."""
    messages = the_rig.messages(photos, count, users)
    cpu0, start = the_rig.cpu(), time.monotonic()
    backlog: list[tuple[float, int]] = []
    rss: list[float] = []
    first = len(the_rig.sent)
    the_rig.send(messages, rate)
    deadline = time.monotonic() + 60 + count * 5
    while the_rig.answered() < len(the_rig.sent) and time.monotonic() < deadline:
        rss.append(the_rig.rss_mb())
        backlog.append((time.monotonic() - start, len(the_rig.sent) - the_rig.answered()))
        time.sleep(1.0)
    cpu = the_rig.cpu() - cpu0
    # The stream ends with its last reply, not with the poll that noticed it (up to a second later,
    # several percent of a short stream).
    replies = the_rig.replies()
    keys = [(s.chat_id, s.message_id) for s in the_rig.sent[first:]]
    last = [replies[key][0] for key in keys if key in replies]
    wall = (max(last) if last else time.monotonic()) - start
    latencies = the_rig.latencies()[first:] if first == 0 else _latencies_since(the_rig, first)
    answered = sum(1 for _ in latencies)
    return {
        "photos": count,
        "answered": answered,
        "per_min": 60 * answered / wall,
        "p50": median(latencies),
        "p95": percentile(latencies, 0.95),
        "max": max(latencies, default=float("nan")),
        "cpu_use": cpu / wall / CORES,
        "cpu_per_photo": cpu / max(answered, 1),
        "rss_max": max(rss, default=the_rig.rss_mb()),
        "backlog_max": max((b for _, b in backlog), default=0),
    }


def _latencies_since(the_rig: Rig, first: int) -> list[float]:
    replies = the_rig.replies()
    return sorted(
        replies[(s.chat_id, s.message_id)][0] - s.at
        for s in the_rig.sent[first:]
        if (s.chat_id, s.message_id) in replies
    )


def _calibrate(the_rig: Rig, photos: list[tuple[str, bytes]], rounds: int = 2, warm: int = 1) -> float:
    """CPU seconds of one photo: each photo of the set sent alone, waiting for its reply.

    First `warm` photos at once (at least as many as jobs the workers take together), so every
    worker has loaded its models before the count starts: loading is not a photo's cost.
    """
    messages = the_rig.messages(photos, len(photos) * rounds, 1)
    the_rig.send(the_rig.messages(photos, warm, warm), None)
    the_rig.wait_answered(len(the_rig.sent), 120)
    cpu0 = the_rig.cpu()
    for message in messages:
        the_rig.send([message], None)
        if not the_rig.wait_answered(len(the_rig.sent), 120):
            raise RuntimeError("calibration photo not answered")
    return (the_rig.cpu() - cpu0) / len(messages)


def _row(name: str, result: dict[str, float], bound_per_min: float | None, note: str = "") -> str:
    ratio = f"{result['per_min'] / bound_per_min:.0%}" if bound_per_min else "-"
    bound = f"{bound_per_min:.0f}" if bound_per_min else "-"
    return (
        f"| {name} | {result['answered']:.0f}/{result['photos']:.0f} | {result['per_min']:.0f} | "
        f"{bound} | {ratio} | "
        f"{result['p50']:.1f} / {result['p95']:.1f} / {result['max']:.1f} | {result['cpu_use']:.0%} | "
        f"{result['cpu_per_photo']:.2f} | {result['rss_max']:.0f} | {result['backlog_max']:.0f} | {note} |"
    )


HEADER = (
    "| scenario | answered | photos/min | bound/min | of bound | latency s p50 / p95 / max | CPU use | "
    "CPU s/photo | RSS MB max | max backlog | note |\n|---|---|---|---|---|---|---|---|---|---|---|"
)


def embedded(
    photos: list[tuple[str, bytes]], count: int, concurrency: int | None = None, code: Path | None = None
) -> list[str]:
    env = {"PHOTODETECTIVE_WORKER_CONCURRENCY": str(concurrency)} if concurrency else {}
    if code is not None:  # the bot's processes import that checkout instead of this one
        env["PYTHONPATH"] = str(code.resolve())
    with rig(env=env) as the_rig:
        the_rig.spawn("all")
        the_rig.wait_ready()
        per_photo = _calibrate(the_rig, photos, rounds=3)
        bound = 60 * CORES / per_photo
        # Whole rounds of the photo set, so the stream's mix of small and large photos is the
        # calibration's (one extra 12 MP photo in 30 moves the ratio by several points).
        whole = -(-count // len(photos)) * len(photos)
        result = _stream(the_rig, photos, whole, rate=2 * bound / 60)
        jobs = f", {concurrency} jobs at once" if concurrency else ""
        jobs += f", code of {code}" if code is not None else ""
        return [
            _row(
                f"embedded, SQLite, 1 process{jobs}", result, bound, f"calibrated {per_photo:.2f} CPU s/photo"
            )
        ]


def rekognition(photos: list[tuple[str, bytes]], count: int) -> list[str]:
    gate = 8
    env = {"PHOTODETECTIVE_REKOGNITION_TPS": str(gate), "PHOTODETECTIVE_WORKER_CONCURRENCY": "32"}
    with rig(backend="rekognition", account_tps=10, env=env) as the_rig:
        the_rig.spawn("all")
        the_rig.wait_ready()
        result = _stream(the_rig, photos, count, rate=2 * gate)
        assert the_rig.rekognition is not None
        throttled = the_rig.rekognition.throttled()
        return [
            _row(
                "Rekognition fake (200-600 ms, 10 TPS/API), gate 8, 32 in flight",
                result,
                60 * gate,
                f"{throttled} throttled calls",
            )
        ]


def scale(photos: list[tuple[str, bytes]], count: int, jobs_per_worker: int = 1) -> list[str]:
    """Ingress + 1, 2 and 4 worker processes on one Redis, each taking `jobs_per_worker` jobs at once.

    One job per worker makes a worker one core's worth of work, so the table shows the growth
    from 1 to 2 workers and where it stops on this machine's cores.
    """
    rows = []
    for workers in (1, 2, 4):
        env = {
            "PHOTODETECTIVE_WORKER_PROCESSES": "1",
            "PHOTODETECTIVE_WORKER_CONCURRENCY": str(jobs_per_worker),
        }
        with rig(redis=True) as the_rig:
            the_rig.spawn("ingress")
            for _ in range(workers):
                the_rig.spawn("worker", env)
            the_rig.wait_ready()
            per_photo = _calibrate(the_rig, photos, rounds=1, warm=2 * workers * jobs_per_worker)
            bound = 60 * CORES / per_photo
            result = _stream(the_rig, photos, count, rate=2 * bound / 60)
            name = f"embedded, Redis, ingress + {workers} worker(s), {jobs_per_worker} job(s) each"
            rows.append(_row(name, result, bound))
    return rows


def burst(photos: list[tuple[str, bytes]], count: int = 500) -> list[str]:
    env = {"PHOTODETECTIVE_REKOGNITION_TPS": "0", "PHOTODETECTIVE_WORKER_CONCURRENCY": "16"}
    small = [p for p in photos if p[0] == "photo"] or photos
    with rig(backend="rekognition", redis=True, rekognition_latency=(0.01, 0.03), env=env) as the_rig:
        the_rig.spawn("ingress")
        the_rig.wait_ready()
        messages = the_rig.messages(small, count, 50)
        start = time.monotonic()
        the_rig.send(messages, None)
        last = the_rig.sent[-1].update_id
        deadline = start + 60
        while the_rig.telegram.confirmed_below <= last and time.monotonic() < deadline:
            time.sleep(0.05)
        accepted_s = time.monotonic() - start
        for _ in range(2):
            the_rig.spawn("worker", {"PHOTODETECTIVE_WORKER_PROCESSES": "1"})
        done = the_rig.wait_answered(count, 600)
        replies = the_rig.replies()
        counts = [len(replies.get((s.chat_id, s.message_id), [])) for s in the_rig.sent]
        return [
            f"burst of {count} updates: all confirmed (queued) in {accepted_s:.1f} s; answered "
            f"{sum(1 for c in counts if c)} ({'all' if done else 'NOT all'}), "
            f"{sum(1 for c in counts if c > 1)} answered twice, {sum(1 for c in counts if not c)} lost"
        ]


def memory(photos: list[tuple[str, bytes]], minutes: float) -> list[str]:
    with rig() as the_rig:
        proc = the_rig.spawn("all")
        the_rig.wait_ready()
        per_photo = _calibrate(the_rig, photos, rounds=1)
        rate = 0.7 * CORES / per_photo  # a steady stream under the bound
        samples: list[tuple[float, float]] = []
        start = time.monotonic()
        index = 0
        while time.monotonic() - start < minutes * 60:
            the_rig.send(the_rig.messages(photos[index % len(photos) : index % len(photos) + 1], 1, 1), None)
            index += 1
            if not samples or time.monotonic() - samples[-1][0] - start >= 30:
                samples.append((time.monotonic() - start, the_rig.rss_mb()))
            time.sleep(1 / rate)
        the_rig.wait_answered(len(the_rig.sent), 300)
        samples.append((time.monotonic() - start, the_rig.rss_mb()))
        del proc
        trace = ", ".join(f"{t / 60:.0f} min {mb:.0f}" for t, mb in samples[:: max(1, len(samples) // 8)])
        return [
            f"memory over {minutes:g} min at {rate * 60:.0f} photos/min ({index} photos, "
            f"{the_rig.answered()} "
            f"answered): RSS MB {trace}; first {samples[0][1]:.0f}, last {samples[-1][1]:.0f}, "
            f"max {max(mb for _, mb in samples):.0f}"
        ]


def describe(photos: list[tuple[str, bytes]], count: int, parallel: int = 4) -> list[str]:
    """The describe stage against a model server limited to `parallel` answers of 1-3 s each."""
    bound = parallel / 2.0  # photos per second: `parallel` slots, 2 s on average each
    rows: list[str] = []
    env = {"PHOTODETECTIVE_WORKER_CONCURRENCY": "16", "PHOTODETECTIVE_METRICS_PORT": "0"}
    with rig(backend="none", env=env) as the_rig:
        the_rig.spawn("all")
        the_rig.wait_ready()
        result = _stream(the_rig, photos, count, rate=bound / 2)
        rows.append(_row("no recognizer, describer off", result, None, f"sent at {bound / 2:g}/s"))
    fake = FakeOpenAI(seed=3)
    fake.set_latency(1.0, 3.0)
    fake.set_parallel(parallel)
    with fake:
        described = {
            **env,
            "PHOTODETECTIVE_DESCRIBE_BACKEND": "openai",
            "PHOTODETECTIVE_DESCRIBE_URL": fake.url + "/v1",
            "PHOTODETECTIVE_DESCRIBE_MODEL": "fake-vision",
        }
        with rig(backend="none", env=described) as the_rig:
            the_rig.spawn("all")
            the_rig.wait_ready()
            result = _stream(the_rig, photos, count, rate=bound / 2)
            rows.append(_row("describer on, under the bound", result, None, f"sent at {bound / 2:g}/s"))
            result = _stream(the_rig, photos, count * 2, rate=bound * 2)
            note = f"sent at {bound * 2:g}/s; {len(fake.seen)} model calls, at most {fake.busiest} at once"
            rows.append(_row(f"describer on, fake 1-3 s x {parallel}", result, 60 * bound, note))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", default="embedded,rekognition,scale,burst")
    parser.add_argument("--photos", type=int, default=30, help="photos per throughput scenario")
    parser.add_argument("--concurrency", type=int, help="PHOTODETECTIVE_WORKER_CONCURRENCY for 'embedded'")
    parser.add_argument("--jobs-per-worker", type=int, default=1, help="WORKER_CONCURRENCY for 'scale'")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the memory scenario")
    parser.add_argument("--baseline", type=Path, help="'embedded' also with this checkout's code, in turns")
    args = parser.parse_args()
    photos = photo_set()
    chosen = args.scenarios.split(",")
    print(f"{CORES} cores; photos: {', '.join(f'{k} {len(d) // 1000} kB' for k, d in photos)}", flush=True)
    table: list[str] = []
    notes: list[str] = []
    if "embedded" in chosen:
        for code in [None, args.baseline, None, args.baseline] if args.baseline else [None]:
            table += embedded(photos, args.photos, args.concurrency, code)
            print(table[-1], flush=True)
    if "rekognition" in chosen:
        table += rekognition(photos, args.photos * 4)
        print(table[-1], flush=True)
    if "scale" in chosen:
        table += scale(photos, args.photos, args.jobs_per_worker)
        print("\n".join(table[-3:]), flush=True)
    if "burst" in chosen:
        notes += burst(photos)
        print(notes[-1], flush=True)
    if "describe" in chosen:
        table += describe(photos, args.photos)
        print("\n".join(table[-3:]), flush=True)
    if "memory" in chosen:
        notes += memory(photos, args.minutes)
        print(notes[-1], flush=True)
    print()
    print(HEADER)
    print("\n".join(table))
    print()
    print("\n".join(f"- {note}" for note in notes))


if __name__ == "__main__":
    main()
