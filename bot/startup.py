"""Start-up failures an operator can act on: one line naming the cause and the setting, an exit code.

A traceback at start-up tells an operator little (127 lines for "the Bot API is unreachable") and
may print what it must not (the token is part of every Bot API URL). So start-up reports what it
knows as one of two exceptions, and `photodetective` prints the message alone:

- `bot.settings.SettingsError`: a setting is wrong (a refused token, no AWS region, a malformed
  URL, an address that cannot exist). Exit code 2: restarting will not help until it is changed.
- `StartupFailed`: the settings look right but something outside is not (a platform unreachable
  or slow, the port taken by another process). Exit code 1: a restart may well succeed.

Anything else is a bug, and keeps its traceback.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from redis.exceptions import RedisError

from bot.settings import ENV_PREFIX, SettingsError

EXIT_FAILED = 1
EXIT_CONFIGURATION = 2


class StartupFailed(Exception):
    """Start-up could not finish for a reason outside the settings; a restart may succeed."""


def listen_error(host: str, port: int, error: OSError) -> Exception:
    """Why the HTTP server could not listen, as the exception the CLI reports in one line.

    A port another process holds is a `StartupFailed` (the old instance may still be stopping);
    any other refusal (no such address, a privileged port) is a setting to change.
    """
    where = f"{host}:{port}"
    settings = f"{ENV_PREFIX}HTTP_HOST / {ENV_PREFIX}HTTP_PORT"
    reason = error.strerror or type(error).__name__
    if error.errno == errno.EADDRINUSE:
        return StartupFailed(
            f"Cannot listen on {where}: the port is in use by another process (see {settings})"
        )
    return SettingsError(f"Cannot listen on {where}: {reason} (check {settings})")


def without(secret: str, text: str) -> str:
    """`text` with every copy of `secret` masked, for messages built from a library's exception."""
    return text.replace(secret, "***") if secret else text


def writable_folder(folder: Path, setting: str) -> None:
    """Create `folder` if needed and check this user may write there, else a `SettingsError` naming it.

    A container volume owned by another user, or a path through a file, would otherwise surface as
    a traceback from deep inside SQLite or `mkdir`, long after the cause was set.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise SettingsError(f"Cannot create the data folder {folder}: {reason} (check {setting})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SettingsError(
            f"The data folder {folder} is not writable by this user (uid {os.getuid()}): "
            f"change its owner, or {setting}"
        )


def start_failure(platform: str, error: Exception) -> Exception:
    """What a platform adapter's failed start means for the operator, as one of the two exceptions.

    Adapters report what they know themselves (a refused token is a `SettingsError`); what is
    left is their stores and connections failing: Redis not answering, a SQLite file that cannot
    be opened, a connection refused. Anything else is returned as it is: a bug keeps its traceback.
    """
    if isinstance(error, SettingsError | StartupFailed):
        return error
    if isinstance(error, RedisError):
        return StartupFailed(
            f"{platform} could not start: Redis did not answer ({_first_line(error)}); "
            f"check that it is up and {ENV_PREFIX}REDIS_URL"
        )
    if isinstance(error, sqlite3.Error):
        return StartupFailed(
            f"{platform} could not start: its store failed ({type(error).__name__}: {_first_line(error)}); "
            f"check the data folder, {ENV_PREFIX}DATA_DIR"
        )
    if isinstance(error, OSError):  # a connection refused or reset, a name that does not resolve
        return StartupFailed(f"{platform} could not start: {type(error).__name__}: {_first_line(error)}")
    return error


def _first_line(error: BaseException) -> str:
    return (str(error).splitlines() or [type(error).__name__])[0]
