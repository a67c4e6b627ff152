#if canImport(Glibc)
import Glibc
#endif
import BGADKernelsAVX2
import BGADKernelsAVX512

/// One affine coupling block of the flow, FrEIA 0.2's `AllInOneBlock` in BGAD's
/// configuration (`docs/FLOW.md`, "One block"). Rows are vectors; `C` = `dim`.
///
/// ```
/// x1, x2 = x[:, :len1], x[:, len1:]                 len1 = ⌈C/2⌉, len2 = ⌊C/2⌋
/// r      = ReLU([x1, c]·W1ᵀ + b1)                   W1: hid × (len1 + D), hid = 2(len1 + D)
/// a      = 0.1·(r·W2ᵀ + b2)                         W2: 2len2 × hid
/// s      = clamp·tanh(a[:, :len2]),  t = a[:, len2:]
/// u      = [x1, x2 ⊙ exp(s) + t]
/// σ      = 0.2·log(1 + exp(g/2))                    (softplus with β = ½, scaled by 0.1)
/// y      = (u ⊙ σ + o)·Wpᵀ = u·M + o·Wpᵀ,  M = diag(σ)·Wpᵀ
/// logdet = Σ s + Σ log σ
/// ```
/// The condition's share of the first layer, `c·W1cᵀ + b1` (W1c = the last `D` columns
/// of W1), depends only on the position, so it is computed once per condition row
/// (`conditionShare`) and gathered per vector; its weight gradient is accumulated per
/// condition row and multiplied once (`backward`).
///
/// The block owns no memory: it is the geometry (sizes and offsets into the flow's flat
/// parameter buffer, the layout of its folded global affine) plus the kernels of the
/// forward, inverse and backward passes, log-determinant included.
public struct CouplingBlock {
    /// Input width `C`.
    public let dim: Int
    /// Width of the condition `D`.
    public let condDim: Int
    /// Passive half `⌈C/2⌉`.
    public let len1: Int
    /// Active half `⌊C/2⌋`.
    public let len2: Int
    /// Subnet input width `len1 + D`.
    public let inDim: Int
    /// Subnet hidden width `2·inDim`.
    public let hidden: Int
    /// Subnet output width `2·len2`.
    public let outDim: Int
    /// Clamp α of `s = α·tanh(·)`.
    public let clamp: Float
    /// Offsets of W1, b1, W2, b2, g, o in the flat trainable buffer.
    public let w1: Int, b1: Int, w2: Int, b2: Int, g: Int, o: Int
    /// Number of trainable floats of this block.
    public let trainableCount: Int
    /// Floats of this block's folded global affine (`prepareAffine`): `M` (C × C), `o·Wpᵀ`
    /// (C), `σ` (C), `Σ log σ` (1), padded to a multiple of 64 bytes.
    let affineSize: Int

    /// Creates the geometry of a block whose trainable parameters start at `offset`.
    public init(dim: Int, condDim: Int, clamp: Float, offset: Int) {
        self.dim = dim
        self.condDim = condDim
        self.clamp = clamp
        len1 = dim - dim / 2
        len2 = dim / 2
        inDim = len1 + condDim
        hidden = 2 * inDim
        outDim = 2 * len2
        w1 = offset
        b1 = w1 + hidden * inDim
        w2 = b1 + hidden
        b2 = w2 + outDim * hidden
        g = b2 + outDim
        o = g + dim
        trainableCount = o + dim - offset
        affineSize = (dim * dim + 2 * dim + 1 + 15) / 16 * 16
    }

    /// σ = 0.2·log(1 + exp(g/2)) — PyTorch's `0.1·Softplus(β=0.5)`, linear when g/2 > 20.
    @inline(__always)
    static func globalScale(_ g: Float) -> Float {
        let h = g / 2
        return h > 20 ? 0.1 * g : 0.2 * log1pf(expf(h))
    }

    /// dσ/dg = 0.1·sigmoid(g/2) (0.1 on the linear branch, as PyTorch's softplus backward).
    @inline(__always)
    static func globalScaleDerivative(_ g: Float) -> Float {
        let h = g / 2
        return h > 20 ? 0.1 : 0.1 / (1 + expf(-h))
    }

