"""Export of a fitted :class:`bgad.Detector` to ONNX: the whole scoring graph, written with
the ``onnx`` package's helpers from the engine's own numbers (:meth:`Detector.tensors`).

The graph (opset 17 by default, any runtime: ONNX Runtime, OpenVINO, TensorRT, ...):

* input ``image``: uint8 ``(N, S, S, 3)``, RGB, channels last, ``S`` = the detector's
  ``image_size`` (N is dynamic). The engine resizes any image to ``S × S`` first (Pillow's
  antialiased bilinear, :func:`bgad.backbone.resize`) and replicates gray to RGB: a caller
  of the graph does that itself (see the README's snippets).
* preprocessing ``(p − 127) / 128`` → EfficientNet-Lite (BatchNorm folded, TensorFlow
  'SAME' padding as explicit pads, ReLU6) up to the deepest level used → per level: the
  conditional flow (coupling with the soft clamp ``α·tanh``, the folded global affine and
  rotation ``u·M + o``), its positional condition a constant, ``ℓ = log p / C`` →
  ``ℓ − ref_l`` → bilinear (align-corners) interpolation to ``S × S`` by the engine's own
  index and weight tables (Gather), summed over levels in the log domain.
* outputs ``anomaly_map`` float32 ``(N, S, S)`` = ``S_max − Σ`` (the engine's map at the
  model size; :meth:`Detector.predict` then resizes it to the image's own size with
  Pillow's bilinear rule, ``bgad.backbone.resize(map, (H, W))``), ``pred_score`` float32
  ``(N,)`` = ``−log(min Σ)`` (the engine's image score, computed in the log domain so that
  strong defects do not tie) and ``pred_label`` bool ``(N,)`` = ``pred_score > threshold``.

Per pixel, ``log Σ = m + log Σ_(l, corner) exp(t − m)`` with ``t = log w + ℓ − ref`` over
the four bilinear corners of every level and ``m`` their maximum: exact where ``Σ``
underflows float32, equal to the engine's float sum elsewhere (to rounding).

Tiling: the graph is for one square input at the model size. A detector that tiles
(``tiling``, for strips and large images) scores each tile as one such input: the graph is
then the per-tile graph, and the caller cuts the tiles the engine cuts, resizes each to
``S × S``, runs the graph on them, stitches the tile maps at the image's size by their
maximum and takes the largest tile score (the Detector's tiling rules; the setting is in
the metadata as ``tiling``).

``metadata_props``: ``image_threshold``, ``pixel_threshold`` (repr of the engine's
doubles), ``input_size``, ``strides``, ``variant``, ``backbone``, ``bgad_version``,
``source_sha256`` (of :meth:`Detector.to_bytes`), ``tiling``, ``input_layout``.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path
from typing import Dict, List, Tuple, Union

import numpy as np

from ._native import BGADError

#: Newest opset the exporter writes (``onnx.checker`` and the runtimes accept it).
MAX_OPSET = 17
#: Oldest opset: the Split/ReduceSum forms with their sizes and axes as inputs.
MIN_OPSET = 13
#: The backbone names by the engine's variant number (``config.backbone``).
BACKBONES = ("lite0", "lite1", "lite2")
#: Stands for log 0 (a zero interpolation weight): finite, so that no ``inf − inf`` arises.
LOG_ZERO = -1e30


def _onnx():
    try:
        import onnx
        from onnx import helper, numpy_helper
    except ImportError:
        raise BGADError("ONNX export needs the onnx package: pip install 'bgad[onnx]' (or pip install onnx)") from None
    return onnx, helper, numpy_helper


def same_padding(size: int, kernel: int, stride: int) -> Tuple[int, int, int]:
    """TensorFlow 'SAME' padding (the engine's ``SamePadding``): (output, before, after)."""
    out = (size + stride - 1) // stride
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


class _Graph:
    """Nodes and initializers under construction, with fresh names."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes: List = []
        self.initializers: List = []
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value, hint: str = "c", dtype=np.float32) -> str:
        n = self.name(hint)
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(np.asarray(value, dtype)), n))
        return n

    def op(self, op_type: str, inputs: List[str], hint: str = None, outputs: int = 1, name: str = None, **attrs):
        outs = [name] if name is not None else [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self.helper.make_node(op_type, inputs, outs, name=self.name("n_" + op_type), **attrs))
        return outs[0] if outputs == 1 else outs


def _scalar(t: Dict[str, np.ndarray], name: str) -> float:
    return float(t[name].reshape(-1)[0])


def _backbone(g: _Graph, t: Dict[str, np.ndarray], x: str, size: int) -> Dict[int, Tuple[str, int, int]]:
    """EfficientNet-Lite from NCHW float input `x`; returns {block index: (output, h, w)} of
    the blocks whose outputs are levels."""
    wanted = {int(b) for b in t["backbone.level_blocks"]}
    lo, hi = g.const(0.0, "zero"), g.const(6.0, "six")

    def conv(inp, w, b, stride, pads, group=1, relu6=True):
        y = g.op("Conv", [inp, g.const(w, "w"), g.const(b, "b")], strides=[stride, stride], pads=pads, group=group,
                 kernel_shape=list(w.shape[2:]))
        return g.op("Clip", [y, lo, hi]) if relu6 else y

    h = w = size
    oh, top, bottom = same_padding(h, 3, 2)
    ow, left, right = same_padding(w, 3, 2)
    stem = t["backbone.stem.weight"]  # (ky, kx, in, out) → (out, in, ky, kx)
    x = conv(x, stem.transpose(3, 2, 0, 1), t["backbone.stem.bias"], 2, [top, left, bottom, right])
    h, w = oh, ow
    out: Dict[int, Tuple[str, int, int]] = {}
    i = 0
    while len(out) < len(wanted):
        p = f"backbone.blocks.{i}."
        if p + "stride" not in t:
            raise BGADError(f"the detector's tensors end at block {i} before its levels' blocks {sorted(wanted)}")
        stride = int(_scalar(t, p + "stride"))
        inp = x
        if p + "expand.weight" in t:
            e = t[p + "expand.weight"]  # (in, mid)
            x = conv(x, e.T[:, :, None, None], t[p + "expand.bias"], 1, [0, 0, 0, 0])
        d = t[p + "depthwise.weight"]  # (k, k, mid)
        k, mid = d.shape[0], d.shape[2]
        oh, top, bottom = same_padding(h, k, stride)
        ow, left, right = same_padding(w, k, stride)
        x = conv(x, d.transpose(2, 0, 1)[:, None], t[p + "depthwise.bias"], stride, [top, left, bottom, right], group=mid)
        pw = t[p + "project.weight"]  # (mid, out)
        x = conv(x, pw.T[:, :, None, None], t[p + "project.bias"], 1, [0, 0, 0, 0], relu6=False)
        cin = (t[p + "expand.weight"].shape[0] if p + "expand.weight" in t else mid)
        if stride == 1 and cin == pw.shape[1]:
            x = g.op("Add", [x, inp])
        h, w = oh, ow
        if i in wanted:
            out[i] = (x, h, w)
        i += 1
    return out


def _flow_ell_minus_ref(g: _Graph, t: Dict[str, np.ndarray], level: int, feat: str, reference: float) -> str:
    """`ℓ − ref` of every position of level `level`: (N, h·w) from features (N, C, h, w)."""
    p = f"levels.{level}."
    cond = t[p + "condition"]  # (P, D)
    clamp = _scalar(t, p + "flow.clamp")
    dim = t[p + "flow.module_list.0.w_perm"].shape[0]
    len1, len2 = dim - dim // 2, dim // 2
    x = g.op("Transpose", [feat], perm=[0, 2, 3, 1])
    x = g.op("Reshape", [x, g.const([0, -1, dim], "shape", np.int64)])  # (N, P, C)
    cond_c = g.const(cond, "condition")
    split1 = g.const([len1, len2], "split", np.int64)
    split2 = g.const([len2, len2], "split", np.int64)
    axis2 = g.const([2], "axes", np.int64)
    tenth, alpha = g.const(0.1, "tenth"), g.const(clamp, "clamp")
    logdet = None
    log_scale = np.float32(0)
    k = 0
    while p + f"flow.module_list.{k}.w_perm" in t:
        q = p + f"flow.module_list.{k}."
        w1, b1 = t[q + "subnet.0.weight"], t[q + "subnet.0.bias"]  # (hid, len1 + D), (hid,)
        w2, b2 = t[q + "subnet.2.weight"], t[q + "subnet.2.bias"]  # (2·len2, hid)
        x1, x2 = g.op("Split", [x, split1], outputs=2, axis=2)
        # The condition's share c·W1cᵀ + b1 (P, hid): constants only, folded by the runtime.
        share = g.op("Add", [g.op("MatMul", [cond_c, g.const(w1[:, len1:].T, "w1c")]), g.const(b1, "b1")])
        r = g.op("Relu", [g.op("Add", [g.op("MatMul", [x1, g.const(w1[:, :len1].T, "w1x")]), share])])
        a = g.op("Mul", [g.op("Add", [g.op("MatMul", [r, g.const(w2.T, "w2")]), g.const(b2, "b2")]), tenth])
        a_s, a_t = g.op("Split", [a, split2], outputs=2, axis=2)
        s = g.op("Mul", [g.op("Tanh", [a_s]), alpha])
        u2 = g.op("Add", [g.op("Mul", [x2, g.op("Exp", [s])]), a_t])
        sum_s = g.op("ReduceSum", [s, axis2], keepdims=0)
        logdet = sum_s if logdet is None else g.op("Add", [logdet, sum_s])
        u = g.op("Concat", [x1, u2], axis=2)
        x = g.op("Add", [g.op("MatMul", [u, g.const(t[q + "affine.matrix"], "affine")]),
                         g.const(t[q + "affine.offset"], "offset")])
        log_scale = np.float32(log_scale + np.float32(_scalar(t, q + "affine.log_scale_sum")))
        k += 1
    if k == 0:
        raise BGADError(f"level {level} has no flow blocks in the detector's tensors")
    logdet = g.op("Add", [logdet, g.const(log_scale, "log_scale")])
    sq = g.op("ReduceSum", [g.op("Mul", [x, x]), axis2], keepdims=0)
    base = np.float32(-0.5 * dim * np.float32(math.log(2 * math.pi)))
    ell = g.op("Div", [g.op("Add", [g.op("Sub", [g.const(base, "base"), g.op("Mul", [g.const(0.5, "half"), sq])]),
                                    logdet]), g.const(float(dim), "dim")])
    return g.op("Sub", [ell, g.const(reference, "ref")])


def build_model(tensors: Dict[str, np.ndarray], metadata: Dict[str, str], opset: int = MAX_OPSET):
    """The ONNX ModelProto of the scoring graph from a detector's :meth:`Detector.tensors`."""
    onnx, helper, numpy_helper = _onnx()
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise BGADError(f"opset must lie in {MIN_OPSET}...{MAX_OPSET}, got {opset}")
    t = tensors
    size = int(_scalar(t, "config.image_size"))
    g = _Graph(helper, numpy_helper)

    x = g.op("Cast", ["image"], to=onnx.TensorProto.FLOAT)
    x = g.op("Div", [g.op("Sub", [x, g.const(_scalar(t, "preprocess.offset"), "offset")]),
                     g.const(_scalar(t, "preprocess.scale"), "scale")])
    x = g.op("Transpose", [x], perm=[0, 3, 1, 2])
    levels = _backbone(g, t, x, size)
    blocks = [int(b) for b in t["backbone.level_blocks"]]
    refs = t["calibration.references"]

    terms: List[str] = []
    for lvl, blk in enumerate(blocks):
        feat, gh, gw = levels[blk]
        grid = [int(v) for v in t[f"levels.{lvl}.grid"]]
        if grid != [gh, gw]:
            raise BGADError(f"level {lvl}: the engine's grid {grid} is not the backbone's {gh}×{gw}")
        e = _flow_ell_minus_ref(g, t, lvl, feat, float(refs[lvl]))
        e = g.op("Reshape", [e, g.const([0, gh, gw], "shape", np.int64)])  # (N, h, w)
        p = f"levels.{lvl}.map."
        corners = []
        for rows in ("lower", "upper"):
            r = g.op("Gather", [e, g.const(t[p + "rows." + rows], "rows", np.int64)], axis=1)  # (N, S, w)
            for cols in ("lower", "upper"):
                corners.append((rows, cols, g.op("Gather", [r, g.const(t[p + "cols." + cols], "cols", np.int64)], axis=2)))
        wy, wx = t[p + "rows.weight"].astype(np.float64), t[p + "cols.weight"].astype(np.float64)
        for rows, cols, v in corners:
            ay = wy if rows == "upper" else 1 - wy
            ax = wx if cols == "upper" else 1 - wx
            with np.errstate(divide="ignore"):
                lw = np.log(ay[:, None]) + np.log(ax[None, :])
            lw = np.where((ay[:, None] > 0) & (ax[None, :] > 0), lw, LOG_ZERO)
            terms.append(g.op("Add", [v, g.const(lw, "logw")]))
    m = g.op("Max", terms) if len(terms) > 1 else terms[0]
    shifted = [g.op("Exp", [g.op("Sub", [v, m])]) for v in terms]
    total = g.op("Sum", shifted) if len(shifted) > 1 else shifted[0]
    log_sum = g.op("Add", [m, g.op("Log", [total])])  # log Σ, (N, S, S)
    g.op("Sub", [g.const(_scalar(t, "calibration.max_normality"), "smax"), g.op("Exp", [log_sum])], name="anomaly_map")
    min_log = g.op("ReduceMin", [log_sum], axes=[1, 2], keepdims=0)
    g.op("Neg", [min_log], name="pred_score")
    g.op("Greater", ["pred_score", g.const(_scalar(t, "calibration.image_threshold"), "threshold")], name="pred_label")

    graph = helper.make_graph(
        g.nodes, "bgad_detector",
        [helper.make_tensor_value_info("image", onnx.TensorProto.UINT8, ["N", size, size, 3])],
        [helper.make_tensor_value_info("anomaly_map", onnx.TensorProto.FLOAT, ["N", size, size]),
         helper.make_tensor_value_info("pred_score", onnx.TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("pred_label", onnx.TensorProto.BOOL, ["N"])],
        initializer=g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="bgad",
                              producer_version=metadata.get("bgad_version", ""))
    model.ir_version = 8  # the IR of opset 17: readable by runtimes older than the onnx package
    model.doc_string = ("BGAD anomaly detector: uint8 (N, S, S, 3) RGB at the model size -> anomaly_map (N, S, S), "
                        "pred_score (N,) = -log(min sum), pred_label (N,) = pred_score > image_threshold")
    helper.set_model_props(model, dict(metadata))
    onnx.checker.check_model(model)
    return model


def export_onnx(detector, path: Union[str, os.PathLike], opset: int = MAX_OPSET) -> Path:
    """Writes `detector`'s scoring graph to `path` (atomically) and returns the path."""
    from . import __version__
    from .weights import _write_atomic

    onnx, _, _ = _onnx()
    path = Path(os.fspath(path))
    if path.is_dir():
        raise BGADError(f"{path} is a directory: give the ONNX file's path")
    tensors = detector.tensors()
    image_t, pixel_t = detector._thresholds()
    params = detector.get_params()
    metadata = {
        "image_threshold": repr(float(image_t)),
        "pixel_threshold": repr(float(pixel_t)),
        "input_size": str(int(_scalar(tensors, "config.image_size"))),
        "strides": ",".join(str(int(s)) for s in tensors["config.strides"]),
        "variant": str(params.get("variant", "")),
        "backbone": BACKBONES[int(_scalar(tensors, "config.backbone"))],
        "bgad_version": __version__,
        "source_sha256": hashlib.sha256(detector.to_bytes()).hexdigest(),
        "tiling": str(params.get("tiling", "off")),
        "input_layout": "uint8 NHWC RGB (N, S, S, 3) at the model size S = input_size",
    }
    model = build_model(tensors, metadata, opset)
    _write_atomic(path, model.SerializeToString())
    return path


__all__ = ["export_onnx", "build_model", "same_padding", "MAX_OPSET", "MIN_OPSET"]
