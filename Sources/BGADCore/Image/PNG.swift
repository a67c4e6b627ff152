/// PNG decoding and encoding through libpng (wrapped in C by `CPNGShim`, so libpng's
/// longjmp error handling never crosses a Swift frame).

import CPNGShim
#if canImport(Glibc)
import Glibc
#endif

/// Reading and writing PNG files.
///
/// Decoding accepts every PNG colour type (gray, gray+alpha, RGB, RGBA, palette) and bit
/// depth (1, 2, 4, 8, 16), interlaced or not, and normalises to 8-bit gray or RGB:
/// - 16-bit samples keep their most significant byte (`v >> 8`, libpng's `strip_16`;
///   Pillow does the same for 16-bit RGB, but clips 16-bit gray to 255 when converting
///   `I;16` to `L`);
/// - 1/2/4-bit gray is scaled by bit replication (`0...2^d-1 → 0...255`, e.g. 1 → 255);
/// - palette entries are expanded to RGB;
/// - alpha and tRNS transparency are dropped, not composited; gAMA/sRGB/iCCP are ignored
///   (values are taken as stored, as Pillow does);
/// - RGB → gray is Pillow's `convert("L")`: `(19595 R + 38470 G + 7471 B + 32768) >> 16`;
///   gray → RGB replicates the value.
/// Encoding writes 8-bit gray or RGB, non-interlaced.
public enum PNG {
    /// The colour layout to decode into.
    public enum Mode: Int32, Sendable {
        /// The file's own layout: gray (with or without alpha) → 1 channel, anything else → 3.
        case native = 0
        /// 1 channel.
        case gray = 1
        /// 3 channels.
        case rgb = 3
    }

    /// Fields of the IHDR chunk.
    public struct Header: Equatable, Sendable {
        /// Image height in pixels.
        public var height: Int
        /// Image width in pixels.
        public var width: Int
        /// Bits per sample: 1, 2, 4, 8 or 16.
        public var bitDepth: Int
        /// PNG colour type: 0 gray, 2 RGB, 3 palette, 4 gray+alpha, 6 RGBA.
        public var colorType: Int
        /// Whether the file is Adam7-interlaced.
        public var interlaced: Bool

        /// Channels of the decoded image in `mode`.
        public func channels(for mode: Mode) -> Int {
            switch mode {
            case .gray: return 1
            case .rgb: return 3
            case .native: return (colorType == 0 || colorType == 4) ? 1 : 3
            }
        }
    }

    /// Largest accepted pixel count (2^28 ≈ 268 M pixels); larger claims are rejected
    /// before any allocation.
    public static let maxPixels = 1 << 28

    /// Largest ratio of decoded to compressed bytes that deflate can reach (1032:1)
    /// with some slack; a header claiming more than this from a small file is corrupt.
    static let maxInflateRatio = 1040

    /// Reads the header of an in-memory PNG.
    public static func header(_ data: UnsafeBufferPointer<UInt8>) throws(BGADError) -> Header {
        var h = bgad_png_header()
        var message = [CChar](repeating: 0, count: 256)
        let status = message.withUnsafeMutableBufferPointer { m in
            bgad_pngshim_header(data.baseAddress, data.count, &h, m.baseAddress, m.count)
        }
        if status != 0 { throw BGADError(.format, "PNG: \(String(cString: message))") }
        return Header(height: Int(h.height), width: Int(h.width), bitDepth: Int(h.bit_depth),
                      colorType: Int(h.color_type), interlaced: h.interlaced != 0)
    }

    /// Decompression-bomb budget: raw (inflated) image data up to this many bytes (128 MiB,
    /// e.g. 8192 × 8192 8-bit gray, 4096 × 4096 16-bit RGB) is decoded whatever the file's
    /// size.
    public static let bombFreeRawBytes = 1 << 27

    /// Decompression-bomb budget: above `bombFreeRawBytes`, the raw data may be at most this
    /// many times the file's size. Photographs compress 2–10:1; a 1:1000 file (the
    /// deflate limit) claiming hundreds of MB is a bomb, refused before it is inflated.
    public static let maxRawPerFileByte = 128

