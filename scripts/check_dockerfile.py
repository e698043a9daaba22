"""Check the Dockerfile as far as a machine without a container engine can.

1. hadolint finds no warning (run separately by `make lint`).
2. Every file or folder the build stage COPYs from the context exists.
3. The build stage's commands work: a fresh folder holding only what the Dockerfile copies, a fresh
   virtual environment in place of /opt/photodetective, and the same RUN lines, rewritten to those
   paths. That catches a file missing from COPY, a dependency missing from pyproject.toml, and a
   broken model install step.
4. The final stage's HEALTHCHECK command is valid Python.

    python scripts/check_dockerfile.py [--skip-install]
"""

from __future__ import annotations

import argparse
import ast
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = "/opt/photodetective"


def logical_lines(dockerfile: Path) -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    lines: list[str] = []
    current = ""
    for raw in dockerfile.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    return lines


def build_stage(lines: list[str]) -> list[str]:
    """The instructions of the first stage (the one that installs), up to the next FROM."""
    stage: list[str] = []
    seen_from = False
    for line in lines:
        if line.upper().startswith("FROM "):
            if seen_from:
                break
            seen_from = True
            continue
        stage.append(line)
    return stage


def copies(stage: list[str]) -> list[tuple[str, str]]:
    """(source, destination) for each COPY from the build context (not --from another stage)."""
    pairs = []
    for line in stage:
        words = shlex.split(line)
        if words[0].upper() != "COPY" or any(w.startswith("--from") for w in words):
            continue
        args = [w for w in words[1:] if not w.startswith("--")]
        pairs.extend((source, args[-1]) for source in args[:-1])
    return pairs


def check_copies(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"COPY source missing: {source}" for source, _ in pairs if not (ROOT / source).exists()]


def stage_context(pairs: list[tuple[str, str]], into: Path) -> None:
    """Lay out the build folder exactly as the COPY lines would (WORKDIR /src).

    `COPY a b ./` puts files into the folder; `COPY core ./core` copies a folder (or file) to
    that exact path, as Docker does.
    """
    for source, destination in pairs:
        origin = ROOT / source
        into_folder = destination.endswith("/") or destination == "."
        target = into / destination.removeprefix("./").rstrip("/")
        if into_folder:
            target = target / origin.name
        if origin.is_dir():
            shutil.copytree(origin, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, target)


def run_commands(stage: list[str], context: Path, venv: Path) -> None:
    """Run the stage's RUN lines in `context`, with /opt/photodetective replaced by a fresh venv."""
    for line in stage:
        if not line.upper().startswith("RUN "):
            continue
        command = line[4:].replace(VENV, str(venv)).replace("--no-cache-dir", "")
        if command.startswith("python -m venv"):
            command = f"{sys.executable} -m venv {venv}"
        print(f"$ {command}", flush=True)
        subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=context, check=True)  # noqa: S603, S607


def check_healthcheck(lines: list[str]) -> list[str]:
    for line in lines:
        if line.upper().startswith("HEALTHCHECK"):
            exec_form = json.loads(line[line.index("CMD") + 3 :].strip())
            if exec_form[:2] != ["python", "-c"]:
                return ["HEALTHCHECK should run python -c (the slim image has no curl)"]
            ast.parse(exec_form[2])
            return []
    return ["no HEALTHCHECK"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-install", action="store_true", help="only the static checks")
    args = parser.parse_args()
    lines = logical_lines(ROOT / "Dockerfile")
    stage = build_stage(lines)
    pairs = copies(stage)
    problems = check_copies(pairs) + check_healthcheck(lines)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    if not args.skip_install:
        with tempfile.TemporaryDirectory(prefix="dockerfile-check-") as temp:
            context = Path(temp) / "src"
            context.mkdir()
            stage_context(pairs, context)
            run_commands(stage, context, Path(temp) / "venv")
            subprocess.run(  # noqa: S603
                [str(Path(temp) / "venv" / "bin" / "photodetective"), "--help"],
                check=True,
                capture_output=True,
            )
    print("Dockerfile check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
