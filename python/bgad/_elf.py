"""A minimal reader of the dynamic linking facts of an ELF64 shared library.

Two readers need them: the loader (:mod:`bgad._native`), which asks whether the engine
links the system ``libopenblas.so.0`` (then the OpenBLAS kernel choice may need help), and
the wheel build (``setup.py``), which retargets ``libbgad.so`` at a newer OpenBLAS. Only
little-endian ELF64 (x86-64, aarch64) is read; anything else raises :class:`ELFError`.

The reader seeks to the few tables it needs (section headers, ``.dynamic``, ``.dynsym``
and their string tables) and checks every offset and size against the file's length
first, so a truncated or hostile file raises :class:`ELFError` instead of making it read
past the end or allocate without bound.
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, List, NamedTuple, Tuple

_SHT_DYNSYM = 11
_SHT_DYNAMIC = 6
_DT_NEEDED = 1
_DT_RUNPATH = 29
_DT_RPATH = 15
_MAX_SECTIONS = 1 << 16


class ELFError(ValueError):
    """The file is not a little-endian ELF64 object, or its tables are inconsistent."""


class DynamicInfo(NamedTuple):
    """What the dynamic linker reads from a shared library.

    Attributes:
        needed: the ``DT_NEEDED`` entries (sonames of the libraries it links), in order.
        runpath: the ``DT_RUNPATH`` (or, failing that, ``DT_RPATH``) string, "" if none.
        undefined: names of the dynamic symbols it imports (undefined in ``.dynsym``).
        defined: names of the dynamic symbols it exports (defined in ``.dynsym``).
    """

    needed: List[str]
    runpath: str
    undefined: List[str]
    defined: List[str]


def _read(f: BinaryIO, size: int, offset: int, length: int, what: str) -> bytes:
    if offset < 0 or length < 0 or offset + length > size:
        raise ELFError(f"{what} lies outside the file ({offset}+{length} > {size} bytes)")
    f.seek(offset)
    data = f.read(length)
    if len(data) != length:
        raise ELFError(f"{what}: short read")
    return data


def _string(table: bytes, offset: int, what: str) -> str:
    if not 0 <= offset < len(table):
        raise ELFError(f"{what}: string offset {offset} outside its table")
    end = table.find(b"\0", offset)
    if end < 0:
        raise ELFError(f"{what}: unterminated string")
    return table[offset:end].decode("utf-8", "replace")


def read_dynamic(path: "os.PathLike[str] | str") -> DynamicInfo:
    """Reads the needed libraries, run path and dynamic symbols of the ELF file ``path``.

    Raises :class:`ELFError` for a file that is not a little-endian ELF64 object with
    consistent section headers, and ``OSError`` when it cannot be read.
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        ident = _read(f, size, 0, 64, "ELF header")
        if ident[:4] != b"\x7fELF":
            raise ELFError(f"{path}: not an ELF file")
        if ident[4] != 2 or ident[5] != 1:
            raise ELFError(f"{path}: only little-endian ELF64 is supported")
        shoff, = struct.unpack_from("<Q", ident, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", ident, 0x3A)
        if shentsize != 64 or not 0 < shnum <= _MAX_SECTIONS:
            raise ELFError(f"{path}: unexpected section header table ({shnum} x {shentsize} bytes)")
        table = _read(f, size, shoff, shnum * 64, "section header table")
        sections: List[Tuple[int, int, int, int, int]] = []  # type, offset, size, link, entsize
        for i in range(shnum):
            _, sh_type, _, _, off, sz, link, _, _, entsize = struct.unpack_from("<IIQQQQIIQQ", table, i * 64)
            sections.append((sh_type, off, sz, link, entsize))

        def linked_strings(link: int, what: str) -> bytes:
            if not 0 <= link < shnum:
                raise ELFError(f"{path}: {what} links to section {link} of {shnum}")
            _, off, sz, _, _ = sections[link]
            return _read(f, size, off, sz, f"{what} strings")

        needed: List[str] = []
        runpath = rpath = ""
        undefined: List[str] = []
        defined: List[str] = []
        for sh_type, off, sz, link, entsize in sections:
            if sh_type == _SHT_DYNAMIC:
                strings = linked_strings(link, ".dynamic")
                data = _read(f, size, off, sz, ".dynamic")
                for pos in range(0, len(data) - 15, 16):
                    tag, val = struct.unpack_from("<qQ", data, pos)
                    if tag == 0:
                        break
                    if tag == _DT_NEEDED:
                        needed.append(_string(strings, val, "DT_NEEDED"))
                    elif tag == _DT_RUNPATH:
                        runpath = _string(strings, val, "DT_RUNPATH")
                    elif tag == _DT_RPATH:
                        rpath = _string(strings, val, "DT_RPATH")
            elif sh_type == _SHT_DYNSYM:
                if entsize != 24:
                    raise ELFError(f"{path}: .dynsym entries of {entsize} bytes")
                strings = linked_strings(link, ".dynsym")
                data = _read(f, size, off, sz, ".dynsym")
                for pos in range(24, len(data) - 23, 24):  # entry 0 is the null symbol
                    name_off, _, _, shndx = struct.unpack_from("<IBBH", data, pos)
                    name = _string(strings, name_off, ".dynsym")
                    if name:
                        (defined if shndx != 0 else undefined).append(name)
        return DynamicInfo(needed, runpath or rpath, undefined, defined)


def links_openblas(needed: List[str]) -> List[str]:
    """The entries of ``needed`` that name a plain OpenBLAS (``libopenblas*.so*``), the
    library a distribution ships; a prefixed build such as ``libscipy_openblas`` is not one."""
    return [n for n in needed if n.startswith("libopenblas")]
