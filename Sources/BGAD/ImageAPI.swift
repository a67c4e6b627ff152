import BGADCore

/// C entry points of the image layer (see `bgad.h`, "Images"): PNG decode/encode,
/// Otsu threshold, foreground masks.

private func pngMode(_ mode: Int32) throws(BGADError) -> PNG.Mode {
    guard let m = PNG.Mode(rawValue: mode) else { throw .invalid("mode must be 0 (native), 1 (gray) or 3 (RGB), got \(mode)") }
    return m
}

private func buffer(_ data: UnsafePointer<UInt8>?, _ size: Int64) throws(BGADError) -> UnsafeBufferPointer<UInt8> {
    let n = try requireSize(size, "size")
    let p = try require(data, "data")
    return UnsafeBufferPointer(start: p, count: n)
}

private func imageDims(_ h: Int64, _ w: Int64, _ c: Int64) throws(BGADError) -> (Int, Int, Int, Int) {
    let hh = try requireSize(h, "height"), ww = try requireSize(w, "width"), cc = try requireSize(c, "channels")
    guard cc == 1 || cc == 3 else { throw .invalid("channels must be 1 or 3, got \(cc)") }
    let n = try checkedProduct([hh, ww, cc], "image")
    guard n > 0 else { throw .invalid("empty image \(hh)×\(ww)") }
    return (hh, ww, cc, n)
}

@_cdecl("bgad_png_decode_info")
public func bgad_png_decode_info(_ data: UnsafePointer<UInt8>?, _ size: Int64, _ mode: Int32,
                                 _ height: UnsafeMutablePointer<Int64>?, _ width: UnsafeMutablePointer<Int64>?,
                                 _ channels: UnsafeMutablePointer<Int64>?) -> Int32 {
    guarded { () throws(BGADError) in
        let b = try buffer(data, size), m = try pngMode(mode)
        let oh = try require(height, "height"), ow = try require(width, "width"), oc = try require(channels, "channels")
        let header = try PNG.header(b)
        let c = header.channels(for: m)
        try PNG.validate(header, byteCount: b.count, channels: c)
        oh.pointee = Int64(header.height); ow.pointee = Int64(header.width); oc.pointee = Int64(c)
    }
}

@_cdecl("bgad_png_decode")
public func bgad_png_decode(_ data: UnsafePointer<UInt8>?, _ size: Int64, _ mode: Int32, _ out: UnsafeMutablePointer<UInt8>?,
                            _ height: Int64, _ width: Int64, _ channels: Int64) -> Int32 {
    guarded { () throws(BGADError) in
        let b = try buffer(data, size), m = try pngMode(mode)
        let o = try require(out, "out")
        let (h, w, c, n) = try imageDims(height, width, channels)
        let header = try PNG.header(b)
        guard header.height == h, header.width == w, header.channels(for: m) == c else {
            throw .invalid("out is \(h)×\(w)×\(c) but the PNG decodes to \(header.height)×\(header.width)×\(header.channels(for: m))")
        }
        try PNG.validate(header, byteCount: b.count, channels: c)
        // Decode straight into the caller's buffer.
        try PNG.decode(b, into: UnsafeMutableBufferPointer(start: o, count: n), channels: c)
    }
}

@_cdecl("bgad_png_write")
public func bgad_png_write(_ path: UnsafePointer<CChar>?, _ pixels: UnsafePointer<UInt8>?, _ height: Int64, _ width: Int64,
                           _ channels: Int64, _ compressionLevel: Int32) -> Int32 {
    guarded { () throws(BGADError) in
        let p = String(cString: try require(path, "path"))
        let src = try require(pixels, "pixels")
        let (h, w, c, n) = try imageDims(height, width, channels)
        let image = try Image(height: h, width: w, channels: c, pixels: Array(UnsafeBufferPointer(start: src, count: n)))
        try PNG.write(image, path: p, compressionLevel: Int(compressionLevel))
    }
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
