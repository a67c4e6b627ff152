/// The flow's element-wise kernels built for AVX2 + FMA (see `Vectors.swift` for when they
/// may run): the affine coupling (tanh, exp) and the subnet's condition add + ReLU.
/// They follow `CouplingBlock.couple`, `expVector`, `tanhVector` and `addRowsRelu` of
/// `BGADCore` step for step; the polynomials use FMA, so results agree to float rounding.

/// `exp(x)` per lane: Cody–Waite reduction `x = k·ln2 + r`, degree-7 Taylor polynomial
/// (Horner with FMA), `2^k` built in the exponent bits; `x` is clamped to [−87.3, 88.7].
@inline(__always)
func expAVX2(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let lo = SIMD8<Float>(repeating: -87.3), hi = SIMD8<Float>(repeating: 88.7)
    var xc = x.replacing(with: lo, where: x .< lo)
    xc = xc.replacing(with: hi, where: xc .> hi)
    let magic = SIMD8<Float>(repeating: 12_582_912)  // 1.5·2²³: adding it rounds to an integer
    let shifted = magic.addingProduct(xc, SIMD8<Float>(repeating: 1.442_695_04))
    let k = shifted - magic
    var r = xc.addingProduct(k, SIMD8<Float>(repeating: -0.693_145_751_953_125))
    r = r.addingProduct(k, SIMD8<Float>(repeating: -1.428_606_765_330_187e-06))
    var p = SIMD8<Float>(repeating: 1.0 / 5040)
    p = SIMD8<Float>(repeating: 1.0 / 720).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 1.0 / 120).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 1.0 / 24).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 1.0 / 6).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 0.5).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 1).addingProduct(p, r)
    p = SIMD8<Float>(repeating: 1).addingProduct(p, r)
    let bits = unsafeBitCast(shifted, to: SIMD8<UInt32>.self)
    let scale = unsafeBitCast((bits &- 0x4B40_0000 &+ 127) &<< 23, to: SIMD8<Float>.self)
    return p * scale
}

/// `tanh(x)` per lane as `1 − 2 / (exp(2|x|) + 1)` with the sign of `x` (|2x| capped at 40).
@inline(__always)
func tanhAVX2(_ x: SIMD8<Float>) -> SIMD8<Float> {
    let negative = x .< 0
    var ax = x.replacing(with: -x, where: negative) * 2
    let cap = SIMD8<Float>(repeating: 40)
    ax = ax.replacing(with: cap, where: ax .> cap)
    let t = 1 - 2 / (expAVX2(ax) + 1)
    return t.replacing(with: -t, where: negative)
}

/// The affine coupling of `count` vectors in place (the forward pass of one flow block):
/// with `a = 0.1·q`, `s = clamp·tanh(a[:, :len2])`, `t = a[:, len2:]`,
/// `x2 ← x2 ⊙ exp(s) + t` where `x2 = x[:, len1:]`, and `logdet += Σ s` per vector.
/// `x` has row stride `dim` (= len1 + len2), `q` row stride `2·len2`; `len2` must be ≥ 8.
/// When `tanhOut`/`expOut` are given they receive `tanh(a_s)` and `exp(s)` (count × len2).
public func couplingForwardAVX2(
    x: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, count n: Int, len1: Int, len2: Int, clamp: Float,
    logdet: UnsafeMutablePointer<Float>,
    tanhOut: UnsafeMutablePointer<Float>?, expOut: UnsafeMutablePointer<Float>?
) {
    let alpha = SIMD8<Float>(repeating: clamp)
    let lanes = SIMD8<Float>(0, 1, 2, 3, 4, 5, 6, 7)
    let dim = len1 + len2, outDim = 2 * len2
    @inline(__always)
    func group(_ qs: SIMD8<Float>, _ qt: SIMD8<Float>, _ x2: SIMD8<Float>, _ y: UnsafeMutablePointer<Float>,
               _ thOut: UnsafeMutablePointer<Float>?, _ eOut: UnsafeMutablePointer<Float>?) -> SIMD8<Float> {
        let th = tanhAVX2(qs * 0.1)
        let s = alpha * th
        let e = expAVX2(s)
        st((qt * 0.1).addingProduct(x2, e), y)
        if let o = thOut { st(th, o) }
        if let o = eOut { st(e, o) }
        return s
    }
    for i in 0..<n {
        let qi = q + i * outDim, xi = x + i * dim + len1
        var sum = SIMD8<Float>(repeating: 0)
        // Full groups of 8, then one last group ending at len2 that overlaps the previous
        // one; its inputs are read before anything is written, so the overlap is rewritten
        // with identical values and counted once in Σ s.
        let tail = len2 - 8
        let tqs = ld(qi + tail), tqt = ld(qi + len2 + tail), tx2 = ld(xi + tail)
        var j = 0
        while j + 8 <= len2 {
            sum += group(ld(qi + j), ld(qi + len2 + j), ld(xi + j), xi + j,
                         tanhOut.map { $0 + i * len2 + j }, expOut.map { $0 + i * len2 + j })
            j += 8
        }
        if j < len2 {
            let s = group(tqs, tqt, tx2, xi + tail,
                          tanhOut.map { $0 + i * len2 + tail }, expOut.map { $0 + i * len2 + tail })
            sum += s.replacing(with: 0, where: lanes .< SIMD8<Float>(repeating: Float(j - tail)))
        }
        logdet[i] += sum.sum()
    }
}

/// `x[i, :] = max(x[i, :] + table[index[i], :], 0)` for `rows` rows of `cols` floats.
public func addRowsReluAVX2(
    _ x: UnsafeMutablePointer<Float>, table: UnsafePointer<Float>, index: UnsafePointer<Int32>, rows: Int, cols: Int
) {
    let zero = SIMD8<Float>(repeating: 0)
    for i in 0..<rows {
        let xi = x + i * cols, t = table + Int(index[i]) * cols
        var j = 0
        while j + 32 <= cols {
            for u in 0..<4 {
                let v = ld(xi + j + 8 * u) + ld(t + j + 8 * u)
                st(v.replacing(with: zero, where: v .< zero), xi + j + 8 * u)
            }
            j += 32
        }
        while j + 8 <= cols {
            let v = ld(xi + j) + ld(t + j)
            st(v.replacing(with: zero, where: v .< zero), xi + j)
            j += 8
        }
        while j < cols {
            let v = xi[j] + t[j]
            xi[j] = v < 0 ? 0 : v
            j += 1
        }
    }
}
