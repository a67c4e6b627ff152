/// The engine's 8-bit image type.

/// An 8-bit image with 1 (gray) or 3 (RGB) interleaved channels, row-major
/// (`pixels[(y * width + x) * channels + c]`), as decoded from PNG and as RPAG produces it.
public struct Image: Equatable, Sendable {
    /// Number of rows.
    public var height: Int
    /// Number of columns.
    public var width: Int
    /// Samples per pixel: 1 (gray) or 3 (RGB).
    public var channels: Int
    /// `height * width * channels` samples, row-major, channels interleaved.
    public var pixels: [UInt8]

    /// An image of the given size filled with `value`.
    public init(height: Int, width: Int, channels: Int, fill value: UInt8 = 0) {
        precondition(height >= 0 && width >= 0 && (channels == 1 || channels == 3))
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = [UInt8](repeating: value, count: height * width * channels)
    }

    /// Wraps `pixels`; throws unless the size is `height * width * channels` and
    /// `channels` is 1 or 3.
    public init(height: Int, width: Int, channels: Int, pixels: [UInt8]) throws(BGADError) {
        guard height >= 0, width >= 0 else { throw .invalid("image: negative size \(height)×\(width)") }
        guard channels == 1 || channels == 3 else { throw .invalid("image: channels must be 1 or 3, got \(channels)") }
        let (hw, o1) = height.multipliedReportingOverflow(by: width)
        let (n, o2) = hw.multipliedReportingOverflow(by: channels)
        guard !o1, !o2, n == pixels.count else {
            throw .invalid("image: \(pixels.count) samples do not fill \(height)×\(width)×\(channels)")
        }
        self.height = height
        self.width = width
        self.channels = channels
        self.pixels = pixels
    }

    /// Number of pixels, `height * width`.
    @inlinable public var pixelCount: Int { height * width }

    /// The float view: every sample divided by 255, in `[0, 1]`, same layout.
    public func floatPixels() -> [Float] {
        pixels.map { Float($0) * (1 / 255) }
    }

    /// Builds an 8-bit image from a float view (values in `[0, 1]`): each sample is
    /// `round(v * 255)` clamped to `0...255`; NaN is rejected.
    public init(height: Int, width: Int, channels: Int, floatPixels: [Float]) throws(BGADError) {
        var out = [UInt8](repeating: 0, count: floatPixels.count)
        for i in 0..<floatPixels.count {
            let v = floatPixels[i]
            if v.isNaN { throw .invalid("image: float sample \(i) is NaN") }
            out[i] = UInt8(max(0, min(255, (v * 255).rounded())))
        }
        try self.init(height: height, width: width, channels: channels, pixels: out)
    }

    /// The gray version: itself if gray, else the ITU-R 601-2 luma of each pixel with
    /// Pillow's integer rule `(19595 R + 38470 G + 7471 B + 32768) >> 16`.
    public func grayscale() -> Image {
        if channels == 1 { return self }
        var out = Image(height: height, width: width, channels: 1)
        pixels.withUnsafeBufferPointer { src in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                for i in 0..<(height * width) {
                    dst[i] = luma(src[3 * i], src[3 * i + 1], src[3 * i + 2])
                }
            }
        }
        return out
    }

    /// The RGB version: itself if RGB, else the gray value replicated in 3 channels.
    public func rgb() -> Image {
        if channels == 3 { return self }
        var out = Image(height: height, width: width, channels: 3)
        for i in 0..<(height * width) {
            let v = pixels[i]
            out.pixels[3 * i] = v
            out.pixels[3 * i + 1] = v
            out.pixels[3 * i + 2] = v
        }
        return out
    }
}

/// ITU-R 601-2 luma with Pillow's rounding: `(19595 R + 38470 G + 7471 B + 32768) >> 16`.
@inlinable @inline(__always)
public func luma(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> UInt8 {
    UInt8(truncatingIfNeeded: (UInt32(r) &* 19595 &+ UInt32(g) &* 38470 &+ UInt32(b) &* 7471 &+ 0x8000) >> 16)
}
