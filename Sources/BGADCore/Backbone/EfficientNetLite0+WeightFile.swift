#if canImport(Glibc)
import Glibc
#endif

/// The engine's EfficientNet-Lite0 weight file (written by `bgad.weights`).
///
/// Layout (little endian): magic `"BGADEFL0"` (8 bytes), format version (UInt32),
/// tensor count (UInt32), payload size in bytes (UInt64), CRC-32 of the payload (UInt32,
/// zlib's polynomial), reserved (UInt32). The payload is a table of `count` entries
/// (rank + 4 dims, 5 × UInt32) followed by the Float32 data of every tensor in table order.
/// The tensors are BatchNorm-folded and channels-last, in the order of `tensorShapes`.
public enum EfficientNetLite0WeightFile {
    /// Magic bytes at offset 0.
    public static let magic: [UInt8] = Array("BGADEFL0".utf8)
    /// Format version this engine reads.
    public static let version: UInt32 = 1
    /// Size of the fixed header in bytes.
    public static let headerSize = 32

    /// Reads and validates the file at `path`; returns the tensors in file order.
    ///
    /// Throws `.io` when the file cannot be read and `.format` when it is truncated,
    /// foreign, of another version, corrupt (checksum) or of another architecture.
    public static func read(path: String) throws(BGADError) -> [[Float]] {
        let bytes = try readFile(path)
        return try decode(bytes, name: path)
    }

    /// Parses a weight file held in memory (see `read(path:)`); `name` is used in messages.
    public static func decode(_ bytes: [UInt8], name: String = "weight file") throws(BGADError) -> [[Float]] {
        func fail(_ m: String) -> BGADError { BGADError(.format, "\(name): \(m)") }
        guard bytes.count >= headerSize else { throw fail("truncated (\(bytes.count) bytes, no complete header)") }
        guard Array(bytes[0..<8]) == magic else {
            throw fail("not a bgad EfficientNet-Lite0 weight file (wrong magic)")
        }
        let fileVersion = readU32(bytes, 8)
        guard fileVersion == version else {
            throw fail("format version \(fileVersion), this engine reads version \(version)")
        }
        let count = Int(readU32(bytes, 12))
        let payloadSize = readU64(bytes, 16)
        let expectedCRC = readU32(bytes, 24)
        guard payloadSize == UInt64(bytes.count - headerSize) else {
            throw fail("truncated or padded: payload of \(bytes.count - headerSize) bytes, header says \(payloadSize)")
        }
        let crc = bytes.withUnsafeBufferPointer { crc32(UnsafeBufferPointer(rebasing: $0[headerSize...])) }
        guard crc == expectedCRC else { throw fail("checksum mismatch (corrupt file)") }
        let shapes = EfficientNetLite0.tensorShapes
        guard count == shapes.count else {
            throw fail("\(count) tensors, EfficientNet-Lite0 has \(shapes.count)")
        }
        var offset = headerSize + 20 * count
        guard offset <= bytes.count else { throw fail("truncated tensor table") }
        var tensors: [[Float]] = []
        tensors.reserveCapacity(count)
        for i in 0..<count {
            let entry = headerSize + 20 * i
            let rank = Int(readU32(bytes, entry))
            guard rank <= 4 else { throw fail("tensor \(i) has rank \(rank)") }
            let dims = (0..<rank).map { Int(readU32(bytes, entry + 4 + 4 * $0)) }
            guard dims == shapes[i] else {
                throw fail("tensor \(i) has shape \(dims), expected \(shapes[i]) (not EfficientNet-Lite0)")
            }
            let n = dims.reduce(1, *)
            guard offset + 4 * n <= bytes.count else { throw fail("truncated data of tensor \(i)") }
            var t = [Float](repeating: 0, count: n)
            #if _endian(little)
            let start = offset
            t.withUnsafeMutableBytes { dst in
                bytes.withUnsafeBytes { src in dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<(start + 4 * n)])) }
            }
            #else
            for j in 0..<n { t[j] = Float(bitPattern: readU32(bytes, offset + 4 * j)) }
            #endif
            for v in t where !v.isFinite { throw fail("tensor \(i) holds NaN or infinite values") }
            tensors.append(t)
            offset += 4 * n
        }
        guard offset == bytes.count else { throw fail("\(bytes.count - offset) unexpected trailing bytes") }
        return tensors
    }

    /// CRC-32 with zlib's (reflected 0xEDB88320) polynomial, as Python's `zlib.crc32`.
    /// Four bytes per step through four tables ("slicing by 4").
    public static func crc32(_ data: UnsafeBufferPointer<UInt8>) -> UInt32 {
        var c: UInt32 = 0xFFFF_FFFF
        crcTables.withUnsafeBufferPointer { t in
            var i = 0
            let n = data.count
            while i + 4 <= n {
                c ^= UInt32(data[i]) | UInt32(data[i + 1]) << 8 | UInt32(data[i + 2]) << 16 | UInt32(data[i + 3]) << 24
                c = t[768 + Int(c & 0xFF)] ^ t[512 + Int((c >> 8) & 0xFF)] ^ t[256 + Int((c >> 16) & 0xFF)] ^ t[Int(c >> 24)]
                i += 4
            }
            while i < n {
                c = t[Int((c ^ UInt32(data[i])) & 0xFF)] ^ (c >> 8)
                i += 1
            }
        }
        return c ^ 0xFFFF_FFFF
    }

    /// Table k (k = 0…3) at offset 256·k: the CRC of a byte followed by k zero bytes.
    private static let crcTables: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 1024)
        for n in 0..<256 {
            var c = UInt32(n)
            for _ in 0..<8 { c = (c & 1) != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[n] = c
        }
        for k in 1..<4 {
            for n in 0..<256 {
                let prev = t[256 * (k - 1) + n]
                t[256 * k + n] = t[Int(prev & 0xFF)] ^ (prev >> 8)
            }
        }
        return t
    }()

    @inline(__always)
    private static func readU32(_ b: [UInt8], _ o: Int) -> UInt32 {
        UInt32(b[o]) | UInt32(b[o + 1]) << 8 | UInt32(b[o + 2]) << 16 | UInt32(b[o + 3]) << 24
    }

    @inline(__always)
    private static func readU64(_ b: [UInt8], _ o: Int) -> UInt64 {
        UInt64(readU32(b, o)) | UInt64(readU32(b, o + 4)) << 32
    }

    private static func readFile(_ path: String) throws(BGADError) -> [UInt8] {
        guard let f = fopen(path, "rb") else {
            throw BGADError(.io, "cannot open weight file \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { bytes.append(contentsOf: chunk[0..<n]) }
            if n < chunk.count {
                if ferror(f) != 0 { throw BGADError(.io, "cannot read weight file \(path)") }
                break
            }
        }
        return bytes
    }
}
