import BGADCore

/// C entry points of RPAG (see `bgad.h`, "RPAG"): a generator handle that owns its random
/// state, Otsu's threshold and foreground masks.

/// The object behind `bgad_rpag_t *`.
final class RPAGHandle {
    var generator: RPAG
    init(seed: UInt64, alwaysApply: Bool) { generator = RPAG(seed: seed, alwaysApply: alwaysApply) }
}

private func handle(_ p: OpaquePointer?) throws(BGADError) -> RPAGHandle {
    try object(p, RPAGHandle.self, "rpag handle")
}

private func image(_ p: UnsafePointer<UInt8>?, _ name: String, _ h: Int, _ w: Int, _ c: Int) throws(BGADError) -> Image {
    let src = try require(p, name)
    return try Image(height: h, width: w, channels: c, pixels: Array(UnsafeBufferPointer(start: src, count: h * w * c)))
}

@_cdecl("bgad_otsu_threshold")
public func bgad_otsu_threshold(_ gray: UnsafePointer<UInt8>?, _ n: Int64, _ out: UnsafeMutablePointer<Int32>?) -> Int32 {
    guarded { () throws(BGADError) in
        let count = try requireSize(n, "n")
        guard count > 0 else { throw .invalid("empty input: no pixels") }
        let g = try require(gray, "gray"), o = try require(out, "out")
        o.pointee = Int32(Foreground.otsuThreshold(UnsafeBufferPointer(start: g, count: count)))
    }
}

@_cdecl("bgad_foreground_mask")
public func bgad_foreground_mask(_ image: UnsafePointer<UInt8>?, _ height: Int64, _ width: Int64, _ channels: Int64,
                                 _ mode: Int32, _ out: UnsafeMutablePointer<UInt8>?) -> Int32 {
    guarded { () throws(BGADError) in
        let (h, w, c, n) = try imageDims(height, width, channels)
        let src = try require(image, "image"), o = try require(out, "out")
        guard let m = Foreground.Mode(rawValue: mode) else { throw .invalid("mode must be 0 (otsu) or 1 (whole), got \(mode)") }
        let img = try Image(height: h, width: w, channels: c, pixels: Array(UnsafeBufferPointer(start: src, count: n)))
        let mask = Foreground.mask(of: img, mode: m)
        o.update(from: mask, count: h * w)
    }
}

@_cdecl("bgad_rpag_create")
public func bgad_rpag_create(_ seed: UInt64, _ alwaysApply: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in
        let o = try require(out, "out")
        let h = RPAGHandle(seed: seed, alwaysApply: alwaysApply != 0)
        o.pointee = retainedHandle(h)
    }
}

@_cdecl("bgad_rpag_free")
public func bgad_rpag_free(_ p: OpaquePointer?) -> Int32 {
    releaseHandle(p, RPAGHandle.self)
}

@_cdecl("bgad_rpag_generate")
public func bgad_rpag_generate(
    _ p: OpaquePointer?, _ normal: UnsafePointer<UInt8>?, _ anomaly: UnsafePointer<UInt8>?, _ anomalyMask: UnsafePointer<UInt8>?,
    _ foreground: UnsafePointer<UInt8>?, _ foregroundMode: Int32, _ height: Int64, _ width: Int64, _ channels: Int64,
    _ outImage: UnsafeMutablePointer<UInt8>?, _ outMask: UnsafeMutablePointer<UInt8>?,
    _ outAugImage: UnsafeMutablePointer<UInt8>?, _ outAugMask: UnsafeMutablePointer<UInt8>?,
    _ outSource: UnsafeMutablePointer<Int32>?, _ outInfo: UnsafeMutablePointer<Int32>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let g = try handle(p)
        let (h, w, c, _) = try imageDims(height, width, channels)
        let oi = try require(outImage, "out_image"), om = try require(outMask, "out_mask")
        guard let mode = Foreground.Mode(rawValue: foregroundMode) else {
            throw .invalid("foreground_mode must be 0 (otsu) or 1 (whole), got \(foregroundMode)")
        }
        let n = try image(normal, "normal", h, w, c), a = try image(anomaly, "anomaly", h, w, c)
        let m = Array(UnsafeBufferPointer(start: try require(anomalyMask, "anomaly_mask"), count: h * w))
        let f = foreground.map { Array(UnsafeBufferPointer(start: $0, count: h * w)) }
        let s = try g.generator.generate(normal: n, anomaly: a, anomalyMask: m, foreground: f, foregroundMode: mode)
        oi.update(from: s.image.pixels, count: h * w * c)
        om.update(from: s.mask, count: h * w)
        outAugImage?.update(from: s.augmentedImage.pixels, count: h * w * c)
        outAugMask?.update(from: s.augmentedMask, count: h * w)
        outSource?.update(from: s.source, count: h * w)
        if let info = outInfo {
            info[0] = s.pastedInPlace ? 1 : 0
            info[1] = Int32(s.operations.count)
            for i in 0..<3 { info[2 + i] = i < s.operations.count ? s.operations[i].rawValue : -1 }
        }
    }
}

@_cdecl("bgad_rpag_augment")
public func bgad_rpag_augment(
    _ p: OpaquePointer?, _ augmentation: Int32, _ imagePtr: UnsafePointer<UInt8>?, _ maskPtr: UnsafePointer<UInt8>?,
    _ height: Int64, _ width: Int64, _ channels: Int64, _ outImage: UnsafeMutablePointer<UInt8>?, _ outMask: UnsafeMutablePointer<UInt8>?
) -> Int32 {
    guarded { () throws(BGADError) in
        let g = try handle(p)
        guard let aug = Augmentation(rawValue: augmentation) else {
            throw .invalid("augmentation must be in 0...\(Augmentation.allCases.count - 1), got \(augmentation)")
        }
        let (h, w, c, _) = try imageDims(height, width, channels)
        let oi = try require(outImage, "out_image"), om = try require(outMask, "out_mask")
        let img = try image(imagePtr, "image", h, w, c)
        let m = Array(UnsafeBufferPointer(start: try require(maskPtr, "mask"), count: h * w))
        let (ri, rm) = g.generator.apply(aug, image: img, mask: m, keepShape: true)
        oi.update(from: ri.pixels, count: h * w * c)
        om.update(from: rm, count: h * w)
    }
}
