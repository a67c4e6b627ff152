/// The detector file: one versioned, checksummed binary holding everything a detector
/// needs to score — a C user needs only this file.
///
/// Layout (little-endian):
///
///     offset 0   8 bytes  magic "BGADDET\0"
///            8   u32      format version (2)
///           12   u32      reserved (0)
///           16   u64      body length in bytes (from offset 24 to the CRC)
///           24   body:
///                u32 n, n bytes   the configuration as a JSON object (UTF-8, n ≤ 65536;
///                                 "weights" is not stored; a file without "tiling",
///                                 written before it existed, loads with tiling "off")
///                u8 fitted (0 or 1); if 1:
///                  u32 n, n bytes  backbone name (n ≤ 64)
///                  u32             CRC-32 of the backbone's weight file (its identity)
///                  u64 n, n bytes  the backbone's engine weight file, embedded
///                  u64 n, n bytes  the BGAD model (`ModelFile`: flows, calibration, thresholds)
///     end − 4    u32      CRC-32 (zlib's) of every byte before it
///
/// Reading checks the magic, the version, the body length against the real length and
/// the CRC before parsing, then every declared length against the bytes left before
/// copying anything, and every value's range. Format version 1 (the Python package's
/// `BGADDET\0` files, JSON header + model, no backbone weights) is refused with a message
/// naming it.
public enum DetectorFile {
    /// First bytes of every detector file.
    public static let magic: [UInt8] = Array("BGADDET\0".utf8)
    /// Format version written (and the only one read) by this build.
    public static let formatVersion: UInt32 = 2
    static let headerSize = 24
    static let maximumConfigurationLength = 1 << 16

    /// The file's bytes for `detector`.
    public static func encode(_ detector: Detector) throws(BGADError) -> [UInt8] {
        var config = detector.configuration
        config.weights = ""
        var w = ByteWriter()
        let json = Array(config.json.text.utf8)
        guard json.count <= maximumConfigurationLength else { throw .invalid("the configuration's JSON is longer than \(maximumConfigurationLength) bytes") }
        w.u32(UInt32(json.count)); w.bytes += json
        if let f = detector.state, f.model.calibration != nil {
            w.u8(1)
            w.string(f.backbone.name)
            w.u32(f.backbone.weightCRC)
            w.u64(UInt64(f.backbone.weightBytes.count)); w.bytes += f.backbone.weightBytes
            let model = try ModelFile.encode(f.model)
            w.u64(UInt64(model.count)); w.bytes += model
        } else {
            w.u8(0)
        }
        var out = ByteWriter()
        out.bytes = magic
        out.u32(formatVersion); out.u32(0); out.u64(UInt64(w.bytes.count))
        out.bytes += w.bytes
        out.u32(crc32(out.bytes))
        guard out.bytes.count <= maximumFileSize else {
            throw .invalid("the detector needs \(out.bytes.count) bytes, more than the \(maximumFileSize) a detector file may have")
        }
        return out.bytes
    }

    /// Largest detector file read or written: a model file's budget plus 256 MiB for the
    /// embedded backbone weights (EfficientNet-Lite2's are 24 MB).
    public static let maximumFileSize = ModelFile.maximumFileSize + (1 << 28)

    /// Checks the fixed header (`head`: the first `headerSize` bytes, or the whole file when
    /// shorter) of a file of `fileSize` bytes — magic, version, the declared body length
    /// against the real length and `maximumFileSize` — before the rest is read.
    static func checkHeader(_ head: ArraySlice<UInt8>, fileSize: Int) throws(BGADError) {
        func fail(_ m: String) -> BGADError { BGADError(.format, "detector file: \(m)") }
        guard head.count >= magic.count, Array(head.prefix(magic.count)) == magic else {
            throw BGADError(.format, "not a bgad detector file (the magic bytes 'BGADDET' are missing)")
        }
        guard head.count >= headerSize, fileSize >= headerSize + 4 else {
            throw fail("truncated: \(fileSize) bytes, the header and checksum alone have \(headerSize + 4)")
        }
        var r = ByteReader(bytes: Array(head.prefix(headerSize)), position: magic.count, context: "detector file")
        let version = try r.u32()
        if version == 1 {
            throw fail("format version 1 (written by the Python Detector of earlier bgad releases) holds no backbone weights and cannot be read; fit the detector again and save it")
        }
        guard version == formatVersion else {
            throw fail(version > formatVersion ? "format version \(version) is newer than this bgad reads (\(formatVersion)); upgrade bgad"
                                               : "invalid format version \(version)")
        }
        _ = try r.u32()
        let length = try r.u64()
        let actual = UInt64(fileSize - headerSize - 4)
        guard length == actual else {
            throw fail(length > actual ? "truncated: the body has \(actual) of \(length) bytes"
                                       : "\(actual - length) unexpected bytes after the body")
        }
        guard fileSize <= maximumFileSize else {
            throw fail("\(fileSize) bytes, more than the \(maximumFileSize) a detector file may have")
        }
    }

