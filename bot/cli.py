"""The `photodetective` command: analyse photos from the shell, and (later) run and operate the bot.

`analyze` is the batch path: it goes on past a failed photo with a clear message and exits
non-zero at the end if any failed, so scripts can both read every result and notice failures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from importlib.metadata import entry_points, version
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from bot.analysis_json import analysis_json, error_json
from bot.data_folder import analyze_state_folder
from bot.logs import configure_logging
from bot.notices import TOO_LARGE, too_large_message
from bot.operator_cli import add_operator_commands, run_operator_command
from bot.queue import QueueError
from bot.quota import QuotaStoreError
from bot.redaction import configured_secrets
from bot.runner import run_until_signalled
from bot.settings import Settings, SettingsError, load_settings, parse_features
from bot.startup import StartupFailed
from bot.wiring import build_recognizer
from core.analysis_types import Feature, Photo
from core.errors import PhotoDetectiveError, PhotoRejected, RecognizerError
from core.pipeline import PhotoResult, analyze_photo
from core.recognizers.base import Recognizer
from core.summary import build_summary, render_text

#: Commands an installed adapter adds (`photodetective web ...`); bot/ never imports adapters.
COMMANDS_ENTRY_POINT_GROUP = "photodetective.commands"
PluginCommand = Callable[[argparse.Namespace, Settings, TextIO], Coroutine[Any, Any, int]]

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2


def _features_arg(text: str) -> frozenset[Feature]:
    try:
        return parse_features(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser(plugins: dict[str, PluginCommand] | None = None) -> argparse.ArgumentParser:
    """The argument parser, separate from `main` so the README's usage can be checked against it.

    Each `photodetective.commands` entry point is a function that adds its sub-command to the
    parser and returns what runs it; those are collected in `plugins` when given.
    """
    parser = argparse.ArgumentParser(
        prog="photodetective",
        description="Analyse photos (labels, faces, text, moderation, EXIF); write annotated images.",
    )
    # The installed distribution's version (pyproject.toml), so a bug report can say which release it is.
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('photodetective')}")
    sub = parser.add_subparsers(dest="command", required=True)
    analyze = sub.add_parser("analyze", help="analyse photo files and write annotated copies")
    analyze.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    analyze.add_argument(
        "--out", type=Path, default=Path("."), help="folder for NAME.annotated.jpg (default: .)"
    )
    analyze.add_argument(
        "--json", action="store_true", help="print one JSON document per photo, one per line"
    )
    analyze.add_argument(
        "--features",
        type=_features_arg,
        default=None,
        help="comma separated: labels,faces,text,moderation,properties,celebrities, or all, or none "
        "(none: EXIF and preparation only, no recognizer call). Default: PHOTODETECTIVE_FEATURES.",
    )
    analyze.add_argument(
        "--backend",
        choices=["auto", "rekognition", "local", "none"],
        default=None,
        help="recognizer (default: PHOTODETECTIVE_BACKEND, auto)",
    )
    analyze.add_argument("--hide-location", action="store_true", help="leave GPS out of the summary and JSON")
    analyze.add_argument(
        "--no-progress", action="store_true", help="no progress bar, even for several photos"
    )
    run = sub.add_parser("run", help="run the bot: every configured chat platform and the workers")
    run.add_argument(
        "--role",
        choices=["all", "ingress", "worker"],
        default="all",
        help="all (default), or split receiving (ingress) from processing (worker) across containers",
    )
    add_operator_commands(sub)
    for entry in sorted(entry_points(group=COMMANDS_ENTRY_POINT_GROUP), key=lambda e: e.name):
        command: PluginCommand = entry.load()(sub)
        if plugins is not None:
            plugins[entry.name] = command
    return parser


class _OutputNames:
    """Annotated file names in the output folder, unique within one run (two inputs may share a name)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.used: set[str] = set()

    def next(self, photo: Path) -> Path:
        stem = photo.stem or "photo"
        name, n = f"{stem}.annotated.jpg", 1
        while name in self.used:
            n += 1
            name = f"{stem}-{n}.annotated.jpg"
        self.used.add(name)
        return self.folder / name


