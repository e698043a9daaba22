"""Where commands run from a shell find the bot's state, and the refusal when it is not there.

Operator commands (`photodetective quota ...`, `jobs ...`, `web user ...`) read and change the
running bot's state. Run from another folder, or without the service's environment, the default
data folder (`data`, relative to the working directory) names some other folder: they used to
create it and answer from empty files ("0 of 20 photos used", a sign-in link no server knows).
So `operator_state` refuses when the SQLite data folder does not exist (the bot creates it when
it starts) and otherwise says, in one line for stderr, which state and which settings were used,
so a wrong environment shows at once. With Redis the data folder plays no part.

`analyze` is a one-off run, not an operator of the service: `analyze_state_folder` picks where it
keeps the Rekognition rate schedule, and never the folder it happens to be started from.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from bot.settings import ENV_PREFIX, Settings, SettingsError

DATA_DIR_FIELD = "data_dir"
DATA_DIR_VARIABLE = f"{ENV_PREFIX}DATA_DIR"
REDIS_URL_VARIABLE = f"{ENV_PREFIX}REDIS_URL"


class DataFolderMissing(SettingsError):
    """The SQLite data folder an operator command would read does not exist: a configuration error."""


def operator_state(settings: Settings) -> str:
    """One line naming the state an operator command works on, or DataFolderMissing.

    Never creates anything, and never prints a Redis password.
    """
    if settings.redis_url:
        return f"using Redis at {redacted_redis_url(settings.redis_url)} ({REDIS_URL_VARIABLE})"
    folder = settings.data_dir.absolute()
    if not folder.is_dir():
        raise DataFolderMissing(
            f"error: no data folder at {folder} ({_data_dir_origin(settings)}): run this where the bot "
            f"runs, with its {DATA_DIR_VARIABLE} or {REDIS_URL_VARIABLE} (the bot creates the folder "
            "when it starts)"
        )
    return f"using the data folder {folder} ({_data_dir_origin(settings)})"


def analyze_state_folder(settings: Settings, environ: Mapping[str, str] = os.environ) -> Path:
    """Where `analyze` keeps its Rekognition rate schedule (`rate.sqlite3`, nothing else).

    The bot's data folder when it is configured or already there, so a CLI run next to the bot
    shares the account's rate limit with it. Otherwise the user's cache folder
    (`$XDG_CACHE_HOME/photodetective`, default `~/.cache/photodetective`), shared by the user's
    own parallel runs: creating `./data` wherever the command happens to run would only leave
    litter. Without a usable home, a per-user folder in the temporary directory.
    """
    if DATA_DIR_FIELD in settings.model_fields_set or settings.data_dir.is_dir():
        return settings.data_dir
    cache = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    for folder in (
        Path(cache) / "photodetective",
        Path(tempfile.gettempdir()) / f"photodetective-{os.getuid()}",
    ):
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError:
            continue
        return folder
    return settings.data_dir


def redacted_redis_url(url: str) -> str:
    """scheme://host:port/db of a Redis URL: its user name and password stay out of the output."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ":?"
    return f"{parts.scheme}://{parts.hostname or 'localhost'}{port}{parts.path}"


def _data_dir_origin(settings: Settings) -> str:
    if DATA_DIR_FIELD in settings.model_fields_set:
        return f"{DATA_DIR_VARIABLE}={settings.data_dir}"
    return f"{DATA_DIR_VARIABLE} is not set, so 'data' in the current folder"
