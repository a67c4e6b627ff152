import BGADKernelsAVX2
import BGADKernelsAVX512

/// Depthwise k×k convolution on channels-last (HWC) maps with TensorFlow 'SAME' padding,
/// a per-channel bias (the folded BatchNorm shift) and ReLU6.
///
/// `out[oy][ox][c] = ReLU6(bias[c] + Σ_{ky,kx} in[oy·s + ky − padTop][ox·s + kx − padLeft][c] · w[ky][kx][c])`,
/// where taps outside the input contribute zero. Channels are contiguous in memory for
/// the input, the weights and the output, so the inner loop runs over 16 (then 8, then 1)
/// channels at a time held in SIMD registers; the taps of one output pixel accumulate in
/// registers and the result is stored once. No memory is allocated.
///
/// - Parameters:
///   - rows: the output rows to compute (lets several threads share one map).
@inline(never)
public func depthwiseConvolutionReLU6(
    input: UnsafePointer<Float>, height: Int, width: Int, channels: Int,
    kernel k: Int, stride s: Int,
    weights: UnsafePointer<Float>, bias: UnsafePointer<Float>,
    output: UnsafeMutablePointer<Float>, rows: Range<Int>? = nil
) {
    let padY = SamePadding(size: height, kernel: k, stride: s)
    let padX = SamePadding(size: width, kernel: k, stride: s)
    let outW = padX.output
    let c = channels
    let rowRange = rows ?? 0..<padY.output
    let avx2 = VectorISA.useAVX2 && c % 8 == 0  // the AVX2 kernels take whole groups of 8 channels
    let avx512 = VectorISA.useAVX512 && c % 16 == 0  // the AVX-512 ones whole groups of 16
    for oy in rowRange {
        let iy0 = oy * s - padY.before
        let ky0 = max(0, -iy0), ky1 = min(k, height - iy0)
        // Interior pairs of output pixels (the whole kernel row inside the input for both)
        // share each weight load; the rest (borders, odd channel counts) takes the general path.
        var interiorStart = 0
        while interiorStart * s - padX.before < 0 { interiorStart += 1 }
        // Pixels whose kernel row lies inside the input: [interiorStart, interiorEnd).
        let lastStart = width - k + padX.before  // ox · s of the last interior pixel, at most
        let interiorEnd = lastStart < 0 ? interiorStart : max(interiorStart, min(outW, lastStart / s + 1))
        var ox = 0
        while ox < outW {
            let ix0 = ox * s - padX.before
            if avx2, ox == interiorStart, interiorEnd > ox, k == 3 || k == 5, s <= 2 {
                let n = ky1 - ky0
                if avx512 {
                    depthwiseRowAVX512(kernel: k, stride: s, input: input + ((iy0 + ky0) * width + ix0) * c, rows: n,
                                       rowStride: width * c, channels: c, weights: weights + ky0 * k * c, bias: bias,
                                       output: output + (oy * outW + ox) * c, count: interiorEnd - ox)
                    ox = interiorEnd
                    continue
                }
                depthwiseRowAVX2(kernel: k, stride: s, input: input + ((iy0 + ky0) * width + ix0) * c, rows: n,
                                 rowStride: width * c, channels: c, weights: weights + ky0 * k * c, bias: bias,
                                 output: output + (oy * outW + ox) * c, count: interiorEnd - ox)
                ox = interiorEnd
                continue
            }
            if c % 8 == 0, ox >= interiorStart, ix0 + s + k <= width, ox + 1 < outW {
                let rowIn = input + ((iy0 + ky0) * width + ix0) * c
                let rowW = weights + ky0 * k * c
                let out0 = output + (oy * outW + ox) * c
                let n = ky1 - ky0, rowStride = width * c
                if k == 3 {
                    depthwisePair3(s, rowIn, n, rowStride, c, rowW, bias, out0)
                } else if k == 5 {
                    depthwisePair5(s, rowIn, n, rowStride, c, rowW, bias, out0)
                } else {
                    depthwisePair(k, s, rowIn, n, rowStride, c, rowW, bias, out0)
                }
                ox += 2
                continue
            }
            let kx0 = max(0, -ix0), kx1 = min(k, width - ix0)
            let out = output + (oy * outW + ox) * c
            if avx512 {
                depthwisePixelAVX512(input: input + ((iy0 + ky0) * width + ix0 + kx0) * c, taps: max(0, kx1 - kx0),
                                     rows: ky1 - ky0, rowStride: width * c, channels: c,
                                     weights: weights + (ky0 * k + kx0) * c, weightRowStride: k * c, bias: bias,
                                     output: out)
                ox += 1
                continue
            }
            if avx2 {
                depthwisePixelAVX2(input: input + ((iy0 + ky0) * width + ix0 + kx0) * c, taps: max(0, kx1 - kx0),
                                   rows: ky1 - ky0, rowStride: width * c, channels: c,
                                   weights: weights + (ky0 * k + kx0) * c, weightRowStride: k * c, bias: bias, output: out)
                ox += 1
                continue
            }
            var ch = 0
            while ch + 16 <= c {
                var acc = UnsafeRawPointer(bias + ch).loadUnaligned(as: SIMD16<Float>.self)
                for ky in ky0..<ky1 {
                    let rowIn = input + ((iy0 + ky) * width + ix0) * c + ch
                    let rowW = weights + ky * k * c + ch
                    for kx in kx0..<kx1 {
                        let x = UnsafeRawPointer(rowIn + kx * c).loadUnaligned(as: SIMD16<Float>.self)
                        let w = UnsafeRawPointer(rowW + kx * c).loadUnaligned(as: SIMD16<Float>.self)
                        acc += x * w
                    }
                }
                UnsafeMutableRawPointer(out + ch).storeBytes(of: relu6(acc), as: SIMD16<Float>.self)
                ch += 16
            }
            while ch + 8 <= c {
                var acc = UnsafeRawPointer(bias + ch).loadUnaligned(as: SIMD8<Float>.self)
                for ky in ky0..<ky1 {
                    let rowIn = input + ((iy0 + ky) * width + ix0) * c + ch
                    let rowW = weights + ky * k * c + ch
                    for kx in kx0..<kx1 {
                        let x = UnsafeRawPointer(rowIn + kx * c).loadUnaligned(as: SIMD8<Float>.self)
                        let w = UnsafeRawPointer(rowW + kx * c).loadUnaligned(as: SIMD8<Float>.self)
                        acc += x * w
                    }
                }
                store8(relu6(acc), out + ch)
                ch += 8
            }
            while ch < c {
                var acc = bias[ch]
                for ky in ky0..<ky1 {
                    for kx in kx0..<kx1 {
                        acc += input[((iy0 + ky) * width + ix0 + kx) * c + ch] * weights[(ky * k + kx) * c + ch]
                    }
                }
                out[ch] = acc > 0 ? min(acc, 6) : 0  // NaN → 0, as the vector lanes
                ch += 1
            }
            ox += 1
        }
    }
}

