"""From ImageNet's 1000 fine classes to labels people (and Rekognition) use, with parents.

ImageNet names a photo's subject very finely ("Egyptian cat", "moped", "espresso") and has no
class for the general word ("cat", "motorcycle", "coffee"). Rekognition answers both: "Tabby"
with parents "Cat", "Pet", "Mammal", "Animal", each of them a label as well. This module is the
curated bridge, written by hand from WordNet's hypernyms (a moped IS-A motorbike IS-A motorcycle;
a missile IS-A rocket) and Rekognition's label names. The tables are data, kept in
`data/taxonomy.toml` (package data, read once at import); this module turns them into:

- `CLASS_LABELS[i]`: class i's own label name (title case, with the two clashing lemmas told
  apart) and its direct parents;
- `PARENTS`: each general label's direct parents, so that every ancestor is reached
  (`ancestors`).

Coverage: every animal class (by ImageNet's WordNet-ordered ranges), vehicles, cameras,
electronics, drinks, food, clothing, household textiles, furniture, instruments, balls, buildings,
landscapes and plants. Classes not listed keep their own name and have no parents. Two deliberate choices:
ImageNet's "projectile, missile" (744) and "space shuttle" (812) also count towards "Rocket", as
photos of launches are classified as either; and the people classes (ballplayer, groom, scuba
diver) do not produce "Person", which only the body detector gives, so a Person label always
comes with a box.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from importlib import resources
from typing import Any

from core.recognizers.local.imagenet import CLASS_NAMES

__all__ = ["CLASS_LABELS", "PARENTS", "ancestors"]


def _ranges(spec: str) -> list[int]:
    """The indices a spec such as `0-6 389-397` names."""
    out: list[int] = []
    for part in spec.split():
        first, _, last = part.partition("-")
        out.extend(range(int(first), int(last or first) + 1))
    return out


def _title(lemma: str) -> str:
    """Title case ("coffee mug" -> "Coffee Mug"); words already holding a capital ("iPod") are kept."""
    words = lemma.split(" ")
    return " ".join(w if any(c.isupper() for c in w) else w[:1].upper() + w[1:] for w in words)


def _read() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("data", "taxonomy.toml").read_text("utf-8")
    return tomllib.loads(text)


def _class_labels(tables: dict[str, Any]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each class's own label name and direct parents, from the animal ranges and the object names."""
    parents: dict[int, tuple[str, ...]] = {}
    for group in tables["animals"]:
        for index in _ranges(group["classes"]):
            parents[index] = tuple(group["parents"])
    by_name: dict[str, list[int]] = {}
    for index, name in enumerate(CLASS_NAMES):
        by_name.setdefault(name, []).append(index)
    for group in tables["objects"]:
        for name in group["classes"]:
            for index in by_name[name]:  # a KeyError here is a typo in the table
                parents[index] = tuple(group["parents"])
    for index, labels in tables["class_parents"].items():
        parents[int(index)] = tuple(labels)
    renamed = {int(index): str(name) for index, name in tables["renamed"].items()}
    return tuple((renamed.get(i, _title(name)), parents.get(i, ())) for i, name in enumerate(CLASS_NAMES))


_TABLES = _read()
# General label -> its direct parents.
PARENTS: dict[str, tuple[str, ...]] = {name: tuple(up) for name, up in _TABLES["parents"].items()}
CLASS_LABELS: tuple[tuple[str, tuple[str, ...]], ...] = _class_labels(_TABLES)


def ancestors(parents: Iterable[str]) -> tuple[tuple[str, int], ...]:
    """Every ancestor of labels with these direct parents, with its distance (1 = direct), nearest first."""
    seen: dict[str, int] = {}
    frontier = [(name, 1) for name in parents]
    while frontier:
        name, depth = frontier.pop(0)
        if name in seen:
            continue
        seen[name] = depth
        frontier.extend((parent, depth + 1) for parent in PARENTS.get(name, ()))
    return tuple(sorted(seen.items(), key=lambda item: item[1]))
