"""Remove from an installed virtual environment what PhotoDetective never loads, for a smaller image.

The container's venv is about 690 MB, nearly all of it the embedded recognizer's runtimes. Some of
that is never used by a CPU-only bot that is handed its models by path: the installer itself, the
dependencies' own test suites, a GPU accelerator, vendor NPU plugins, conversion tools, a second
copy of the OCR models (the recognizer loads the verified copies in the models folder), the API
descriptions of the ~450 AWS services other than the few boto3 needs for Rekognition and sign-in,
and ONNX Runtime's C library (the Python module has the runtime built in). Stripping the native
libraries' symbols is not done: it breaks the wheels' patched libraries (numpy's OpenBLAS fails to
load with "ELF load command address/offset not page-aligned"), which the build check caught.

Each entry below names why it is safe. The Dockerfile runs this, then analyzes a generated photo
with the embedded recognizer in the same stage, so an entry that turns out to be needed fails the
build instead of the first user's photo.

    python scripts/slim_venv.py /opt/photodetective
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

# Paths under site-packages (globs), and why nothing at run time loads them.
REMOVE = {
    "pip": "the installer; the image never installs at run time",
    "pip-*.dist-info": "the installer's metadata",
    "setuptools": "a build tool, needed only while installing",
    "setuptools-*.dist-info": "its metadata",
    "pkg_resources": "part of setuptools; nothing here imports it",
    "_distutils_hack": "setuptools' import hook",
    "distutils-precedence.pth": "setuptools' import hook",
    "**/tests": "the dependencies' own test suites",
    "numpy/f2py": "a Fortran wrapper generator",
    "numpy/distutils": "numpy's build helpers",
    "rapidocr/models/*.onnx": "a second copy: the OCR reads the hash-checked copies in the models folder",
    "ai_edge_litert/libLiteRtWebGpuAccelerator.so": "the GPU accelerator; the bot runs on the CPU",
    "ai_edge_litert/vendors": "NPU plugins (Qualcomm, MediaTek, ...)",
    "ai_edge_litert/tools": "model conversion and benchmark tools",
    "onnx": "the ONNX graph builder: install_models.py writes the classifier's and AgeGenderNet's graphs"
    " with it; ONNX Runtime reads them without it",
    "onnx-*.dist-info": "its metadata",
    "onnxruntime/transformers": "model optimisation tools",
    "onnxruntime/quantization": "model quantisation tools",
    "onnxruntime/tools": "model conversion tools",
    "onnxruntime/capi/libonnxruntime.so.*": "the C API library, for programs linking against ONNX Runtime; "
    "the Python module (onnxruntime_pybind11_state) carries its own copy and does not load it",
}

ONNX_SCRIPTS = ("backend-test-tools", "check-model", "check-node")

# botocore describes every AWS service; boto3 loads only the ones a client is made for. Rekognition,
# plus what the credential chain can call (STS for assumed roles and web identity, SSO for profiles).
BOTOCORE_SERVICES = {"rekognition", "sts", "sso", "sso-oidc"}


def _size(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _remove(path: Path) -> int:
    size = _size(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()
    return size


def slim(venv: Path) -> int:
    """Delete the unused parts of `venv`; return the bytes freed. Missing entries are skipped."""
    site_packages = next(venv.glob("lib/python3*/site-packages"))
    freed = 0
    for pattern in REMOVE:
        for path in sorted(site_packages.glob(pattern)):
            freed += _remove(path)
    data = site_packages / "botocore" / "data"
    if data.is_dir():
        for service in data.iterdir():
            if service.is_dir() and service.name not in BOTOCORE_SERVICES:
                freed += _remove(service)
    for script in venv.glob("bin/pip*"):
        freed += _remove(script)
    for name in ONNX_SCRIPTS:  # onnx's console scripts, which would fail once onnx is gone
        if (venv / "bin" / name).is_file():
            freed += _remove(venv / "bin" / name)
    return freed


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    venv = Path(argv[0])
    if not any(venv.glob("lib/python3*/site-packages")):
        print(f"slim_venv: {venv} is not a virtual environment", file=sys.stderr)
        return 2
    print(f"slim_venv: freed {slim(venv) / 1e6:.0f} MB in {venv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