/// Two horizontally adjacent output pixels of a depthwise convolution whose kernel rows
/// lie inside the input: `rows` kernel rows starting at `input` (pixel 0's first tap),
/// 8 channels at a time; pixel 1's taps start `s` columns later, so each weight vector
/// is loaded once for both (and at stride 1 the overlapping input loads are shared).
@inline(__always)
private func depthwisePair(
    _ k: Int, _ s: Int, _ input: UnsafePointer<Float>, _ rows: Int, _ rowStride: Int, _ c: Int,
    _ weights: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>
) {
    var ch = 0
    while ch < c {
        var a0 = UnsafeRawPointer(bias + ch).loadUnaligned(as: SIMD8<Float>.self)
        var a1 = a0
        var pin = input + ch, pw = weights + ch
        for _ in 0..<rows {
            for kx in 0..<k {
                let w = UnsafeRawPointer(pw + kx * c).loadUnaligned(as: SIMD8<Float>.self)
                a0 += UnsafeRawPointer(pin + kx * c).loadUnaligned(as: SIMD8<Float>.self) * w
                a1 += UnsafeRawPointer(pin + (kx + s) * c).loadUnaligned(as: SIMD8<Float>.self) * w
            }
            pin += rowStride
            pw += k * c
        }
        store8(relu6(a0), out + ch)
        store8(relu6(a1), out + c + ch)
        ch += 8
    }
}