def _read_photo(path: Path, max_bytes: int) -> Photo:
    """Read a photo file, refusing an oversized one from its size before reading it."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise PhotoRejected(TOO_LARGE, too_large_message(size, max_bytes))
        return Photo(data=path.read_bytes(), name=path.name)
    except FileNotFoundError:
        raise PhotoRejected("not_found", "No such file.") from None
    except IsADirectoryError:
        raise PhotoRejected("not_a_file", "That is a folder, not a photo file.") from None
    except PermissionError:
        raise PhotoRejected("unreadable", "Permission denied when reading the file.") from None


async def _analyze_all(args: argparse.Namespace, settings: Settings, out: TextIO, err: TextIO) -> int:
    # The rate schedule goes to the bot's data folder or the user's cache, never ./data (bot.data_folder).
    settings = settings.model_copy(update={"data_dir": analyze_state_folder(settings)})
    features: frozenset[Feature] = settings.features if args.features is None else args.features
    recognizer: Recognizer
    if not features:
        choice = build_recognizer(settings, "none")
    else:
        choice = build_recognizer(settings, args.backend)
        if choice.note:
            print(f"note: {choice.note}", file=err)
    recognizer = choice.recognizer
    limits = settings.image_limits()
    show_location = settings.show_location_cli and not args.hide_location
    names = _OutputNames(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    failures = 0
    photos: list[Path] = args.photos
    # A bar only helps a person watching a terminal; in logs and pipes it is noise.
    show_bar = len(photos) > 1 and not args.no_progress and err.isatty()
    with tqdm(
        total=len(photos),
        unit="photo",
        file=err,
        disable=not show_bar,
        leave=False,
        mininterval=0,
        miniters=1,
    ) as bar:
        for path in photos:
            try:
                photo = await asyncio.to_thread(_read_photo, path, limits.max_bytes)
                result = await analyze_photo(photo, recognizer, features, limits)
            except (PhotoRejected, RecognizerError) as exc:
                failures += 1
                reason = exc.reason if isinstance(exc, PhotoRejected) else "recognizer"
                _emit_failure(args, path, reason, str(exc), out, err)
            except PhotoDetectiveError as exc:
                failures += 1
                _emit_failure(args, path, "error", str(exc), out, err)
            else:
                target = names.next(path)
                await asyncio.to_thread(target.write_bytes, result.annotated_jpeg)
                _emit_result(args, path, target, result, recognizer, features, show_location, out)
            bar.update(1)
    return EXIT_SOME_FAILED if failures else EXIT_OK


def _emit_failure(
    args: argparse.Namespace, path: Path, reason: str, message: str, out: TextIO, err: TextIO
) -> None:
    tqdm.write(f"{path}: {message}", file=err)
    if args.json:
        tqdm.write(json.dumps(error_json(str(path), reason, message), ensure_ascii=False), file=out)


def _emit_result(
    args: argparse.Namespace,
    path: Path,
    target: Path,
    result: PhotoResult,
    recognizer: Recognizer,
    features: frozenset[Feature],
    show_location: bool,
    out: TextIO,
) -> None:
    if args.json:
        document = analysis_json(
            result.analysis,
            result.prepared,
            file=str(path),
            annotated=str(target),
            include_location=show_location,
        )
        tqdm.write(json.dumps(document, ensure_ascii=False), file=out)
        return
    summary = build_summary(
        result.analysis,
        result.prepared.exif,
        show_location=show_location,
        capabilities=recognizer.capabilities,
        requested=features,
    )
    tqdm.write(f"== {path} -> {target}\n{render_text(summary)}\n", file=out)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Entry point of the `photodetective` console script; returns the process exit code."""
    out = out or sys.stdout
    err = err or sys.stderr
    plugins: dict[str, PluginCommand] = {}
    args = build_parser(plugins).parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(str(exc), file=err)
        return EXIT_USAGE
    if args.command == "analyze":
        try:
            return asyncio.run(_analyze_all(args, settings, out, err))
        except SettingsError as exc:
            print(str(exc), file=err)
            return EXIT_USAGE
    if args.command == "run":
        configure_logging(settings.log_format, settings.log_level, configured_secrets(settings))
        try:
            asyncio.run(run_until_signalled(settings, args.role))
        except (SettingsError, StartupFailed) as exc:
            # One line an operator can act on, in the log's own format; never a traceback (bot.startup).
            log.error("%s", exc)
            return EXIT_USAGE if isinstance(exc, SettingsError) else EXIT_SOME_FAILED
        return EXIT_OK
    try:
        if args.command in plugins:
            return asyncio.run(plugins[args.command](args, settings, out))
        return asyncio.run(run_operator_command(args, settings, out))
    except SettingsError as exc:  # bot.data_folder.DataFolderMissing: the wrong environment
        print(str(exc), file=err)
        return EXIT_USAGE
    except (QuotaStoreError, QueueError, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_SOME_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
