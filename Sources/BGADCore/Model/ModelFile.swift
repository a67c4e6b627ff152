#if canImport(Glibc)
import Glibc
#endif

/// The model file: a versioned, checksummed binary holding the configuration, every flow
/// parameter (the fixed rotations included) and the calibration.
///
/// Layout (little-endian):
///
///     offset 0   8 bytes  magic "BGADMODL"
///            8   u32      format version (currently 2; version 1 is read too)
///           12   u32      reserved (0)
///           16   u64      payload length in bytes
///           24   u32      CRC-32 (IEEE) of the payload
///           28   u32      reserved (0)
///           32   payload:
///                u32 n, then n × (string name, string value)     hyper-parameters
///                u32 L, then L × u32                              channels per level
///                u8 trained; if 1: u32 height, u32 width, f64 beta, f32 S_max,
///                   f32 pixel threshold, f64 image threshold, u64 pixels, u64 images,
///                   L × f32 references
///                L × (u32 blocks, u32 condition dim, f32 clamp,
///                     u32 m, m × (string name, u32 rank, rank × u32 dims, floats))
///                u8 has history; if 1: L × (u32 n, n × 11 f64 — `TrainingHistory.fieldNames`)
///     Version 1 had an f32 image threshold on the map's scale (`S_max − min Σ`), converted
///     on reading to the image score's scale `−log(min Σ)`, and no history.
///     strings are u32 byte length + UTF-8.
///
/// A file is written to a unique temporary file beside `path`, flushed and renamed over
/// `path`, so readers never see a half-written model. Reading checks the magic (foreign file), the version (newer
/// writer), the length (truncation) and the checksum (corruption) before parsing, and
/// every count while parsing.
public enum ModelFile {
    /// First bytes of every model file.
    public static let magic: [UInt8] = Array("BGADMODL".utf8)
    /// Format version written by this build; files with a larger version are refused.
    public static let formatVersion: UInt32 = 2
    static let headerSize = 32

    /// The serialized bytes of `model`.
    public static func encode(_ model: BGADModel) throws(BGADError) -> [UInt8] {
        var w = ByteWriter()
        let names = TrainingConfiguration.parameterNames
        // The architecture the flows were built with is the one stored (a knob changed since
        // the last fit takes effect only at the next fit): the hyper-parameters' blocks and
        // clamp and the flows' headers must agree, and the reader checks that they do. (The
        // condition width is not a hyper-parameter: it is stored once, in the flows' headers.)
        var configuration = model.configuration
        if let f = model.flows.first {
            if configuration.blocks != f.blockCount { configuration.blocks = f.blockCount }
            if Float(configuration.clamp) != f.clamp { configuration.clamp = Double(f.clamp) }
        }
        w.u32(UInt32(names.count))
        for n in names { w.string(n); w.string(try configuration.get(n)) }
        w.u32(UInt32(model.channels.count))
        for c in model.channels { w.u32(UInt32(c)) }
        if let cal = model.calibration {
            w.u8(1)
            w.u32(UInt32(cal.height)); w.u32(UInt32(cal.width)); w.f64(cal.beta)
            w.f32(cal.maxNormality); w.f32(cal.pixelThreshold); w.f64(cal.imageThreshold)
            w.u64(UInt64(cal.pixelCount)); w.u64(UInt64(cal.imageCount))
            for r in cal.references { w.f32(r) }
        } else {
            w.u8(0)
        }
        for flow in model.flows {
            w.u32(UInt32(flow.blockCount)); w.u32(UInt32(flow.condDim)); w.f32(flow.clamp)
            let pnames = flow.parameterNames
            w.u32(UInt32(pnames.count))
            for n in pnames {
                let shape = try flow.parameterShape(n)
                let values = try flow.parameter(n)
                w.string(n)
                w.u32(UInt32(shape.count))
                for d in shape { w.u32(UInt32(d)) }
                w.floats(values)
            }
        }
        if let history = model.history {
            w.u8(1)
            for level in history.levels {
                w.u32(UInt32(level.count))
                for record in level { for v in record.fields { w.f64(v) } }
            }
        } else {
            w.u8(0)
        }
        guard headerSize + w.bytes.count <= maximumFileSize else {
            throw .invalid("the model needs \(headerSize + w.bytes.count) bytes, more than the \(maximumFileSize) a model file may have")
        }
        var header = ByteWriter()
        header.bytes.append(contentsOf: magic)
        header.u32(formatVersion); header.u32(0)
        header.u64(UInt64(w.bytes.count)); header.u32(crc32(w.bytes)); header.u32(0)
        return header.bytes + w.bytes
    }

    /// Largest model file read or written (1 GiB): a budget checked from the header, before
    /// the rest of a file is read. Real models are far smaller (Lite0 at strides 8, 16 with
    /// 8 blocks: about 4 MB).
    public static let maximumFileSize = 1 << 30

