/// Depthwise-convolution kernels for x86-64 CPUs with AVX2 and FMA.
///
/// This module is compiled for `x86-64-v3` (see Package.swift); nothing in it may run
/// unless the CPU has AVX2 and FMA. `BGADCore` checks that once (`VectorISA`) and calls
/// these kernels instead of its baseline (SSE2) ones; otherwise it never calls them. No
/// function here is `@inlinable`, so none can be inlined into code built for the baseline.

@inline(__always)
private func ld(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always)
private func st(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// `min(max(v, 0), 6)` per lane as compare-and-mask + `vminps`; NaN lanes become 0.
@inline(__always)
private func relu6(_ v: SIMD8<Float>) -> SIMD8<Float> {
    let zero = SIMD8<Float>(repeating: 0), six = SIMD8<Float>(repeating: 6)
    let p = zero.replacing(with: v, where: zero .< v)
    return six.replacing(with: p, where: p .< six)
}

/// `count` consecutive output pixels of one row of a depthwise k×k, stride-s convolution
/// with bias and ReLU6, channels-last, for pixels whose kernel rows lie inside the input:
///
/// `out[j·c + ch] = ReLU6(bias[ch] + Σ_{r < rows} Σ_{kx < k} in[r·rowStride + (j·s + kx)·c + ch] · w[(r·k + kx)·c + ch])`
///
/// `input` points at pixel 0's first tap (its first valid kernel row), `weights` at that
/// kernel row. `c` must be a multiple of 8. Four pixels share each weight load and, at
/// stride 1, each input load; the products accumulate with FMA in registers.
public func depthwiseRowAVX2(
    kernel k: Int, stride s: Int, input: UnsafePointer<Float>, rows: Int, rowStride: Int, channels c: Int,
    weights: UnsafePointer<Float>, bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int
) {
    var j = 0
    switch (k, s) {
    case (3, 1): j = quads31(input, rows, rowStride, c, weights, bias, output, count)
    case (3, 2): j = quads32(input, rows, rowStride, c, weights, bias, output, count)
    case (5, 1): j = quads51(input, rows, rowStride, c, weights, bias, output, count)
    case (5, 2): j = quads52(input, rows, rowStride, c, weights, bias, output, count)
    default: break
    }
    while j < count {
        depthwisePixelAVX2(input: input + j * s * c, taps: k, rows: rows, rowStride: rowStride, channels: c,
                           weights: weights, weightRowStride: k * c, bias: bias, output: output + j * c)
        j += 1
    }
}

// The pixels of a row in fours, one function per (k, s) so that each gets its own
// fully unrolled copy of `quad`; each returns how many pixels it did.
@inline(never)
private func quads31(_ i: UnsafePointer<Float>, _ r: Int, _ rs: Int, _ c: Int, _ w: UnsafePointer<Float>,
                     _ b: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ n: Int) -> Int {
    var j = 0
    while j + 4 <= n { quad(3, 1, i + j * c, r, rs, c, w, b, o + j * c); j += 4 }
    return j
}
@inline(never)
private func quads32(_ i: UnsafePointer<Float>, _ r: Int, _ rs: Int, _ c: Int, _ w: UnsafePointer<Float>,
                     _ b: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ n: Int) -> Int {
    var j = 0
    while j + 4 <= n { quad(3, 2, i + 2 * j * c, r, rs, c, w, b, o + j * c); j += 4 }
    return j
}
@inline(never)
private func quads51(_ i: UnsafePointer<Float>, _ r: Int, _ rs: Int, _ c: Int, _ w: UnsafePointer<Float>,
                     _ b: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ n: Int) -> Int {
    var j = 0
    while j + 4 <= n { quad(5, 1, i + j * c, r, rs, c, w, b, o + j * c); j += 4 }
    return j
}
@inline(never)
private func quads52(_ i: UnsafePointer<Float>, _ r: Int, _ rs: Int, _ c: Int, _ w: UnsafePointer<Float>,
                     _ b: UnsafePointer<Float>, _ o: UnsafeMutablePointer<Float>, _ n: Int) -> Int {
    var j = 0
    while j + 4 <= n { quad(5, 2, i + 2 * j * c, r, rs, c, w, b, o + j * c); j += 4 }
    return j
}

/// Four output pixels (see `depthwiseRowAVX2`); `k` and `s` are constants at every call,
/// so the tap loops unroll and the accumulators stay in registers.
@inline(__always)
private func quad(
    _ k: Int, _ s: Int, _ input: UnsafePointer<Float>, _ rows: Int, _ rowStride: Int, _ c: Int,
    _ weights: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>
) {
    var ch = 0
    while ch < c {
        let b = ld(bias + ch)
        var a0 = b, a1 = b, a2 = b, a3 = b
        var pin = input + ch, pw = weights + ch
        for _ in 0..<rows {
            let w0 = ld(pw), w1 = ld(pw + c), w2 = ld(pw + 2 * c)
            let w3 = k > 3 ? ld(pw + 3 * c) : b, w4 = k > 4 ? ld(pw + 4 * c) : b
            @inline(__always) func tap(_ kx: Int, _ w: SIMD8<Float>) {
                a0 = a0.addingProduct(ld(pin + kx * c), w)
                a1 = a1.addingProduct(ld(pin + (kx + s) * c), w)
                a2 = a2.addingProduct(ld(pin + (kx + 2 * s) * c), w)
                a3 = a3.addingProduct(ld(pin + (kx + 3 * s) * c), w)
            }
            tap(0, w0); tap(1, w1); tap(2, w2)
            if k > 3 { tap(3, w3); tap(4, w4) }
            pin += rowStride
            pw += k * c
        }
        st(relu6(a0), out + ch)
        st(relu6(a1), out + c + ch)
        st(relu6(a2), out + 2 * c + ch)
        st(relu6(a3), out + 3 * c + ch)
        ch += 8
    }
}

/// One output pixel of a depthwise convolution, with bias and ReLU6, whose window may be
/// cut by the input's border: `taps` (≤ the kernel width) columns of `rows` kernel rows,
/// `input` and `weights` pointing at the first valid tap, `weightRowStride` floats between
/// kernel rows of the weights (k·c). `c` must be a multiple of 8.
public func depthwisePixelAVX2(
    input: UnsafePointer<Float>, taps: Int, rows: Int, rowStride: Int, channels c: Int,
    weights: UnsafePointer<Float>, weightRowStride: Int, bias: UnsafePointer<Float>,
    output: UnsafeMutablePointer<Float>
) {
    // One unrolled copy per tap count (a border cuts a 5-wide window to 3 or 4 taps).
    switch taps {
    case 1: pixel(1, input, rows, rowStride, c, weights, weightRowStride, bias, output)
    case 2: pixel(2, input, rows, rowStride, c, weights, weightRowStride, bias, output)
    case 3: pixel(3, input, rows, rowStride, c, weights, weightRowStride, bias, output)
    case 4: pixel(4, input, rows, rowStride, c, weights, weightRowStride, bias, output)
    case 5: pixel(5, input, rows, rowStride, c, weights, weightRowStride, bias, output)
    default: pixel(taps, input, rows, rowStride, c, weights, weightRowStride, bias, output)
    }
}

@inline(__always)
private func pixel(
    _ taps: Int, _ input: UnsafePointer<Float>, _ rows: Int, _ rowStride: Int, _ c: Int,
    _ weights: UnsafePointer<Float>, _ weightRowStride: Int, _ bias: UnsafePointer<Float>,
    _ output: UnsafeMutablePointer<Float>
) {
    var ch = 0
    while ch < c {
        var a = ld(bias + ch)
        var pin = input + ch, pw = weights + ch
        for _ in 0..<rows {
            for kx in 0..<taps { a = a.addingProduct(ld(pin + kx * c), ld(pw + kx * c)) }
            pin += rowStride
            pw += weightRowStride
        }
        st(relu6(a), output + ch)
        ch += 8
    }
}