    /// A detector from the file's bytes; throws `.format` naming what is wrong.
    public static func decode(_ bytes: [UInt8]) throws(BGADError) -> Detector {
        func fail(_ m: String) -> BGADError { BGADError(.format, "detector file: \(m)") }
        try checkHeader(bytes[...], fileSize: bytes.count)
        var r = ByteReader(bytes: bytes, position: headerSize, context: "detector file")
        var tail = ByteReader(bytes: bytes, position: bytes.count - 4, context: "detector file")
        let stored = try tail.u32()
        guard crc32(bytes[..<(bytes.count - 4)]) == stored else { throw fail("corrupt (checksum mismatch)") }
        let end = bytes.count - 4

        let jsonLength = try r.count(max: maximumConfigurationLength, "configuration length")
        guard jsonLength <= end - r.position else { throw fail("the configuration runs past the end") }
        let json = String(decoding: try r.raw(jsonLength), as: UTF8.self)
        var config: DetectorConfiguration
        do { config = try DetectorConfiguration(json: json) } catch { throw fail("configuration: \(error.message)") }
        // Files written before tiling existed have no "tiling" key: they keep scoring every
        // image resized as a whole, as they did.
        if case .object(let members)? = try? JSON.parse(json), !members.contains(where: { $0.key == "tiling" }) {
            config.tiling = .off
        }

        var fitted: Detector.Fitted? = nil
        let flag = try r.u8()
        if flag == 1 {
            let name = try r.count(max: 64, "backbone name length")
            guard name <= end - r.position else { throw fail("the backbone name runs past the end") }
            let backboneName = String(decoding: try r.raw(name), as: UTF8.self)
            guard backboneName == config.backbone else {
                throw fail("the backbone is '\(backboneName)' but the configuration names '\(config.backbone)'")
            }
            let weightCRC = try r.u32()
            let weights = try blob(&r, end: end, "backbone weights")
            let backbone = try DetectorBackbones.make(name: backboneName, weightBytes: weights, source: "detector file, embedded weights")
            guard backbone.weightCRC == weightCRC else { throw fail("the embedded backbone weights do not match their recorded CRC-32") }
            let model: BGADModel
            do { model = try ModelFile.decode(try blob(&r, end: end, "model")) } catch { throw fail(error.message) }
            let channels = config.strides.map { backbone.network.channels(stride: $0) ?? -1 }
            guard model.channels == channels else {
                throw fail("the model's levels have \(model.channels) channels, the backbone's strides \(config.strides) give \(channels)")
            }
            guard let cal = model.calibration else { throw fail("the model is not trained") }
            guard cal.height == config.imageSize, cal.width == config.imageSize else {
                throw fail("the model is calibrated at \(cal.height)×\(cal.width), the image size is \(config.imageSize)")
            }
            guard model.configuration == config.training else { throw fail("the model's training settings differ from the configuration's") }
            fitted = Detector.Fitted(backbone: backbone, model: model)
        } else if flag != 0 {
            throw fail("invalid 'fitted' flag \(flag)")
        }
        guard r.position == end else { throw fail("\(end - r.position) unexpected bytes after the last field") }
        return Detector(configuration: config, fitted: fitted)
    }

    /// A u64-length-prefixed byte string, its length checked against the bytes left first.
    private static func blob(_ r: inout ByteReader, end: Int, _ what: String) throws(BGADError) -> [UInt8] {
        let n = try r.u64()
        guard n <= UInt64(end - r.position) else {
            throw BGADError(.format, "detector file: the \(what) (\(n) bytes) run past the end")
        }
        return try r.raw(Int(n))
    }

    /// Writes `detector` to `path` atomically (unique temporary file, fsync, rename).
    public static func save(_ detector: Detector, to path: String) throws(BGADError) {
        try writeFileAtomically(path, encode(detector))
    }

    /// Reads a detector from `path` (`.io` when unreadable, `.format` naming the problem).
    public static func load(from path: String) throws(BGADError) -> Detector {
        let bytes = try readFile(path, headerSize: headerSize) { (head, size) throws(BGADError) in
            try checkHeader(head[...], fileSize: size)
        }
        do { return try decode(bytes) } catch { throw BGADError(error.kind, "\(path): \(error.message)") }
    }
}

extension Detector {
    /// The detector as the bytes of its file (`DetectorFile`).
    public func encoded() throws(BGADError) -> [UInt8] { try DetectorFile.encode(self) }

    /// A detector from the bytes of its file.
    public static func decode(_ bytes: [UInt8]) throws(BGADError) -> Detector { try DetectorFile.decode(bytes) }

    /// Writes the detector to `path` (atomic: unique temporary file, fsync, rename).
    public func save(to path: String) throws(BGADError) { try DetectorFile.save(self, to: path) }

    /// Reads a detector file.
    public static func load(from path: String) throws(BGADError) -> Detector { try DetectorFile.load(from: path) }
}