    /// Checks the fixed header (`head`: at least the first `headerSize` bytes, or the whole
    /// file when shorter) of a file of `fileSize` bytes: magic, version, and the declared
    /// payload length against the real length and `maximumFileSize`. Returns the version
    /// and the payload's CRC. Needs nothing past the header, so a reader calls it before
    /// reading or allocating the rest.
    static func checkHeader(_ head: ArraySlice<UInt8>, fileSize: Int) throws(BGADError) -> (version: UInt32, crc: UInt32) {
        guard head.count >= 8, Array(head.prefix(8)) == magic else {
            throw BGADError(.format, "not a bgad model file (the magic bytes 'BGADMODL' are missing)")
        }
        guard head.count >= headerSize, fileSize >= headerSize else {
            throw BGADError(.format, "model file is truncated: \(fileSize) bytes, the header alone has \(headerSize)")
        }
        var h = ByteReader(bytes: Array(head.prefix(headerSize)), position: 8)
        let version = try h.u32()
        guard version <= formatVersion else {
            throw BGADError(.format, "model file has format version \(version), this bgad reads up to \(formatVersion); upgrade bgad")
        }
        guard version >= 1 else { throw BGADError(.format, "model file has an invalid format version 0") }
        _ = try h.u32()
        let length = try h.u64()
        let crc = try h.u32()
        let actual = UInt64(fileSize - headerSize)
        guard actual == length else {
            if actual < length {
                throw BGADError(.format, "model file is truncated: payload has \(actual) of \(length) bytes")
            }
            throw BGADError(.format, "model file has \(actual - length) unexpected trailing bytes")
        }
        guard fileSize <= maximumFileSize else {
            throw BGADError(.format, "model file declares \(fileSize) bytes, more than the \(maximumFileSize) a model file may have")
        }
        return (version, crc)
    }

    /// A model from serialized bytes; throws `.format` naming what is wrong.
    ///
    /// Nothing is allocated in proportion to a count read from the file before the bytes
    /// that count describes are known to be there: the flows are built only once their every
    /// tensor has been found with the right shape, and without drawing the random rotations
    /// the file overwrites.
    public static func decode(_ bytes: [UInt8]) throws(BGADError) -> BGADModel {
        let (version, crc) = try checkHeader(bytes[...], fileSize: bytes.count)
        let payload = Array(bytes[headerSize...])
        guard crc32(payload) == crc else { throw BGADError(.format, "model file is corrupted (checksum mismatch)") }

        var r = ByteReader(bytes: payload, position: 0)
        var cfg = TrainingConfiguration()
        let nParams = try r.count(max: 1000, "hyper-parameter count")
        for _ in 0..<nParams {
            let name = try r.string(), value = try r.string()
            do { try cfg.set(name, value) } catch { throw BGADError(.format, "model file: \(error.message)") }
        }
        do { try cfg.validate() } catch { throw BGADError(.format, "model file: \(error.message)") }
        let levels = try r.count(max: 1024, "level count")
        guard levels >= 1 else { throw BGADError(.format, "model file has no feature level") }
        var channels: [Int] = []
        for _ in 0..<levels { channels.append(try r.count(max: 65536, "channel count")) }
        var calibration: Calibration? = nil
        let trained = try r.u8()
        if trained == 1 {
            let height = try r.count(max: 1 << 20, "calibration height"), width = try r.count(max: 1 << 20, "calibration width")
            let beta = try r.f64()
            let sMax = try r.f32(), pt = try r.f32()
            let it: Double
            if version >= 2 {
                it = try r.f64()
            } else {
                let b = Double(sMax) - Double(try r.f32())  // version 1: S_max − (β-quantile of the images' min Σ)
                it = b > 0 ? -log(b) : Double.greatestFiniteMagnitude
            }
            let pixels = try r.u64(), images = try r.u64()
            var refs: [Float] = []
            for _ in 0..<levels { refs.append(try r.f32()) }
            guard sMax.isFinite, pt.isFinite, it.isFinite, firstNonFinite(refs) == nil, beta.isFinite,
                  pixels < UInt64(Int.max), images < UInt64(Int.max) else {
                throw BGADError(.format, "model file holds a non-finite calibration value")
            }
            calibration = Calibration(references: refs, maxNormality: sMax, height: height, width: width, beta: beta,
                                      pixelThreshold: pt, imageThreshold: it, pixelCount: Int(pixels), imageCount: Int(images))
        } else if trained != 0 {
            throw BGADError(.format, "model file: invalid 'trained' flag \(trained)")
        }
        var flows: [ConditionalFlow] = []
        for l in 0..<levels {
            flows.append(try readFlow(&r, level: l, channels: channels[l], configuration: cfg))
            guard flows[l].condDim == flows[0].condDim else {
                throw BGADError(.format, "model file, level \(l): condition dimension \(flows[l].condDim), level 0 has \(flows[0].condDim)")
            }
        }
        // The condition width is stored once, in the flows' headers.
        cfg.conditionDimension = flows[0].condDim
        var history: TrainingHistory? = nil
        if version >= 2 {
            let has = try r.u8()
            if has == 1 {
                var levelRecords: [[TrainingHistory.Record]] = []
                let fields = TrainingHistory.fieldNames.count
                for _ in 0..<levels {
                    let n = try r.count(max: 10 * TrainingHistory.maxRecords, "history record count")
                    var records: [TrainingHistory.Record] = []
                    for _ in 0..<n {
                        var f: [Double] = []
                        for _ in 0..<fields { f.append(try r.f64()) }
                        guard f[0].isFinite, f[0] >= 0, f[0] < 1e15, f[1] == 1 || f[1] == 2 else {
                            throw BGADError(.format, "model file: invalid training-history record")
                        }
                        records.append(TrainingHistory.Record(fields: f))
                    }
                    levelRecords.append(records)
                }
                history = TrainingHistory(levels: levelRecords)
            } else if has != 0 {
                throw BGADError(.format, "model file: invalid 'has history' flag \(has)")
            }
        }
        guard r.position == payload.count else { throw BGADError(.format, "model file: unexpected bytes after the last section") }
        return BGADModel(channels: channels, configuration: cfg, flows: flows, calibration: calibration, history: history)
    }

