/// The flow's affine coupling for inference built for AVX-512 (see `PackedGemmAVX512.swift`
/// for when it may run): `couplingForwardAVX2` of `BGADKernelsAVX2` on 16 lanes and two
/// rows at a time, about twice as fast (the AVX2 kernel waits on the latency of one row's
/// exp/tanh chains most of the time). Every lane takes `couplingForwardAVX2`'s operations
/// (the same exp and tanh), so the coupled values are the same; the log-determinant's sum
/// adds its terms in another order (16 partial sums instead of 8), so it may differ in the
/// last bits.
///
/// The code avoids what Swift does not vectorise on 16 lanes (mask selects with shared
/// masks, `lowHalf`/`highHalf`): signs and kept lanes go through bit operations.

/// `exp(x)` per lane, `expAVX2`'s arithmetic on 16 lanes: Cody–Waite reduction
/// `x = k·ln2 + r`, degree-7 Taylor polynomial, `2^k` built in the exponent bits. Without
/// `expAVX2`'s clamp of `x` to [−87.3, 88.7]: the callers' arguments lie in [−40, 40] (or
/// are NaN, which passes the clamp unchanged), so the values are the same.
@_transparent
private func exp16(_ xc: SIMD16<Float>) -> SIMD16<Float> {
    let magic = SIMD16<Float>(repeating: 12_582_912)  // 1.5·2²³: adding it rounds to an integer
    let shifted = magic.addingProduct(xc, SIMD16<Float>(repeating: 1.442_695_04))
    let k = shifted - magic
    var r = xc.addingProduct(k, SIMD16<Float>(repeating: -0.693_145_751_953_125))
    r = r.addingProduct(k, SIMD16<Float>(repeating: -1.428_606_765_330_187e-06))
    var p = SIMD16<Float>(repeating: 1.0 / 5040)
    p = SIMD16<Float>(repeating: 1.0 / 720).addingProduct(p, r)
    p = SIMD16<Float>(repeating: 1.0 / 120).addingProduct(p, r)
    p = SIMD16<Float>(repeating: 1.0 / 24).addingProduct(p, r)
    p = SIMD16<Float>(repeating: 1.0 / 6).addingProduct(p, r)
    p = SIMD16<Float>(repeating: 0.5).addingProduct(p, r)
    p = SIMD16<Float>(repeating: 1).addingProduct(p, r)
    p = SIMD16<Float>(repeating: 1).addingProduct(p, r)
    let bits = unsafeBitCast(shifted, to: SIMD16<UInt32>.self)
    let scale = unsafeBitCast((bits &- 0x4B40_0000 &+ 127) &<< 23, to: SIMD16<Float>.self)
    return p * scale
}

/// `tanh(x)` per lane, `tanhAVX2`'s arithmetic: `1 − 2 / (exp(2|x|) + 1)` with the sign of
/// `x` (|2x| capped at 40). The sign is taken off and put back with bit operations (select
/// on a 16-lane mask is not vectorised), which differs from `tanhAVX2` only in the sign of
/// a zero result.
@_transparent
private func tanh16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    let bits = unsafeBitCast(x, to: SIMD16<UInt32>.self)
    let sign = bits & SIMD16<UInt32>(repeating: 0x8000_0000)
    var ax = unsafeBitCast(bits ^ sign, to: SIMD16<Float>.self) * 2
    let cap = SIMD16<Float>(repeating: 40)
    ax = pointwiseMin(ax, cap)
    let t = 1 - 2 / (exp16(ax) + 1)
    return unsafeBitCast(unsafeBitCast(t, to: SIMD16<UInt32>.self) ^ sign, to: SIMD16<Float>.self)
}

/// One 16-lane unit of a row: returns `s = α·tanh(0.1·qs)` and the coupled
/// `0.1·qt + x2·exp(s)` (the order of `couplingForwardAVX2`'s group).
@_transparent
private func unit(_ qs: SIMD16<Float>, _ qt: SIMD16<Float>, _ x2: SIMD16<Float>, _ alpha: SIMD16<Float>)
    -> (y: SIMD16<Float>, s: SIMD16<Float>) {
    let s = alpha * tanh16(qs * 0.1)
    return ((qt * 0.1).addingProduct(x2, exp16(s)), s)
}