/// `min(max(v, 0), 6)` per lane, written so that it compiles to a compare-and-mask for
/// the lower bound and `minps` for the upper one (the `replacing` blends of the obvious
/// spelling cost three times as many instructions on SSE). NaN lanes become 0.
@inline(__always)
func relu6(_ v: SIMD8<Float>) -> SIMD8<Float> {
    let zero = SIMD8<Float>(repeating: 0), six = SIMD8<Float>(repeating: 6)
    let p = zero.replacing(with: v, where: zero .< v)
    return six.replacing(with: p, where: p .< six)
}

/// `relu6` of 16 lanes.
@inline(__always)
func relu6(_ v: SIMD16<Float>) -> SIMD16<Float> {
    let zero = SIMD16<Float>(repeating: 0), six = SIMD16<Float>(repeating: 6)
    let p = zero.replacing(with: v, where: zero .< v)
    return six.replacing(with: p, where: p .< six)
}

/// `relu6(x[i])` in place for `count` floats.
@inline(__always)
func relu6InPlace(_ x: UnsafeMutablePointer<Float>, count: Int) {
    var i = 0
    while i + 8 <= count {
        store8(relu6(load8(x + i)), x + i)
        i += 8
    }
    while i < count {
        x[i] = x[i] > 0 ? min(x[i], 6) : 0  // NaN → 0, as the vector lanes
        i += 1
    }
}

/// `depthwisePair` for k = 3 with the taps of a kernel row written out.
private func depthwisePair3(
    _ s: Int, _ input: UnsafePointer<Float>, _ rows: Int, _ rowStride: Int, _ c: Int,
    _ weights: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>
) {
    let sc = s * c
    var ch = 0
    while ch < c {
        var a0 = load8(bias + ch)
        var a1 = a0
        var pin = input + ch, pw = weights + ch
        for _ in 0..<rows {
            let w0 = load8(pw), w1 = load8(pw + c), w2 = load8(pw + 2 * c)
            a0 += load8(pin) * w0 + load8(pin + c) * w1 + load8(pin + 2 * c) * w2
            let q = pin + sc
            a1 += load8(q) * w0 + load8(q + c) * w1 + load8(q + 2 * c) * w2
            pin += rowStride
            pw += 3 * c
        }
        store8(relu6(a0), out + ch)
        store8(relu6(a1), out + c + ch)
        ch += 8
    }
}

/// `depthwisePair` for k = 5 with the taps of a kernel row written out.
private func depthwisePair5(
    _ s: Int, _ input: UnsafePointer<Float>, _ rows: Int, _ rowStride: Int, _ c: Int,
    _ weights: UnsafePointer<Float>, _ bias: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>
) {
    let sc = s * c
    var ch = 0
    while ch < c {
        var a0 = load8(bias + ch)
        var a1 = a0
        var pin = input + ch, pw = weights + ch
        for _ in 0..<rows {
            let w0 = load8(pw), w1 = load8(pw + c), w2 = load8(pw + 2 * c), w3 = load8(pw + 3 * c), w4 = load8(pw + 4 * c)
            a0 += load8(pin) * w0 + load8(pin + c) * w1 + load8(pin + 2 * c) * w2
                + load8(pin + 3 * c) * w3 + load8(pin + 4 * c) * w4
            let q = pin + sc
            a1 += load8(q) * w0 + load8(q + c) * w1 + load8(q + 2 * c) * w2
                + load8(q + 3 * c) * w3 + load8(q + 4 * c) * w4
            pin += rowStride
            pw += 5 * c
        }
        store8(relu6(a0), out + ch)
        store8(relu6(a1), out + c + ch)
        ch += 8
    }
}