    // MARK: - Global affine
    // `y = (u ⊙ σ + o)·Wpᵀ`, folded per parameter version into `y = u·M + o·Wpᵀ` with
    // `M = diag(σ)·Wpᵀ`: one product per chunk. `affine` is this block's `affineSize` floats.

    /// Folds the global affine of the current parameters into `affine`: `M`, `o·Wpᵀ`, `σ`
    /// and `Σ log σ` (the affine's share of every vector's log-determinant).
    func prepareAffine(params: UnsafePointer<Float>, wp: UnsafePointer<Float>, affine: UnsafeMutablePointer<Float>) {
        let m = affine, ob = affine + dim * dim, sigma = ob + dim
        var logSum: Double = 0
        for k in 0..<dim {
            sigma[k] = CouplingBlock.globalScale(params[g + k])
            logSum += Double(logf(sigma[k]))
        }
        for k in 0..<dim {
            for j in 0..<dim { m[k * dim + j] = sigma[k] * wp[j * dim + k] }
        }
        for j in 0..<dim {
            var acc: Float = 0
            for k in 0..<dim { acc += params[o + k] * wp[j * dim + k] }
            ob[j] = acc
        }
        affine[logSigmaSumOffset] = Float(logSum)
    }

    /// The folded affine of the parameters `params` and rotation `wp` as arrays — `M`
    /// (C × C), `o·Wpᵀ` (C) and `Σ log σ` — for exporters of the engine's own folding.
    func foldedAffine(params: UnsafePointer<Float>, wp: UnsafePointer<Float>) -> (m: [Float], ob: [Float], logSum: Float) {
        var a = [Float](repeating: 0, count: affineSize)
        a.withUnsafeMutableBufferPointer { prepareAffine(params: params, wp: wp, affine: $0.baseAddress!) }
        return (Array(a[0..<(dim * dim)]), Array(a[(dim * dim)..<(dim * dim + dim)]), a[logSigmaSumOffset])
    }

    /// σ of the folded affine (C floats).
    func sigma(_ affine: UnsafePointer<Float>) -> UnsafePointer<Float> { affine + dim * dim + dim }

    /// Where the folded affine keeps `Σ log σ`.
    var logSigmaSumOffset: Int { dim * dim + 2 * dim }

    /// Forward global affine and rotation of `n` vectors: `y = u·M + o·Wpᵀ`; adds `Σ log σ`
    /// to each `logdet`.
    /// With `packed` (the block's weights packed by `pack`), the AVX-512 direct product runs
    /// with `o·Wpᵀ` as its start.
    func applyAffine(
        _ affine: UnsafePointer<Float>, u: UnsafePointer<Float>, count n: Int,
        y: UnsafeMutablePointer<Float>, logdet: UnsafeMutablePointer<Float>, packed: UnsafePointer<Float>? = nil
    ) {
        let ob = affine + dim * dim, logSigmaSum = affine[logSigmaSumOffset]
        if let packed {
            var start = PackedGemmEpilogue()
            start.bias = ob
            packedGemm(m: n, n: dim, k: dim, u, lda: dim, packed: packed + packedAffineOffset, start, y, ldc: dim)
        } else {
            for i in 0..<n { (y + i * dim).update(from: ob, count: dim) }
            sgemm(m: n, n: dim, k: dim, u, lda: dim, affine, ldb: dim, beta: 1, y, ldc: dim)
        }
        for i in 0..<n { logdet[i] += logSigmaSum }
    }

    /// Inverse of `applyAffine`: `u = (y·Wp − o) / σ`; subtracts `Σ log σ` from each `logdet`.
    func invertAffine(
        _ affine: UnsafePointer<Float>, params: UnsafePointer<Float>, wp: UnsafePointer<Float>,
        y: UnsafePointer<Float>, count n: Int, u: UnsafeMutablePointer<Float>, logdet: UnsafeMutablePointer<Float>
    ) {
        let sg = sigma(affine), logSigmaSum = affine[logSigmaSumOffset], o = params + self.o
        sgemm(m: n, n: dim, k: dim, y, lda: dim, wp, ldb: dim, beta: 0, u, ldc: dim)
        for i in 0..<n {
            let row = u + i * dim
            for j in 0..<dim { row[j] = (row[j] - o[j]) / sg[j] }
            logdet[i] -= logSigmaSum
        }
    }

