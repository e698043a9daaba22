"""`photodetective web user add|remove|list`: the operator's accounts for the web page.

Registered under the `photodetective.commands` entry-point group, so bot/cli.py offers the
command without importing the adapter. `add` prints a one-time sign-in link (valid for
PHOTODETECTIVE_WEB_SIGNIN_LINK_HOURS); running it again for an existing account prints a new one.
"""

from __future__ import annotations

import argparse
import re
import secrets
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TextIO

from adapters.web.config import WebSettings
from adapters.web.store import WebStore, build_store
from bot.data_folder import operator_state
from bot.settings import ENV_PREFIX, Settings

Command = Callable[[argparse.Namespace, Settings, TextIO], Coroutine[Any, Any, int]]
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> Command:
    """Add `web` to the main parser; returns what runs it."""
    web = sub.add_parser("web", help="the web page's accounts (sign-in links)")
    web_sub = web.add_subparsers(dest="web_command", required=True)
    user = web_sub.add_parser("user", help="add, remove or list accounts")
    user_sub = user.add_subparsers(dest="action", required=True)
    add = user_sub.add_parser(
        "add",
        help="create an account, or sign it in again (ending its sessions): prints a one-time link",
    )
    add.add_argument("name")
    add.add_argument(
        "--keep-sessions",
        action="store_true",
        help="an extra device: leave the account's browsers signed in (default: sign them all out)",
    )
    user_sub.add_parser("remove", help="delete an account, its sessions and its results").add_argument("name")
    user_sub.add_parser("list", help="the accounts")
    return run


def signin_url(settings: Settings, token: str) -> str:
    base = settings.section(WebSettings).public_url or f"http://{settings.http_host}:{settings.http_port}"
    return f"{base}/signin/{token}"


@dataclass(frozen=True)
class IssuedLink:
    """What `web user add` did: whether the account is new, its link, and how many sessions ended."""

    created: bool
    url: str
    ended_sessions: int


async def issue_link(
    store: WebStore, settings: Settings, name: str, now: float, *, keep_sessions: bool = False
) -> IssuedLink:
    """Create the account if needed and a one-time sign-in link for it.

    A new link for an existing account is how a lost phone is dealt with, so it ends the
    account's sessions (every browser signs in again) unless `keep_sessions` (a second device).
    """
    created = await store.add_account(name, now)
    ended = 0 if keep_sessions else await store.end_sessions(name)
    token = secrets.token_urlsafe(24)
    hours = settings.section(WebSettings).signin_link_hours
    await store.add_signin(token, name, now + hours * 3600)
    return IssuedLink(created, signin_url(settings, token), ended)


def link_origin(settings: Settings) -> str:
    """Which settings the printed link comes from: run outside the service's environment, the
    defaults give a link to another host or port, and this says so (on stderr, beside the state)."""
    if settings.section(WebSettings).public_url:
        return f"links from {ENV_PREFIX}WEB_PUBLIC_URL"
    return (
        f"links from {ENV_PREFIX}HTTP_HOST and {ENV_PREFIX}HTTP_PORT ({ENV_PREFIX}WEB_PUBLIC_URL is not set)"
    )


async def run(args: argparse.Namespace, settings: Settings, out: TextIO) -> int:
    state = operator_state(settings)  # refuses a data folder that is not there (exit 2)
    print(f"{state}; {link_origin(settings)}" if args.action == "add" else state, file=sys.stderr)
    store = build_store(settings.redis_url, settings.data_dir)
    try:
        if args.action == "list":
            names = await store.accounts()
            print("\n".join(names) if names else "no accounts", file=out)
            return 0
        name = args.name
        if not NAME.match(name):
            raise ValueError(
                "an account name is 1-64 letters, digits and . _ @ - (starting with a letter or digit)"
            )
        if args.action == "add":
            issued = await issue_link(store, settings, name, time.time(), keep_sessions=args.keep_sessions)
            hours = settings.section(WebSettings).signin_link_hours
            verb = "created" if issued.created else "exists"
            count = issued.ended_sessions
            ended = f"; ended {count} session{'' if count == 1 else 's'}" if count else ""
            print(
                f"account {name} {verb}{ended}; one-time sign-in link (valid {hours:g} h):\n{issued.url}",
                file=out,
            )
            return 0
        removed = await store.remove_account(name)
        print(f"account {name} {'removed' if removed else 'did not exist'}", file=out)
        return 0 if removed else 1
    finally:
        await store.close()
