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
    let zero = SIMD16<Float>(repeating: 0), six = SIMD16<Float>(repeating: 6)
    let zero8 = SIMD8<Float>(repeating: 0), six8 = SIMD8<Float>(repeating: 6)
    for oy in rowRange {
        let iy0 = oy * s - padY.before
        let ky0 = max(0, -iy0), ky1 = min(k, height - iy0)
        for ox in 0..<outW {
            let ix0 = ox * s - padX.before
            let kx0 = max(0, -ix0), kx1 = min(k, width - ix0)
            let out = output + (oy * outW + ox) * c
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
                acc = acc.replacing(with: zero, where: acc .< zero)
                acc = acc.replacing(with: six, where: acc .> six)
                UnsafeMutableRawPointer(out + ch).storeBytes(of: acc, as: SIMD16<Float>.self)
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
                acc = acc.replacing(with: zero8, where: acc .< zero8)
                acc = acc.replacing(with: six8, where: acc .> six8)
                UnsafeMutableRawPointer(out + ch).storeBytes(of: acc, as: SIMD8<Float>.self)
                ch += 8
            }
            while ch < c {
                var acc = bias[ch]
                for ky in ky0..<ky1 {
                    for kx in kx0..<kx1 {
                        acc += input[((iy0 + ky) * width + ix0 + kx) * c + ch] * weights[(ky * k + kx) * c + ch]
                    }
                }
                out[ch] = min(max(acc, 0), 6)
                ch += 1
            }
        }
    }
}
