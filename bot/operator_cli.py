"""Operator commands: `photodetective quota ...` and `photodetective jobs ...`.

They talk to the same stores the bot uses (SQLite files in the data folder, or Redis), so an
operator can look at and change live state without restarting anything.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TextIO

from bot.data_folder import operator_state
from bot.notices import plain_text, queue_report, stats_report, usage_line
from bot.settings import Settings
from bot.wiring import build_service, build_stores


def add_operator_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `quota` and `jobs` on the main parser."""
    quota = sub.add_parser("quota", help="show or change a user's quota (users look like telegram:123)")
    quota_sub = quota.add_subparsers(dest="action", required=True)
    quota_sub.add_parser("show", help="what a user has used and has left today").add_argument("user")
    grant = quota_sub.add_parser("grant", help="give a user extra photos for today")
    grant.add_argument("user")
    grant.add_argument("extra", type=int)
    quota_sub.add_parser("block", help="refuse all photos from a user").add_argument("user")
    quota_sub.add_parser("unblock", help="let a blocked user in again").add_argument("user")
    quota_sub.add_parser("stats", help="today's usage statistics")
    jobs = sub.add_parser("jobs", help="look at the job queue")
    jobs_sub = jobs.add_subparsers(dest="action", required=True)
    jobs_sub.add_parser("stats", help="queued, in flight, done, dead, oldest waiting")
    dead = jobs_sub.add_parser("dead", help="jobs that failed for good, newest first")
    dead.add_argument("--limit", type=int, default=20)


async def run_operator_command(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    """Carry out one operator command against the configured stores; returns the exit code.

    The stores must already exist: a data folder that is not there is refused (DataFolderMissing,
    exit 2) rather than created empty, and stderr says which state was used.
    """
    print(operator_state(settings), file=sys.stderr)
    stores = build_stores(settings)
    try:
        service = build_service(settings, stores, capabilities=frozenset())
        if args.command == "quota":
            if args.action == "show":
                print(usage_line(await service.usage(args.user)), file=out)
            elif args.action == "grant":
                print(usage_line(await service.grant(args.user, args.extra)), file=out)
            elif args.action == "block":
                changed = await service.block(args.user)
                print(f"{args.user} {'blocked' if changed else 'was already blocked'}", file=out)
            elif args.action == "unblock":
                changed = await service.unblock(args.user)
                print(f"{args.user} {'unblocked' if changed else 'was not blocked'}", file=out)
            elif args.action == "stats":
                print(plain_text(stats_report(await service.stats())), file=out)
            return 0
        if args.action == "stats":
            print(queue_report(await stores.queue.stats(time.time())), file=out)
        else:
            letters = await stores.queue.dead_letters(args.limit)
            if not letters:
                print("no dead jobs", file=out)
            for letter in letters:
                died = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(letter.died_at))
                print(
                    f"{letter.job_id}  {died} UTC  {letter.user}  {letter.attempts} attempts  {letter.error}",
                    file=out,
                )
        return 0
    finally:
        await stores.close()