    /// Checks, before any allocation, that decoding `header` is sane for a file of
    /// `byteCount` bytes: at most `maxPixels` pixels, not empty, no more raw data than
    /// deflate can expand `byteCount` bytes to, and within the decompression-bomb budget
    /// (`bombFreeRawBytes`, `maxRawPerFileByte`).
    public static func validate(_ header: Header, byteCount: Int, channels: Int) throws(BGADError) {
        let (pixels, overflow) = header.height.multipliedReportingOverflow(by: header.width)
        if overflow || pixels > maxPixels {
            throw BGADError(.format, "PNG: \(header.width)×\(header.height) exceeds the limit of \(maxPixels) pixels")
        }
        if pixels == 0 { throw BGADError(.format, "PNG: empty image (\(header.width)×\(header.height))") }
        // Raw (filtered) bytes libpng must inflate, at the file's own bit depth.
        let samples = [0: 1, 2: 3, 3: 1, 4: 2, 6: 4][header.colorType] ?? 4
        let rowBits = header.width * samples * header.bitDepth
        let raw = header.height * (1 + (rowBits + 7) / 8)
        if raw / maxInflateRatio > byteCount {
            throw BGADError(.format, "PNG: header claims \(header.width)×\(header.height) but the file has only \(byteCount) bytes (corrupt or truncated)")
        }
        if raw > bombFreeRawBytes, raw / maxRawPerFileByte > byteCount {
            throw BGADError(.format, "PNG: \(header.width)×\(header.height) inflates to \(raw) bytes from a \(byteCount)-byte file, "
                            + "more than \(maxRawPerFileByte) times its size above \(bombFreeRawBytes) bytes (a decompression bomb?)")
        }
    }

    /// Decodes an in-memory PNG.
    public static func decode(_ data: UnsafeBufferPointer<UInt8>, mode: Mode = .native) throws(BGADError) -> Image {
        let h = try header(data)
        let channels = h.channels(for: mode)
        try validate(h, byteCount: data.count, channels: channels)
        var image = Image(height: h.height, width: h.width, channels: channels)
        try decode(data, into: &image.pixels, channels: channels)
        return image
    }

    /// Decodes an in-memory PNG into `out`, which must hold exactly
    /// `height * width * channels` bytes (see `header`).
    public static func decode(_ data: UnsafeBufferPointer<UInt8>, into out: inout [UInt8], channels: Int) throws(BGADError) {
        var failure: BGADError? = nil
        out.withUnsafeMutableBufferPointer { o in
            do throws(BGADError) { try decode(data, into: o, channels: channels) } catch { failure = error }
        }
        if let f = failure { throw f }
    }

    /// Decodes an in-memory PNG into caller memory of exactly
    /// `height * width * channels` bytes.
    public static func decode(_ data: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>, channels: Int) throws(BGADError) {
        var message = [CChar](repeating: 0, count: 256)
        let status = message.withUnsafeMutableBufferPointer { m in
            bgad_pngshim_decode(data.baseAddress, data.count, Int32(channels), out.baseAddress, out.count, m.baseAddress, m.count)
        }
        if status != 0 { throw BGADError(.format, "PNG: \(String(cString: message))") }
    }

    /// Reads and decodes the PNG file at `path`.
    public static func read(path: String, mode: Mode = .native) throws(BGADError) -> Image {
        let bytes = try readFile(path)
        do {
            return try bytes.withUnsafeBufferPointer { (b) throws(BGADError) -> Image in try decode(b, mode: mode) }
        } catch {
            throw BGADError(error.kind, "\(path): \(error.message)")
        }
    }

    /// Encodes an image as an 8-bit gray or RGB PNG (zlib level `compressionLevel`, 0–9).
    public static func encode(_ image: Image, compressionLevel: Int = 6) throws(BGADError) -> [UInt8] {
        guard image.height > 0, image.width > 0 else { throw .invalid("PNG: cannot encode an empty \(image.height)×\(image.width) image") }
        guard image.height <= Int(Int32.max), image.width <= Int(Int32.max) else { throw .invalid("PNG: image too large") }
        guard image.channels == 1 || image.channels == 3 else { throw .invalid("PNG: can encode 1 or 3 channels, got \(image.channels)") }
        guard image.pixels.count == image.height * image.width * image.channels else {
            throw .invalid("PNG: \(image.pixels.count) samples do not fill \(image.height)×\(image.width)×\(image.channels)")
        }
        guard (0...9).contains(compressionLevel) else { throw .invalid("PNG: compression level must be in 0...9, got \(compressionLevel)") }
        var data: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var message = [CChar](repeating: 0, count: 256)
        let status = image.pixels.withUnsafeBufferPointer { p in
            message.withUnsafeMutableBufferPointer { m in
                bgad_pngshim_encode(p.baseAddress, UInt32(image.height), UInt32(image.width), Int32(image.channels),
                                    Int32(compressionLevel), &data, &size, m.baseAddress, m.count)
            }
        }
        if status != 0 { throw BGADError(.format, "PNG: \(String(cString: message))") }
        defer { bgad_pngshim_free(data) }
        return Array(UnsafeBufferPointer(start: data, count: size))
    }

    /// Encodes `image` and writes it to `path` atomically (a temporary file in the same
    /// folder, then `rename`), so readers never see a partial file.
    public static func write(_ image: Image, path: String, compressionLevel: Int = 6) throws(BGADError) {
        let bytes = try encode(image, compressionLevel: compressionLevel)
        try writeFileAtomically(path, bytes)
    }
}

