"""How the package finds its library and OpenBLAS: the ELF reader, the OpenBLAS kernel
choice (no help for the wheel's OpenBLAS, OPENBLAS_CORETYPE only for a system one), and
the layout of an installed wheel."""

import os
import platform
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

import bgad
from bgad import _blas, _elf, _native
from conftest import header_path
from test_abi import declared_functions

#: OpenBLAS kernel sets that use AVX2 or AVX-512 (what a CPU with AVX2 + FMA should run).
FAST_CORES = {"haswell", "zen", "skylakex", "cooperlake", "sapphirerapids"}


def cpu_flags():
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return set()
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def package_env(**extra):
    """The environment of a child Python that imports the same bgad as this process."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    root = str(Path(bgad.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def test_elf_reader_agrees_with_the_dynamic_linker():
    info = _elf.read_dynamic(_native.lib_path)
    assert "libc.so.6" in info.needed
    # every function of the header is exported (the dynamic linker finds it too) ...
    declared = declared_functions()
    assert declared and set(declared) <= set(info.defined)
    assert all(hasattr(_native.lib, name) for name in declared)
    # ... and the matrix product is imported, under the name of the OpenBLAS it links
    assert {"cblas_sgemm", "scipy_cblas_sgemm"} & set(info.undefined)
    assert not {"cblas_sgemm", "scipy_cblas_sgemm"} & set(info.defined)
    if _elf.links_openblas(info.needed):
        assert "cblas_sgemm" in info.undefined
    else:
        assert "scipy_cblas_sgemm" in info.undefined


def test_elf_reader_refuses_bad_files(tmp_path):
    (tmp_path / "text.so").write_bytes(b"not an ELF file at all" * 4)
    data = Path(_native.lib_path).read_bytes()
    (tmp_path / "truncated.so").write_bytes(data[:4096])
    bad_table = bytearray(data[:64]) + bytes(64)
    struct.pack_into("<Q", bad_table, 0x28, 1 << 40)  # section headers far past the end
    (tmp_path / "bad_table.so").write_bytes(bytes(bad_table))
    big_endian = bytearray(data[:128])
    big_endian[5] = 2
    (tmp_path / "big_endian.so").write_bytes(bytes(big_endian))
    for name, message in [("text.so", "not an ELF"), ("truncated.so", "outside the file"),
                          ("bad_table.so", "outside the file"), ("big_endian.so", "little-endian")]:
        with pytest.raises(_elf.ELFError, match=message):
            _elf.read_dynamic(tmp_path / name)
    with pytest.raises(OSError):
        _elf.read_dynamic(tmp_path / "missing.so")


def test_links_openblas_names_only_a_plain_openblas():
    assert _elf.links_openblas(["libm.so.6", "libopenblas.so.0"]) == ["libopenblas.so.0"]
    assert _elf.links_openblas(["libopenblasp-r0.3.21.so"]) == ["libopenblasp-r0.3.21.so"]
    assert _elf.links_openblas(["libscipy_openblas.so", "libc.so.6"]) == []


@pytest.mark.parametrize("needed, preset, expected", [
    (["libopenblas.so.0", "libc.so.6"], None, "chosen"),
    (["libscipy_openblas.so", "libc.so.6"], None, None),
    (["libopenblas.so.0"], "Sandybridge", "Sandybridge"),
])
def test_loader_sets_the_core_type_only_for_a_system_openblas(monkeypatch, needed, preset, expected):
    monkeypatch.setattr(_elf, "read_dynamic", lambda path: _elf.DynamicInfo(needed, "", [], []))
    monkeypatch.setattr(_blas, "choose_openblas_coretype", lambda: "Haswell")
    if preset is None:
        monkeypatch.delenv("OPENBLAS_CORETYPE", raising=False)
    else:
        monkeypatch.setenv("OPENBLAS_CORETYPE", preset)
    _native._help_system_openblas(Path("libbgad.so"))
    want = "Haswell" if expected == "chosen" else expected
    assert os.environ.get("OPENBLAS_CORETYPE") == want


def test_choose_openblas_coretype_follows_the_cpu_flags():
    flags = cpu_flags()
    core = _blas.choose_openblas_coretype()
    if {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"} <= flags:
        assert core == "SkylakeX"
    elif {"avx2", "fma"} <= flags:
        assert core == "Haswell"
    else:
        assert core == ""


def test_engine_runs_avx_kernels_without_openblas_coretype():
    """With OPENBLAS_CORETYPE unset, the OpenBLAS the engine calls runs AVX2/AVX-512
    kernels on a CPU that has AVX2 + FMA (not the SSE3 fallback)."""
    if not {"avx2", "fma"} <= cpu_flags():
        pytest.skip("the CPU has no AVX2 + FMA")
    script = "from bgad import _native; print(_native.openblas_corename())"
    out = subprocess.run([sys.executable, "-c", script], env=package_env(), capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip().lower() in FAST_CORES, out.stdout


def test_user_choice_of_openblas_coretype_is_kept():
    script = "import os; from bgad import _native; print(_native.openblas_corename(), os.environ['OPENBLAS_CORETYPE'])"
    out = subprocess.run([sys.executable, "-c", script], env=package_env(OPENBLAS_CORETYPE="Sandybridge"),
                         capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["Sandybridge", "Sandybridge"]


def test_installed_wheel_carries_its_openblas_and_header():
    pkg = Path(bgad.__file__).resolve().parent
    if Path(_native.lib_path).resolve() != pkg / "libbgad.so":
        pytest.skip("the library is a development build, not an installed package's")
    info = _elf.read_dynamic(pkg / "libbgad.so")
    assert not _elf.links_openblas(info.needed), info.needed
    blas = [n for n in info.needed if "openblas" in n]
    assert len(blas) == 1 and (pkg / blas[0]).is_file(), (blas, info.runpath)
    assert "$ORIGIN" in info.runpath.split(":")
    assert header_path() == pkg / "include" / "bgad.h"
    assert "bgad_version" in header_path().read_text()
    assert "bgad_focal_weights" in (pkg / "include" / "bgad_testing.h").read_text()
    assert (pkg / "VERSION").read_text().strip() == bgad.__version__ == _native.version()


def test_c_program_links_the_installed_library(tmp_path):
    """A C program compiled against bgad.h alone and linked with -lbgad runs."""
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    lib = Path(_native.lib_path).resolve()
    (tmp_path / "main.c").write_text(
        '#include <stdio.h>\n#include "bgad.h"\n'
        'int main(void) { printf("%s %d\\n", bgad_version(), bgad_abi_version()); return 0; }\n')
    subprocess.run([cc, "-o", str(tmp_path / "main"), str(tmp_path / "main.c"), f"-I{header_path().parent}",
                    f"-L{lib.parent}", "-lbgad", f"-Wl,-rpath,{lib.parent}"], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "OPENBLAS_CORETYPE")}
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == [_native.version(), str(_native.ABI_VERSION)]