    // MARK: - Subnet and coupling

    /// `share = condTable·W1cᵀ + b1` (`rows × hidden`): the condition's part of the first layer.
    func conditionShare(
        params: UnsafePointer<Float>, condTable: UnsafePointer<Float>, rows: Int,
        share: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<rows { (share + r * hidden).update(from: params + b1, count: hidden) }
        sgemm(transB: true, m: rows, n: hidden, k: condDim,
              condTable, lda: condDim, params + w1 + len1, ldb: inDim,
              beta: 1, share, ldc: hidden)
    }

    /// The subnet up to `a`: `r = ReLU(x1·W1xᵀ + share[index])` (n × hidden) and
    /// `q = r·W2ᵀ + b2` (n × outDim, so that `a = 0.1·q`). `x` has row stride `dim`.
    /// With `packed` (the block's weights packed by `pack`), the AVX-512 direct product runs
    /// with the condition add, the ReLU and the bias in its epilogue.
    func subnet(
        params: UnsafePointer<Float>, x: UnsafePointer<Float>, count n: Int,
        share: UnsafePointer<Float>, index: UnsafePointer<Int32>,
        r: UnsafeMutablePointer<Float>, q: UnsafeMutablePointer<Float>, packed: UnsafePointer<Float>? = nil
    ) {
        if let packed {
            var first = PackedGemmEpilogue()
            first.table = share
            first.index = index
            first.tableStride = hidden
            first.clamp = 1
            packedSecondLayer(params: params, x: x, count: n, packed: packed, first: first, r: r, q: q)
            return
        }
        sgemm(transB: true, m: n, n: hidden, k: len1, x, lda: dim, params + w1, ldb: inDim,
              beta: 0, r, ldc: hidden)
        if VectorISA.useAVX2 {
            addRowsReluAVX2(r, table: share, index: index, rows: n, cols: hidden)
        } else {
            addRowsRelu(r, table: share, index: index, rows: n, cols: hidden)
        }
        for i in 0..<n { (q + i * outDim).update(from: params + b2, count: outDim) }
        sgemm(transB: true, m: n, n: outDim, k: hidden, r, lda: hidden, params + w2, ldb: hidden,
              beta: 1, q, ldc: outDim)
    }

    /// Affine coupling in place on `x` (n × dim): `x2 ← x2 ⊙ exp(s) + t`; adds `Σ s` to
    /// `logdet`. When `tanhOut`/`expOut` are given, stores `tanh(a_s)` and `exp(s)` (n × len2).
    func couple(
        x: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, count n: Int,
        logdet: UnsafeMutablePointer<Float>,
        tanhOut: UnsafeMutablePointer<Float>? = nil, expOut: UnsafeMutablePointer<Float>? = nil
    ) {
        if len2 >= 16 && VectorISA.useAVX512 && tanhOut == nil && expOut == nil {
            couplingForwardAVX512(x: x, q: q, count: n, len1: len1, len2: len2, clamp: clamp, logdet: logdet)
            return
        }
        if len2 >= 8 && VectorISA.useAVX2 {
            couplingForwardAVX2(x: x, q: q, count: n, len1: len1, len2: len2, clamp: clamp, logdet: logdet,
                                tanhOut: tanhOut, expOut: expOut)
            return
        }
        let alpha = SIMD8<Float>(repeating: clamp)
        let lanes = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
        let len2 = self.len2
        for i in 0..<n {
            let qi = q + i * outDim, xi = x + i * dim + len1
            var sum = SIMD8<Float>(repeating: 0)
            if len2 >= 8 {
                // Full groups, then one last group ending at len2 that overlaps the previous
                // one; its inputs are read before anything is written, so the overlap is
                // rewritten with identical values and counted once in Σ s.
                let tail = len2 - 8
                let tqs = load8(qi + tail), tqt = load8(qi + len2 + tail), tx2 = load8(xi + tail)
                var j = 0
                while j + 8 <= len2 {
                    sum += CouplingBlock.group(load8(qi + j), load8(qi + len2 + j), load8(xi + j), alpha, xi + j,
                                               tanhOut.map { $0 + i * len2 + j }, expOut.map { $0 + i * len2 + j })
                    j += 8
                }
                if j < len2 {
                    let s = CouplingBlock.group(tqs, tqt, tx2, alpha, xi + tail,
                                               tanhOut.map { $0 + i * len2 + tail }, expOut.map { $0 + i * len2 + tail })
                    sum += s.replacing(with: 0, where: lanes .< SIMD8<Float>(repeating: Float(j - tail)))
                }
            } else {
                let th = tanhVector(loadPartial(qi, len2) * 0.1)
                let s = alpha * th     // zero in unused lanes
                let e = expVector(s)
                storePartial(loadPartial(xi, len2) * e + loadPartial(qi + len2, len2) * 0.1, xi, len2)
                if let o = tanhOut { storePartial(th, o + i * len2, len2) }
                if let o = expOut { storePartial(e, o + i * len2, len2) }
                sum = s
            }
            logdet[i] += sum.sum()
        }
    }

