/// Image resizing on plain channels-last buffers (`height × width × channels`).
///
/// - `resizeBilinear`: the bilinear filter with antialiasing when shrinking, exactly as
///   Pillow's `Image.resize(size, Image.BILINEAR)` (the resize the BGAD authors use):
///   a separable triangle filter whose support grows with the shrink factor, horizontal
///   pass first. On `UInt8` it reproduces Pillow's fixed-point arithmetic (22 fraction
///   bits, rounding, clipping, an 8-bit intermediate image); on `Float` it computes in
///   double precision like Pillow's mode "F".
/// - `resizeNearest`: nearest neighbour with PyTorch's `F.interpolate(mode="nearest")`
///   index rule `src = min(⌊dst · (in / out)⌋, in − 1)` evaluated in Float32 as PyTorch
///   does; used for masks.

/// Pillow's precomputed resampling coefficients for one dimension.
struct ResampleCoefficients {
    /// Taps per output sample (the table's row length).
    var taps: Int
    /// First input index of each output sample.
    var first: [Int]
    /// Number of input samples of each output sample.
    var count: [Int]
    /// Normalised weights, `taps` per output sample.
    var weights: [Double]

    /// Coefficients of the triangle (bilinear) filter from `inSize` to `outSize` samples.
    init(bilinearFrom inSize: Int, to outSize: Int) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale
        taps = Int(support.rounded(.up)) * 2 + 1
        first = [Int](repeating: 0, count: outSize)
        count = [Int](repeating: 0, count: outSize)
        weights = [Double](repeating: 0, count: outSize * taps)
        let inverse = 1.0 / filterScale
        for o in 0..<outSize {
            let center = (Double(o) + 0.5) * scale
            // C's (int) cast truncates toward zero, as in Pillow.
            let lo = max(Int((center - support + 0.5).rounded(.towardZero)), 0)
            let hi = min(Int((center + support + 0.5).rounded(.towardZero)), inSize)
            let n = hi - lo
            var total = 0.0
            for i in 0..<max(n, 0) {
                var x = (Double(i + lo) - center + 0.5) * inverse
                if x < 0 { x = -x }
                let w = x < 1 ? 1 - x : 0
                weights[o * taps + i] = w
                total += w
            }
            if total != 0 {
                for i in 0..<max(n, 0) { weights[o * taps + i] /= total }
            }
            first[o] = lo
            count[o] = max(n, 0)
        }
    }

    /// The weights in Pillow's 8-bit fixed point (22 fraction bits, rounded half away from 0).
    var fixedPoint: [Int] {
        weights.map { w in
            w < 0 ? Int((-0.5 + w * Double(1 << 22)).rounded(.towardZero))
                  : Int((0.5 + w * Double(1 << 22)).rounded(.towardZero))
        }
    }
}

private func validateResize(_ h: Int, _ w: Int, _ c: Int, _ oh: Int, _ ow: Int) throws(BGADError) {
    guard h >= 1, w >= 1 else { throw .invalid("resize: the source image is empty (\(h)×\(w))") }
    guard oh >= 1, ow >= 1 else { throw .invalid("resize: the target size must be positive, got \(oh)×\(ow)") }
    guard c >= 1 else { throw .invalid("resize: channels must be ≥ 1, got \(c)") }
    let limit = 1 << 31
    guard h <= limit / w, w * h <= limit / c, oh <= limit / ow, oh * ow <= limit / c else {
        throw .invalid("resize: image too large (\(h)×\(w)×\(c) → \(oh)×\(ow))")
    }
}

@inline(__always)
private func clip8(_ v: Int) -> UInt8 {
    if v >= (1 << 30) { return 255 }
    if v <= 0 { return 0 }
    return UInt8(truncatingIfNeeded: v >> 22)
}

/// Resizes an 8-bit image with Pillow's BILINEAR filter (antialiased when shrinking).
///
/// Bit-exact with Pillow's `Image.resize((outWidth, outHeight), Image.BILINEAR)` for
/// modes "L" (1 channel) and "RGB" (3 channels); any channel count is accepted.
/// - Parameters:
///   - source: `height × width × channels` bytes.
///   - destination: receives `outHeight × outWidth × channels` bytes.
public func resizeBilinear(
    _ source: UnsafePointer<UInt8>, height: Int, width: Int, channels: Int,
    into destination: UnsafeMutablePointer<UInt8>, height outHeight: Int, width outWidth: Int
) throws(BGADError) {
    try resizeSeparable(source, height: height, width: width, channels: channels,
                        into: destination, height: outHeight, width: outWidth)
}

/// Resizes a float image with Pillow's BILINEAR filter (antialiased when shrinking), in
/// double precision like Pillow's mode "F" (no rounding, no clipping).
/// - Parameters:
///   - source: `height × width × channels` floats.
///   - destination: receives `outHeight × outWidth × channels` floats.
public func resizeBilinear(
    _ source: UnsafePointer<Float>, height: Int, width: Int, channels: Int,
    into destination: UnsafeMutablePointer<Float>, height outHeight: Int, width outWidth: Int
) throws(BGADError) {
    try resizeSeparable(source, height: height, width: width, channels: channels,
                        into: destination, height: outHeight, width: outWidth)
}

