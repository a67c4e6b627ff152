"""The conditional normalizing flow of BGAD, run by the engine (no PyTorch).

:class:`Flow` is ``blocks`` affine coupling blocks identical in function to FrEIA 0.2's
``AllInOneBlock`` in BGAD's configuration (subnet Linear-ReLU-Linear, ``0.1`` scaling,
``1.9·tanh`` clamp, softplus global affine, fixed Haar rotation), conditioned on a
``cond_dim``-wide vector — in BGAD the 128-d positional encoding of the feature-map
position (:func:`positional_encoding`).

Vectors are rows: ``x`` is ``(N, dim)``. Conditions are given either per vector
(``cond`` of shape ``(N, cond_dim)``; identical rows are detected and shared), as one row
for all vectors (``(cond_dim,)``), or as a table of distinct rows plus an index
(``cond`` ``(R, cond_dim)`` with ``cond_index`` ``(N,)``), which is the fastest: the
condition's share of every first layer is computed once per row.

Parameters are exchanged under FrEIA ``SequenceINN`` state-dict names and layouts, so a
FrEIA model's ``state_dict()`` can be loaded with :meth:`Flow.set_parameters`.

Example:
    >>> import numpy as np, bgad
    >>> flow = bgad.Flow(24, seed=0)
    >>> cond = bgad.positional_encoding(4, 4)                 # (16, 128)
    >>> x = np.random.default_rng(0).normal(size=(16, 24)).astype(np.float32)
    >>> loss = flow.train_step(x, cond, lr=2e-4)
    >>> flow.log_prob(x, cond).shape
    (16,)
"""

from __future__ import annotations

import ctypes
import functools
import threading
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np
from numpy.typing import ArrayLike

from ._native import BGADError, NativeHandle, as_array, check, function, ptr


_create = function("bgad_flow_create")
_shape = function("bgad_flow_shape")
_forward = function("bgad_flow_forward")
_log_likelihood = function("bgad_flow_log_likelihood")
_inverse = function("bgad_flow_inverse")
_train_step = function("bgad_flow_train_step")
_compute_gradients = function("bgad_flow_compute_gradients")
_input_gradient = function("bgad_flow_input_gradient")
_parameter_count = function("bgad_flow_parameter_count")
_parameter_name = function("bgad_flow_parameter_name")
_parameter_shape = function("bgad_flow_parameter_shape")
_get_parameter = function("bgad_flow_get_parameter")
_set_parameter = function("bgad_flow_set_parameter")
_get_gradient = function("bgad_flow_get_gradient")
_positional_encoding = function("bgad_positional_encoding")

_OBJECTIVES = {"phase1": 0, "nll": 1}


def positional_encoding(height: int, width: int, dim: int = 128) -> np.ndarray:
    """The 2-D sin/cos positional condition of BGAD for an ``height × width`` grid.

    Returns a float32 array ``(height·width, dim)``, rows ordered ``(h, w)``; with
    ``f_k = exp(−2k·ln(10⁴)/(dim/2))``: channel ``2k`` = ``sin(w·f_k)``, ``2k+1`` =
    ``cos(w·f_k)``, ``dim/2 + 2k`` = ``sin(h·f_k)``, ``dim/2 + 2k + 1`` = ``cos(h·f_k)``.
    ``dim`` must be a positive multiple of 4.
    """
    h, w, d = int(height), int(width), int(dim)
    if h < 0 or w < 0:
        raise BGADError(f"height and width must be ≥ 0, got {h}, {w}")
    out = np.empty((h * w, max(d, 0)), dtype=np.float32)
    check(_positional_encoding(h, w, d, ptr(out, ctypes.c_float)))
    return out