    /// Reads level `l`'s flow section. Its architecture (blocks, condition width, clamp) is
    /// a second copy of the hyper-parameters and must equal them. Every tensor is located
    /// and its name and shape checked against the layout first; only then is the flow built
    /// (zeros, no rotations drawn) and filled.
    private static func readFlow(_ r: inout ByteReader, level l: Int, channels: Int,
                                 configuration cfg: TrainingConfiguration) throws(BGADError) -> ConditionalFlow {
        func fail(_ m: String) -> BGADError { BGADError(.format, "model file, level \(l): \(m)") }
        let blocks = try r.count(max: 64, "block count"), condDim = try r.count(max: 4096, "condition dimension")
        let clamp = try r.f32()
        guard blocks == cfg.blocks, clamp == Float(cfg.clamp) else {
            throw fail("the flow has blocks = \(blocks), clamp = \(clamp) but the hyper-parameters say blocks = \(cfg.blocks), "
                       + "clamp = \(Float(cfg.clamp)) (the file is inconsistent)")
        }
        guard condDim >= 4, condDim % 4 == 0 else { throw fail("condition dimension \(condDim) is not a positive multiple of 4") }
        guard channels >= 2, channels <= 8192 else { throw fail("channel count \(channels) is outside 2...8192") }
        let layout = ConditionalFlow.parameterLayout(dim: channels, condDim: condDim, blocks: blocks)
        let floats = layout.reduce(0) { $0 + $1.shape.reduce(1, *) }
        guard floats <= (r.bytes.count - r.position) / 4 else {
            throw fail("the flow needs \(floats) floats (\(4 * floats) bytes) but only \(r.bytes.count - r.position) bytes are left")
        }
        let m = try r.count(max: layout.count, "parameter count")
        var found: [String: Int] = [:]   // name → position of its floats
        for _ in 0..<m {
            let name = try r.string()
            let rank = try r.count(max: 8, "tensor rank")
            var shape: [Int] = []
            for _ in 0..<rank { shape.append(try r.count(max: 1 << 28, "tensor dimension")) }
            guard let expected = layout.first(where: { $0.name == name })?.shape else {
                throw fail("unknown parameter '\(name)'")
            }
            guard expected == shape else { throw fail("parameter '\(name)' has shape \(shape), expected \(expected)") }
            guard found[name] == nil else { throw fail("parameter '\(name)' appears twice") }
            found[name] = r.position
            try r.skip(4 * shape.reduce(1, *), "parameter '\(name)'")
        }
        let missing = layout.map { $0.name }.filter { found[$0] == nil }
        guard missing.isEmpty else { throw fail("missing parameters \(missing)") }
        let end = r.position
        let flow: ConditionalFlow
        do {
            flow = try ConditionalFlow.forStoredParameters(dim: channels, condDim: condDim, blocks: blocks, clamp: clamp)
        } catch { throw fail(error.message) }
        for (name, shape) in layout {
            r.position = found[name]!
            do { try flow.setParameter(name, try r.floats(shape.reduce(1, *))) } catch { throw fail(error.message) }
        }
        r.position = end
        return flow
    }

    /// Writes `model` to `path` atomically (`writeFileAtomically`: a unique temporary file in
    /// the same folder, fsync, rename).
    public static func save(_ model: BGADModel, to path: String) throws(BGADError) {
        try writeFileAtomically(path, try encode(model))
    }

    /// Reads a model from `path`.
    public static func load(from path: String) throws(BGADError) -> BGADModel {
        let bytes = try readFile(path, headerSize: headerSize) { (head, size) throws(BGADError) in
            _ = try checkHeader(head[...], fileSize: size)
        }
        do {
            return try decode(bytes)
        } catch {
            throw BGADError(error.kind, "\(path): \(error.message)")
        }
    }
}