/// A sample type Pillow's bilinear resize works on, with its arithmetic: 8-bit samples
/// accumulate in fixed point (22 fraction bits, rounded, clipped), floats in `Double`.
private protocol BilinearSample {
    /// The type of a filter weight.
    associatedtype Weight
    /// The type of a running sum.
    associatedtype Sum
    /// The filter's weights in this type's arithmetic.
    static func weights(_ coefficients: ResampleCoefficients) -> [Weight]
    /// The sum before the first tap.
    static var zero: Sum { get }
    /// `sum + sample · weight`.
    static func add(_ sum: Sum, _ sample: Self, _ weight: Weight) -> Sum
    /// The output sample of a sum.
    static func sample(_ sum: Sum) -> Self
}

extension UInt8: BilinearSample {
    static func weights(_ coefficients: ResampleCoefficients) -> [Int] { coefficients.fixedPoint }
    static var zero: Int { 1 << 21 }
    @inline(__always) static func add(_ sum: Int, _ sample: UInt8, _ weight: Int) -> Int { sum + Int(sample) * weight }
    @inline(__always) static func sample(_ sum: Int) -> UInt8 { clip8(sum) }
}

extension Float: BilinearSample {
    static func weights(_ coefficients: ResampleCoefficients) -> [Double] { coefficients.weights }
    static var zero: Double { 0 }
    @inline(__always) static func add(_ sum: Double, _ sample: Float, _ weight: Double) -> Double { sum + Double(sample) * weight }
    @inline(__always) static func sample(_ sum: Double) -> Float { Float(sum) }
}

/// Pillow's two-pass resize (horizontal pass over only the rows the vertical pass reads,
/// into a temporary image, then the vertical pass), in `T`'s arithmetic.
@inline(__always)
private func resizeSeparable<T: BilinearSample>(
    _ source: UnsafePointer<T>, height: Int, width: Int, channels: Int,
    into destination: UnsafeMutablePointer<T>, height outHeight: Int, width outWidth: Int
) throws(BGADError) {
    try validateResize(height, width, channels, outHeight, outWidth)
    let c = channels
    if height == outHeight && width == outWidth {
        destination.update(from: source, count: height * width * c)
        return
    }
    let vert = ResampleCoefficients(bilinearFrom: height, to: outHeight)
    var rowFirst = 0
    var temp: UnsafeMutablePointer<T>? = nil
    defer { temp?.deallocate() }
    var src = source
    if width != outWidth {
        let horiz = ResampleCoefficients(bilinearFrom: width, to: outWidth)
        let kh = T.weights(horiz)
        var rowEnd = height
        if height != outHeight {
            rowFirst = vert.first[0]
            rowEnd = vert.first[outHeight - 1] + vert.count[outHeight - 1]
        }
        let rows = rowEnd - rowFirst
        let t = UnsafeMutablePointer<T>.allocate(capacity: rows * outWidth * c)
        temp = t
        let out = height == outHeight ? destination : t
        for y in 0..<rows {
            let inRow = source + (y + rowFirst) * width * c
            let outRow = out + y * outWidth * c
            for x in 0..<outWidth {
                let lo = horiz.first[x], n = horiz.count[x], kb = x * horiz.taps
                for ch in 0..<c {
                    var ss = T.zero
                    for i in 0..<n { ss = T.add(ss, inRow[(lo + i) * c + ch], kh[kb + i]) }
                    outRow[x * c + ch] = T.sample(ss)
                }
            }
        }
        if height == outHeight { return }
        src = UnsafePointer(t)
    }
    let kv = T.weights(vert)
    for y in 0..<outHeight {
        let lo = vert.first[y] - rowFirst, n = vert.count[y], kb = y * vert.taps
        let outRow = destination + y * outWidth * c
        for x in 0..<(outWidth * c) {
            var ss = T.zero
            for i in 0..<n { ss = T.add(ss, src[(lo + i) * outWidth * c + x], kv[kb + i]) }
            outRow[x] = T.sample(ss)
        }
    }
}

/// Source index of output index `index` when resizing `inSize` → `outSize` by nearest
/// neighbour, exactly as PyTorch's `F.interpolate(mode='nearest')` (no scale factor):
/// `min(⌊index · (in / out)⌋, in − 1)` with the ratio in single precision.
@inlinable
public func nearestSourceIndex(_ index: Int, inSize: Int, outSize: Int) -> Int {
    if inSize == outSize { return index }
    let scale = Float(inSize) / Float(outSize)
    return min(Int((Float(index) * scale).rounded(.down)), inSize - 1)
}

/// Resizes an image (or mask) by nearest neighbour with PyTorch's
/// `F.interpolate(mode="nearest")` rule: `src = min(⌊dst · (in / out)⌋, in − 1)`.
/// - Parameters:
///   - source: `height × width × channels` elements.
///   - destination: receives `outHeight × outWidth × channels` elements.
public func resizeNearest<T>(
    _ source: UnsafePointer<T>, height: Int, width: Int, channels: Int,
    into destination: UnsafeMutablePointer<T>, height outHeight: Int, width outWidth: Int
) throws(BGADError) {
    try validateResize(height, width, channels, outHeight, outWidth)
    let c = channels
    let xs = (0..<outWidth).map { nearestSourceIndex($0, inSize: width, outSize: outWidth) }
    for y in 0..<outHeight {
        let sy = nearestSourceIndex(y, inSize: height, outSize: outHeight)
        let inRow = source + sy * width * c
        let outRow = destination + y * outWidth * c
        for x in 0..<outWidth {
            (outRow + x * c).update(from: inRow + xs[x] * c, count: c)
        }
    }
}