    /// One group of 8 active channels: `y = x2·e^s + t` stored at `y`; `tanh`, `e^s` stored when
    /// asked; returns `s`.
    @inline(__always)
    static func group(
        _ qs: SIMD8<Float>, _ qt: SIMD8<Float>, _ x2: SIMD8<Float>, _ alpha: SIMD8<Float>,
        _ y: UnsafeMutablePointer<Float>, _ thOut: UnsafeMutablePointer<Float>?, _ eOut: UnsafeMutablePointer<Float>?
    ) -> SIMD8<Float> {
        let th = tanhVector(qs * 0.1)
        let s = alpha * th
        let e = expVector(s)
        store8(x2 * e + qt * 0.1, y)
        if let o = thOut { store8(th, o) }
        if let o = eOut { store8(e, o) }
        return s
    }

    /// Inverse coupling in place on `v` (n × dim): `x2 ← (v2 − t) ⊙ exp(−s)`; subtracts `Σ s`.
    func uncouple(
        v: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, count n: Int,
        logdet: UnsafeMutablePointer<Float>
    ) {
        let alpha = SIMD8<Float>(repeating: clamp)
        for i in 0..<n {
            let qi = q + i * outDim, vi = v + i * dim + len1
            var sum = SIMD8<Float>(repeating: 0)
            var j = 0
            while j < len2 {
                let w = min(8, len2 - j)
                let s = alpha * tanhVector(loadPartial(qi + j, w) * 0.1)
                let t = loadPartial(qi + len2 + j, w) * 0.1
                let y = (loadPartial(vi + j, w) - t) * expVector(-s)
                storePartial(y, vi + j, w)
                sum += s
                j += 8
            }
            logdet[i] -= sum.sum()
        }
    }

    // MARK: - Backward

