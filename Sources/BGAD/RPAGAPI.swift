import BGADCore

/// C entry points of RPAG (see `bgad.h`, "Images and RPAG"): a generator handle that
/// owns its random state.

/// The object behind `bgad_rpag_t *`.
final class RPAGHandle {
    var generator: RPAG
    init(seed: UInt64, alwaysApply: Bool) { generator = RPAG(seed: seed, alwaysApply: alwaysApply) }
}

private func handle(_ p: OpaquePointer?) throws(BGADError) -> RPAGHandle {
    guard let p = p else { throw .invalid("rpag handle is NULL") }
    return Unmanaged<RPAGHandle>.fromOpaque(UnsafeRawPointer(p)).takeUnretainedValue()
}

private func dims(_ h: Int64, _ w: Int64, _ c: Int64) throws(BGADError) -> (Int, Int, Int) {
    let hh = try requireSize(h, "height"), ww = try requireSize(w, "width"), cc = try requireSize(c, "channels")
    guard cc == 1 || cc == 3 else { throw .invalid("channels must be 1 or 3, got \(cc)") }
    let n = try checkedProduct([hh, ww, cc], "image")
    guard n > 0 else { throw .invalid("empty image \(hh)×\(ww)") }
    return (hh, ww, cc)
}

private func image(_ p: UnsafePointer<UInt8>?, _ name: String, _ h: Int, _ w: Int, _ c: Int) throws(BGADError) -> Image {
    let src = try require(p, name)
    return try Image(height: h, width: w, channels: c, pixels: Array(UnsafeBufferPointer(start: src, count: h * w * c)))
}

@_cdecl("bgad_rpag_create")
public func bgad_rpag_create(_ seed: UInt64, _ alwaysApply: Int32, _ out: UnsafeMutablePointer<OpaquePointer?>?) -> Int32 {
    guarded { () throws(BGADError) in
        let o = try require(out, "out")
        let h = RPAGHandle(seed: seed, alwaysApply: alwaysApply != 0)
        o.pointee = OpaquePointer(Unmanaged.passRetained(h).toOpaque())
    }
}

@_cdecl("bgad_rpag_free")
public func bgad_rpag_free(_ p: OpaquePointer?) -> Int32 {
    guarded { () throws(BGADError) in
        guard let p else { return }
        Unmanaged<RPAGHandle>.fromOpaque(UnsafeRawPointer(p)).release()
    }
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
        let (h, w, c) = try dims(height, width, channels)
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
        let (h, w, c) = try dims(height, width, channels)
        let oi = try require(outImage, "out_image"), om = try require(outMask, "out_mask")
        let img = try image(imagePtr, "image", h, w, c)
        let m = Array(UnsafeBufferPointer(start: try require(maskPtr, "mask"), count: h * w))
        let (ri, rm) = g.generator.apply(aug, image: img, mask: m, keepShape: true)
        oi.update(from: ri.pixels, count: h * w * c)
        om.update(from: rm, count: h * w)
    }
}
