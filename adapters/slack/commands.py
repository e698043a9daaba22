"""The words of `/photodetective`: parsing its arguments and the texts it answers with.

Kept apart from the listeners so the wording can be read (and tested) in one place. Texts are
Slack mrkdwn; anything not written here (user input, store values) is escaped.
"""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo

from adapters.slack.render import escape, lines_mrkdwn
from bot.notices import quota_report, stats_report
from bot.quota.models import Stats, Usage
from core.analysis_types import Feature
from core.summary import feature_name

COMMAND = "/photodetective"
SHORTCUT_CALLBACK_ID = "analyze_photo"
ADMIN_SUBCOMMANDS = frozenset({"stats", "grant", "block", "unblock"})
MAX_GRANT = 10_000

_USER = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$|^([UW][A-Z0-9]{2,})$")

HELP = f"""*PhotoDetective* finds what is in a photo (objects, faces, text, content warnings) \
and reads its camera data.
• Share an image in a direct message with me, or mention me in the message that shares an image in a channel.
• Use the message shortcut *Analyze photo* on any message with an image.
• `{COMMAND} last` analyses the latest image shared in this conversation.
• `{COMMAND} <file link>` analyses the file behind a Slack file link (shared here, or your own).
• `{COMMAND} quota` shows how many photos you have left today.
• `{COMMAND} features` shows or changes what is analysed, e.g. `{COMMAND} features labels,text`.
• `{COMMAND} auto on|off|default` decides whether every image shared in this channel is analysed \
(default: only when I'm mentioned; every image in direct messages). Any member of the channel may \
change it, and the change is announced in the channel.
The answer (the photo with boxes, and a summary) comes in the photo's thread. \
A photo's GPS position is shown only in direct messages."""

ADMIN_HELP = f"""Admin subcommands:
• `{COMMAND} stats`: today's usage
• `{COMMAND} grant @user 5`: five more photos for today
• `{COMMAND} block @user`, `{COMMAND} unblock @user`"""

NOT_ADMIN = "That subcommand is only for PhotoDetective's admins."
NO_IMAGE_IN_MESSAGE = "That message has no image I can analyse."
CANT_SEE_CONVERSATION = (
    f"I can't read or post in this conversation. Invite me first (`/invite @PhotoDetective`), "
    f"or use `{COMMAND}` in a channel I'm in."
)
NO_RECENT_IMAGE = "I found no image among the latest {count} messages here."
FILE_NOT_HERE = (
    "I can only analyse a file that was shared in this conversation, or one you uploaded yourself."
)
MENTION_HINT = (
    f"Mention me in the message that shares an image, or in a thread under an image, or use `{COMMAND} last`."
)


def split_user(text: str) -> tuple[str | None, str]:
    """The user named first in `text` (see `parse_user`) and the rest: "<@U1|Ann Lee> 5" -> ("U1", "5")."""
    text = text.strip()
    end = text.find(">") + 1 if text.startswith("<") else len(text.split(" ", 1)[0])
    return parse_user(text[:end]), text[end:].strip()


def parse_user(text: str) -> str | None:
    """A user id from `<@U123|name>`, `<@U123>` or `U123`; None for anything else (like "@name").

    The slash command is declared with `should_escape: true` in the manifest, so Slack sends a
    picked user as `<@U123|name>`.
    """
    match = _USER.match(text.strip())
    if match is None:
        return None
    return match.group(1) or match.group(2)


def mention(user_key: str, team_id: str) -> str:
    """A Slack user key of this workspace as a mention; any other key as escaped text."""
    prefix = f"slack:{team_id}:"
    if user_key.startswith(prefix) and _USER.match(user_key[len(prefix) :]):
        return f"<@{user_key[len(prefix) :]}>"
    return escape(user_key)


def usage_text(usage: Usage, now: datetime, zone: ZoneInfo, admin: bool) -> str:
    """What `/photodetective quota` answers (the words are `bot.notices.quota_report`)."""
    return lines_mrkdwn(
        quota_report(usage, now, zone=zone, admin=admin, bot_name="PhotoDetective", compact=True)
    )


def features_text(current: frozenset[Feature], capabilities: frozenset[Feature]) -> str:
    """What `/photodetective features` answers: the user's analyses and how to change them."""
    order = list(Feature)
    chosen = ", ".join(feature_name(f) for f in order if f in current) or "none (camera data only)"
    choices = ", ".join(f"`{f.value}`" for f in order if f in capabilities) or "none with this recognizer"
    missing = [feature_name(f) for f in order if f in current and f not in capabilities]
    note = f"\nNot available with this recognizer: {', '.join(missing)}." if missing else ""
    return (
        f"Your photos get: {chosen}.{note}\n"
        f"Choose from {choices}, e.g. `{COMMAND} features labels,text`, "
        f"or `{COMMAND} features default`."
    )


def auto_status(every: bool | None, direct: bool) -> str:
    if every is None:
        default = "every image" if direct else "only images I'm mentioned on"
        return f"Here I analyse {default} (the default). Change it with `{COMMAND} auto on|off|default`."
    if every:
        return f"Here I analyse every image shared. Change it with `{COMMAND} auto off|default`."
    return f"Here I analyse only images I'm mentioned on. Change it with `{COMMAND} auto on|default`."


def auto_announcement(user_id: str, choice: bool | None, direct: bool) -> str:
    """The in-channel note when someone changes the setting, so everyone knows who and what."""
    if choice is None:
        what = "back to the default: " + ("every image" if direct else "only images I'm mentioned on")
    elif choice:
        what = "to analyse *every image* shared here"
    else:
        what = "to analyse only images I'm mentioned on"
    return f"<@{user_id}> set PhotoDetective {what}."


def stats_text(stats: Stats, team_id: str) -> str:
    """Today's numbers for admins (`bot.notices.stats_report`), this workspace's users as mentions."""
    return lines_mrkdwn(stats_report(stats), user=lambda key: mention(key, team_id))


def grant_text(user_id: str, usage: Usage) -> str:
    return f"<@{user_id}> now has {usage.remaining} photos left today ({usage.used} of {usage.limit} used)."