    /// Backward of one block over a slice of the vectors.
    ///
    /// - Parameters:
    ///   - wp, affine: the rotation and the folded affine the forward pass used.
    ///   - dy: dL/dy (n × dim), read only.
    ///   - dLogdet: dL/d(logdet) per vector (n).
    ///   - x: the block's input (n × dim), r: stored ReLU output, th/ex: stored tanh(a_s)/exp(s),
    ///     u: stored coupling output (n × dim).
    ///   - grads: a flat gradient buffer; this block's W1 (first `len1` columns), W2, b2, g, o
    ///     slots are OVERWRITTEN with this slice's contribution. The condition columns of W1
    ///     and b1 are left alone: they come from `perRow` (`conditionGradient`).
    ///   - index: condition row of each vector, non-decreasing (vectors sorted by condition row).
    ///   - perRow: condRows × hidden; receives, for each condition row of this slice, the sum of
    ///     dL/d(first-layer pre-activation) over its vectors (`carry` instead for a first row
    ///     continued from the previous slice).
    ///   - dx: receives dL/dx (n × dim).
    ///   - dq: scratch n × outDim; dr: scratch n × hidden.
    func backward(
        params: UnsafePointer<Float>, wp: UnsafePointer<Float>, affine: UnsafePointer<Float>,
        count n: Int, index: UnsafePointer<Int32>,
        dy: UnsafePointer<Float>, dLogdet: UnsafePointer<Float>,
        x: UnsafePointer<Float>, r: UnsafePointer<Float>, th: UnsafePointer<Float>, ex: UnsafePointer<Float>,
        u: UnsafePointer<Float>,
        grads: UnsafeMutablePointer<Float>, perRow: UnsafeMutablePointer<Float>, carry: UnsafeMutablePointer<Float>?,
        dx: UnsafeMutablePointer<Float>,
        dq: UnsafeMutablePointer<Float>, dr: UnsafeMutablePointer<Float>
    ) {
        // dv = dy·Wp (y = v·Wpᵀ), written to dx; then do += dv, dσ += dv ⊙ u, du = dv ⊙ σ in place.
        sgemm(m: n, n: dim, k: dim, dy, lda: dim, wp, ldb: dim, beta: 0, dx, ldc: dim)
        let sigma = self.sigma(affine)
        let dg = grads + g, dof = grads + o
        dg.update(repeating: 0, count: dim)
        dof.update(repeating: 0, count: dim)
        var sumDLogdet: Double = 0
        for i in 0..<n {
            let dvi = dx + i * dim, ui = u + i * dim
            var k = 0
            while k + 8 <= dim {
                let dv = load8(dvi + k)
                store8(load8(dof + k) + dv, dof + k)
                store8(load8(dg + k) + dv * load8(ui + k), dg + k)
                store8(dv * load8(sigma + k), dvi + k)
                k += 8
            }
            while k < dim {
                dof[k] += dvi[k]
                dg[k] += dvi[k] * ui[k]
                dvi[k] *= sigma[k]
                k += 1
            }
            sumDLogdet += Double(dLogdet[i])
        }
        for k in 0..<dim {
            let dSigma = dg[k] + Float(sumDLogdet) / sigma[k]
            dg[k] = dSigma * CouplingBlock.globalScaleDerivative(params[g + k])
        }
        // Coupling: dx2 = du2 ⊙ e;  ds = du2 ⊙ x2 ⊙ e + dlogdet;  dq = 0.1·[ds·α(1−th²), du2].
        for i in 0..<n {
            let du2 = dx + i * dim + len1, x2 = x + i * dim + len1
            let thi = th + i * len2, ei = ex + i * len2, dqi = dq + i * outDim
            let dl = dLogdet[i]
            for j in 0..<len2 {
                let e = ei[j], g2 = du2[j]
                let ds = g2 * x2[j] * e + dl
                dqi[j] = 0.1 * ds * clamp * (1 - thi[j] * thi[j])
                dqi[len2 + j] = 0.1 * g2
                du2[j] = g2 * e
            }
        }
        // Second layer: dW2 = dqᵀ·r, db2 = Σ dq, dr = dq·W2 masked by r > 0.
        sgemm(transA: true, m: outDim, n: hidden, k: n, dq, lda: outDim, r, ldb: hidden,
              beta: 0, grads + w2, ldc: hidden)
        columnSums(dq, stride: outDim, rows: n, cols: outDim, into: grads + b2)
        sgemm(m: n, n: hidden, k: outDim, dq, lda: outDim, params + w2, ldb: hidden, beta: 0, dr, ldc: hidden)
        // ReLU mask, fused with the per-condition-row sums of the first layer's gradient.
        reluMaskGroupSum(dr, r: r, index: index, rows: n, cols: hidden, perRow, carry: carry)
        // First layer, x1 part: dW1x = drᵀ·x1; dx1 += dr·W1x.
        sgemm(transA: true, m: hidden, n: len1, k: n, dr, lda: hidden, x, ldb: dim,
              beta: 0, grads + w1, ldc: inDim)
        sgemm(m: n, n: len1, k: hidden, dr, lda: hidden, params + w1, ldb: inDim, beta: 1, dx, ldc: dim)
    }

    /// Condition part of the first layer's gradient from the per-row sums of dL/d(pre-activation):
    /// `dW1c = perRowᵀ·condTable` (written to W1's last `condDim` columns), `db1 = Σ perRow`.
    func conditionGradient(
        perRow: UnsafePointer<Float>, condTable: UnsafePointer<Float>, rows: Int, grads: UnsafeMutablePointer<Float>
    ) {
        sgemm(transA: true, m: hidden, n: condDim, k: rows, perRow, lda: hidden, condTable, ldb: condDim,
              beta: 0, grads + w1 + len1, ldc: inDim)
        columnSums(perRow, stride: hidden, rows: rows, cols: hidden, into: grads + b1)
    }
}
