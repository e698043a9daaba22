"""What every platform says about sizes, quotas and the queue: one set of reason codes, one wording.

Texts are neutral lines (`bot.presentation.Part`s): the CLI and Telegram's plain messages render
them with `plain_text`, Slack in mrkdwn, a web page in its templates. A platform may only choose
how the bot is named ("this bot", "PhotoDetective") and how a user key is shown (a mention).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.presentation import BULLET, Line, Part, Style, plain, title
from bot.queue.models import QueueStats
from bot.quota.models import Stats, Usage
from core.errors import PhotoRejected, TooLarge

#: The one reason code for "the file is over the size limit", whichever platform or step noticed.
TOO_LARGE = "too_large"


def photos(count: int) -> str:
    """ "1 photo", "3 photos": refusal messages are read by people."""
    return f"{count} photo" if count == 1 else f"{count} photos"


def megabytes(size: int) -> str:
    """Bytes as decimal megabytes with one decimal where it matters: "25", "1.5", "0.3"."""
    return f"{size / 1_000_000:.1f}".removesuffix(".0")


def describe_reset(resets_at: datetime, now: datetime) -> str:
    """ "at 00:00 UTC (in 5 h 12 min)": when a daily limit ends, in the quota's zone and as a delay."""
    seconds = max(int((resets_at - now).total_seconds()), 0)
    hours, minutes = divmod(seconds // 60, 60)
    delay = f"{hours} h {minutes} min" if hours else f"{max(minutes, 1)} min"
    return f"at {resets_at:%H:%M} {resets_at.tzname()} (in {delay})"


def too_large_message(size: int, limit: int, *, at_least: bool = False) -> str:
    """Say how big the file is against the limit, without rounding both to the same number.

    `at_least` when the size is only a lower bound (a download cut off once it passed the limit).
    """
    if at_least:
        return f"That file is more than {megabytes(limit)} MB; the limit is {megabytes(limit)} MB."
    if megabytes(size) == megabytes(limit):
        return f"That file is just over the {megabytes(limit)} MB limit."
    return f"That file is {megabytes(size)} MB; the limit is {megabytes(limit)} MB."


#: Core refusal codes that mean the same as TOO_LARGE (core.prepare checks the bytes once more).
_SAME_AS_TOO_LARGE = frozenset({"too_many_bytes"})


def reason_code(refusal: PhotoRejected) -> str:
    """The application's reason code for a refusal, so metrics and logs use one code per cause."""
    return TOO_LARGE if refusal.reason in _SAME_AS_TOO_LARGE else refusal.reason


def file_too_large(size: int, limit: int, *, at_least: bool = False) -> TooLarge:
    """The refusal for a file over `limit` bytes, with the shared reason code."""
    return TooLarge(TOO_LARGE, too_large_message(size, limit, at_least=at_least))


# ---------------------------------------------------------------------------------------------
# Quota and queue reports
# ---------------------------------------------------------------------------------------------


def blocked_text(bot_name: str) -> str:
    return f"You can't use {bot_name} at the moment. Ask its operator if you think this is a mistake."


def quota_report(
    usage: Usage,
    now: datetime,
    *,
    zone: ZoneInfo,
    admin: bool,
    bot_name: str = "this bot",
    compact: bool = False,
) -> tuple[Line, ...]:
    """What a user's quota question (/quota, `/photodetective quota`) is answered with.

    `compact` gives one paragraph, for platforms where the answer is a single short notice (a
    Slack slash command); otherwise one fact per line. The facts and their words are the same.
    The reset is shown in the quota's zone, whatever zone the store handed back, because that is
    the midnight the limit is counted to.
    """
    if usage.blocked:
        return ((plain(blocked_text(bot_name)),),)
    reset = f"Your quota resets {describe_reset(usage.resets_at.astimezone(zone), now)}."
    extra = f" (including {usage.extra} extra for today)" if usage.extra else ""
    admin_note = "As an admin, the limits don't apply to you."
    if compact:
        busy = f" {usage.active_jobs} in progress." if usage.active_jobs else ""
        line: list[Part] = [
            plain(f"You have used {usage.used} of {usage.limit} photos today{extra}: "),
            title(f"{usage.remaining} left"),
            plain(f".{busy} {reset}" + (f" {admin_note}" if admin else "")),
        ]
        return (tuple(line),)
    lines: list[Line] = [
        (
            plain(
                f"You have {photos(usage.remaining)} left today: {usage.used} of {usage.limit} used{extra}."
            ),
        ),
        (plain(reset),),
    ]
    if usage.active_jobs:
        lines.append((plain(f"{photos(usage.active_jobs)} of yours being analysed right now."),))
    if admin:
        lines.append((plain(admin_note),))
    return tuple(lines)


def usage_line(usage: Usage) -> str:
    """One user's day for operators (the CLI, and an admin's grant in a chat)."""
    state = "BLOCKED" if usage.blocked else f"{usage.remaining} left"
    return (
        f"{usage.user}: {usage.used} of {usage.limit} photos used on {usage.day} ({state}); "
        f"{usage.active_jobs} in progress; resets {usage.resets_at:%Y-%m-%d %H:%M %Z}"
    )


def stats_report(stats: Stats) -> tuple[Line, ...]:
    """Today's quota statistics for operators; user keys are USER parts (a platform may mention them)."""
    lines: list[Line] = [
        (title(str(stats.day)), plain(f": {stats.totals_text}")),
        (plain(f"refusals: {stats.refusals_text}"),),
    ]
    lines.extend((BULLET, Part(user.user, Style.USER), plain(f": {user.used}")) for user in stats.top_users)
    return tuple(lines)


def queue_report(stats: QueueStats) -> str:
    """The queue at a glance (the CLI and a chat's admin stats).

    How jobs ended: answered (done), apologised (dead, but the user was told: a failure notice or
    the apology for an answer that could not be delivered) and dead (all dead letters retained).
    """
    oldest = "-" if stats.oldest_queued_age_s is None else f"{stats.oldest_queued_age_s:.0f} s"
    return (
        f"{stats.queued} waiting, {stats.in_flight} in progress, "
        f"{stats.delivering} answers waiting for their platform; "
        f"{stats.done} answered, {stats.apologised} apologised, {stats.dead} dead; oldest waiting {oldest}"
    )


def plain_text(lines: Sequence[Line], user: Callable[[str], str] = str) -> str:
    """Neutral lines as plain text (no markup): the CLI, and chat messages sent without a parse mode."""

    def part_text(part: Part) -> str:
        if part.style is Style.BULLET:
            return "  "
        if part.style is Style.USER:
            return user(part.text)
        return part.text

    return "\n".join("".join(part_text(part) for part in line) for line in lines)
