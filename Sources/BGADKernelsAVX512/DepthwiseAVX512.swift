/// The backbone's depthwise-convolution kernels built for AVX-512 (see
/// `PackedGemmAVX512.swift` for when they may run): `depthwiseRowAVX2` and
/// `depthwisePixelAVX2` of `BGADKernelsAVX2` on 16 channels per vector, the same taps in the
/// same order, so both give the same values per channel. `c` must be a multiple of 16.

/// `count` consecutive output pixels of one row of a depthwise k×k, stride-s convolution
/// with bias and ReLU6, channels-last, for pixels whose kernel rows lie inside the input
/// (the contract of `depthwiseRowAVX2`). Eight pixels (then four) share each weight load
/// and, at stride 1, each input load; the last one to three go as a group of four that
/// overlaps the previous pixels (or one at a time when `count` < 4).
public func depthwiseRowAVX512(
    kernel k: Int, stride s: Int, input: UnsafePointer<Float>, rows: Int, rowStride: Int, channels c: Int,
    weights: UnsafePointer<Float>, bias: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, count: Int
) {
    var j = 0
    switch (k, s) {
    case (3, 1): j = pixels(Taps3Stride1.self, input, rows, rowStride, c, weights, bias, output, count)
    case (3, 2): j = pixels(Taps3Stride2.self, input, rows, rowStride, c, weights, bias, output, count)
    case (5, 1): j = pixels(Taps5Stride1.self, input, rows, rowStride, c, weights, bias, output, count)
    case (5, 2): j = pixels(Taps5Stride2.self, input, rows, rowStride, c, weights, bias, output, count)
    default: break
    }
    while j < count {
        depthwisePixelAVX512(input: input + j * s * c, taps: k, rows: rows, rowStride: rowStride, channels: c,
                             weights: weights, weightRowStride: k * c, bias: bias, output: output + j * c)
        j += 1
    }
}

/// A kernel width and stride known at compile time (one specialised copy each).
protocol DepthwiseShape { static var k: Int { get }; static var s: Int { get } }
enum Taps3Stride1: DepthwiseShape { static var k: Int { 3 }; static var s: Int { 1 } }
enum Taps3Stride2: DepthwiseShape { static var k: Int { 3 }; static var s: Int { 2 } }
enum Taps5Stride1: DepthwiseShape { static var k: Int { 5 }; static var s: Int { 1 } }
enum Taps5Stride2: DepthwiseShape { static var k: Int { 5 }; static var s: Int { 2 } }

/// The row's pixels in eights, then at most one four, then (when `n` ≥ 4) the rest as a
/// four that overlaps; returns how many of the `n` pixels it did.
@inline(never)
private func pixels<Shape: DepthwiseShape>(
    _: Shape.Type, _ input: UnsafePointer<Float>, _ rows: Int, _ rowStride: Int, _ c: Int,
    _ weights: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>, _ n: Int
) -> Int {
    var j = 0
    while j + 8 <= n {
        group(8, Shape.k, Shape.s, input + j * Shape.s * c, rows, rowStride, c, weights, bias, out + j * c)
        j += 8
    }
    if j + 4 <= n {
        group(4, Shape.k, Shape.s, input + j * Shape.s * c, rows, rowStride, c, weights, bias, out + j * c)
        j += 4
    }
    if j < n && n >= 4 {
        // The last pixels as one more group of four ending at `n`: the pixels computed twice
        // get the same values, and the output overlaps no input.
        j = n - 4
        group(4, Shape.k, Shape.s, input + j * Shape.s * c, rows, rowStride, c, weights, bias, out + j * c)
        j = n
    }
    return j
}

/// `count` (8 or 4) output pixels, 16 channels at a time; `count`, `k` and `s` are constants
/// at every call, so the taps unroll and the accumulators stay in registers.
@_transparent
private func group(
    _ count: Int, _ k: Int, _ s: Int, _ input: UnsafePointer<Float>, _ rows: Int, _ rowStride: Int, _ c: Int,
    _ weights: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>
) {
    var ch = 0
    while ch < c {
        let b = load16(bias + ch)
        var a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b
        var pin = input + ch, pw = weights + ch
        for _ in 0..<rows {
            for kx in 0..<k {
                let w = load16(pw + kx * c)
                a0 = a0.addingProduct(load16(pin + kx * c), w)
                a1 = a1.addingProduct(load16(pin + (kx + s) * c), w)
                a2 = a2.addingProduct(load16(pin + (kx + 2 * s) * c), w)
                a3 = a3.addingProduct(load16(pin + (kx + 3 * s) * c), w)
                if count == 8 {
                    a4 = a4.addingProduct(load16(pin + (kx + 4 * s) * c), w)
                    a5 = a5.addingProduct(load16(pin + (kx + 5 * s) * c), w)
                    a6 = a6.addingProduct(load16(pin + (kx + 6 * s) * c), w)
                    a7 = a7.addingProduct(load16(pin + (kx + 7 * s) * c), w)
                }
            }
            pin += rowStride
            pw += k * c
        }
        store16(a0.clamped(2), out + ch)
        store16(a1.clamped(2), out + c + ch)
        store16(a2.clamped(2), out + 2 * c + ch)
        store16(a3.clamped(2), out + 3 * c + ch)
        if count == 8 {
            store16(a4.clamped(2), out + 4 * c + ch)
            store16(a5.clamped(2), out + 5 * c + ch)
            store16(a6.clamped(2), out + 6 * c + ch)
            store16(a7.clamped(2), out + 7 * c + ch)
        }
        ch += 16
    }
}

/// One output pixel whose window may be cut by the input's border (the contract of
/// `depthwisePixelAVX2`): `taps` columns of `rows` kernel rows, `input` and `weights` at
/// the first valid tap, `weightRowStride` floats between kernel rows of the weights.
public func depthwisePixelAVX512(
    input: UnsafePointer<Float>, taps: Int, rows: Int, rowStride: Int, channels c: Int,
    weights: UnsafePointer<Float>, weightRowStride: Int, bias: UnsafePointer<Float>,
    output: UnsafeMutablePointer<Float>
) {
    var ch = 0
    // Four groups of 16 channels at a time: four independent FMA chains hide the FMA latency.
    while ch + 64 <= c {
        var a0 = load16(bias + ch), a1 = load16(bias + ch + 16)
        var a2 = load16(bias + ch + 32), a3 = load16(bias + ch + 48)
        var pin = input + ch, pw = weights + ch
        for _ in 0..<rows {
            for kx in 0..<taps {
                let x = pin + kx * c, w = pw + kx * c
                a0 = a0.addingProduct(load16(x), load16(w))
                a1 = a1.addingProduct(load16(x + 16), load16(w + 16))
                a2 = a2.addingProduct(load16(x + 32), load16(w + 32))
                a3 = a3.addingProduct(load16(x + 48), load16(w + 48))
            }
            pin += rowStride
            pw += weightRowStride
        }
        store16(a0.clamped(2), output + ch)
        store16(a1.clamped(2), output + ch + 16)
        store16(a2.clamped(2), output + ch + 32)
        store16(a3.clamped(2), output + ch + 48)
        ch += 64
    }
    while ch < c {
        var a = load16(bias + ch)
        var pin = input + ch, pw = weights + ch
        for _ in 0..<rows {
            for kx in 0..<taps { a = a.addingProduct(load16(pin + kx * c), load16(pw + kx * c)) }
            pin += rowStride
            pw += weightRowStride
        }
        store16(a.clamped(2), output + ch)
        ch += 16
    }
}
