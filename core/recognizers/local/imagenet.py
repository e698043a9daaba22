"""The 1000 ImageNet-1k classes EfficientNet-Lite0 was trained on, in its output order.

The names live in `data/imagenet_classes.txt` (package data, read with importlib.resources), one
per line, index = line number. They are the first WordNet lemma of each ILSVRC-2012 synset, in
the usual spelling of the Keras/PyTorch class lists (underscores as spaces). Two names repeat
because two synsets share a lemma ("crane": the bird at 134, the machine at 517; "maillot" at
638 and 639); `taxonomy` gives them distinct labels.
"""

from __future__ import annotations

from importlib import resources

__all__ = ["CLASS_NAMES"]

CLASS_COUNT = 1000


def _read() -> tuple[str, ...]:
    text = resources.files(__package__).joinpath("data", "imagenet_classes.txt").read_text("utf-8")
    names = tuple(text.splitlines())
    if len(names) != CLASS_COUNT:  # a damaged install must fail here, not mislabel photos
        raise RuntimeError(f"imagenet_classes.txt holds {len(names)} names, not {CLASS_COUNT}")
    return names


CLASS_NAMES: tuple[str, ...] = _read()
