/// Depthwise-convolution kernels for x86-64 CPUs with AVX2 and FMA (see `Vectors.swift`
/// for when they may run); `BGADCore` calls them instead of its baseline (SSE2) ones.

/// `count` consecutive output pixels of one row of a depthwise k×k, stride-s convolution
/// with bias and ReLU6, channels-last, for pixels whose kernel rows lie inside the input:
///
/// `out[j·c + ch] = ReLU6(bias[ch] + Σ_{r < rows} Σ_{kx < k} in[r·rowStride + (j·s + kx)·c + ch] · w[(r·k + kx)·c + ch])`
///
/// `input` points at pixel 0's first tap (its first valid kernel row), `weights` at that
/// kernel row. `c` must be a multiple of 8. Eight pixels (then four, then one) share each
/// weight load and, at stride 1, each input load; their eight independent FMA chains
/// cover the FMA latency.
public func depthwiseRowAVX2(
    kernel k: Int, stride s: Int, input: UnsafePointer<Float>, rows: Int, rowStride: Int, channels c: Int,
    weights: UnsafePointer<Float>, bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int
) {
    var j = 0
    switch (k, s) {
    case (3, 1): j = run(K3S1.self, input, rows, rowStride, c, weights, bias, output, count)
    case (3, 2): j = run(K3S2.self, input, rows, rowStride, c, weights, bias, output, count)
    case (5, 1): j = run(K5S1.self, input, rows, rowStride, c, weights, bias, output, count)
    case (5, 2): j = run(K5S2.self, input, rows, rowStride, c, weights, bias, output, count)
    default: break
    }
    while j < count {
        depthwisePixelAVX2(input: input + j * s * c, taps: k, rows: rows, rowStride: rowStride, channels: c,
                           weights: weights, weightRowStride: k * c, bias: bias, output: output + j * c)
        j += 1
    }
}

/// A kernel width and stride known at compile time: `run` is generic over it, so each
/// shape gets its own specialised copy with the tap code unrolled.
protocol KernelShape { static var k: Int { get }; static var s: Int { get } }
enum K3S1: KernelShape { static var k: Int { 3 }; static var s: Int { 1 } }
enum K3S2: KernelShape { static var k: Int { 3 }; static var s: Int { 2 } }
enum K5S1: KernelShape { static var k: Int { 5 }; static var s: Int { 1 } }
enum K5S2: KernelShape { static var k: Int { 5 }; static var s: Int { 2 } }

/// The row's pixels in eights, then at most one four; returns how many of the `n` pixels
/// it did (all but fewer than four).
@inline(never)
private func run<Shape: KernelShape>(
    _: Shape.Type, _ input: UnsafePointer<Float>, _ rows: Int, _ rowStride: Int, _ c: Int,
    _ weights: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int
) -> Int {
    let k = Shape.k, s = Shape.s
    var j = 0
    while j + 8 <= n {
        group(8, k, s, input + j * s * c, rows, rowStride, c, weights, bias, out + j * c)
        j += 8
    }
    if j + 4 <= n {
        group(4, k, s, input + j * s * c, rows, rowStride, c, weights, bias, out + j * c)
        j += 4
    }
    return j
}

/// `count` (8 or 4) output pixels (see `depthwiseRowAVX2`); `count`, `k` and `s` are
/// constants at every call, so the tap code unrolls and the accumulators stay in registers.
@_transparent
private func group(
    _ count: Int, _ k: Int, _ s: Int, _ input: UnsafePointer<Float>, _ rows: Int, _ rowStride: Int, _ c: Int,
    _ weights: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>
) {
    var ch = 0
    while ch < c {
        let b = ld(bias + ch)
        var a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b
        var pin = input + ch, pw = weights + ch
        for _ in 0..<rows {
            for kx in 0..<k {
                let w = ld(pw + kx * c)
                a0 = a0.addingProduct(ld(pin + kx * c), w)
                a1 = a1.addingProduct(ld(pin + (kx + s) * c), w)
                a2 = a2.addingProduct(ld(pin + (kx + 2 * s) * c), w)
                a3 = a3.addingProduct(ld(pin + (kx + 3 * s) * c), w)
                if count == 8 {
                    a4 = a4.addingProduct(ld(pin + (kx + 4 * s) * c), w)
                    a5 = a5.addingProduct(ld(pin + (kx + 5 * s) * c), w)
                    a6 = a6.addingProduct(ld(pin + (kx + 6 * s) * c), w)
                    a7 = a7.addingProduct(ld(pin + (kx + 7 * s) * c), w)
                }
            }
            pin += rowStride
            pw += k * c
        }
        st(relu6(a0), out + ch)
        st(relu6(a1), out + c + ch)
        st(relu6(a2), out + 2 * c + ch)
        st(relu6(a3), out + 3 * c + ch)
        if count == 8 {
            st(relu6(a4), out + 4 * c + ch)
            st(relu6(a5), out + 5 * c + ch)
            st(relu6(a6), out + 6 * c + ch)
            st(relu6(a7), out + 7 * c + ch)
        }
        ch += 8
    }
}

/// One output pixel of a depthwise convolution, with bias and ReLU6, whose window may be
/// cut by the input's border: `taps` (≤ the kernel width) columns of `rows` kernel rows,
/// `input` and `weights` pointing at the first valid tap, `weightRowStride` floats between
/// kernel rows of the weights (k·c). `c` must be a multiple of 8. Four groups of 8
/// channels run together (four independent FMA chains), then single groups.
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

@_transparent
private func pixel(
    _ taps: Int, _ input: UnsafePointer<Float>, _ rows: Int, _ rowStride: Int, _ c: Int,
    _ weights: UnsafePointer<Float>, _ weightRowStride: Int, _ bias: UnsafePointer<Float>,
    _ output: UnsafeMutablePointer<Float>
) {
    var ch = 0
    while ch + 32 <= c {
        var a0 = ld(bias + ch), a1 = ld(bias + ch + 8), a2 = ld(bias + ch + 16), a3 = ld(bias + ch + 24)
        var pin = input + ch, pw = weights + ch
        for _ in 0..<rows {
            for kx in 0..<taps {
                let x = pin + kx * c, w = pw + kx * c
                a0 = a0.addingProduct(ld(x), ld(w))
                a1 = a1.addingProduct(ld(x + 8), ld(w + 8))
                a2 = a2.addingProduct(ld(x + 16), ld(w + 16))
                a3 = a3.addingProduct(ld(x + 24), ld(w + 24))
            }
            pin += rowStride
            pw += weightRowStride
        }
        st(relu6(a0), output + ch)
        st(relu6(a1), output + ch + 8)
        st(relu6(a2), output + ch + 16)
        st(relu6(a3), output + ch + 24)
        ch += 32
    }
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
