/// The detector's image preparation (checks, crops, resizes to RGB at the model size) and
/// its feature shapes.

extension Detector {
    /// Checks an image's size and channel count before anything is allocated for it.
    static func checkSize(_ h: Int, _ w: Int, _ c: Int, _ name: String) throws(BGADError) {
        guard c == 1 || c == 3 else { throw .invalid("\(name): channels must be 1 (gray) or 3 (RGB), got \(c)") }
        guard h >= 1, w >= 1, h <= maximumImageSide, w <= maximumImageSide else {
            throw .invalid("\(name): size must lie between 1×1 and \(maximumImageSide)×\(maximumImageSide), got \(h)×\(w)")
        }
    }

    static func checkImage(_ im: Image, _ name: String) throws(BGADError) {
        try checkSize(im.height, im.width, im.channels, name)
        guard im.pixels.count == im.height * im.width * im.channels else {
            throw .invalid("\(name): \(im.pixels.count) samples do not fill \(im.height)×\(im.width)×\(im.channels)")
        }
    }

    /// `im` resized (bilinear) to `size²`, its channels kept.
    static func resized(_ im: Image, to size: Int) throws(BGADError) -> Image {
        var out = Image(height: size, width: size, channels: im.channels)
        try im.pixels.withUnsafeBufferPointer { src throws(BGADError) in
            try out.pixels.withUnsafeMutableBufferPointer { dst throws(BGADError) in
                try resizeBilinear(src.baseAddress!, height: im.height, width: im.width, channels: im.channels,
                                   into: dst.baseAddress!, height: size, width: size)
            }
        }
        return out
    }

    /// Writes `im` (already `size²`) as RGB into `dst`.
    static func copyRGB(_ im: Image, into dst: UnsafeMutablePointer<UInt8>) {
        im.pixels.withUnsafeBufferPointer { expandToRGB($0.baseAddress!, count: im.height * im.width, channels: im.channels, into: dst) }
    }

    /// Resizes an image to `size²` (bilinear) and writes it as RGB into `dst`.
    static func resizeRGB(_ src: UnsafePointer<UInt8>, height: Int, width: Int, channels: Int, size: Int,
                                  into dst: UnsafeMutablePointer<UInt8>) throws(BGADError) {
        if channels == 3 {
            try resizeBilinear(src, height: height, width: width, channels: 3, into: dst, height: size, width: size)
            return
        }
        // Gray: resized into the last third of the slot, then spread to RGB from the front.
        let plane = size * size
        let gray = dst + 2 * plane
        try resizeBilinear(src, height: height, width: width, channels: 1, into: gray, height: size, width: size)
        expandToRGB(gray, count: plane, channels: 1, into: dst)
    }

    /// Copies `count` pixels of 1 or 3 channels as RGB (gray replicated). `dst` may hold the
    /// gray source in its last third.
    private static func expandToRGB(_ src: UnsafePointer<UInt8>, count: Int, channels: Int, into dst: UnsafeMutablePointer<UInt8>) {
        if channels == 3 { dst.update(from: src, count: 3 * count); return }
        for p in 0..<count {
            let v = src[p]
            dst[3 * p] = v; dst[3 * p + 1] = v; dst[3 * p + 2] = v
        }
    }

    /// `(channels, grid height, grid width)` of every level at the model size.
    func featureShapes(_ backbone: DetectorBackbone) throws(BGADError) -> [(channels: Int, height: Int, width: Int)] {
        let s = configuration.imageSize
        var shapes: [(channels: Int, height: Int, width: Int)] = []
        for st in configuration.strides {
            guard let c = backbone.network.channels(stride: st) else { throw .invalid("backbone '\(backbone.name)' has no level at stride \(st)") }
            let g = backbone.network.featureSize(height: s, width: s, stride: st)
            shapes.append((c, g.height, g.width))
        }
        return shapes
    }

    /// Region `r` of `im` (cropped, channels kept).
    static func crop(_ im: Image, _ r: Tiling.Rect) -> Image {
        if r.y == 0, r.x == 0, r.height == im.height, r.width == im.width { return im }
        var out = Image(height: r.height, width: r.width, channels: im.channels)
        let c = im.channels
        for y in 0..<r.height {
            let from = ((r.y + y) * im.width + r.x) * c
            out.pixels.replaceSubrange(y * r.width * c..<(y + 1) * r.width * c, with: im.pixels[from..<(from + r.width * c)])
        }
        return out
    }

    /// Region `r` of `im` resized (bilinear) to `size²`, channels kept.
    static func region(_ im: Image, _ r: Tiling.Rect, size: Int) throws(BGADError) -> Image {
        try resized(crop(im, r), to: size)
    }
}

/// Feature maps of `count` images, one owned `(count, C, h, w)` buffer per level.
final class FeatureStack {
    let count: Int
    let shapes: [(channels: Int, height: Int, width: Int)]
    let levels: [UnsafeMutablePointer<Float>]

    init(count: Int, shapes: [(channels: Int, height: Int, width: Int)]) {
        self.count = count
        self.shapes = shapes
        levels = shapes.map { .allocate(capacity: max(1, count * $0.channels * $0.height * $0.width)) }
    }

    deinit { for p in levels { p.deallocate() } }

    /// The levels as `FeatureMaps` (valid while the stack lives).
    var maps: [FeatureMaps] {
        zip(levels, shapes).map { p, s in FeatureMaps(data: p, count: count, channels: s.channels, height: s.height, width: s.width) }
    }
}
