import BGADCore

/// C entry points of the image layer (see `bgad.h`, "Image"): PNG decode/encode, resize.

private func pngMode(_ mode: Int32) throws(BGADError) -> PNG.Mode {
    guard let m = PNG.Mode(rawValue: mode) else { throw .invalid("mode must be 0 (native), 1 (gray) or 3 (RGB), got \(mode)") }
    return m
}

private func buffer(_ data: UnsafePointer<UInt8>?, _ size: Int64) throws(BGADError) -> UnsafeBufferPointer<UInt8> {
    let n = try requireSize(size, "size")
    let p = try require(data, "data")
    return UnsafeBufferPointer(start: p, count: n)
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

// MARK: - Resize

/// One resize entry point: checks the sizes and pointers, then runs `resize` (the bilinear or
/// nearest kernel of the element type) from `src` into `dst`.
private func resizeEntry<T>(
    _ src: UnsafePointer<T>?, _ height: Int64, _ width: Int64, _ channels: Int64,
    _ dst: UnsafeMutablePointer<T>?, _ outHeight: Int64, _ outWidth: Int64,
    _ resize: (UnsafePointer<T>, Int, Int, Int, UnsafeMutablePointer<T>, Int, Int) throws(BGADError) -> Void
) -> Int32 {
    guarded { () throws(BGADError) in
        let h = try requireSize(height, "height"), w = try requireSize(width, "width")
        let c = try requireSize(channels, "channels")
        let oh = try requireSize(outHeight, "out_height"), ow = try requireSize(outWidth, "out_width")
        try resize(try require(src, "src"), h, w, c, try require(dst, "dst"), oh, ow)
    }
}

@_cdecl("bgad_resize_bilinear_u8")
public func bgad_resize_bilinear_u8(
    _ src: UnsafePointer<UInt8>?, _ height: Int64, _ width: Int64, _ channels: Int64,
    _ dst: UnsafeMutablePointer<UInt8>?, _ outHeight: Int64, _ outWidth: Int64
) -> Int32 {
    resizeEntry(src, height, width, channels, dst, outHeight, outWidth) { (s, h, w, c, d, oh, ow) throws(BGADError) in
        try resizeBilinear(s, height: h, width: w, channels: c, into: d, height: oh, width: ow)
    }
}

@_cdecl("bgad_resize_bilinear_f32")
public func bgad_resize_bilinear_f32(
    _ src: UnsafePointer<Float>?, _ height: Int64, _ width: Int64, _ channels: Int64,
    _ dst: UnsafeMutablePointer<Float>?, _ outHeight: Int64, _ outWidth: Int64
) -> Int32 {
    resizeEntry(src, height, width, channels, dst, outHeight, outWidth) { (s, h, w, c, d, oh, ow) throws(BGADError) in
        try resizeBilinear(s, height: h, width: w, channels: c, into: d, height: oh, width: ow)
    }
}

@_cdecl("bgad_resize_nearest_u8")
public func bgad_resize_nearest_u8(
    _ src: UnsafePointer<UInt8>?, _ height: Int64, _ width: Int64, _ channels: Int64,
    _ dst: UnsafeMutablePointer<UInt8>?, _ outHeight: Int64, _ outWidth: Int64
) -> Int32 {
    resizeEntry(src, height, width, channels, dst, outHeight, outWidth) { (s, h, w, c, d, oh, ow) throws(BGADError) in
        try resizeNearest(s, height: h, width: w, channels: c, into: d, height: oh, width: ow)
    }
}

@_cdecl("bgad_resize_nearest_f32")
public func bgad_resize_nearest_f32(
    _ src: UnsafePointer<Float>?, _ height: Int64, _ width: Int64, _ channels: Int64,
    _ dst: UnsafeMutablePointer<Float>?, _ outHeight: Int64, _ outWidth: Int64
) -> Int32 {
    resizeEntry(src, height, width, channels, dst, outHeight, outWidth) { (s, h, w, c, d, oh, ow) throws(BGADError) in
        try resizeNearest(s, height: h, width: w, channels: c, into: d, height: oh, width: ow)
    }
}