/// `v` with the lanes where `keep` is zero set to +0.
@_transparent
private func kept(_ v: SIMD16<Float>, _ keep: SIMD16<UInt32>) -> SIMD16<Float> {
    unsafeBitCast(unsafeBitCast(v, to: SIMD16<UInt32>.self) & keep, to: SIMD16<Float>.self)
}

/// The sum of the 16 lanes as a tree of halves.
@_transparent
private func total(_ v: SIMD16<Float>) -> Float {
    let h = v.lowHalf + v.highHalf
    let q = h.lowHalf + h.highHalf
    let d = q.lowHalf + q.highHalf
    return d[0] + d[1]
}

/// Rows `a` and `b`'s coupling (`b` nil: row `a` alone), their units interleaved so that
/// the core overlaps their chains: the units at 0, 16, … that fit, then (when `len2` is not
/// a multiple of 16) one ending at `len2` whose first lanes repeat the previous unit's last
/// ones (its inputs are read before anything is written; its repeated lanes are left out of
/// the sum). Returns the rows' `Σ s` as 16 partial sums each.
@_transparent
private func rows(
    _ qa: UnsafePointer<Float>, _ xa: UnsafeMutablePointer<Float>,
    _ qb: UnsafePointer<Float>?, _ xb: UnsafeMutablePointer<Float>?,
    len2: Int, full: Int, tail: Int?, keep: SIMD16<UInt32>, alpha: SIMD16<Float>
) -> (SIMD16<Float>, SIMD16<Float>) {
    let zero = SIMD16<Float>(repeating: 0)
    var lastA = (y: zero, s: zero), lastB = lastA
    if let o = tail {
        lastA = unit(load16(qa + o), load16(qa + len2 + o), load16(xa + o), alpha)
        if let qb, let xb { lastB = unit(load16(qb + o), load16(qb + len2 + o), load16(xb + o), alpha) }
    }
    var sumA = zero, sumB = zero
    for u in 0..<full {
        let o = 16 * u
        let a = unit(load16(qa + o), load16(qa + len2 + o), load16(xa + o), alpha)
        if let qb, let xb {
            let b = unit(load16(qb + o), load16(qb + len2 + o), load16(xb + o), alpha)
            store16(b.y, xb + o)
            sumB += b.s
        }
        store16(a.y, xa + o)
        sumA += a.s
    }
    if let o = tail {
        store16(lastA.y, xa + o)
        sumA += kept(lastA.s, keep)
        if let xb {
            store16(lastB.y, xb + o)
            sumB += kept(lastB.s, keep)
        }
    }
    return (sumA, sumB)
}

/// The affine coupling of `count` vectors in place, `couplingForwardAVX2` without its
/// `tanhOut`/`expOut` outputs (inference): with `a = 0.1·q`, `s = clamp·tanh(a[:, :len2])`,
/// `t = a[:, len2:]`, `x2 ← x2 ⊙ exp(s) + t` where `x2 = x[:, len1:]`, and `logdet += Σ s`
/// per vector. `x` has row stride `len1 + len2`, `q` row stride `2·len2`; `len2` must be ≥ 16.
public func couplingForwardAVX512(
    x: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, count n: Int, len1: Int, len2: Int, clamp: Float,
    logdet: UnsafeMutablePointer<Float>
) {
    let alpha = SIMD16<Float>(repeating: clamp)
    let full = len2 / 16, left = len2 % 16
    let tail: Int? = left == 0 ? nil : len2 - 16
    var keep = SIMD16<UInt32>(repeating: 0)
    for lane in (16 - left)..<16 { keep[lane] = 0xFFFF_FFFF }
    let dim = len1 + len2, outDim = 2 * len2
    var i = 0
    // Two rows at a time: their units are independent chains the core overlaps.
    while i + 2 <= n {
        let qa = q + i * outDim, xa = x + i * dim + len1
        let (sa, sb) = rows(qa, xa, qa + outDim, xa + dim, len2: len2, full: full, tail: tail, keep: keep,
                            alpha: alpha)
        logdet[i] += total(sa)
        logdet[i + 1] += total(sb)
        i += 2
    }
    if i < n {
        let (sa, _) = rows(q + i * outDim, x + i * dim + len1, nil, nil, len2: len2, full: full, tail: tail,
                           keep: keep, alpha: alpha)
        logdet[i] += total(sa)
    }
}