def _locked(method):
    """Runs a :class:`Flow` method under the flow's lock: the native flow keeps per-call
    buffers (activations, gradients), so two threads must not use one flow at once."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


class Flow(NativeHandle):
    """A conditional normalizing flow (FrEIA 0.2 ``AllInOneBlock`` × ``blocks``) on the engine.

    ``log p(x) = −(dim/2)·log 2π − ½‖z‖² + logdet``, ``z = flow(x | c)``. Training uses Adam
    (PyTorch's rule and defaults) with the flow's own optimiser state.

    Args:
        dim: width ``C`` of the feature vectors (≥ 2).
        cond_dim: width of the condition (BGAD: 128).
        blocks: number of coupling blocks (BGAD: 8).
        clamp: clamp α of the coupling log-scale ``α·tanh(·)`` (BGAD: 1.9).
        seed: seed of the initialisation (weights and rotations); same seed, same flow.

    One flow may be shared between threads: its native calls are serialised by a lock. It uses up to :func:`bgad.get_num_threads`
    threads itself (vectors split over workers).

    Attributes:
        dim, cond_dim, blocks, clamp: the sizes given at construction.
        last_loss: the loss of the last :meth:`gradients` call.
    """

    _free_name = "bgad_flow_free"

    def __init__(self, dim: int, cond_dim: int = 128, blocks: int = 8, clamp: float = 1.9, seed: int = 0):
        self._lock = threading.RLock()
        for name, v in (("dim", dim), ("cond_dim", cond_dim), ("blocks", blocks)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise BGADError(f"{name} must be an integer, got {v!r}")
        if not 0 <= int(seed) < 2 ** 64:
            raise BGADError(f"seed must be in [0, 2**64), got {seed}")
        handle = ctypes.c_void_p()
        check(_create(int(dim), int(cond_dim), int(blocks), float(clamp), int(seed), ctypes.byref(handle)))
        self._set_handle(handle)
        d, c, b = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
        check(_shape(self._handle, ctypes.byref(d), ctypes.byref(c), ctypes.byref(b)))
        self.dim, self.cond_dim, self.blocks, self.clamp = d.value, c.value, b.value, float(clamp)
        count = ctypes.c_int64()
        check(_parameter_count(self._handle, ctypes.byref(count)))
        buf = ctypes.create_string_buffer(128)
        names = []
        for i in range(count.value):
            check(_parameter_name(self._handle, i, buf, len(buf)))
            names.append(buf.value.decode())
        self._names = names

    def __repr__(self) -> str:
        return f"Flow(dim={self.dim}, cond_dim={self.cond_dim}, blocks={self.blocks}, clamp={self.clamp})"

    # -- inputs ------------------------------------------------------------------------

    def _inputs(self, x: ArrayLike, cond: ArrayLike, cond_index: Optional[ArrayLike], name: str = "x"):
        xa = as_array(x, np.float32, name, ndim=2)
        if xa.shape[1] != self.dim:
            raise BGADError(f"{name}: expected shape (N, {self.dim}), got {xa.shape}")
        n = xa.shape[0]
        ca = as_array(cond, np.float32, "cond")
        if ca.ndim == 1:
            if cond_index is not None:
                raise BGADError("cond_index needs a 2-D cond table")
            ca = ca.reshape(1, -1)
            index = np.zeros(n, dtype=np.int32)
        elif ca.ndim == 2:
            index = None
        else:
            raise BGADError(f"cond: expected 1 or 2 dimensions, got shape {ca.shape}")
        if ca.shape[1] != self.cond_dim:
            raise BGADError(f"cond: expected {self.cond_dim} columns, got shape {ca.shape}")
        if cond_index is not None:
            ia = np.asarray(cond_index)
            if ia.ndim != 1 or ia.shape[0] != n:
                raise BGADError(f"cond_index: expected shape ({n},), got {ia.shape}")
            if ia.dtype.kind not in "iu":
                raise BGADError(f"cond_index: expected integers, got dtype {ia.dtype}")
            if n and (ia.min() < 0 or ia.max() >= ca.shape[0]):
                raise BGADError(f"cond_index: values must lie in [0, {ca.shape[0]})")
            index = np.ascontiguousarray(ia, dtype=np.int32)
        elif index is None and ca.shape[0] != n:
            raise BGADError(f"cond has {ca.shape[0]} rows but {name} has {n}; pass cond_index to use a table")
        index_p = ptr(index, ctypes.c_int32) if index is not None else None
        return xa, ca, index, index_p

    def _call(self, fn, x, cond, cond_index, *outs, name="x"):
        xa, ca, index, index_p = self._inputs(x, cond, cond_index, name)
        check(fn(self._handle, ptr(xa, ctypes.c_float), xa.shape[0], ptr(ca, ctypes.c_float), ca.shape[0],
                 index_p, *outs))
        return xa.shape[0]

    # -- inference -----------------------------------------------------------------------

    @_locked
    def forward(self, x: ArrayLike, cond: ArrayLike, cond_index: Optional[ArrayLike] = None) -> Tuple[np.ndarray, np.ndarray]:
        """``z = flow(x | cond)`` ``(N, dim)`` and the per-vector log-determinant ``(N,)``."""
        n = np.asarray(x).shape[0] if np.ndim(x) == 2 else 0
        z = np.empty((n, self.dim), dtype=np.float32)
        ld = np.empty(n, dtype=np.float32)
        self._call(_forward, x, cond, cond_index, ptr(z, ctypes.c_float), ptr(ld, ctypes.c_float))
        return z, ld

    @_locked
    def inverse(self, z: ArrayLike, cond: ArrayLike, cond_index: Optional[ArrayLike] = None,
                return_logdet: bool = False):
        """``x = flow⁻¹(z | cond)`` ``(N, dim)``; with ``return_logdet`` also the log-determinant
        of the inverse map (``−logdet`` of the forward map at ``x``)."""
        n = np.asarray(z).shape[0] if np.ndim(z) == 2 else 0
        x = np.empty((n, self.dim), dtype=np.float32)
        ld = np.empty(n, dtype=np.float32)
        self._call(_inverse, z, cond, cond_index, ptr(x, ctypes.c_float), ptr(ld, ctypes.c_float), name="z")
        return (x, ld) if return_logdet else x

    @_locked
    def log_likelihood_per_dim(self, x: ArrayLike, cond: ArrayLike, cond_index: Optional[ArrayLike] = None) -> np.ndarray:
        """BGAD's ``ℓ = log p(x) / dim`` for each vector ``(N,)`` (float32)."""
        n = np.asarray(x).shape[0] if np.ndim(x) == 2 else 0
        ell = np.empty(n, dtype=np.float32)
        self._call(_log_likelihood, x, cond, cond_index, ptr(ell, ctypes.c_float))
        return ell

    def log_prob(self, x: ArrayLike, cond: ArrayLike, cond_index: Optional[ArrayLike] = None) -> np.ndarray:
        """``log p(x | cond)`` in nats for each vector ``(N,)`` (float32)."""
        return self.log_likelihood_per_dim(x, cond, cond_index) * np.float32(self.dim)

    # -- training ------------------------------------------------------------------------

    @_locked
    def train_step(self, x: ArrayLike, cond: ArrayLike, lr: float, cond_index: Optional[ArrayLike] = None,
                   objective: str = "phase1") -> float:
        """One Adam step on a chunk of vectors; returns the loss before the update.

        Args:
            objective: ``"phase1"`` — BGAD's phase-1 loss ``−mean(log sigmoid(ℓ))``;
                ``"nll"`` — the mean negative log-likelihood ``−mean(log p(x))``.
        """
        loss = ctypes.c_float()
        self._grad_n = self._call(_train_step, x, cond, cond_index, ctypes.c_float(float(lr)),
                                  self._objective(objective), ctypes.byref(loss))
        return float(loss.value)

    @_locked
    def gradients(self, x: ArrayLike, cond: ArrayLike, cond_index: Optional[ArrayLike] = None,
                  objective: str = "phase1") -> Dict[str, np.ndarray]:
        """Gradient of the loss (see :meth:`train_step`) for every trainable tensor, by name,
        without updating the parameters. The gradient with respect to ``x`` is then
        available from :meth:`input_gradient`."""
        loss = ctypes.c_float()
        self._grad_n = self._call(_compute_gradients, x, cond, cond_index, self._objective(objective),
                                  ctypes.byref(loss))
        self.last_loss = float(loss.value)
        out = {}
        for name in self._names:
            if name.endswith(".w_perm"):
                continue
            g = np.empty(self._shape_of(name), dtype=np.float32)
            check(_get_gradient(self._handle, name.encode(), ptr(g, ctypes.c_float), g.size))
            out[name] = g
        return out

    @_locked
    def input_gradient(self) -> np.ndarray:
        """Gradient of the last :meth:`gradients` / :meth:`train_step` loss with respect to x ``(N, dim)``."""
        n = getattr(self, "_grad_n", 0)
        g = np.empty((n, self.dim), dtype=np.float32)
        check(_input_gradient(self._handle, ptr(g, ctypes.c_float), g.size))
        return g

    @staticmethod
    def _objective(objective: str) -> int:
        if objective not in _OBJECTIVES:
            raise BGADError(f"objective must be one of {sorted(_OBJECTIVES)}, got {objective!r}")
        return _OBJECTIVES[objective]

    # -- parameters ----------------------------------------------------------------------

    @property
    def parameter_names(self) -> list:
        """FrEIA names of every tensor, in a fixed order (7 per block)."""
        return list(self._names)

    def _shape_of(self, name: str) -> Tuple[int, ...]:
        shape = (ctypes.c_int64 * 2)()
        ndim = ctypes.c_int32()
        check(_parameter_shape(self._handle, name.encode(), shape, ctypes.byref(ndim)))
        return tuple(shape[i] for i in range(ndim.value))

    @_locked
    def parameters(self) -> Dict[str, np.ndarray]:
        """Every tensor by FrEIA name (copies, float32, PyTorch layouts), including the fixed
        rotations ``w_perm``."""
        out = {}
        for name in self._names:
            a = np.empty(self._shape_of(name), dtype=np.float32)
            check(_get_parameter(self._handle, name.encode(), ptr(a, ctypes.c_float), a.size))
            out[name] = a
        return out

    @_locked
    def set_parameters(self, params: Mapping[str, Any]) -> None:
        """Sets tensors by FrEIA name, e.g. from a FrEIA ``SequenceINN.state_dict()``.

        Any subset of :attr:`parameter_names` may be given; values are converted to float32
        and must have the tensor's shape (singleton axes aside). ``module_list.{k}.w_perm_inv``
        entries are accepted when they equal the transpose of the block's ``w_perm`` and are
        otherwise an error. Unknown names, wrong shapes, NaN/Inf, a non-orthogonal ``w_perm``
        raise :class:`BGADError`; nothing is changed then.
        """
        known = set(self._names)
        staged = []
        inverses = []
        for name, value in params.items():
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            if name.endswith(".w_perm_inv") and name[: -len("_inv")] in known:
                inverses.append((name, value))
                continue
            if name not in known:
                raise BGADError(f"unknown flow parameter '{name}'")
            arr = as_array(value, np.float32, name)
            shape = self._shape_of(name)
            if arr.shape != shape and tuple(s for s in arr.shape if s != 1) != tuple(s for s in shape if s != 1):
                raise BGADError(f"{name}: expected shape {shape}, got {arr.shape}")
            if arr.size != int(np.prod(shape)):
                raise BGADError(f"{name}: expected shape {shape}, got {arr.shape}")
            if not np.isfinite(arr).all():
                raise BGADError(f"{name}: contains NaN or Inf")
            staged.append((name, np.ascontiguousarray(arr.reshape(shape))))
        current = self.parameters()
        new_values = dict(current)
        new_values.update(staged)
        for name, value in inverses:
            w = new_values[name[: -len("_inv")]]
            inv = as_array(value, np.float32, name).reshape(w.shape) if np.size(value) == w.size else None
            if inv is None or not np.allclose(inv, w.T, atol=1e-5):
                raise BGADError(f"{name}: must be the transpose of {name[: -len('_inv')]}")
        done = []
        try:
            for name, arr in staged:
                check(_set_parameter(self._handle, name.encode(), ptr(arr, ctypes.c_float), arr.size))
                done.append(name)
        except BGADError:
            for name in done:  # all or nothing: restore what was already set
                old = current[name]
                check(_set_parameter(self._handle, name.encode(), ptr(old, ctypes.c_float), old.size))
            raise
