#if canImport(Glibc)
import Glibc
#endif

/// The engine's EfficientNet-Lite weight file (written by `bgad.weights`).
///
/// Layout (little endian): magic `"BGADEFL"` + the variant's digit (`"BGADEFL0"`,
/// `"BGADEFL1"`, `"BGADEFL2"`; 8 bytes), format version (UInt32), tensor count (UInt32),
/// payload size in bytes (UInt64), CRC-32 of the payload (UInt32, zlib's polynomial),
/// reserved (UInt32). The payload is a table of `count` entries (rank + 4 dims, 5 × UInt32)
/// followed by the Float32 data of every tensor in table order. The tensors are
/// BatchNorm-folded and channels-last, in the order of the variant's `tensorShapes`.
public enum EfficientNetLiteWeightFile {
    /// Magic bytes at offset 0 of a file holding `variant`.
    public static func magic(_ variant: EfficientNetLite.Variant) -> [UInt8] {
        Array("BGADEFL\(variant.rawValue)".utf8)
    }
    /// Format version this engine reads.
    public static let version: UInt32 = 1
    /// Size of the fixed header in bytes.
    public static let headerSize = 32

    /// The contents of a weight file: which variant, and its tensors in file order.
    public struct Contents {
        /// The EfficientNet-Lite variant the file holds.
        public var variant: EfficientNetLite.Variant
        /// BatchNorm-folded tensors in the order of `variant.tensorShapes`.
        public var tensors: [[Float]]
    }

    /// Reads and validates the file at `path` (see `decode`).
    public static func read(path: String, expecting expected: EfficientNetLite.Variant? = nil) throws(BGADError) -> Contents {
        try decode(readBytes(path: path), name: path, expecting: expected)
    }

    /// The bytes of the weight file at `path`, its header checked first (`checkHeader`): a
    /// foreign file or one whose length is not its variant's exact size is refused after
    /// reading 32 bytes.
    public static func readBytes(path: String) throws(BGADError) -> [UInt8] {
        try readFile(path, headerSize: headerSize) { (head, size) throws(BGADError) in
            _ = try checkHeader(head[...], fileSize: size, name: "weight file")
        }
    }

    /// Payload bytes of a `variant` weight file: the tensor table plus every tensor's floats.
    /// The magic names the variant, so a file's whole length is known from its first 8 bytes.
    public static func payloadSize(_ variant: EfficientNetLite.Variant) -> Int {
        let shapes = variant.tensorShapes
        return 20 * shapes.count + 4 * shapes.reduce(0) { $0 + $1.reduce(1, *) }
    }

    /// Checks the header (`head`, at least `headerSize` bytes unless the file is shorter) of a
    /// file of `fileSize` bytes: magic, version, and that the declared payload is both the
    /// real one and the exact size of the variant the magic names. Returns the variant.
    static func checkHeader(_ head: ArraySlice<UInt8>, fileSize: Int, name: String) throws(BGADError) -> EfficientNetLite.Variant {
        func fail(_ m: String) -> BGADError { BGADError(.format, "\(name): \(m)") }
        guard head.count >= headerSize, fileSize >= headerSize else { throw fail("truncated (\(fileSize) bytes, no complete header)") }
        let h = Array(head.prefix(headerSize))
        guard let variant = EfficientNetLite.Variant.allCases.first(where: { Array(h[0..<8]) == magic($0) }) else {
            throw fail("not a bgad EfficientNet-Lite weight file (wrong magic)")
        }
        var r = ByteReader(bytes: h, position: 8, context: name)
        let fileVersion = try r.u32()
        guard fileVersion == version else {
            throw fail("format version \(fileVersion), this engine reads version \(version)")
        }
        r.position = 16
        let declared = try r.u64()
        guard declared == UInt64(fileSize - headerSize) else {
            throw fail("truncated or padded: payload of \(fileSize - headerSize) bytes, header says \(declared)")
        }
        guard declared == UInt64(payloadSize(variant)) else {
            throw fail("payload of \(declared) bytes, but \(variant.displayName) has tensor shapes of \(payloadSize(variant)) bytes (another architecture?)")
        }
        return variant
    }

    /// Parses a weight file held in memory; `name` is used in messages.
    ///
    /// Throws `.format` when the bytes are truncated, foreign, of another version, corrupt
    /// (checksum), of another architecture, or hold a variant other than `expected` (when given).
    public static func decode(
        _ bytes: [UInt8], name: String = "weight file", expecting expected: EfficientNetLite.Variant? = nil
    ) throws(BGADError) -> Contents {
        func fail(_ m: String) -> BGADError { BGADError(.format, "\(name): \(m)") }
        if bytes.count >= 8, let expected, let held = EfficientNetLite.Variant.allCases.first(where: { Array(bytes[0..<8]) == magic($0) }),
           held != expected {
            throw fail("holds \(held.displayName) weights, expected \(expected.displayName)")
        }
        let variant = try checkHeader(bytes[...], fileSize: bytes.count, name: name)
        var r = ByteReader(bytes: bytes, position: 12, context: name)
        let count = Int(try r.u32())
        r.position = 24
        let expectedCRC = try r.u32()
        guard crc32(bytes[headerSize...]) == expectedCRC else { throw fail("checksum mismatch (corrupt file)") }
        let shapes = variant.tensorShapes
        guard count == shapes.count else {
            throw fail("\(count) tensors, \(variant.displayName) has \(shapes.count)")
        }
        var offset = headerSize + 20 * count
        guard offset <= bytes.count else { throw fail("truncated tensor table") }
        var tensors: [[Float]] = []
        tensors.reserveCapacity(count)
        for i in 0..<count {
            r.position = headerSize + 20 * i
            let rank = Int(try r.u32())
            guard rank <= 4 else { throw fail("tensor \(i) has rank \(rank)") }
            var dims: [Int] = []
            for _ in 0..<rank { dims.append(Int(try r.u32())) }
            guard dims == shapes[i] else {
                throw fail("tensor \(i) has shape \(dims), expected \(shapes[i]) (not \(variant.displayName))")
            }
            let n = dims.reduce(1, *)
            guard offset + 4 * n <= bytes.count else { throw fail("truncated data of tensor \(i)") }
            r.position = offset
            let t = try r.floats(n)
            if firstNonFinite(t) != nil { throw fail("tensor \(i) holds NaN or infinite values") }
            tensors.append(t)
            offset += 4 * n
        }
        guard offset == bytes.count else { throw fail("\(bytes.count - offset) unexpected trailing bytes") }
        return Contents(variant: variant, tensors: tensors)
    }
}
